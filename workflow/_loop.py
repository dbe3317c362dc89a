"""The token loop: how a token runs through a callback tree, written once.

:class:`TokenLoop` is the part of :class:`~workflow.engine.GenericWorkflowEngine`
that makes a pass over the tokens (``_process``) and runs each token's tree
(``_run_tree``): every mode of the engine — plain, observed by hooks,
signals or the debug log, persistent — runs this one loop. A tree runs as
its program (:mod:`workflow._program`); hooks that are no-ops are detected
once per pass and not called, which is all that speed changes.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from . import signals
from ._hooks import (
    Break,
    Continue,
    ProcessingFactory,
    TransitionActions,
    _class_hooks,
    _handlers,
    announce_halt,
    class_hooks,
    handler_for,
)
from ._jump import JumpTask
from ._observers import Observers, task_name
from ._program import EDITS, Block, Program, program_of
from .errors import BreakFromThisLoop, HaltProcessing, JumpCall, WorkflowError

if TYPE_CHECKING:
    from ._callbacks import Callbacks
    from ._state import MachineState
    from .engine import GenericWorkflowEngine

__all__ = ["LOOPS", "TokenLoop", "forget_loops"]

#: The key of ``extra_data`` under which patterns keep the state of loops
#: that must survive a halt (``FOR``'s cursors), as
#: ``extra_data[LOOPS]["<token index>:<position>"]``. The engine drops a
#: token's entries when the token completes or is skipped, so a loop left
#: early (by ``BREAK``) leaves nothing behind; a halted or failed token keeps
#: them, to resume inside its loop.
LOOPS = "_Iterators"


def forget_loops(extra_data: dict[str, Any], token_pos: int) -> None:
    """Drop the loop states of the token at ``token_pos`` (see :data:`LOOPS`)."""
    loops = extra_data.get(LOOPS)
    if loops:
        prefix = f"{token_pos}:"
        for key in [key for key in loops if key.startswith(prefix)]:
            del loops[key]


class _Pass:
    """The options of the pass an engine makes (see ``GenericWorkflowEngine.process``)."""

    __slots__ = ("stop_on_error", "stop_on_halt")

    def __init__(self, stop_on_error: bool = True, stop_on_halt: bool = True) -> None:
        self.stop_on_error = stop_on_error
        self.stop_on_halt = stop_on_halt


#: The four kinds of pass, made once: (stop_on_error, stop_on_halt) -> options.
_PASSES = {(error, halt): _Pass(error, halt) for error in (False, True) for halt in (False, True)}


class TokenLoop:
    """The token loop, mixed into :class:`~workflow.engine.GenericWorkflowEngine`."""

    if TYPE_CHECKING:
        callbacks: Callbacks
        state: MachineState
        log: logging.Logger
        objects: Any
        extra_data: dict[str, Any]
        _default_chooser: Any
        _default_execute: Any

        @property
        def processing_factory(self) -> type[ProcessingFactory]: ...
        def callback_chooser(self, obj: Any) -> Any: ...
        def execute_callback(self, callback: Any, obj: Any) -> None: ...

    def _init_loop(self) -> None:
        """Give a new engine the loop's own state."""
        #: The tree the current (or last) token ran, and the version of the
        #: definitions it was taken from (see ``current_taskname``).
        self._running: Any = None
        self._running_version = -1
        self._observers: Observers | None = None
        #: The program run last, tried first for the next token.
        self._last_program: Program | None = None
        self._pass = _PASSES[True, True]

    def _process(
        self, objects: Any, *, stop_on_error: bool = True, stop_on_halt: bool = True
    ) -> None:
        """Make one pass over the tokens, from ``state.token_pos + 1`` on.

        A halt (with ``stop_on_halt`` false) or a :class:`~workflow.errors.WorkflowError`
        (with ``stop_on_error`` false) ends only its token: the pass goes on
        with the next one, so one call is one pass whatever happens.
        """
        eng: GenericWorkflowEngine = self  # type: ignore[assignment]
        hooks = _class_hooks.get(self.__class__) or class_hooks(eng)
        state = self.state
        self._pass = (
            _PASSES.get((stop_on_error, stop_on_halt))
            or _PASSES[bool(stop_on_error), bool(stop_on_halt)]
        )
        observers = self._observers
        log = self.log
        if (
            observers is None
            or observers.hooks is not hooks
            or observers.debug is not log.isEnabledFor(logging.DEBUG)
            or (observers.log is not None and observers.log is not log)
        ):
            observers = self._observers = Observers(eng, hooks)
        factory, _, transitions, _ = hooks
        if observers.default_start:
            # What the default before_processing does, without its three calls:
            # a halted run restarted a thousand times starts a thousand passes.
            if signals.workflow_started.receivers:
                signals.workflow_started.send(self)
            state.current_object_processed = False
            self.objects = objects
        else:
            factory.before_processing(self, objects)
        quiet_halts = observers.quiet_halts
        before_object = observers.before_object
        after_object = observers.after_object
        before_callbacks = observers.before_callbacks
        after_callbacks = observers.after_callbacks
        chooser = observers.chooser
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
                    handler = _handlers.get((transitions, exc.__class__)) or handler_for(
                        transitions, exc
                    )
                    if handler is _ANNOUNCING_HANDLER:
                        # The default halt handler: announce, then re-raise here
                        # rather than through it (two raises fewer per halt).
                        if not (
                            quiet_halts
                            and not signals.workflow_halted.receivers
                            and not signals.token_halted.receivers
                        ):
                            announce_halt(obj, eng, exc)
                        if stop_on_halt:
                            raise
                        self.log.info("token %d halted; going on with the next", token_pos)
                        state._callback_pos = [0]
                        continue
                    try:
                        handler(obj, self, callbacks, sys.exc_info())
                    except Break:
                        break
                    except Continue:
                        if self.extra_data.get(LOOPS):
                            forget_loops(self.extra_data, token_pos)
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
                    if self.extra_data.get(LOOPS):
                        forget_loops(self.extra_data, token_pos)
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
            eng: GenericWorkflowEngine = self  # type: ignore[assignment]
            observers = self._observers = Observers(eng, class_hooks(eng))
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
        # The program of the last token, when it still runs this tree (the
        # test of Program.valid for a tracked tree, inlined: it runs per token).
        if not (
            program is not None
            and program.tree is tree
            and program.edits == EDITS.count
            and program.snapshot is None
        ):
            program = self._program_for(tree)
        position = state._callback_pos
        ip = 0 if len(position) == 1 and position[0] == 0 and not prefix else -1
        if ip < 0:
            path = tuple(position[len(prefix) :])
            ip = program.found.get(path, -1)
            if ip < 0:
                ip = program.slot(path)
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
        stopped = True  # until the token is done: an exception leaves it stopped
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
                    stopped = False
                    return
                except JumpCall as jump:
                    program, ip = self._go_on(tree, program, ip, jump.args[0])
                except BreakFromThisLoop:
                    if len(program.paths[ip]) == 1:
                        # Leaving the whole tree: the position shows the task that left.
                        state._callback_pos = [*prefix, *program.paths[ip]]
                        stopped = False
                        return
                    program, ip = self._go_on(tree, program, ip, None)
                code = program.code
                targets = program.targets
                end = len(code)
        finally:
            # No except clause here: an exception passes through untouched.
            if stopped:
                # Keep where the token stopped: the slot that raised, or where
                # the running task moved the position to.
                if state._shown != ip and 0 <= ip < end:
                    state._callback_pos = [*prefix, *program.paths[ip]]
                if saved is None:
                    state._program = None
                    state._shown = -1
                else:
                    # A nested run stopped: the outer one stops at the same place.
                    state._program, state._prefix, state._ip = saved[:3]
                    state._shown = state._ip
            elif saved is None:
                state._program = None
                state._shown = -1
            else:
                (
                    state._program,
                    state._prefix,
                    state._ip,
                    state._shown,
                    state._callback_pos,
                    state._attention,
                ) = saved

    def _program_for(self, tree: list[Any]) -> Program:
        """Return the program of ``tree`` (laid out anew when it changed), and keep it."""
        kept = self.callbacks._programs if tree.__class__ is Block else None
        program = self._last_program = program_of(tree, kept)
        return program

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
            program = state._program = self._program_for(tree)
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
                        "token %d: task %s at %s", self.state.token_pos, task_name(task), where
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


#: The halt handler that only announces and re-raises (see announce_halt).
_ANNOUNCING_HANDLER = TransitionActions.HaltProcessing
