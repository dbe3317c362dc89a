"""The token of a stored run, and when a run commits its progress."""

from __future__ import annotations

import enum
from typing import Any

from ..engine_db import ObjectStatus

__all__ = ["CheckpointPolicy", "Token", "resume_point"]


class CheckpointPolicy(str, enum.Enum):
    """When a :class:`PersistentWorkflowEngine` commits its progress.

    Every policy also commits when a run starts, halts, fails and ends.
    """

    #: After each token (the default): one commit per token. A crash re-runs
    #: the tasks of the token that was running, from its first task.
    TOKEN = "token"
    #: After each task too: one commit per task. A crash re-runs at most the
    #: task that was running.
    TASK = "task"
    #: Only when the run halts, fails or ends: the cheapest. A crash re-runs
    #: every token since the last halt.
    HALT = "halt"


class Token:
    """A token of a stored run: the data tasks work on, and where it stands.

    Tasks receive it as ``obj``: change ``obj.data`` (any JSON value, or a
    type registered on the store's codec) and ``obj.extra_data`` (a dict).

    :ivar position: the token's index in the run.
    :ivar status: its :class:`~workflow.engine_db.ObjectStatus`.
    :ivar callback_pos: where it resumes, or ``None`` before it started.
    :ivar last_error: the traceback of the task that failed on it, if any.
    """

    __slots__ = ("callback_pos", "data", "extra_data", "last_error", "position", "status")

    def __init__(
        self,
        data: Any,
        *,
        position: int = -1,
        extra_data: dict[str, Any] | None = None,
        status: ObjectStatus = ObjectStatus.INITIAL,
        callback_pos: list[int] | None = None,
        last_error: str | None = None,
    ) -> None:
        self.data = data
        self.position = position
        self.extra_data = {} if extra_data is None else extra_data
        self.status = status
        self.callback_pos = callback_pos
        self.last_error = last_error

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Token:
        """Build a token from its stored row."""
        return cls(
            row["data"],
            position=row["position"],
            extra_data=row["extra_data"] or {},
            status=ObjectStatus(row["status"]),
            callback_pos=row["callback_pos"],
            last_error=row["last_error"],
        )

    def __repr__(self) -> str:
        return f"<Token #{self.position} {self.status.name} data={self.data!r}>"


def resume_point(token: Token) -> list[int] | None:
    """Return where a token that did not complete goes on, from its stored status.

    ``None`` (its first task) before it started; the task that failed for an
    ``ERROR`` token; else the task after the one it halted on, or after its
    last task checkpoint.
    """
    position = token.callback_pos
    if position is None:
        return None
    if token.status is ObjectStatus.ERROR:
        return list(position)  # run the failed task again
    moved = list(position)
    moved[-1] += 1  # after the task that halted, or the last task checkpointed
    return moved
