"""A flow's run key: ``"key"`` and ``"on_conflict"`` at the top of a flow document.

``"key"`` is a literal string, or a reference into the run's input record
(``"@_input.order_id"``); ``"@@x"`` is the literal ``"@x"``. A stored run
of the flow holds the key while it is active, so that a second start with
the same input is refused (``"on_conflict": "refuse"``, the default) or
gets the run already there (``"existing"``): see
:mod:`workflow.storage.run_keys`.

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..errors import WorkflowValueError
from ._refs import Lookup, ResolveError, parse_reference

__all__ = ["ON_CONFLICT", "OnConflict", "key_problems", "on_conflict_of", "resolve_key"]

#: What a start does while an active run holds its key.
OnConflict = Literal["refuse", "existing"]
#: The values of ``"on_conflict"``; the first is the default.
ON_CONFLICT: tuple[OnConflict, ...] = ("refuse", "existing")


def key_problems(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return ``(json_path, message)`` for each problem of the flow's key fields."""
    problems = []
    if "key" in body:
        key = body["key"]
        if not isinstance(key, str) or not key:
            problems.append(("$.key", f"key must be a non-empty string, not {key!r}"))
        else:
            try:
                ref = parse_reference(key)
            except ValueError as exc:
                problems.append(("$.key", str(exc)))
            else:
                if ref is not None and ref.name != "_input":
                    problems.append(
                        (
                            "$.key",
                            f"the key {key!r} refers to {ref.name!r}: a run's key is known "
                            "when it starts, so it refers to the input record "
                            "('@_input' or '@_input.field')",
                        )
                    )
    if "on_conflict" in body:
        if "key" not in body:
            problems.append(("$.on_conflict", "on_conflict goes with a 'key'"))
        if body["on_conflict"] not in ON_CONFLICT:
            allowed = " or ".join(repr(value) for value in ON_CONFLICT)
            problems.append(
                ("$.on_conflict", f"on_conflict is {allowed}, not {body['on_conflict']!r}")
            )
    return problems


def on_conflict_of(body: Mapping[str, Any]) -> OnConflict:
    """Return the ``"on_conflict"`` of a valid flow ``body`` (``"refuse"`` when it has none)."""
    return "existing" if body.get("on_conflict") == "existing" else "refuse"


def resolve_key(body: Mapping[str, Any], data: Any) -> str | None:
    """Return the key of a run of the flow ``body`` over the input record ``data``.

    An integer is written out (``17`` is the key ``"17"``).

    :returns: ``None`` when the flow declares no key.
    :raises WorkflowValueError: when the record has no such value, or one
        that is neither a string nor an integer.
    """
    spec = body.get("key")
    if spec is None:
        return None
    ref = parse_reference(spec)
    if ref is None:
        return str(spec[1:] if spec.startswith("@@") else spec)
    context = {"_input": data}
    problem = None
    try:
        value = Lookup(context, context).value(ref)
    except ResolveError as exc:
        problem = str(exc)
    else:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value:
            return value
        problem = f"{spec} is {_shown(value)}, not a string or an integer"
    raise WorkflowValueError(f"flow {body.get('name')!r}: the run key {problem}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{type(value).__name__} {text[:37]}..."
