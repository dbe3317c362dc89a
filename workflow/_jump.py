"""JumpTask: the one task the engine understands, so that patterns cost little."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import WorkflowTypeError

if TYPE_CHECKING:
    from .engine import GenericWorkflowEngine

__all__ = ["JumpTask"]


class JumpTask:
    """A task that moves to the item ``offset`` away in its list, maybe on a condition.

    Called as a task, it does what ``eng.jump_call_later(offset)`` does when
    ``cond`` is ``None`` or ``bool(cond(obj, eng))`` equals ``when``, and
    nothing otherwise. The engine's loop recognises it and makes the jump
    without calling it: it is no task, so hooks, task signals, the debug log
    and task checkpoints never see it. That is what keeps
    :func:`~workflow.patterns.IF_ELSE`, :func:`~workflow.patterns.WHILE` and
    the other block patterns cheap and invisible; use it for your own
    patterns the same way.

    :param offset: where to go, relative to this task: ``1`` is the next item,
        an offset past the end leaves the list, a negative one goes back
        (never before the first item).
    :param cond: ``cond(obj, eng)``, or ``None`` to always jump.
    :param when: jump when the condition's truth equals this.
    :param name: the task's ``__name__`` (shown by ``current_taskname``).

    .. versionadded:: 3.0
    """

    __slots__ = ("__dict__", "cond", "offset", "when")

    def __init__(
        self,
        offset: int,
        cond: Callable[[Any, Any], Any] | None = None,
        *,
        when: bool = True,
        name: str = "jump",
    ) -> None:
        if type(offset) is not int:
            raise WorkflowTypeError(f"JumpTask offset must be an int, got {offset!r}")
        self.offset = offset
        self.cond = cond
        self.when: bool | None = when
        self.__name__ = name
        self.__qualname__ = name

    @classmethod
    def choose(cls, chooser: Callable[[Any, Any], int], *, name: str = "choose") -> JumpTask:
        """Return a jump whose offset ``chooser(obj, eng)`` gives each time.

        The offset is relative to the jump, as for a plain one: ``1`` goes on
        with the next item. :func:`~workflow.patterns.CHOICE` is built on it.
        """
        jump = cls(0, chooser, name=name)
        jump.when = None
        return jump

    def __call__(self, obj: Any, eng: GenericWorkflowEngine) -> None:
        cond = self.cond
        if cond is None:
            eng.jump_call_later(self.offset)
        elif self.when is None:
            eng.jump_call_later(cond(obj, eng))
        elif bool(cond(obj, eng)) is self.when:
            eng.jump_call_later(self.offset)

    def __repr__(self) -> str:
        if self.cond is None:
            return f"<JumpTask {self.__name__} {self.offset:+d}>"
        cond = getattr(self.cond, "__name__", repr(self.cond))
        if self.when is None:
            return f"<JumpTask {self.__name__} by {cond}()>"
        return f"<JumpTask {self.__name__} {self.offset:+d} when {cond}() is {self.when}>"
