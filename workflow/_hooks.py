"""The engine's extension hooks: processing factory, action mapper, transitions.

A subclass of :class:`~workflow.engine.GenericWorkflowEngine` points its
``processing_factory`` class property at a subclass of
:class:`ProcessingFactory`; that one may point ``action_mapper`` and
``transition_exception_mapper`` at subclasses of :class:`ActionMapper` and
:class:`TransitionActions`. Every hook is a static method.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import errors, signals
from .errors import WorkflowError
from .utils import classproperty

if TYPE_CHECKING:
    from .engine import GenericWorkflowEngine

__all__ = [
    "ActionMapper",
    "Break",
    "Continue",
    "ProcessingFactory",
    "Signal",
    "TransitionActions",
]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

log = logging.getLogger("workflow.engine")


class Break(Exception):
    """Raised by a transition handler to leave the token loop (``after_processing`` runs)."""


class Continue(Exception):
    """Raised by a transition handler to go straight to the next token."""


class _Signal:
    """Senders for the four Invenio signals, with the engine as sender."""

    @staticmethod
    def workflow_started(eng: GenericWorkflowEngine, *args: Any, **kwargs: Any) -> None:
        """Send :data:`workflow.signals.workflow_started`."""
        if signals.workflow_started.receivers:
            signals.workflow_started.send(eng, *args, **kwargs)

    @staticmethod
    def workflow_finished(eng: GenericWorkflowEngine, *args: Any, **kwargs: Any) -> None:
        """Send :data:`workflow.signals.workflow_finished`."""
        if signals.workflow_finished.receivers:
            signals.workflow_finished.send(eng, *args, **kwargs)

    @staticmethod
    def workflow_halted(eng: GenericWorkflowEngine, *args: Any, **kwargs: Any) -> None:
        """Send :data:`workflow.signals.workflow_halted`."""
        if signals.workflow_halted.receivers:
            signals.workflow_halted.send(eng, *args, **kwargs)

    @staticmethod
    def workflow_error(eng: GenericWorkflowEngine, *args: Any, **kwargs: Any) -> None:
        """Send :data:`workflow.signals.workflow_error`."""
        if signals.workflow_error.receivers:
            signals.workflow_error.send(eng, *args, **kwargs)


#: The engine's signal sender (its ``signal`` class property returns it).
Signal = _Signal()

#: What the class properties of an engine class return, read once per class:
#: (processing_factory, its action_mapper, its transition_exception_mapper,
#: signal). A class whose properties depend on the instance is not cached.
_class_hooks: dict[type, tuple[Any, Any, Any, Any] | None] = {}


def class_hooks(eng: GenericWorkflowEngine) -> tuple[Any, Any, Any, Any]:
    """Return the factory, action mapper, transition mapper and signal sender of ``eng``.

    Class properties cost a Python call each; an engine halted and restarted
    a thousand times asks for them once.
    """
    cls = type(eng)
    cached = _class_hooks.get(cls)
    if cached is not None:
        return cached
    factory = eng.processing_factory
    hooks = (factory, factory.action_mapper, factory.transition_exception_mapper, eng.signal)
    if cls not in _class_hooks:  # the first time: are they the class's own?
        try:
            same = (cls.processing_factory, cls.signal) == (factory, hooks[3])
        except AttributeError:  # pragma: no cover - defined per instance
            same = False
        if len(_class_hooks) >= 1024:
            _class_hooks.clear()
        _class_hooks[cls] = hooks if same else None
    return hooks


def _signal(eng: GenericWorkflowEngine) -> Any:
    return class_hooks(eng)[3]


class ActionMapper:
    """Hooks around the tasks of one token.

    Mind the argument orders: they are those of Invenio ``workflow`` 2.x.
    Exceptions from :meth:`after_callbacks`, :meth:`before_each_callback` and
    :meth:`after_each_callback` are handled like a task's.
    """

    @staticmethod
    def before_callbacks(obj: Any, eng: GenericWorkflowEngine) -> None:
        """Run before the first task of a token."""

    @staticmethod
    def after_callbacks(obj: Any, eng: GenericWorkflowEngine) -> None:
        """Run after the tasks of a token, whether they succeeded or not."""

    @staticmethod
    def before_each_callback(eng: GenericWorkflowEngine, callback_func: Any, obj: Any) -> None:
        """Run before each task."""

    @staticmethod
    def after_each_callback(eng: GenericWorkflowEngine, callback_func: Any, obj: Any) -> None:
        """Run after each task, also when it raised."""


def announce_halt(obj: Any, eng: GenericWorkflowEngine, exc: BaseException) -> None:
    """Log a halt and send ``workflow_halted`` and ``token_halted``: what a halt announces.

    :meth:`TransitionActions.HaltProcessing` does it before it re-raises; the
    engine calls it directly when that handler is the one in use.
    """
    if eng.log.isEnabledFor(logging.DEBUG):
        eng.log.debug("Processing was halted at token %d: %s", eng.state.token_pos, exc)
    _signal(eng).workflow_halted(eng)
    if signals.token_halted.receivers:
        signals.token_halted.send(eng, token=obj, token_pos=eng.state.token_pos, exception=exc)


def announce_error(eng: GenericWorkflowEngine, exc: BaseException) -> None:
    """Log a task's error and send ``workflow_error``: the one place that sends it.

    :meth:`TransitionActions.Exception` does it before it re-raises; the
    database engines' handlers do it before they raise the error they built.
    """
    if not isinstance(exc, WorkflowError):
        eng.log.debug("Task at %s raised %r", eng.state.callback_pos, exc)
    _signal(eng).workflow_error(eng, exception=exc)


def _jump_token(eng: GenericWorkflowEngine, offset: int) -> None:
    """Move ``token_pos`` so that the engine's next token is ``current + offset``."""
    last = len(eng.objects) - 1
    eng.state.token_pos = min(max(eng.state.token_pos - 1 + offset, -1), max(last, -1))
    eng.state.callback_pos_reset()


class TransitionActions:
    """What the engine does when a task raises; one handler per exception name.

    When an exception escapes the tasks of a token, the engine looks up the
    handler named like the exception's class, then like each of its base
    classes in turn, down to :meth:`Exception`. A handler is called as
    ``handler(obj, eng, callbacks, exc_info)`` and may raise :class:`Break`
    (leave the token loop), raise :class:`Continue` (next token at once), raise
    an exception (it leaves ``process()``), or return (the engine resets the
    task position and goes on with the next token).
    """

    @staticmethod
    def StopProcessing(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Leave the token loop; the pass finishes normally."""
        eng.log.debug("Processing was stopped: '%r' (object: %r)", callbacks, obj)
        raise Break

    @staticmethod
    def HaltProcessing(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Announce the halt and re-raise it: it leaves ``process()``."""
        exc = exc_info[1]
        announce_halt(obj, eng, exc)
        try:
            raise exc
        finally:
            # Free the exception by reference counting: its traceback holds this frame.
            del exc, exc_info

    @staticmethod
    def ContinueNextToken(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Go to the next token, from its first task."""
        eng.log.debug("Stop processing token %d, continue with the next", eng.state.token_pos)
        eng.state.callback_pos_reset()
        raise Continue

    @staticmethod
    def JumpToken(obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo) -> None:
        """Move to the token ``offset`` away (clamped to the token list)."""
        offset = exc_info[1].args[0]
        eng.log.debug("Jumping %d tokens from %d", offset, eng.state.token_pos)
        _jump_token(eng, offset)

    @staticmethod
    def JumpTokenForward(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Move ``offset`` tokens forward (deprecated spelling of :meth:`JumpToken`)."""
        _jump_token(eng, exc_info[1].args[0])

    @staticmethod
    def JumpTokenBack(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Move ``offset`` tokens back (deprecated spelling of :meth:`JumpToken`)."""
        _jump_token(eng, -abs(exc_info[1].args[0]))

    @staticmethod
    def SkipToken(obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo) -> None:
        """Skip the rest of this token; the next one starts at its first task."""
        eng.log.debug("Skipping token %d", eng.state.token_pos)
        eng.state.callback_pos_reset()
        raise Continue

    @staticmethod
    def AbortProcessing(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Leave the token loop at once; the pass finishes."""
        eng.log.debug("Processing was aborted at token %d", eng.state.token_pos)
        raise Break

    @staticmethod
    def Exception(obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo) -> None:
        """Announce a task's error with ``workflow_error`` and re-raise it."""
        exc = exc_info[1]
        announce_error(eng, exc)
        try:
            raise exc
        finally:
            # Free the exception by reference counting: its traceback holds this frame.
            del exc, exc_info


class ProcessingFactory:
    """Hooks around a pass over the tokens, and the mappers the engine uses."""

    @classproperty
    def action_mapper(cls) -> type[ActionMapper]:
        """The :class:`ActionMapper` (sub)class to use."""
        return ActionMapper

    @classproperty
    def transition_exception_mapper(cls) -> type[TransitionActions]:
        """The :class:`TransitionActions` (sub)class to use."""
        return TransitionActions

    @staticmethod
    def before_processing(eng: GenericWorkflowEngine, objects: Any) -> None:
        """Start a pass: send ``workflow_started`` and make ``objects`` the engine's."""
        _signal(eng).workflow_started(eng)
        eng.state.current_object_processed = False
        eng.objects = objects

    @staticmethod
    def after_processing(eng: GenericWorkflowEngine, objects: Any) -> None:
        """End a pass that was not halted: mark it done, send ``workflow_finished``."""
        eng.state.current_object_processed = True
        _signal(eng).workflow_finished(eng)

    @staticmethod
    def before_object(eng: GenericWorkflowEngine, objects: Any, obj: Any) -> None:
        """Run before a token's tasks (also for a token without tasks)."""

    @staticmethod
    def after_object(eng: GenericWorkflowEngine, objects: Any, obj: Any) -> None:
        """Run after a token's tasks all succeeded."""


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


def handler_for(transitions: type[TransitionActions], exc: Exception) -> Any:
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
