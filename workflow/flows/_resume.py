"""A flow token's context: where it waits, and recording the answer it waits for.

All run state lives in the context, so a stored token resumes exactly where
it halted; :func:`apply_resume_data` is how an answer gets in, checked
against the halt step's ``schema`` first.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import FlowAnswerError, FlowRuntimeError, WorkflowValueError
from ._answers import answer_problem

__all__ = ["HALT", "LOOPS", "apply_resume_data", "context_of", "halted_step", "scope_at"]

#: Where loops keep their state inside a scope, and where a halt leaves its marker.
LOOPS = "_loops"
HALT = "_halt"


def context_of(obj: Any) -> dict[str, Any]:
    """Return the context of a flow's token: the token itself, or its ``data``.

    A flow's tokens are context dicts; the persistent engine wraps each in a
    :class:`~workflow.storage.Token` whose ``data`` is the dict.

    :raises FlowRuntimeError: when ``obj`` holds no context dict.

    .. versionadded:: 3.0
    """
    if type(obj) is dict:
        return obj
    data = getattr(obj, "data", None)
    if isinstance(data, dict):
        return data
    raise FlowRuntimeError(
        f"a flow's token must be a context dict (see Flow.new_context), "
        f"not {type(obj).__name__} {obj!r}"
    )


def scope_at(root: dict[str, Any], path: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Return the dict of results at ``path`` (a called flow's steps) inside ``root``."""
    scope = root
    for key in path:
        scope = scope[key]
    return scope


def halted_step(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return ``{"step", "message", "action"}`` of the halt step the token waits at, or ``None``.

    Inside a loop the dict also has ``"round"``, which round the token
    waits in (``"item 2 of 'lines'"``), as its message says; when the step
    declares the ``default`` of its answer, ``"default"`` too.

    .. versionadded:: 3.0
    """
    marker = context.get(HALT)
    if not isinstance(marker, dict):
        return None
    found = {key: marker.get(key) for key in ("step", "message", "action")}
    if marker.get("round"):
        found["round"] = marker["round"]
    if "default" in marker:
        found["default"] = marker["default"]
    return found


def apply_resume_data(context: dict[str, Any], data: Any = None) -> None:
    """Record ``data`` as the result of the halt step the token waits at.

    Steps after the halt step then read it as ``@<halt step>`` and
    ``@<halt step>.key``. Call it on a halted token's context before
    resuming the run.

    ``None`` (JSON ``null``, or no ``data`` at all) means that no answer was
    given: the step's ``default`` is recorded instead when it declares one,
    else ``None`` is the answer. When the step declares a ``schema``, the
    answer must match it; nothing is recorded otherwise.

    :raises FlowAnswerError: when the answer does not match the step's
        schema (the message names the step and the path in the answer), or
        needs jsonschema and it is not installed. A :exc:`ValueError`.
    :raises WorkflowValueError: when the token does not wait at a halt step.

    .. versionadded:: 3.0
    .. versionchanged:: 3.0
       Checks the answer against the step's ``schema``; ``None`` takes its ``default``.
    """
    marker = context.get(HALT)
    if not isinstance(marker, dict):
        raise WorkflowValueError(
            "this token does not wait at a halt step, so it takes no resume data"
        )
    step = marker["step"]
    if data is None and "default" in marker:
        data = copy.deepcopy(marker["default"])
    if "schema" in marker:
        _check(step, marker["schema"], data)
    scope_at(context, marker.get("scope", ()))[step] = data
    del context[HALT]


def _check(step: str, schema: Any, answer: Any) -> None:
    try:
        problem = answer_problem(schema, answer)
    except ImportError as exc:
        raise FlowAnswerError(f"step {step!r}: {exc}", step=step) from exc
    if problem is not None:
        path, message = problem
        raise FlowAnswerError(
            f"the answer for step {step!r} does not match its schema: at {path}: {message}",
            step=step,
            path=path,
        )
