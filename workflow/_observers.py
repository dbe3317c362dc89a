"""Observers: what watches the tasks of a pass (hooks, ``execute_callback``, the debug log).

:class:`Observers` is resolved by the token loop (:mod:`workflow._loop`)
when a pass finds other hooks than the last: a hook that is the default
no-op counts as absent, so
a task that nothing watches is called bare. Watching never changes what
runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import signals
from ._hooks import ActionMapper, ProcessingFactory, Signal

if TYPE_CHECKING:
    from .engine import GenericWorkflowEngine

__all__ = ["Observers", "task_name", "unless_noop"]


class Observers:
    """The hooks of a pass and what watches its tasks, resolved once; ``None`` where nothing does.

    ``hooks`` is the engine's ``(factory, mapper, transitions, signal)``
    (:func:`~workflow._hooks.class_hooks`): the same tuple for every engine
    of a class, so a new pass keeps these observers while it is that very
    tuple and the debug level did not change. A hook that is the default
    no-op is ``None``. The engine runs a task bare when nothing watches it,
    else through :meth:`TokenLoop._observed`. Either way the same tasks run
    in the same order: observing never changes what runs.
    """

    __slots__ = (
        "after_callbacks",
        "after_each",
        "after_object",
        "bare",
        "before_callbacks",
        "before_each",
        "before_object",
        "chooser",
        "debug",
        "default_start",
        "execute",
        "hooks",
        "log",
        "mapper",
        "observed",
        "quiet_halts",
    )

    def __init__(self, eng: GenericWorkflowEngine, hooks: tuple[Any, Any, Any, Any]) -> None:
        factory, mapper, _, signal = hooks
        self.hooks = hooks
        self.mapper = mapper
        self.debug = eng.log.isEnabledFor(logging.DEBUG)
        self.before_each = unless_noop(
            mapper.before_each_callback, ActionMapper.before_each_callback
        )
        self.after_each = unless_noop(mapper.after_each_callback, ActionMapper.after_each_callback)
        self.before_callbacks = unless_noop(mapper.before_callbacks, ActionMapper.before_callbacks)
        self.after_callbacks = unless_noop(mapper.after_callbacks, ActionMapper.after_callbacks)
        self.before_object = unless_noop(factory.before_object, ProcessingFactory.before_object)
        self.after_object = unless_noop(factory.after_object, ProcessingFactory.after_object)
        cls = type(eng)
        #: Whether the engine routes tokens with its own callback_chooser.
        self.chooser = cls.callback_chooser is not cls._default_chooser
        #: Whether a pass starts as the default before_processing starts it.
        self.default_start = (
            factory.before_processing is ProcessingFactory.before_processing and signal is Signal
        )
        #: Whether a halt has nobody to tell but the signal receivers.
        self.quiet_halts = signal is Signal and not self.debug
        overridden = cls.execute_callback is not cls._default_execute
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

    def call(self) -> Any:
        """Return how to call a task now: ``None`` (bare) or the observed call.

        Asked once per token, so a receiver connected during a run counts from
        the next token on.
        """
        if self.bare and not (signals.task_started.receivers or signals.task_finished.receivers):
            return None
        return self.observed


def unless_noop(hook: Any, default: Any) -> Any:
    """Return ``hook``, or ``None`` when it is the default no-op (so it is not called)."""
    return None if hook is default else hook


def task_name(task: Any) -> str:
    name = getattr(task, "__name__", None)
    return name if isinstance(name, str) else repr(task)
