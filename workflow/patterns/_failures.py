"""Errors and retries: :func:`ERROR`, a task that fails, and :func:`TRY`, which retries one.

Both are offered by :mod:`workflow.patterns.utils`.
"""

from __future__ import annotations

import logging
import sys
from types import FrameType
from typing import Any

from ..engine import GenericWorkflowEngine
from ..errors import WorkflowDefinitionError, WorkflowError, WorkflowTransition
from . import _nice_docs
from ._nice_docs import Task, with_nice_docs


@with_nice_docs
def ERROR(msg: str = "Error in the workflow", *, comment: str | None = None) -> Task:
    """Build a task that fails with :class:`~workflow.errors.WorkflowError`.

    The message names the file and line where the definition calls
    ``ERROR``, e.g. ``in /app/flows.py:12 : no handler for this record``.

    .. versionchanged:: 3.0
       Raises :class:`~workflow.errors.WorkflowError` (an ``Exception``, as
       before), so that ``process(stop_on_error=False)`` moves on to the next
       token; 2.x named its own module instead of the caller's file.

    Example::

        IF_ELSE(is_known_type, [convert], [ERROR("unknown record type")])
    """
    where = _caller_location()

    def _error(obj: Any, eng: GenericWorkflowEngine) -> None:
        raise WorkflowError(
            f"in {where} : {msg}",
            id_object=eng.state.token_pos,
            callback_pos=list(eng.state.callback_pos),
            task="ERROR",
        )

    return _error


# The frames to skip: this module's and the with_nice_docs wrapper's, which called ERROR.
_OWN_FILES = frozenset({__file__, _nice_docs.__file__})


def _caller_location() -> str:
    """Return ``file:line`` of the first frame outside this module and :func:`with_nice_docs`."""
    frame: FrameType | None = sys._getframe()
    while frame is not None and frame.f_code.co_filename in _OWN_FILES:
        frame = frame.f_back
    if frame is None:  # pragma: no cover - there is always a caller
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@with_nice_docs
def TRY(
    onecall: Task,
    retry: int = 1,
    onfailure: Any = Exception,
    verbose: bool = True,
    *,
    comment: str | None = None,
) -> Task:
    """Build a task that runs ``onecall`` and tries again when it fails.

    ``onecall`` runs at most ``1 + retry`` times. Transitions
    (``eng.halt()``, ``eng.jump_call()``, ...) pass through at once, and only
    :class:`Exception` counts as a failure (``KeyboardInterrupt`` and
    ``SystemExit`` are never caught). After the last failed attempt:

    * an exception class (the default, ``Exception``) re-raises the error;
    * an exception instance is raised, chained to the error;
    * ``None`` ignores the error;
    * any other callable is called as ``onfailure(obj, eng)``.

    :param verbose: log each failure with its traceback at WARNING level on
        the engine's logger (otherwise at DEBUG).

    The task returns what ``onecall`` returned, or ``None`` after an ignored
    failure.

    .. versionchanged:: 3.0
       The default re-raises the error; 2.x silently swallowed it.

    Example::

        [TRY(fetch_metadata, retry=3, onfailure=WorkflowError("server down")), store]
    """
    if not callable(onecall):
        raise WorkflowDefinitionError(f"TRY wraps one callable task; got {onecall!r}")
    if type(retry) is not int or retry < 0:
        raise WorkflowDefinitionError(f"TRY: retry must be an int >= 0; got {retry!r}")
    if not (onfailure is None or callable(onfailure) or isinstance(onfailure, BaseException)):
        raise WorkflowDefinitionError(
            "TRY: onfailure must be an exception class or instance, a callable "
            f"onfailure(obj, eng) or None; got {onfailure!r}"
        )
    attempts = 1 + retry
    level = logging.WARNING if verbose else logging.DEBUG

    def _try(obj: Any, eng: GenericWorkflowEngine) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return onecall(obj, eng)
            except WorkflowTransition:
                raise
            except Exception as error:
                eng.log.log(
                    level,
                    "TRY: attempt %d of %d of %r failed",
                    attempt,
                    attempts,
                    onecall,
                    exc_info=True,
                )
                if attempt < attempts:
                    continue
                if isinstance(onfailure, BaseException):
                    raise onfailure from error
                if onfailure is None:
                    return None
                if isinstance(onfailure, type) and issubclass(onfailure, BaseException):
                    raise
                onfailure(obj, eng)
        return None  # pragma: no cover - the loop always returns or raises

    return _try
