"""Observers: what watches the tasks of a pass (hooks, ``execute_callback``, the debug log).

:class:`Observers` is resolved once per pass by the token loop
(:mod:`workflow._loop`): a hook that is the default no-op counts as absent, so
a task that nothing watches is called bare. Watching never changes what
runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import signals
from ._hooks import ActionMapper

if TYPE_CHECKING:
    from .engine import GenericWorkflowEngine

__all__ = ["Observers", "task_name", "unless_noop"]


class Observers:
    """What watches the tasks of one pass, resolved once; ``None`` where nothing does.

    The engine runs a task bare when nothing watches it, else through
    :meth:`TokenLoop._observed`. Either way the same tasks run in
    the same order: observing never changes what runs.
    """

    __slots__ = (
        "after_each",
        "bare",
        "before_each",
        "debug",
        "execute",
        "log",
        "mapper",
        "observed",
    )

    def __init__(self, eng: GenericWorkflowEngine, mapper: type[ActionMapper]) -> None:
        self.mapper = mapper
        self.debug = eng.log.isEnabledFor(logging.DEBUG)
        self.before_each = unless_noop(
            mapper.before_each_callback, ActionMapper.before_each_callback
        )
        self.after_each = unless_noop(mapper.after_each_callback, ActionMapper.after_each_callback)
        overridden = type(eng).execute_callback is not type(eng)._default_execute
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


def unless_noop(hook: Any, default: Any) -> Any:
    """Return ``hook``, or ``None`` when it is the default no-op (so it is not called)."""
    return None if hook is default else hook


def task_name(task: Any) -> str:
    name = getattr(task, "__name__", None)
    return name if isinstance(name, str) else repr(task)
