"""The step trace: one row per task a token ran in a stored run, and how to read it.

A :class:`~workflow.storage.PersistentWorkflowEngine` notes each task its
tokens run in a :class:`TraceBuffer` (in memory: the step's name, its
position, when it started, how long it took, how it ended and who ran it);
the run's writer stores the rows noted so far with its next checkpoint, in
the same transaction and in one multi-row insert. A task halted or failed
is noted before the halt or the failure is stored, so the trace of a run
always shows the step its token stopped at.

Pattern internals are not traced: the jumps of the block patterns never
run as tasks, and the bookkeeping tasks of flows and waits (entering a
loop, opening a wait, testing whether it is still pending) say so with a
class attribute ``traced = False``. A task may tell the trace that the call
that just returned failed without raising (a retried attempt) with a method
``trace_failure(obj) -> str | None`` returning ``"Type: message"``.

:func:`read_trace` returns the rows of a run with the answers given to its
``ask`` steps merged in by time (``kind="answer"``), and the number of the
attempt each task row is (see :attr:`TraceRow.attempt`).

.. versionadded:: 3.0
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol, cast

import sqlalchemy as sa

from .._observers import task_name
from ..errors import HaltProcessing, WorkflowTransition, WorkflowValueError
from .models import AnswerRecord, TraceRecord, WaitRecord

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "COMPLETED",
    "FAILED",
    "FLUSH_AT",
    "HALTED",
    "OUTCOMES",
    "PRUNE_INTERVAL",
    "WAITING",
    "TraceBuffer",
    "TraceObserver",
    "TraceRow",
    "TraceSummary",
    "call_traced",
    "default_worker",
    "insert_trace",
    "outcome_of_halt",
    "prune_trace",
    "read_trace",
    "set_observer",
    "summarize",
    "traced",
]

COMPLETED = "completed"
FAILED = "failed"
HALTED = "halted"
WAITING = "waiting"
#: How a traced task can end.
OUTCOMES = (COMPLETED, FAILED, HALTED, WAITING)

#: The halts of the waits (:mod:`workflow.runtime`): their tokens wait, they did not stop.
_WAIT_ACTIONS = frozenset({"ask", "sleep", "receive", "retry"})
#: The longest step name, worker name and error type stored (the columns' size).
_NAME_LIMIT = 255
#: The longest error message stored.
_MESSAGE_LIMIT = 2000
#: Seconds between two prunings of the trace by a store's ``trace_retention``.
PRUNE_INTERVAL = 3600.0
#: Rows kept in memory before they are written on their own (a pass without checkpoints).
FLUSH_AT = 1000

_TABLE = cast(sa.Table, TraceRecord.__table__)
_INSERT = sa.insert(_TABLE)


def default_worker() -> str:
    """Return ``host:pid``: who runs a task, when no worker name was given."""
    return f"{socket.gethostname()}:{os.getpid()}"[:_NAME_LIMIT]


#: Per task class: whether its instances are traced (see the module's docstring).
_traced_types: dict[type, bool] = {}


def traced(task: Any) -> bool:
    """Tell whether ``task`` is a real task (traced) rather than a pattern's bookkeeping."""
    kind = task.__class__
    found = _traced_types.get(kind)
    if found is None:
        found = getattr(kind, "traced", True) is not False
        if len(_traced_types) < 1024:
            _traced_types[kind] = found
    return found


def outcome_of_halt(exc: HaltProcessing) -> str:
    """Return ``waiting`` for the halt of a wait (``ask``, ``sleep``, ...), else ``halted``."""
    return WAITING if exc.action in _WAIT_ACTIONS else HALTED


class TraceBuffer:
    """The trace rows of one run not stored yet.

    :param uuid: the run.
    :param worker: who runs its tasks (:func:`default_worker` by default).
    """

    __slots__ = ("rows", "uuid", "worker")

    def __init__(self, uuid: str, worker: str | None = None) -> None:
        self.uuid = uuid
        self.worker = (worker or default_worker())[:_NAME_LIMIT]
        self.rows: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"<TraceBuffer {self.uuid} {len(self.rows)} rows by {self.worker!r}>"

    def note(
        self,
        token: int,
        step: str,
        callback_pos: list[int],
        outcome: str,
        started: float,
        duration: float,
        error: BaseException | str | None = None,
    ) -> None:
        """Note one task: ``started`` is a :func:`time.time`, ``duration`` in seconds.

        ``error`` is the exception a task failed with, or ``"Type: message"``
        (a halt's message is noted as ``": message"``, without a type).
        """
        error_type: str | None = None
        error_message: str | None = None
        if isinstance(error, BaseException):
            error_type, error_message = type(error).__name__, str(error)
        elif error is not None:
            error_type, _, error_message = error.partition(": ")
            error_type = error_type or None
        begin = _utc(started)
        self.rows.append(
            {
                "workflow_uuid": self.uuid,
                "token_position": token,
                "step": step[:_NAME_LIMIT],
                "callback_pos": callback_pos,
                "outcome": outcome,
                "started": begin,
                "ended": begin + timedelta(seconds=duration),
                "duration": duration,
                "worker": self.worker,
                "error_type": None if error_type is None else error_type[:_NAME_LIMIT],
                "error_message": None if error_message is None else error_message[:_MESSAGE_LIMIT],
            }
        )

    def take(self) -> list[dict[str, Any]]:
        """Return the rows noted so far and forget them."""
        rows, self.rows = self.rows, []
        return rows


def _utc(stamp: float) -> datetime:
    """Return the :func:`time.time` ``stamp`` as a naive UTC datetime (as the tables store)."""
    return datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None)


def insert_trace(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store ``rows`` (from :meth:`TraceBuffer.take`) with one multi-row insert."""
    if rows:
        conn.execute(_INSERT, list(rows))


@dataclass(frozen=True)
class TraceRow:
    """One entry of a run's trace: a task a token ran, or an answer given to an ``ask``.

    For an answer (``kind="answer"``), ``step`` is the asking step,
    ``outcome`` the decision (``approve`` or ``reject``), ``worker`` who
    answered, ``data`` the answer, and ``started`` = ``ended`` its time.

    .. versionadded:: 3.0
    """

    kind: str
    token: int
    step: str
    outcome: str
    started: datetime
    ended: datetime
    duration: float
    worker: str
    callback_pos: list[int] = field(default_factory=list)
    #: Which attempt at the step this was: 1, then 1 more for each failure
    #: at the same token and position since the last time it completed there.
    attempt: int = 1
    error_type: str | None = None
    error_message: str | None = None
    data: Any = None

    def as_dict(self) -> dict[str, Any]:
        """Return the row as JSON-ready values (times in ISO 8601, UTC, with ``Z``)."""
        return {
            "kind": self.kind,
            "token": self.token,
            "step": self.step,
            "callback_pos": self.callback_pos,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "duration": self.duration,
            "worker": self.worker,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "data": self.data,
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def read_trace(store: Store, uuid: str, *, token: int | None = None) -> list[TraceRow]:
    """Return the trace of the run ``uuid`` (of one ``token``), in time order, with its answers.

    Raises :class:`~workflow.errors.WorkflowNotFoundError` when no run has that uuid.
    """
    store.workflow(uuid)  # WorkflowNotFoundError
    steps = sa.select(_TABLE).where(_TABLE.c.workflow_uuid == uuid)
    waits = cast(sa.Table, WaitRecord.__table__)
    answers = cast(sa.Table, AnswerRecord.__table__)
    given = (
        sa.select(
            waits.c.token_position,
            waits.c.step,
            answers.c.by,
            answers.c.decision,
            answers.c.data,
            answers.c.created,
        )
        .join(waits, answers.c.wait_id == waits.c.id)
        .where(waits.c.workflow_uuid == uuid)
    )
    if token is not None:
        steps = steps.where(_TABLE.c.token_position == token)
        given = given.where(waits.c.token_position == token)
    with store.sql_engine.connect() as conn:
        task_rows = conn.execute(steps.order_by(_TABLE.c.id)).all()
        answer_rows = conn.execute(given.order_by(answers.c.id)).all()
    found = list(_task_rows(task_rows))
    for row in answer_rows:
        found.append(
            TraceRow(
                kind="answer",
                token=row.token_position,
                step=row.step,
                outcome=row.decision,
                started=row.created,
                ended=row.created,
                duration=0.0,
                worker=row.by,
                data=row.data,
            )
        )
    found.sort(key=lambda row: row.started)  # stable: the task rows keep their order
    return found


def _task_rows(rows: Iterable[Any]) -> Iterable[TraceRow]:
    """Yield the stored rows as :class:`TraceRow`, counting the attempts at each position."""
    failures: dict[tuple[int, str], int] = {}
    for row in rows:
        key = (row.token_position, repr(row.callback_pos))
        attempt = failures.get(key, 0) + 1
        if row.outcome == FAILED:
            failures[key] = attempt
        elif row.outcome == COMPLETED:
            failures.pop(key, None)
        yield TraceRow(
            kind="task",
            token=row.token_position,
            step=row.step,
            outcome=row.outcome,
            started=row.started,
            ended=row.ended,
            duration=row.duration,
            worker=row.worker,
            callback_pos=list(row.callback_pos or []),
            attempt=attempt,
            error_type=row.error_type,
            error_message=row.error_message,
        )


def prune_trace(store: Store, *, before: datetime) -> int:
    """Delete the trace rows of tasks that ended before ``before`` (naive UTC, or aware).

    Return how many were deleted. The answers stay: they belong to the waits.
    """
    if not isinstance(before, datetime):
        raise WorkflowValueError(f"prune_trace(before=...) needs a datetime, not {before!r}")
    if before.tzinfo is not None:
        before = before.astimezone(timezone.utc).replace(tzinfo=None)
    with store.transaction("prune trace") as conn:
        result = conn.execute(sa.delete(_TABLE).where(_TABLE.c.ended < before))
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class TraceSummary:
    """What ``workflow show`` says of a trace: how many steps ran, failed, and for how long.

    .. versionadded:: 3.0
    """

    steps: int
    failures: int
    answers: int
    #: Seconds the traced tasks took, summed.
    busy: float
    #: From the first task's start to the last one's end (``None`` without rows).
    first: datetime | None
    last: datetime | None


def summarize(rows: Sequence[TraceRow]) -> TraceSummary:
    """Return the :class:`TraceSummary` of ``rows`` (from :func:`read_trace`)."""
    tasks = [row for row in rows if row.kind == "task"]
    return TraceSummary(
        steps=len(tasks),
        failures=sum(row.outcome == FAILED for row in tasks),
        answers=len(rows) - len(tasks),
        busy=sum(row.duration for row in tasks),
        first=min((row.started for row in tasks), default=None),
        last=max((row.ended for row in tasks), default=None),
    )


class TraceObserver(Protocol):
    """What watches the steps of stored runs as they run (the OpenTelemetry spans).

    Installed with :func:`set_observer` (by
    :func:`workflow.integrations.otel.enable_otel`); the persistent engine
    calls it only when one is installed. ``eng`` is the
    :class:`~workflow.storage.PersistentWorkflowEngine`.
    """

    def pass_started(self, eng: Any, resuming: bool) -> None:
        """A pass of ``eng`` starts (before its run is stored ``RUNNING``)."""

    def pass_finished(self, eng: Any, status: str) -> None:
        """The pass ends, the run stored in ``status`` (or ``"interrupted"``)."""

    def token_started(self, eng: Any, token: int) -> None:
        """The token at position ``token`` starts (or resumes) its tasks."""

    def token_finished(self, eng: Any, token: int, outcome: str, message: str) -> None:
        """The token stopped: ``completed``, ``halted``, ``waiting`` or ``failed``."""

    def step_started(self, eng: Any, token: int, step: str, callback_pos: list[int]) -> Any:
        """A task starts; return what :meth:`step_finished` is given back."""

    def step_finished(self, handle: Any, outcome: str, error: BaseException | str | None) -> None:
        """The task of ``handle`` ended with ``outcome``."""


#: The installed observer, if any (see :func:`set_observer`).
observer: TraceObserver | None = None


def set_observer(new: TraceObserver | None) -> TraceObserver | None:
    """Install ``new`` as what watches the steps of stored runs; return the one it replaces."""
    global observer
    old, observer = observer, new
    return old


def call_traced(eng: Any, task: Any, obj: Any, buffer: TraceBuffer | None) -> None:
    """Call ``task(obj, eng)`` and note it in ``buffer`` (if any); tell the observer (if any).

    A halt is noted ``halted`` (``waiting`` for a wait's) with its message,
    a control-flow exception (a jump, a skip) ``completed``, any other
    exception ``failed`` with its type and message; the exception goes on.
    """
    token = getattr(obj, "position", eng.state.token_pos)
    position = list(eng.state.callback_pos)
    name = task_name(task)
    watcher = observer
    handle = None if watcher is None else watcher.step_started(eng, token, name, position)
    started = time.time()
    begin = time.perf_counter()
    outcome = COMPLETED
    error: BaseException | str | None = None
    try:
        task(obj, eng)
    except HaltProcessing as exc:
        outcome = outcome_of_halt(exc)
        error = f": {exc.message}" if exc.message else None
        raise
    except WorkflowTransition:
        raise
    except BaseException as exc:
        outcome, error = FAILED, exc
        raise
    else:
        check = getattr(task, "trace_failure", None)
        if check is not None:
            failure = check(obj)
            if failure:
                outcome, error = FAILED, failure
    finally:
        if buffer is not None:
            duration = time.perf_counter() - begin
            buffer.note(token, name, position, outcome, started, duration, error)
        if watcher is not None:
            watcher.step_finished(handle, outcome, error)
