"""The token engine: a finite state machine with memory.

:class:`GenericWorkflowEngine` pushes each token of a list through a callback
tree, a nested list of tasks called as ``task(obj, eng)``. Its whole position
is a :class:`MachineState`, so a halted run resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterable
from typing import Any

from . import signals
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


class _Hooks:
    """The hooks of one pass, resolved once; ``None`` where a hook is a no-op."""

    __slots__ = ("after_each", "bare", "before_each", "execute", "log")

    def __init__(self, eng: GenericWorkflowEngine, mapper: type[ActionMapper]) -> None:
        self.before_each = _unless_noop(
            mapper.before_each_callback, ActionMapper.before_each_callback
        )
        self.after_each = _unless_noop(mapper.after_each_callback, ActionMapper.after_each_callback)
        overridden = type(eng).execute_callback is not GenericWorkflowEngine.execute_callback
        self.execute = eng.execute_callback if overridden else None
        self.log = eng.log if eng.log.isEnabledFor(logging.DEBUG) else None
        #: Whether tasks can be called bare, as long as nobody listens to task signals.
        self.bare = (
            self.before_each is None
            and self.after_each is None
            and self.execute is None
            and self.log is None
        )

    def plain(self) -> bool:
        """Whether tasks can be called bare (no hook, no listener, no debug log)."""
        return (
            self.bare and not signals.task_started.receivers and not signals.task_finished.receivers
        )


class GenericWorkflowEngine(LegacyEngineAPI):
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
        self._running: Any = None
        self._hooks = _Hooks(self, ActionMapper)

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
        raise HaltProcessing(message=msg, action=action, payload=payload)

    def continue_next_token(self) -> None:
        """Leave the current token; the next one starts at its first task."""
        raise ContinueNextToken

    @staticmethod
    def jump_token(offset: int) -> None:
        """Go on with the token ``offset`` away: ``0`` redoes this one, ``1`` is the next.

        The target is clamped to the token list; past the end the run finishes.
        """
        if type(offset) is not int:
            raise TypeError(f"jump_token() offset must be an int, got {offset!r}")
        raise JumpToken(offset)

    def jump_call(self, offset: int) -> None:
        """Go on with the task ``offset`` away in the innermost running list.

        ``1`` is the next task, ``0`` runs this task again, a negative offset
        goes back. The target is clamped to the list; past its end the list is
        left and its parent goes on.
        """
        if type(offset) is not int:
            raise TypeError(f"jump_call() offset must be an int, got {offset!r}")
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
            raise TypeError(f"jump_call_later() offset must be an int, got {offset!r}")
        pos = self.state._callback_pos
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
        """Run every token of ``objects`` through the definition.

        :param objects: the tokens: a list, or anything with ``len()`` and
            integer indexing. Tasks may append to it while it runs.
        :param stop_on_error: when false, a task raising
            :class:`~workflow.errors.WorkflowError` ends only its token and
            the run goes on with the next token.
        :param stop_on_halt: when false, a halt ends only its token and the
            run goes on with the next token.
        :param initial_run: when false, start as ``restart('next', 'first')``.
        :param reset_state: start from the first token (otherwise resume from
            :attr:`state`).
        :raises HaltProcessing: when a task halts (and ``stop_on_halt``).
        :raises WorkflowError: for bad ``objects``, an empty definition, or a
            task's ``WorkflowError`` (and ``stop_on_error``).
        """
        self._check_run(objects)
        if reset_state:
            self.state.reset()
        first_pass = initial_run
        while True:
            if not first_pass:
                self._move("next", "first")
            first_pass = False
            try:
                self._process(objects)
            except HaltProcessing:
                if stop_on_halt:
                    raise
                self.log.info("token %d halted; going on with the next", self.state.token_pos)
            except WorkflowError:
                if stop_on_error:
                    raise
                self.log.info("token %d failed; going on with the next", self.state.token_pos)
            else:
                return

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
        self._move(obj, task)
        self.process(
            self.objects if objects is None else objects,
            stop_on_error=stop_on_error,
            stop_on_halt=stop_on_halt,
            reset_state=False,
        )

    def _move(self, obj: str, task: str) -> None:
        """Move the state as ``restart(obj, task)`` describes."""
        if obj not in _MOVES:
            raise ValueError(f"restart(): obj must be one of {', '.join(_MOVES)}; got {obj!r}")
        if task not in _MOVES:
            raise ValueError(f"restart(): task must be one of {', '.join(_MOVES)}; got {task!r}")
        state = self.state
        back = {"prev": 2, "current": 1, "next": 0}
        state.token_pos = -1 if obj == "first" else max(state.token_pos - back[obj], -1)
        position = list(state.callback_pos)
        if task == "first":
            position = [0]
        elif task == "prev":
            position[-1] = max(position[-1] - 1, 0)
        elif task == "next":
            position[-1] += 1
        state.callback_pos = position

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
        if isinstance(objects, (str, bytes)) or not isinstance(objects, Iterable):
            raise WorkflowError(f"Passed in object {type(objects)} is not an iterable")
        if not (hasattr(objects, "__len__") and hasattr(objects, "__getitem__")):
            raise WorkflowError(
                f"Passed in object {type(objects)} has no len() or indexing; "
                "pass the tokens as a list, e.g. list(tokens)"
            )

    def _process(self, objects: Any) -> None:
        """Make one pass over the tokens, from ``state.token_pos + 1`` on."""
        factory = self.processing_factory
        mapper = factory.action_mapper
        transitions = factory.transition_exception_mapper
        state = self.state
        factory.before_processing(self, objects)
        hooks = self._hooks = _Hooks(self, mapper)
        before_object = _unless_noop(factory.before_object, ProcessingFactory.before_object)
        after_object = _unless_noop(factory.after_object, ProcessingFactory.after_object)
        before_callbacks = _unless_noop(mapper.before_callbacks, ActionMapper.before_callbacks)
        after_callbacks = _unless_noop(mapper.after_callbacks, ActionMapper.after_callbacks)
        chooser = _unless_noop(type(self).callback_chooser, GenericWorkflowEngine.callback_chooser)
        bare = hooks.bare
        task_started = signals.task_started
        task_finished = signals.task_finished
        token_started = signals.token_started
        token_finished = signals.token_finished
        compiled: Any = None
        runner: Any = None
        warm = False

        # Cheap to re-check each token: the bound (tasks may append tokens), the
        # position (tasks may jump), the definition and the signal receivers.
        while len(objects) - 1 > state._token_pos:
            token_pos = state._token_pos + 1
            state._token_pos = token_pos
            obj = objects[token_pos]
            if before_object is not None:
                before_object(self, objects, obj)
            if chooser is None and getattr(obj, "getFeature", None) is None:
                callbacks = self.callbacks._definitions.get("*") or self.callback_chooser(obj)
            else:
                callbacks = self.callback_chooser(obj)
            if callbacks:
                self._running = callbacks
                if token_started.receivers:
                    token_started.send(self, token=obj, token_pos=token_pos)
                if before_callbacks is not None:
                    before_callbacks(obj, self)
                try:
                    try:
                        pos = state._callback_pos
                        plain = bare and not task_started.receivers
                        if not (plain and not task_finished.receivers):
                            if len(pos) == 1:
                                self._run_hooked(callbacks, obj, 0, pos)
                            else:
                                self._resume(callbacks, obj, 0, pos, self._run_hooked)
                        elif len(pos) > 1:
                            self._resume(callbacks, obj, 0, pos, self._run_plain)
                        else:
                            # Nothing to call around the tasks: run the definition's
                            # compiled runner (see Callbacks._runner), looked up once
                            # for a run of tokens that use the same definition. The
                            # first token of a pass does not compile: for an engine
                            # made to run one token, that would cost more than it saves.
                            if callbacks is not compiled:
                                runner = self.callbacks._runner(callbacks, build=warm)
                                if warm or runner is not None:
                                    compiled = callbacks
                            if runner is None:
                                self._run_plain(callbacks, obj, 0, pos)
                            else:
                                runner(self, obj, 0, pos)
                    finally:
                        if after_callbacks is not None:
                            after_callbacks(obj, self)
                except Exception as exc:
                    handler = _handler_for(transitions, exc)
                    try:
                        handler(obj, self, callbacks, sys.exc_info())
                    except Break:
                        break
                    except Continue:
                        continue
                else:
                    if after_object is not None:
                        after_object(self, objects, obj)
                    if token_finished.receivers:
                        token_finished.send(self, token=obj, token_pos=token_pos)
            state._callback_pos = [0]
            warm = True
        factory.after_processing(self, objects)

    def run_callbacks(self, callbacks: Any, objects: Any, obj: Any, indent: int = 0) -> None:
        """Run the callback list ``callbacks`` at depth ``indent`` for ``obj``.

        Starts at ``state.callback_pos[indent]``; when the position is deeper
        than ``indent`` (a resumed run), it goes straight back into the nested
        list it points at without re-running what lies before.
        """
        run = self._run_plain if self._hooks.plain() else self._run_hooked
        self._resume(callbacks, obj, indent, self.state.callback_pos, run)

    # The two interpreters below are the hot loop. They differ only in how a
    # task is called: bare, or wrapped in the hooks, signals and debug log.
    # ``pos`` is state.callback_pos; while a task runs, it is the path to it.
    # Reading pos[depth] back after each task lets a task move it in place.

    def _run_plain(self, block: list[Any], obj: Any, depth: int, pos: list[int]) -> None:
        n = len(block)
        while True:
            try:
                i = pos[depth]
                while i < n:
                    item = block[i]
                    kind = item.__class__
                    if kind is list:
                        pos.append(0)
                        self._run_plain(item, obj, depth + 1, pos)
                        pos.pop()
                    elif kind is JumpTask:
                        cond = item.cond
                        if cond is None or (not cond(obj, self)) is not item.when:
                            i += item.offset
                            if i < 0:
                                i = 0
                            pos[depth] = i
                            continue
                    else:
                        item(obj, self)
                    i = pos[depth] + 1
                    pos[depth] = i
                pos[depth] = n - 1
                return
            except JumpCall as jump:
                i = pos[depth] + jump.args[0]
                pos[depth] = 0 if i < 0 else n if i > n else i
            except BreakFromThisLoop:
                return

    def _run_hooked(self, block: list[Any], obj: Any, depth: int, pos: list[int]) -> None:
        n = len(block)
        hooks = self._hooks
        before_each = hooks.before_each
        after_each = hooks.after_each
        execute = hooks.execute
        log = hooks.log
        task_started = signals.task_started
        task_finished = signals.task_finished
        while True:
            try:
                i = pos[depth]
                while i < n:
                    item = block[i]
                    if item.__class__ is list:
                        pos.append(0)
                        self._run_hooked(item, obj, depth + 1, pos)
                        pos.pop()
                    else:
                        if before_each is not None:
                            before_each(self, item, obj)
                        try:
                            if log is not None:
                                log.debug(
                                    "token %d: task %s at %s",
                                    self.state.token_pos,
                                    _name(item),
                                    list(pos),
                                )
                            if task_started.receivers:
                                task_started.send(
                                    self, token=obj, task=item, callback_pos=list(pos)
                                )
                            if execute is None:
                                item(obj, self)
                            else:
                                execute(item, obj)
                            # Hooks and receivers see the task's own position,
                            # even when it moved with jump_call_later().
                            moved = pos[depth]
                            pos[depth] = i
                            if task_finished.receivers:
                                task_finished.send(
                                    self, token=obj, task=item, callback_pos=list(pos)
                                )
                        finally:
                            if after_each is not None:
                                after_each(self, item, obj)
                        pos[depth] = moved
                    i = pos[depth] + 1
                    pos[depth] = i
                pos[depth] = n - 1
                return
            except JumpCall as jump:
                i = pos[depth] + jump.args[0]
                pos[depth] = 0 if i < 0 else n if i > n else i
            except BreakFromThisLoop:
                return

    def _resume(self, block: list[Any], obj: Any, depth: int, pos: list[int], run: Any) -> None:
        """Run ``block`` from ``pos[depth]``, first finishing the nested list ``pos`` points into.

        A position deeper than ``depth`` (a resumed run) goes straight back to
        its task inside the nested lists, without re-running what lies before
        it nor re-testing the conditions of the patterns around it.
        """
        if len(pos) > depth + 1:
            index = pos[depth]
            if not 0 <= index < len(block) or block[index].__class__ is not list:
                raise WorkflowError(
                    f"cannot resume at callback_pos {pos}: item {index} at depth {depth} "
                    "is not a nested list in this definition (did the definition change?)",
                    callback_pos=list(pos),
                )
            self._resume(block[index], obj, depth + 1, pos, run)
            del pos[depth + 1 :]
            pos[depth] = index + 1
        run(block, obj, depth, pos)

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
        item: Any = self._running if self._running is not None else self.callbacks.get("*")
        try:
            for index in self.state.callback_pos:
                item = item[index]
        except (IndexError, TypeError, KeyError):
            return None
        if isinstance(item, list):
            return str(item)
        return _name(item)

    def __len__(self) -> int:
        return len(self.objects)

    def __repr__(self) -> str:
        state = self.state
        return (
            f"<{type(self).__name__} tokens={len(self.objects)} "
            f"token_pos={state.token_pos} callback_pos={state.callback_pos}>"
        )


def _unless_noop(hook: Any, default: Any) -> Any:
    """Return ``hook``, or ``None`` when it is the default no-op (so it is not called)."""
    return None if hook is default else hook


def _name(task: Any) -> str:
    name = getattr(task, "__name__", None)
    return name if isinstance(name, str) else repr(task)


def _handler_for(transitions: type[TransitionActions], exc: Exception) -> Any:
    """Find the handler named like the exception's class or its nearest base."""
    for klass in type(exc).__mro__:
        handler = getattr(transitions, klass.__name__, None)
        if handler is not None:
            return handler
    return transitions.Exception  # pragma: no cover - Exception is in every MRO
