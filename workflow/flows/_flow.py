"""The :class:`Flow` object, :func:`load_flow` and :func:`validate_flow`."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import FlowError, FlowValidationError
from ._compile import compile_body
from ._graph import GraphFormat, render
from ._keys import OnConflict, on_conflict_of, resolve_key
from ._limits import check_document
from ._load import ParseFailure, from_procedures, procedures_path, read_file
from ._registry import TaskRegistry, default_registry
from ._validate import DefinitionLookup, validate_body, version_of

__all__ = ["Flow", "load_flow", "validate_flow"]


class Flow:
    """A validated declarative flow, ready to compile into a callback tree.

    Build it with :func:`load_flow`, which validates first; a :class:`Flow`
    is never invalid.

    :ivar name: the flow's name.
    :ivar version: the stored version it was loaded from, or the ``version``
        field of the definition, or ``None``.
    :ivar body: the definition in this package's format (a ``procedures``
        definition is translated), as JSON-serialisable data: what to store.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        body: dict[str, Any],
        *,
        version: int | None,
        registry: TaskRegistry,
        definitions: DefinitionLookup | None,
        structure_only: bool = False,
    ) -> None:
        self.body = body
        self.name: str = body["name"]
        self.version = version
        self.registry = registry
        self.definitions = definitions
        self._unchecked = structure_only  # its tasks and called flows are not looked up yet

    def __repr__(self) -> str:
        version = "" if self.version is None else f" v{self.version}"
        return f"<Flow {self.name!r}{version}, {len(self.body['steps'])} steps>"

    @property
    def description(self) -> str | None:
        """The definition's ``description``, if it has one."""
        description = self.body.get("description")
        return description if isinstance(description, str) else None

    def callbacks(self) -> list[Any]:
        """Return the flow as a callback tree, for any engine's ``callbacks.replace()``.

        Its first task fills the token's ``_runtime`` entry; then comes one
        item per step, in the order the steps run.

        :raises FlowValidationError: for a flow loaded with ``structure_only``
            whose tasks are not registered or whose called flows are not found.
        """
        if self._unchecked:
            errors = validate_body(self.body, registry=self.registry, definitions=self.definitions)
            if errors:
                raise FlowValidationError(errors)
            self._unchecked = False
        return compile_body(
            self.body, registry=self.registry, definitions=self.definitions, version=self.version
        )

    @property
    def on_conflict(self) -> OnConflict:
        """What a start does when an active run holds its key: ``"refuse"`` or ``"existing"``.

        .. versionadded:: 3.0
        """
        return on_conflict_of(self.body)

    def run_key(self, data: Any = None) -> str | None:
        """Return the key of a run of this flow over the input record ``data``.

        The flow's ``"key"`` is a literal, or a reference into the record
        (``"@_input.order_id"``); pass the key to
        :meth:`PersistentWorkflowEngine.with_name()
        <workflow.storage.PersistentWorkflowEngine.with_name>` with
        ``on_conflict=flow.on_conflict``.

        :returns: ``None`` when the flow declares no key.
        :raises ~workflow.errors.WorkflowValueError: naming the flow, when
            the record has no such value, or one that is neither a string
            nor an integer.

        .. versionadded:: 3.0
        """
        return resolve_key(self.body, data)

    def new_context(self, data: Any = None) -> dict[str, Any]:
        """Return the token to process for one input record: ``{"_input": data}``."""
        return {"_input": data}

    def graph(self, format: GraphFormat = "mermaid") -> str:
        """Return the flow's diagram: Mermaid (``"mermaid"``) or Graphviz DOT (``"dot"``) source."""
        return render(self.body, format)


def load_flow(
    source: str | PathLike[str] | Mapping[str, Any],
    *,
    registry: TaskRegistry | None = None,
    definitions: DefinitionLookup | None = None,
    version: int | None = None,
    structure_only: bool = False,
) -> Flow:
    """Read, translate and validate a flow; return it, or raise with every error found.

    :param source: a path to a ``.json``, ``.yaml`` or ``.yml`` file, or the
        definition itself as a dict. Either this package's format
        (``{"name": ..., "steps": [...]}``) or the JSON flow framework's
        (``{"procedures": [{"name", "mod", "method", "params"}]}``, whose
        tasks are ``mod.method`` and whose name is the file's stem).
    :param registry: where task names are looked up; :data:`default_registry`
        by default.
    :param definitions: ``definitions(name, version)`` returns a stored flow
        that a ``flow`` step calls (or raises :exc:`LookupError`): its body,
        or an object with ``body`` and ``version`` such as a
        :class:`workflow.storage.Definition`. With the latter, a call that
        names no version is pinned in :attr:`Flow.body` to the version it
        gets now, so a stored run resumes with the flows it started with.
    :param version: the stored version this body is; by default its
        ``version`` field, if any.
    :param structure_only: check everything but what needs the tasks and
        the stored flows: the tasks need not be registered (or importable),
        and the flows a ``flow`` step calls are not looked up. Enough to
        draw the flow (:meth:`Flow.graph`); :meth:`Flow.callbacks` checks
        the rest before it compiles.
    :raises FlowValidationError: listing every problem, each with the flow,
        the step and the JSON path; nothing has run. A flow past one of the
        limits (:data:`MAX_NESTING`, :data:`MAX_STEPS`, ...) is invalid, and
        a YAML file may not use aliases (``*name``).

    .. versionadded:: 3.0
    """
    registry = default_registry if registry is None else registry
    fallback = "flow"
    if isinstance(source, str | PathLike):
        path = Path(source)
        fallback = path.stem or fallback
        try:
            data: Any = read_file(path)
        except ParseFailure as failure:
            raise FlowValidationError([failure.error]) from None
    else:  # the definition itself (checked below), copied once it is known to be sound
        data = dict(source) if isinstance(source, Mapping) else source
    too_big = check_document(data, _name_of(data, fallback))
    if too_big is not None:  # nothing recursive has seen the document yet
        raise FlowValidationError([too_big])
    if not isinstance(source, str | PathLike):
        data = copy.deepcopy(data)  # what load_flow changes is never the caller's
    body, errors = _our_format(data, fallback)
    if not errors:
        errors = validate_body(
            body, registry=registry, definitions=definitions, structure_only=structure_only
        )
        if isinstance(data, dict) and "procedures" in data:
            errors = [_back_to_procedures(error, data, registry) for error in errors]
    if errors:
        raise FlowValidationError(errors)
    if definitions is not None and not structure_only:
        _pin_calls(body["steps"], definitions)
    if version is None and type(body.get("version")) is int:
        version = body["version"]
    return Flow(
        body,
        version=version,
        registry=registry,
        definitions=definitions,
        structure_only=structure_only,
    )


def validate_flow(
    source: Mapping[str, Any],
    *,
    registry: TaskRegistry | None = None,
    definitions: DefinitionLookup | None = None,
) -> list[FlowError]:
    """Return every error of the flow definition ``source`` (empty when it is valid).

    Never raises for a bad definition; see :func:`load_flow` for the formats.

    .. versionadded:: 3.0
    """
    try:
        load_flow(source, registry=registry, definitions=definitions)
    except FlowValidationError as exc:
        return exc.errors
    return []


def _pin_calls(steps: list[Any], definitions: DefinitionLookup) -> None:
    """Write the version each call without one gets today into its step, when the lookup says.

    A stored run recompiles its flow from the stored body when it resumes: a
    pinned call then runs the called flow it started with, even after a newer
    version of that flow is published.
    """
    for step in steps:
        if "flow" in step and "version" not in step:
            version = version_of(definitions(step["flow"], None))
            if version is not None:
                step["version"] = version
        for key in ("then", "else", "do"):
            _pin_calls(step.get(key, []), definitions)
        branches = step.get("parallel")  # on a for_each, true: how the loop runs
        for branch in branches if isinstance(branches, list) else []:
            _pin_calls(branch, definitions)


def _name_of(data: Any, fallback: str) -> str:
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else fallback


def _our_format(data: Any, fallback: str) -> tuple[Any, list[FlowError]]:
    if isinstance(data, dict) and "procedures" in data and "steps" not in data:
        return from_procedures(data, fallback)
    return data, []


def _back_to_procedures(
    error: FlowError, document: dict[str, Any], registry: TaskRegistry
) -> FlowError:
    """Return ``error`` with its path in the ``procedures`` document it was translated from.

    Only a document without errors of its own shape is validated, so each
    step is the procedure at the same index, with a ``mod`` string.
    """
    match = re.fullmatch(r"\$\.steps\[(\d+)\]\.task", error.path)
    known_module = False
    if match is not None:
        mod = document["procedures"][int(match.group(1))]["mod"]
        known_module = any(name.startswith(f"{mod}.") for name in registry.names())
    path = procedures_path(error.path, known_module=known_module)
    return FlowError(error.flow, error.step, path, error.message)
