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

from . import errors, signals
from ._callbacks import Callbacks
from ._hooks import (
    ActionMapper,
    Break,
    Continue,
    ProcessingFactory,
    Signal,
    TransitionActions,
    _Signal,
    class_hooks,
)
from ._jump import JumpTask
from ._legacy import LegacyEngineAPI
from ._program import EDITS, Block, Program, program_of
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


class _Pass:
    """The options of the pass an engine is making (see :meth:`GenericWorkflowEngine.process`)."""

    __slots__ = ("stop_on_error", "stop_on_halt")

    def __init__(self, stop_on_error: bool = True, stop_on_halt: bool = True) -> None:
        self.stop_on_error = stop_on_error
        self.stop_on_halt = stop_on_halt


#: The four kinds of pass, made once: (stop_on_error, stop_on_halt) -> options.
_PASSES = {(error, halt): _Pass(error, halt) for error in (False, True) for halt in (False, True)}


class _Observers:
    """What watches the tasks of one pass, resolved once; ``None`` where nothing does.

    The engine runs a task bare when nothing watches it, else through
    :meth:`GenericWorkflowEngine._observed`. Either way the same tasks run in
    the same order: observing never changes what runs.
    """

    __slots__ = (
        "after_each",
        "bare",
        "before_each",
        "debug",
        "execute",
        "hooks",
        "log",
        "mapper",
        "observed",
    )

    def __init__(self, eng: GenericWorkflowEngine, mapper: type[ActionMapper]) -> None:
        self.mapper = mapper
        self.hooks = (mapper.before_each_callback, mapper.after_each_callback)
        self.debug = eng.log.isEnabledFor(logging.DEBUG)
        self.before_each = _unless_noop(
            mapper.before_each_callback, ActionMapper.before_each_callback
        )
        self.after_each = _unless_noop(mapper.after_each_callback, ActionMapper.after_each_callback)
        overridden = type(eng).execute_callback is not GenericWorkflowEngine.execute_callback
        self.execute = eng.execute_callback if overridden else None
        self.log = eng.log if self.debug else None
        self.observed = eng._observed
        #: Whether only signal receivers could watch the tasks.
        self.bare = (
            self.before_each is None
            and self.after_each is None
            and self.execute is None
            and self.log is None
        )

    def still_for(self, eng: GenericWorkflowEngine, mapper: type[ActionMapper]) -> bool:
        """Tell whether these observers still hold for a new pass of ``eng`` with ``mapper``."""
        return (
            self.mapper is mapper
            and self.debug is eng.log.isEnabledFor(logging.DEBUG)
            and self.hooks == (mapper.before_each_callback, mapper.after_each_callback)
            and (self.log is None or self.log is eng.log)
        )

    def call(self) -> Any:
        """Return how to call a task now: ``None`` (bare) or the observed call.

        Asked once per token, so a receiver connected during a run counts from
        the next token on.
        """
        if self.bare and not (signals.task_started.receivers or signals.task_finished.receivers):
            return None
        return self.observed


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
        self._running_version = -1
        self._observers: _Observers | None = None
        #: The program run last, tried first for the next token.
        self._last_program: Program | None = None
        self._pass = _Pass()

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
            self.state.reset()
        if not initial_run:
            self._move("next", "first")
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
        self._move(obj, task)
        self.process(
            self.objects if objects is None else objects,
            stop_on_error=stop_on_error,
            stop_on_halt=stop_on_halt,
            reset_state=False,
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

    def _move(self, obj: str, task: str) -> None:
        """Move the state as ``restart(obj, task)`` describes."""
        if obj not in _MOVES:
            raise WorkflowValueError(
                f"restart(): obj must be one of {', '.join(_MOVES)}; got {obj!r}"
            )
        if task not in _MOVES:
            raise WorkflowValueError(
                f"restart(): task must be one of {', '.join(_MOVES)}; got {task!r}"
            )
        state = self.state
        token_pos = state._token_pos
        position = state._callback_pos
        if obj == "first":
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

    def _process(
        self, objects: Any, *, stop_on_error: bool = True, stop_on_halt: bool = True
    ) -> None:
        """Make one pass over the tokens, from ``state.token_pos + 1`` on.

        A halt (with ``stop_on_halt`` false) or a :class:`~workflow.errors.WorkflowError`
        (with ``stop_on_error`` false) ends only its token: the pass goes on
        with the next one, so one call is one pass whatever happens.
        """
        factory, mapper, transitions, _ = class_hooks(self)
        state = self.state
        self._pass = _PASSES[bool(stop_on_error), bool(stop_on_halt)]
        factory.before_processing(self, objects)
        observers = self._observers
        if observers is None or not observers.still_for(self, mapper):
            observers = self._observers = _Observers(self, mapper)
        # The hooks that are no-ops are not called (None).
        before_object = factory.before_object
        if before_object is _NOOP_BEFORE_OBJECT:
            before_object = None
        after_object = factory.after_object
        if after_object is _NOOP_AFTER_OBJECT:
            after_object = None
        before_callbacks = mapper.before_callbacks
        if before_callbacks is _NOOP_BEFORE_CALLBACKS:
            before_callbacks = None
        after_callbacks = mapper.after_callbacks
        if after_callbacks is _NOOP_AFTER_CALLBACKS:
            after_callbacks = None
        chooser = type(self).callback_chooser is not GenericWorkflowEngine.callback_chooser
        token_started = signals.token_started
        token_finished = signals.token_finished
        task_started = signals.task_started
        task_finished = signals.task_finished
        observed = None if observers.bare else observers.observed
        definitions = self.callbacks._definitions
        feature_types = _feature_types

        # Cheap to re-check each token: the bound (tasks may append tokens), the
        # position (tasks may jump), the definition and the signal receivers.
        while len(objects) - 1 > state._token_pos:
            token_pos = state._token_pos + 1
            state._token_pos = token_pos
            obj = objects[token_pos]
            if before_object is not None:
                before_object(self, objects, obj)
            if not chooser and (
                feature_types.get(obj.__class__) is False or not _routes_itself(obj)
            ):
                callbacks = definitions.get("*") or self.callback_chooser(obj)
            else:
                callbacks = self.callback_chooser(obj)
            if callbacks:
                self._running = callbacks
                self._running_version = self.callbacks._version
                if token_started.receivers:
                    token_started.send(self, token=obj, token_pos=token_pos)
                if before_callbacks is not None:
                    before_callbacks(obj, self)
                try:
                    try:
                        if observed is None and (task_started.receivers or task_finished.receivers):
                            self._run_tree(callbacks, obj, (), observers.observed)
                        else:
                            self._run_tree(callbacks, obj, (), observed)
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
                    except HaltProcessing:
                        if stop_on_halt:
                            raise
                        self.log.info("token %d halted; going on with the next", token_pos)
                    except WorkflowError:
                        if stop_on_error:
                            raise
                        self.log.info("token %d failed; going on with the next", token_pos)
                else:
                    if after_object is not None:
                        after_object(self, objects, obj)
                    if token_finished.receivers:
                        token_finished.send(self, token=obj, token_pos=token_pos)
            state._callback_pos = [0]
        factory.after_processing(self, objects)

    def run_callbacks(self, callbacks: Any, objects: Any, obj: Any, indent: int = 0) -> None:
        """Run the callback list ``callbacks`` at depth ``indent`` for ``obj``.

        Starts at ``state.callback_pos[indent]``; when the position is deeper
        than ``indent`` (a resumed run), it goes straight back into the nested
        list it points at without re-running what lies before. Tasks are
        called with the hooks of this engine's processing factory.
        """
        observers = self._observers
        if observers is None:
            observers = self._observers = _Observers(self, self.processing_factory.action_mapper)
        prefix = tuple(self.state.callback_pos[:indent])
        self._run_tree(callbacks, obj, prefix, observers.call())

    # The loop: how a token runs through a callback tree, written once. The
    # tree runs as its program (workflow._program): its tasks and jumps laid
    # out flat, so that entering or leaving a nested list costs nothing. The
    # position is the slot ``ip``; the state turns it into a callback_pos
    # when somebody asks, and flags ``_attention`` when a task asked, moved
    # the position (jump_call_later) or changed a definition: the loop then
    # looks again (_go_on) before it goes on. A JumpTask (the jumps of the
    # block patterns) moves ip without being called: it is no task, and
    # nothing reports it as one. ``call`` is None when nothing watches the
    # tasks; otherwise every task goes through it (_observed).

    def _run_tree(self, tree: list[Any], obj: Any, prefix: tuple[int, ...], call: Any) -> None:
        state = self.state
        program = self._last_program
        if not (
            program is not None
            and program.tree is tree
            and program.edits == EDITS.count
            and program.snapshot is None
        ):
            programs = self.callbacks._programs
            program = program_of(tree, programs if tree.__class__ is Block else None)
            self._last_program = program
        position = state._callback_pos
        ip = 0 if len(position) == 1 and position[0] == 0 and not prefix else -1
        if ip < 0:
            ip = program.slot(position[len(prefix) :])
        # A task may run the engine again (a nested run): keep its place.
        outer = state._program
        saved = (
            None
            if outer is None
            else (
                outer,
                state._prefix,
                state._ip,
                state._shown,
                state._callback_pos,
                state._attention,
            )
        )
        state._program = program
        state._prefix = prefix
        if saved is not None:
            state._shown = -1
            state._attention = False
        code = program.code
        targets = program.targets
        end = len(code)
        try:
            while True:
                try:
                    while ip < end:
                        item = code[ip]
                        state._ip = ip
                        if item.__class__ is JumpTask:
                            cond = item.cond
                            if cond is None:
                                ip = targets[ip]
                            else:
                                when = item.when
                                if when is None:
                                    ip = program.after(ip, cond(obj, self))
                                elif (not cond(obj, self)) is when:
                                    ip += 1
                                else:
                                    ip = targets[ip]
                            continue
                        if call is None:
                            item(obj, self)
                        else:
                            call(item, obj, program, ip)
                        if state._attention:
                            program, ip = self._go_on(tree, program, ip, 1)
                            code = program.code
                            targets = program.targets
                            end = len(code)
                        else:
                            ip += 1
                    # Done: the position shows the last item of the list.
                    state._callback_pos = [*prefix, len(tree) - 1] if prefix else [len(tree) - 1]
                    return
                except JumpCall as jump:
                    program, ip = self._go_on(tree, program, ip, jump.args[0])
                except BreakFromThisLoop:
                    if len(program.paths[ip]) == 1:
                        # Leaving the whole tree: the position shows the task that left.
                        state._callback_pos = [*prefix, *program.paths[ip]]
                        return
                    program, ip = self._go_on(tree, program, ip, None)
                code = program.code
                targets = program.targets
                end = len(code)
        except BaseException:
            # Keep where the token stopped: the slot that raised, or where the
            # running task moved the position to.
            if state._shown != ip and 0 <= ip < end:
                state._callback_pos = [*prefix, *program.paths[ip]]
            if saved is not None:
                # A nested run stopped: the outer one stops at the same place.
                state._program, state._prefix, state._ip = saved[:3]
                state._shown = state._ip
                saved = None
                outer = state._program
            raise
        finally:
            if outer is None:
                state._program = None
                state._shown = -1
            elif saved is not None:
                (
                    state._program,
                    state._prefix,
                    state._ip,
                    state._shown,
                    state._callback_pos,
                    state._attention,
                ) = saved

    def _go_on(
        self, tree: list[Any], program: Program, ip: int, offset: int | None
    ) -> tuple[Program, int]:
        """Return the program and slot to go on with after the slot ``ip``.

        ``offset`` counts items from the slot's own position (``1``: the
        next item; it is where the running task moved the position when it
        did); ``None`` leaves the innermost list. The tree is laid out again
        when it changed meanwhile.
        """
        state = self.state
        prefix = state._prefix
        if state._shown == ip and state._callback_pos[: len(prefix)] == list(prefix):
            path = state._callback_pos[len(prefix) :] or [0]
        else:
            path = list(program.paths[ip])
        state._attention = False
        state._shown = -1
        if not program.valid(tree):
            program = program_of(
                tree, self.callbacks._programs if tree.__class__ is Block else None
            )
            state._program = program
        if offset is None:
            if len(path) == 1:
                return program, len(program.code)
            path = [*path[:-2], path[-2] + 1]
        else:
            path[-1] += offset
        return program, program.slot(path)

    def _observed(self, task: Any, obj: Any, program: Program, ip: int) -> None:
        """Call ``task`` with the hooks, the debug log and the task signals around it."""
        observers = self._observers
        assert observers is not None
        before_each = observers.before_each
        after_each = observers.after_each
        execute = observers.execute
        if before_each is not None:
            before_each(self, task, obj)
        try:
            if observers.log is not None or signals.task_started.receivers:
                where = [*self.state._prefix, *program.paths[ip]]
                if observers.log is not None:
                    observers.log.debug(
                        "token %d: task %s at %s", self.state.token_pos, _name(task), where
                    )
                if signals.task_started.receivers:
                    signals.task_started.send(self, token=obj, task=task, callback_pos=where)
            if execute is None:
                task(obj, self)
            else:
                execute(task, obj)
            if signals.task_finished.receivers:
                # The task's own position, even when it moved with jump_call_later().
                where = [*self.state._prefix, *program.paths[ip]]
                signals.task_finished.send(self, token=obj, task=task, callback_pos=where)
        finally:
            if after_each is not None:
                after_each(self, task, obj)

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
        return _name(item)

    def __len__(self) -> int:
        return len(self.objects)

    def __repr__(self) -> str:
        state = self.state
        return (
            f"<{type(self).__name__} tokens={len(self.objects)} "
            f"token_pos={state.token_pos} callback_pos={state.callback_pos}>"
        )


#: Per token type: True when the class has a getFeature() method (deprecated
#: routing), False when neither it nor its instances can have one, None when
#: its instances must be asked one by one (they have a __dict__).
_feature_types: dict[type, bool | None] = {}


def _routes_itself(obj: Any) -> bool:
    """Tell whether ``obj`` has a ``getFeature`` method, looking at its type once."""
    kind = obj.__class__
    try:
        routes = _feature_types[kind]
    except KeyError:
        if hasattr(kind, "getFeature"):
            routes = True
        elif hasattr(obj, "__dict__"):
            routes = None
        else:
            routes = False
        if len(_feature_types) < 1024:
            _feature_types[kind] = routes
    if routes is None:
        return "getFeature" in obj.__dict__
    return routes


_NOOP_BEFORE_OBJECT = ProcessingFactory.before_object
_NOOP_AFTER_OBJECT = ProcessingFactory.after_object
_NOOP_BEFORE_CALLBACKS = ActionMapper.before_callbacks
_NOOP_AFTER_CALLBACKS = ActionMapper.after_callbacks


def _unless_noop(hook: Any, default: Any) -> Any:
    """Return ``hook``, or ``None`` when it is the default no-op (so it is not called)."""
    return None if hook is default else hook


def _name(task: Any) -> str:
    name = getattr(task, "__name__", None)
    return name if isinstance(name, str) else repr(task)


#: The exception classes of this library, by name: a handler named like one
#: of them handles that class (and its subclasses), never a stranger's class
#: that happens to have the same name.
_OWN_CLASSES: dict[str, type[BaseException]] = {
    name: value
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}
_OWN_CLASSES["Exception"] = Exception


_handlers: dict[tuple[type, type], Any] = {}


def _handler_for(transitions: type[TransitionActions], exc: Exception) -> Any:
    """Return the handler of ``transitions`` for ``exc``: the nearest class of its MRO with one.

    A handler is named like the class it handles. For the library's own
    classes (and ``Exception``) the name must be that very class: a task's
    ``class StorageError(Exception)`` goes to the ``Exception`` handler, not
    to the storage one. A handler a user's mapper adds for a class of their
    own is found by its name, as in 2.x.
    """
    key = (transitions, type(exc))
    handler = _handlers.get(key)
    if handler is not None:
        return handler
    for klass in type(exc).__mro__:
        name = klass.__name__
        own = _OWN_CLASSES.get(name)
        if own is not None and own is not klass:
            continue
        if any(name in vars(base) for base in transitions.__mro__ if base is not object):
            if len(_handlers) >= 256:
                _handlers.clear()
            handler = _handlers[key] = getattr(transitions, name)
            return handler
    return transitions.Exception  # pragma: no cover - Exception is in every MRO
