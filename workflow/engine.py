"""The token engine: a finite state machine with memory.

:class:`GenericWorkflowEngine` pushes each token of a list through a callback
tree, a nested list of tasks called as ``task(obj, eng)``. Its whole position
is a :class:`MachineState`, so a halted run resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from typing import Any

from ._callbacks import Callbacks
from ._hooks import (
    ActionMapper,
    Break,
    Continue,
    ProcessingFactory,
    Signal,
    TransitionActions,
    _Signal,
)
from ._jump import JumpTask
from ._legacy import LegacyEngineAPI
from ._loop import TokenLoop
from ._observers import task_name
from ._state import MachineState
from .errors import (
    AbortProcessing,
    BreakFromThisLoop,
    ContinueNextToken,
    HaltProcessing,
    JumpCall,
    JumpCallBack,
    JumpCallForward,
    JumpToken,
    JumpTokenBack,
    JumpTokenForward,
    SkipToken,
    StopProcessing,
    WorkflowError,
    WorkflowTransition,
    WorkflowTypeError,
    WorkflowValueError,
)
from .utils import classproperty

__all__ = [
    "LOG",
    "LOGGING_LEVEL",
    "AbortProcessing",
    "ActionMapper",
    "Break",
    "BreakFromThisLoop",
    "Callbacks",
    "Continue",
    "ContinueNextToken",
    "GenericWorkflowEngine",
    "HaltProcessing",
    "JumpCall",
    "JumpCallBack",
    "JumpCallForward",
    "JumpTask",
    "JumpToken",
    "JumpTokenBack",
    "JumpTokenForward",
    "MachineState",
    "ProcessingFactory",
    "Signal",
    "SkipToken",
    "StopProcessing",
    "TransitionActions",
    "WorkflowTransition",
    "get_logger",
    "reset_all_loggers",
]

#: The package's logger. The library never gives it a handler.
LOG = logging.getLogger("workflow")
#: The level :func:`reset_all_loggers` falls back to.
LOGGING_LEVEL = logging.NOTSET
_loggers: list[logging.Logger] = []

_MOVES = ("prev", "current", "next", "first")


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name``, placed under ``workflow.`` when it is not already."""
    if name != "workflow" and not name.startswith("workflow."):
        name = f"workflow.{name}"
    logger = logging.getLogger(name)
    _loggers.append(logger)
    return logger


def reset_all_loggers(level: int = LOGGING_LEVEL) -> None:
    """Set the level of every logger made by :func:`get_logger`."""
    for logger in _loggers:
        logger.setLevel(level)


class GenericWorkflowEngine(LegacyEngineAPI, TokenLoop):
    """Run tokens through a callback tree, one token after the other.

    Register a definition with ``eng.callbacks.replace([...])`` and run it with
    :meth:`process`. Tasks steer the run with :meth:`halt`, :meth:`stop`,
    :meth:`jump_call`, ... which work by raising the transitions of
    :mod:`workflow.errors`.
    """

    def __init__(self) -> None:
        #: The definitions this engine runs (:class:`Callbacks`).
        self.callbacks = Callbacks()
        #: The tokens of the current (or last) run.
        self.objects: Any = []
        #: The engine's logger (see :meth:`init_logger`).
        self.log = self.init_logger()
        #: The engine's position (:class:`MachineState`).
        self.state = MachineState()
        #: Data shared by every task; it survives across runs of this engine.
        self.extra_data: dict[str, Any] = {}
        self._init_loop()

    # -- hooks --------------------------------------------------------------

    @classproperty
    def signal(cls) -> _Signal:
        """The signal sender the engine calls (:data:`workflow.engine.Signal`)."""
        return Signal

    @classproperty
    def processing_factory(cls) -> type[ProcessingFactory]:
        """The :class:`ProcessingFactory` whose hooks this engine calls."""
        return ProcessingFactory

    def init_logger(self) -> logging.Logger:
        """Return the logger of this engine: ``workflow.engine.<ClassName>``."""
        return logging.getLogger(f"workflow.engine.{type(self).__qualname__}")

    def callback_chooser(self, obj: Any) -> Any:
        """Return the callback tree to run for ``obj``; override to route tokens.

        By default the tree under ``'*'``. A token with a ``getFeature``
        method (deprecated) gets the tree named by ``obj.getFeature('type')``.
        """
        get_feature = getattr(obj, "getFeature", None)
        if get_feature is None:
            return self.callbacks.get("*")
        warnings.warn(
            "routing tokens with obj.getFeature('type') is deprecated; "
            "override callback_chooser() instead",
            DeprecationWarning,
            stacklevel=3,
        )
        key = get_feature("type")
        if not key:
            self.log.warning("token %d has no 'type' feature; skipped", self.state.token_pos)
            return None
        return self.callbacks.get(key)

    def execute_callback(self, callback: Any, obj: Any) -> None:
        """Call one task as ``callback(obj, self)``; override for per-task behaviour."""
        callback(obj, self)

    # The defaults the loop compares with, to skip what is not overridden.
    _default_chooser = callback_chooser
    _default_execute = execute_callback

    # -- control flow, called from tasks --------------------------------------

    def stop(self) -> None:
        """Stop this engine after the current task; the run ends normally."""
        raise StopProcessing

    def halt(self, msg: str = "", action: str | None = None, payload: Any = None) -> None:
        """Halt this engine and every engine above it, keeping the position.

        :param msg: why the run halts.
        :param action: name of the action somebody should take.
        :param payload: any data describing the halt.
        :raises HaltProcessing: always; it leaves :meth:`process`.
        """
        raise HaltProcessing(msg, action, payload)

    def continue_next_token(self) -> None:
        """Leave the current token; the next one starts at its first task."""
        raise ContinueNextToken

    @staticmethod
    def jump_token(offset: int) -> None:
        """Go on with the token ``offset`` away: ``0`` redoes this one, ``1`` is the next.

        The target is clamped to the token list; past the end the run finishes.
        """
        if type(offset) is not int:
            raise WorkflowTypeError(f"jump_token() offset must be an int, got {offset!r}")
        raise JumpToken(offset)

    def jump_call(self, offset: int) -> None:
        """Go on with the task ``offset`` away in the innermost running list.

        ``1`` is the next task, ``0`` runs this task again, a negative offset
        goes back. The target is clamped to the list; past its end the list is
        left and its parent goes on.
        """
        if type(offset) is not int:
            raise WorkflowTypeError(f"jump_call() offset must be an int, got {offset!r}")
        raise JumpCall(offset)

    def jump_call_later(self, offset: int) -> None:
        """Like :meth:`jump_call`, but move when the running task returns.

        Nothing is raised: the task goes on to its end, then the engine
        continues with the task ``offset`` away in the innermost running list
        (an offset past the end leaves the list). Patterns use it because it is
        much cheaper than raising; a task that halts or fails after calling it
        resumes at the moved position.

        .. versionadded:: 3.0
        """
        if type(offset) is not int:
            raise WorkflowTypeError(f"jump_call_later() offset must be an int, got {offset!r}")
        pos = self.state.callback_pos
        target = pos[-1] + offset
        pos[-1] = target - 1 if target > 0 else -1

    def break_current_loop(self) -> None:
        """Leave the innermost running list; its parent goes on after it."""
        raise BreakFromThisLoop

    @staticmethod
    def skip_token() -> None:
        """Skip the rest of the current token; the next one starts at its first task."""
        raise SkipToken

    @staticmethod
    def abort() -> None:
        """Stop the run at once, without finishing the current token."""
        raise AbortProcessing

    # -- running --------------------------------------------------------------

    def process(
        self,
        objects: Any,
        stop_on_error: bool = True,
        stop_on_halt: bool = True,
        initial_run: bool = True,
        reset_state: bool = True,
    ) -> None:
        """Run every token of ``objects`` through the definition, in one pass.

        :param objects: the tokens: a list, or anything with ``len()`` and
            integer indexing. Tasks may append to it while it runs.
        :param stop_on_error: when false, a task raising
            :class:`~workflow.errors.WorkflowError` ends only its token and
            the pass goes on with the next token.
        :param stop_on_halt: when false, a halt ends only its token and the
            pass goes on with the next token.
        :param initial_run: when false, start as ``restart('next', 'first')``.
        :param reset_state: start from the first token (otherwise resume from
            :attr:`state`).
        :raises HaltProcessing: when a task halts (and ``stop_on_halt``).
        :raises WorkflowError: for bad ``objects``, an empty definition, or a
            task's ``WorkflowError`` (and ``stop_on_error``).

        .. versionchanged:: 3.0
           One call is one pass whatever ``stop_on_halt`` and
           ``stop_on_error`` say: ``workflow_started`` and
           ``workflow_finished`` are sent once (2.x started a new pass after
           each halted or failed token).
        """
        if objects.__class__ is not list or not objects or not self.callbacks._definitions:
            self._check_run(objects)
        if reset_state:
            state = self.state
            state._token_pos = -1
            state._callback_pos = [0]
            state.current_object_processed = False
        if not initial_run:  # as restart('next', 'first')
            self.state._callback_pos = [0]
        self._process(objects, stop_on_error=stop_on_error, stop_on_halt=stop_on_halt)

    def restart(
        self,
        obj: str,
        task: str,
        objects: Any = None,
        stop_on_error: bool = True,
        stop_on_halt: bool = True,
    ) -> None:
        """Resume the run relative to where it stopped.

        :param obj: ``'prev'``, ``'current'``, ``'next'`` or ``'first'``: the
            token to resume with.
        :param task: ``'prev'``, ``'current'``, ``'next'`` or ``'first'``: the
            task to resume at, applied to the chosen token.
        :param objects: the tokens to run (default: the engine's ``objects``).
        :raises ValueError: for any other ``obj`` or ``task``.

        ``restart('next', 'first')`` goes on with the next token from its first
        task. ``'prev'`` never goes before the first token nor the first task.
        """
        state = self.state
        token_pos = state._token_pos
        position = state._callback_pos
        if obj == "current" and task == "current":  # the usual resume, checked first
            state._token_pos = token_pos - 1 if token_pos > 0 else -1
        elif obj not in _MOVES:
            raise WorkflowValueError(
                f"restart(): obj must be one of {', '.join(_MOVES)}; got {obj!r}"
            )
        elif task not in _MOVES:
            raise WorkflowValueError(
                f"restart(): task must be one of {', '.join(_MOVES)}; got {task!r}"
            )
        elif obj == "first":
            state._token_pos = -1
        elif obj != "next":
            token_pos -= 2 if obj == "prev" else 1
            state._token_pos = token_pos if token_pos > -1 else -1
        if task == "first":
            state._callback_pos = [0]
        elif task != "current":
            position = list(position)
            last = position[-1] + (1 if task == "next" else -1)
            position[-1] = last if last > 0 else 0
            state._callback_pos = position
        if objects is None:
            objects = self.objects
        if (
            type(self).process is GenericWorkflowEngine.process
            and objects.__class__ is list
            and objects
            and self.callbacks._definitions
        ):
            # What process(reset_state=False) does, one frame less for the
            # halts that leave through it.
            self._process(objects, stop_on_error=stop_on_error, stop_on_halt=stop_on_halt)
        else:
            self.process(
                objects, stop_on_error=stop_on_error, stop_on_halt=stop_on_halt, reset_state=False
            )

    def ends_pass(self, exc: BaseException) -> bool:
        """Tell whether ``exc``, raised by a task, ends the pass being made.

        A halt ends it unless :meth:`process` was called with
        ``stop_on_halt=False``, a :class:`~workflow.errors.WorkflowError`
        unless it was called with ``stop_on_error=False``; anything else
        ends it. Transition handlers that store a run use it to tell a
        token that stops from a run that stops.

        .. versionadded:: 3.0
        """
        if isinstance(exc, HaltProcessing):
            return self._pass.stop_on_halt
        if isinstance(exc, WorkflowError):
            return self._pass.stop_on_error
        return True

    def _check_run(self, objects: Any) -> None:
        self._check_objects(objects)
        if not len(objects):
            self.log.warning(
                "List of objects is empty. Running workflow on empty set has no effect."
            )
        if self.callbacks.empty():
            raise WorkflowError("The callbacks are empty, did you set them?")

    def _check_objects(self, objects: Any) -> None:
        """Refuse token lists the engine cannot index, with a clear message."""
        if objects.__class__ is list:
            return
        if isinstance(objects, (str, bytes)) or not isinstance(objects, Iterable):
            raise WorkflowError(f"Passed in object {type(objects)} is not an iterable")
        if not (hasattr(objects, "__len__") and hasattr(objects, "__getitem__")):
            raise WorkflowError(
                f"Passed in object {type(objects)} has no len() or indexing; "
                "pass the tokens as a list, e.g. list(tokens)"
            )

    # -- introspection ----------------------------------------------------------

    @property
    def current_object(self) -> Any:
        """The token being (or last) processed; ``None`` before the first one."""
        token_pos = self.state.token_pos
        if token_pos < 0 or token_pos >= len(self.objects):
            return None
        return self.objects[token_pos]

    @property
    def has_completed(self) -> bool:
        """Whether the last pass reached the last token and ran to its end."""
        token_pos = self.state.token_pos
        if token_pos == -1:
            return False
        return token_pos >= len(self.objects) - 1 and self.state.current_object_processed

    @property
    def current_taskname(self) -> str | None:
        """The name of the task at ``callback_pos`` in the current token's tree.

        A position that ends on a nested list gives the list's ``str()``;
        ``None`` when the position is outside the tree.
        """
        running = self._running
        if running is None or self._running_version != self.callbacks._version:
            # Nothing ran yet, or the definitions changed since: name the task
            # of the definition as it is now.
            running = self.callbacks.get("*")
        item: Any = running
        try:
            for index in self.state.callback_pos:
                item = item[index]
        except (IndexError, TypeError, KeyError):
            return None
        if isinstance(item, list):
            return str(item)
        return task_name(item)

    def __len__(self) -> int:
        return len(self.objects)

    def __repr__(self) -> str:
        state = self.state
        return (
            f"<{type(self).__name__} tokens={len(self.objects)} "
            f"token_pos={state.token_pos} callback_pos={state.callback_pos}>"
        )
