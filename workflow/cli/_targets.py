"""What a run runs: a flow file, a stored definition, or a Python callback list.

A run records where its definition came from, so that ``workflow resume``
builds the same definition again: a flow run stores its definition's name
and version on the workflow row; a Python run stores its ``module:attribute``
in the workflow's ``extra_data["cli"]``.
"""

from __future__ import annotations

import importlib
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.errors import WorkflowKeyError

from ._context import ENV_IMPORT_ALLOW, CLIError, Context, ModuleImportError, import_modules
from ._origins import where_to_find

if TYPE_CHECKING:
    from workflow.flows import Flow, FlowError
    from workflow.storage import PersistentWorkflowEngine

__all__ = [
    "FLOW_SUFFIXES",
    "Target",
    "allowed_imports",
    "check_resume_imports",
    "definition_lookup",
    "format_flow_errors",
    "import_hint",
    "load_flow_file",
    "load_python",
    "resume_target",
    "run_target",
    "task_registry",
]

#: Files with these suffixes are flow definitions.
FLOW_SUFFIXES = (".json", ".yaml", ".yml")

#: The key of a workflow's ``extra_data`` where the command records what it ran.
META_KEY = "cli"

_TARGET_FORMS = "a flow file (.json, .yaml, .yml), def:NAME[@VERSION] or module:attribute"


@dataclass
class Target:
    """A definition ready to run, and where it came from."""

    #: The name a new workflow gets unless ``--name`` says otherwise.
    name: str
    #: The callback tree for the engine.
    callbacks: list[Any]
    #: The compiled flow, for flow runs.
    flow: Flow | None = None
    #: The stored definition's name and version, for flow runs.
    definition_name: str | None = None
    definition_version: int | None = None
    #: ``module:attribute``, for Python runs.
    spec: str | None = None

    def token(self, record: Any) -> Any:
        """Return the token that runs for one input record (a flow's context)."""
        return record if self.flow is None else self.flow.new_context(record)


def format_flow_errors(errors: list[FlowError]) -> str:
    """Return one line per error, naming its flow, step and JSON path."""
    return "\n".join(map(str, errors))


def _flow_error(source: str, exc: Any, *, hint: str | None = None) -> CLIError:
    errors = format_flow_errors(exc.errors) if exc.errors else str(exc)
    return CLIError(f"{source} is not a valid flow:\n{errors}" + (f"\n{hint}" if hint else ""))


def import_hint(ctx: Context, errors: list[FlowError]) -> str | None:
    """Say how to import the tasks, when tasks are unknown and no module was imported."""
    if ctx.args.imports or not any(e.message.startswith("unknown task ") for e in errors):
        return None
    return (
        "no task module was imported: name the module that registers the tasks with "
        "--import MODULE (e.g. workflow --import mytasks ...)"
    )


def definition_lookup(ctx: Context) -> Any:
    """Return the ``definitions=`` callable of :func:`~workflow.flows.load_flow`: the store."""

    def definitions(name: str, version: int | None) -> Any:
        try:
            store = ctx.store(write=False)
        except CLIError as exc:
            raise WorkflowKeyError(f"flow {name!r} is not stored: {exc.message}") from exc
        from workflow.storage import Definitions

        # A Definition, so that load_flow pins the version of calls that name none.
        return Definitions(store).get(name, version)

    return definitions


def task_registry() -> Any:
    """Return the default task registry, with the tasks of installed packages loaded."""
    from workflow.flows import default_registry

    default_registry.load_entry_points()
    return default_registry


def load_flow_file(ctx: Context, path: str, *, structure_only: bool = False) -> Flow:
    """Load and validate the flow in ``path``.

    :param structure_only: do not look up its tasks nor the flows it calls
        (``workflow graph``): neither the task modules nor the database are needed.
    :raises CLIError: listing every problem of the file.
    """
    from workflow.flows import FlowValidationError, load_flow

    if not Path(path).is_file():
        raise CLIError(f"no such flow file: {path}")
    try:
        if structure_only:
            return load_flow(path, structure_only=True)
        return load_flow(path, registry=task_registry(), definitions=definition_lookup(ctx))
    except FlowValidationError as exc:
        raise _flow_error(path, exc, hint=import_hint(ctx, exc.errors)) from exc


def stored_target(ctx: Context, name: str, version: int | None) -> Target:
    """Compile the stored definition ``name`` (its latest enabled version, or ``version``)."""
    from workflow.flows import FlowValidationError, load_flow
    from workflow.storage import Definitions

    definition = Definitions(ctx.store()).get(name, version)
    try:
        flow = load_flow(
            definition.body,
            registry=task_registry(),
            definitions=definition_lookup(ctx),
            version=definition.version,
        )
    except FlowValidationError as exc:
        where = f"definition {name!r} version {definition.version}"
        raise _flow_error(where, exc, hint=import_hint(ctx, exc.errors)) from exc
    return Target(
        name=flow.name,
        callbacks=flow.callbacks(),
        flow=flow,
        definition_name=definition.name,
        definition_version=definition.version,
    )


def load_python(spec: str) -> list[Any]:
    """Import the callback list ``module:attribute``.

    The attribute may be a list of tasks, an object with a ``workflow``
    attribute holding one (an Invenio workflow class), or a single task.

    :raises CLIError: when it cannot be imported or is no callback list.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CLIError(f"{spec!r} is not {_TARGET_FORMS}")
    import_modules([module_name])
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attribute!r}") from None
        if isinstance(found, types.ModuleType):
            raise CLIError(
                f"{spec}: {part} is a module; name it before the colon "
                f"({found.__name__}:ATTRIBUTE), so that only the modules named are imported"
            )
    if not isinstance(found, (list, tuple)) and hasattr(found, "workflow"):
        found = found.workflow
    if callable(found) and not isinstance(found, (list, tuple)):
        found = [found]
    if not isinstance(found, (list, tuple)) or not found:
        raise CLIError(f"{spec} is not a callback list: it is {type(found).__name__} {found!r}")
    return list(found)


def _parse_def(text: str) -> tuple[str, int | None]:
    """Split ``NAME[@VERSION]``."""
    name, at, version = text.partition("@")
    if not name or (at and not version.isdigit()):
        raise CLIError(f"def:{text} is not def:NAME or def:NAME@VERSION (a whole number)")
    return name, int(version) if at else None


def runs_a_flow(args: Any) -> bool:
    """Whether the target of ``workflow run`` is a flow (a file or a stored definition)."""
    target = args.target or ""
    return (
        args.definition is not None
        or target.startswith("def:")
        or Path(target).suffix.lower() in FLOW_SUFFIXES
    )


def run_target(ctx: Context) -> Target:
    """Return the definition ``workflow run`` was asked to run.

    :raises CLIError: for a target that cannot be found, imported or validated.
    """
    args = ctx.args
    target: str | None = args.target
    if target is not None and args.definition is not None:
        raise CLIError("give either TARGET or --definition NAME, not both")
    if args.definition is not None:
        return stored_target(ctx, args.definition, args.version)
    if target is None:
        raise CLIError(f"give what to run: {_TARGET_FORMS}, or --definition NAME")
    if args.version is not None:
        raise CLIError("--version goes with --definition NAME; use def:NAME@VERSION otherwise")
    if target.startswith("def:"):
        return stored_target(ctx, *_parse_def(target[len("def:") :]))
    if Path(target).suffix.lower() in FLOW_SUFFIXES:
        flow = load_flow_file(ctx, target)
        from workflow.storage import Definitions

        definition = Definitions(ctx.store()).put(flow.name, flow.body)
        ctx.out.note(f"flow {definition.name!r} is stored as version {definition.version}")
        return stored_target(ctx, definition.name, definition.version)
    if ":" in target:
        return Target(name=target, callbacks=load_python(target), spec=target)
    raise CLIError(f"{target!r} is not {_TARGET_FORMS}")


def allowed_imports(ctx: Context) -> set[str]:
    """Return the modules a resume may import: ``--import`` and ``$WORKFLOW_IMPORT_ALLOW``.

    The variable lists module names separated by commas or spaces; each name
    allows that module exactly (not its submodules).
    """
    configured = os.environ.get(ENV_IMPORT_ALLOW, "").replace(",", " ").split()
    return {*ctx.args.imports, *configured}


def _recorded(engine: PersistentWorkflowEngine) -> tuple[list[str], str | None]:
    """Return the modules a stored run was started with, and its ``module:attribute``.

    :raises CLIError: when the record is not what ``workflow run`` writes.
    """
    meta = engine.extra_data.get(META_KEY) or {}
    imports = (meta.get("imports") or []) if isinstance(meta, dict) else None
    spec = meta.get("target") if isinstance(meta, dict) else None
    if (
        not isinstance(imports, list)
        or not all(isinstance(name, str) for name in imports)
        or not isinstance(spec, (str, type(None)))
    ):
        raise CLIError(
            f"workflow {engine.uuid} has an invalid record of how it was started "
            f"(extra_data[{META_KEY!r}] = {meta!r}): it cannot be resumed by the workflow command"
        )
    return imports, spec or None


def check_resume_imports(ctx: Context, engine: PersistentWorkflowEngine) -> list[str]:
    """Return the modules to import to resume ``engine``'s run, once each is allowed.

    A run records the modules it was started with in its ``extra_data``,
    which its tasks can write: those modules are imported again only when
    the person resuming allows them (:func:`allowed_imports`).

    :raises CLIError: naming the modules the run was started with and how to
        allow those that are not.
    """
    imports, spec = _recorded(engine)
    needed = [*imports, *([spec.partition(":")[0]] if spec else [])]
    allowed = allowed_imports(ctx)
    refused = [name for name in dict.fromkeys(needed) if name not in allowed]
    if refused:
        started = " ".join(f"--import {name}" for name in imports) or "no --import"
        runs = f" to run {spec}" if spec else ""
        allow = " ".join(f"--import {name}" for name in refused)
        raise CLIError(
            f"workflow {engine.uuid} was started with {started}{runs}; a resume imports only "
            f"the modules you allow: pass {allow} (or list them in ${ENV_IMPORT_ALLOW})"
        )
    return needed


def resume_target(ctx: Context, engine: PersistentWorkflowEngine) -> Target:
    """Import the modules of ``--import`` and of the run's record, then build its definition.

    A module that is not found is reported with where the run found it, if
    it recorded that (:mod:`._origins`); that directory is never searched.

    :raises CLIError: when the run was not started by this command and stores
        no definition, or was started with modules not allowed
        (:func:`check_resume_imports`).
    """
    needed = check_resume_imports(ctx, engine)
    try:
        import_modules(list(dict.fromkeys([*ctx.args.imports, *needed])))
    except ModuleImportError as exc:
        meta = engine.extra_data.get(META_KEY)
        hint = where_to_find(meta, exc.module, engine.uuid) if exc.missing else None
        if hint is None:
            raise
        raise CLIError(
            f"cannot import module {exc.module!r} (no such module here); {hint}"
        ) from exc
    if engine.definition_name is not None:
        return stored_target(ctx, engine.definition_name, engine.definition_version)
    _, spec = _recorded(engine)
    if spec:
        return Target(name=spec, callbacks=load_python(spec), spec=spec)
    raise CLIError(
        f"workflow {engine.uuid} has no stored definition and was not started by the "
        "workflow command: resume it from Python with PersistentWorkflowEngine.from_uuid()"
    )
