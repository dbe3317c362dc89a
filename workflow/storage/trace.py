"""The step trace: one row per task a token ran in a stored run, and how to read it.

A :class:`~workflow.storage.PersistentWorkflowEngine` notes each task its
tokens run in a :class:`TraceBuffer` (in memory: the step's name, its
position, when it started, how long it took, how it ended and who ran it);
the run's writer stores them with its checkpoints, in the same transaction,
in one multi-row insert every :data:`BATCH_ROWS` rows or
:data:`BATCH_SECONDS` seconds (a process that dies loses at most those;
its tokens run those tasks again anyway). A task halted or failed is noted
before the halt or the failure is stored, and those writes always take the
rows noted so far, so the trace of a run always shows the step its token
stopped at.

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

import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol, cast

import sqlalchemy as sa

from .._observers import task_name
from ..errors import (
    HaltProcessing,
    WorkflowNotFoundError,
    WorkflowTransition,
    WorkflowValueError,
)
from .models import AnswerRecord, TraceRecord, WaitRecord, WorkflowRecord

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "BATCH_ROWS",
    "BATCH_SECONDS",
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
#: A checkpoint writes the rows noted so far once there are this many...
BATCH_ROWS = 64
#: ... or once this many seconds passed since the last write; a halt, a failure,
#: the end of a pass and an interruption always write them.
BATCH_SECONDS = 1.0

_TABLE = cast(sa.Table, TraceRecord.__table__)
#: The columns of a trace row, in the order of a :class:`TraceBuffer` row.
_COLUMNS = (
    "workflow_uuid",
    "token_position",
    "step",
    "callback_pos",
    "outcome",
    "started",
    "duration",
    "worker",
    "error_type",
    "error_message",
)
#: The columns of a row without an error: all but ``error_type`` and ``error_message``.
_SHORT = len(_COLUMNS) - 2
#: A row as a :class:`TraceBuffer` keeps it: the values of :data:`_COLUMNS`,
#: without the last two when the task had no error (nor a halt's message).
Row = tuple[Any, ...]


def default_worker() -> str:
    """Return ``host:pid``: who runs a task, when no worker name was given."""
    return f"{socket.gethostname()}:{os.getpid()}"[:_NAME_LIMIT]


#: Per task class: whether its instances are traced, and whether they may
#: report a failure without raising (see the module's docstring).
_traced_types: dict[type, tuple[bool, bool]] = {}


def _kind_of(task: Any) -> tuple[bool, bool]:
    kind = task.__class__
    found = _traced_types.get(kind)
    if found is None:
        found = (getattr(kind, "traced", True) is not False, hasattr(kind, "trace_failure"))
        if len(_traced_types) < 1024:
            _traced_types[kind] = found
    return found


def traced(task: Any) -> bool:
    """Tell whether ``task`` is a real task (traced) rather than a pattern's bookkeeping."""
    return _kind_of(task)[0]


def outcome_of_halt(exc: HaltProcessing) -> str:
    """Return ``waiting`` for the halt of a wait (``ask``, ``sleep``, ...), else ``halted``."""
    return WAITING if exc.action in _WAIT_ACTIONS else HALTED


class TraceBuffer:
    """The trace rows of one run not stored yet.

    :param uuid: the run.
    :param worker: who runs its tasks (:func:`default_worker` by default).
    """

    __slots__ = ("errors", "last_write", "rows", "uuid", "worker")

    def __init__(self, uuid: str, worker: str | None = None) -> None:
        self.uuid = uuid
        self.worker = (worker or default_worker())[:_NAME_LIMIT]
        #: The rows noted so far, ready to be written: the values of the
        #: columns, without ``error_type`` and ``error_message`` for a task
        #: that had no error (most of them), which SQLite then stores NULL.
        self.rows: list[Row] = []
        #: How many of :attr:`rows` have an error.
        self.errors = 0
        self.last_write = time.monotonic()

    def __repr__(self) -> str:
        return f"<TraceBuffer {self.uuid} {len(self.rows)} rows by {self.worker!r}>"

    def note(
        self,
        token: int,
        step: str,
        callback_pos: Sequence[int],
        outcome: str,
        started: float,
        duration: float,
        error: BaseException | str | None = None,
    ) -> None:
        """Note one task: ``started`` is a :func:`time.time`, ``duration`` in seconds.

        ``error`` is the exception a task failed with, or ``"Type: message"``
        (a halt's message is noted as ``": message"``, without a type). A
        negative ``duration`` (the clock set back) is noted as 0.
        """
        row = (
            self.uuid,
            token,
            step[:_NAME_LIMIT],
            _position_text(callback_pos),
            outcome,
            started,
            duration if duration > 0.0 else 0.0,
            self.worker,
        )
        if error is None:
            self.rows.append(row)
            return
        if isinstance(error, BaseException):
            error_type, error_message = type(error).__name__, str(error)
        else:
            error_type, _, error_message = error.partition(": ")
        self.rows.append((*row, error_type[:_NAME_LIMIT] or None, error_message[:_MESSAGE_LIMIT]))
        self.errors += 1

    def table_rows(self) -> list[Row]:
        """Return the rows noted so far with a value for each of :data:`_COLUMNS`."""
        return [row if len(row) > _SHORT else (*row, None, None) for row in self.rows]

    def due(self, *, force: bool) -> bool:
        """Tell whether the rows noted so far are to be written with this transaction.

        Always when ``force`` (a halt, a failure, the end of a pass) and there
        are rows; at a checkpoint, once there are :data:`BATCH_ROWS` rows or
        :data:`BATCH_SECONDS` passed since the last write, so that a run of
        short tasks writes one multi-row insert every few checkpoints.
        """
        if not self.rows:
            return False
        return (
            force
            or len(self.rows) >= BATCH_ROWS
            or time.monotonic() - self.last_write >= BATCH_SECONDS
        )

    def written(self) -> None:
        """Forget the rows: their transaction committed."""
        self.rows = []
        self.errors = 0
        self.last_write = time.monotonic()


#: The text of the positions seen so far (a process runs a few flows: a few positions).
_position_texts: dict[tuple[int, ...], str] = {}


def _position_text(callback_pos: Sequence[int]) -> str:
    """Return ``callback_pos`` as the trace stores it: ``[1, 0]``."""
    key = callback_pos if type(callback_pos) is tuple else tuple(callback_pos)
    text = _position_texts.get(key)
    if text is None:
        text = "[" + ", ".join(map(str, key)) + "]"
        if len(_position_texts) < 4096:
            _position_texts[key] = text
    return text


def _utc(stamp: float) -> datetime:
    """Return the :func:`time.time` ``stamp`` as a naive UTC datetime (as read from the table)."""
    return datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None)


#: How each DB-API parameter style writes a parameter.
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_trace(conn: sa.Connection, buffer: TraceBuffer) -> None:
    """Store the rows noted in ``buffer``: one executemany (SQLite) or one multi-row insert.

    The statement goes to the driver as it is, with the rows as noted:
    SQLAlchemy's per-row processing would cost more than the insert itself.
    """
    rows = buffer.rows
    if not rows:
        return
    dialect = conn.dialect
    mark = _PLACEHOLDERS.get(dialect.paramstyle)
    if mark is None:  # pragma: no cover - the drivers we support use the styles above
        made = buffer.table_rows()
        conn.execute(sa.insert(_TABLE), [dict(zip(_COLUMNS, row, strict=True)) for row in made])
        return
    name = dialect.identifier_preparer.format_table(_TABLE)
    if dialect.name == "sqlite":
        # In process, executemany is the cheapest. The rows without an error
        # leave its two columns out (NULL): the sqlite3 module binds a None at
        # a cost, looking for an adapter. Consecutive rows go together, so
        # that the ids keep the order the tasks ran in.
        if not buffer.errors:
            conn.exec_driver_sql(_insert_sql(name, _SHORT, mark, 1), rows)
            return
        for width, group in _runs_by_width(rows):
            conn.exec_driver_sql(_insert_sql(name, width, mark, 1), group)
        return
    # A server: one statement of many rows, one round trip (a driver's
    # executemany may make one per row).
    values = [value for row in buffer.table_rows() for value in row]
    conn.exec_driver_sql(_insert_sql(name, len(_COLUMNS), mark, len(rows)), tuple(values))


def _runs_by_width(rows: list[Row]) -> list[tuple[int, list[Row]]]:
    """Split ``rows`` into runs of consecutive rows of the same width (with an error or not)."""
    runs: list[tuple[int, list[Row]]] = []
    width = 0
    group: list[Row] = []
    for row in rows:
        if len(row) != width:
            width = len(row)
            group = []
            runs.append((width, group))
        group.append(row)
    return runs


def _insert_sql(table: str, width: int, mark: str, rows: int) -> str:
    """Return the insert of ``rows`` rows of the first ``width`` columns of :data:`_COLUMNS`."""
    one = f"({', '.join(mark for _ in range(width))})"
    values = ", ".join(one for _ in range(rows))
    return f"INSERT INTO {table} ({', '.join(_COLUMNS[:width])}) VALUES {values}"


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
    if not task_rows and not answer_rows:
        _check_run(store, uuid)
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


def _check_run(store: Store, uuid: str) -> None:
    """Raise :class:`~workflow.errors.WorkflowNotFoundError` unless the run ``uuid`` exists.

    Reads the uuid alone, so that a run whose other values cannot be read has a trace too.
    """
    runs = cast(sa.Table, WorkflowRecord.__table__)
    with store.sql_engine.connect() as conn:
        found = conn.execute(sa.select(runs.c.uuid).where(runs.c.uuid == uuid)).first()
    if found is None:
        raise WorkflowNotFoundError(f"no stored workflow has the uuid {uuid!r}", workflow=uuid)


def _task_rows(rows: Iterable[Any]) -> Iterable[TraceRow]:
    """Yield the stored rows as :class:`TraceRow`, counting the attempts at each position."""
    failures: dict[tuple[int, str], int] = {}
    for row in rows:
        key = (row.token_position, row.callback_pos)
        attempt = failures.get(key, 0) + 1
        if row.outcome == FAILED:
            failures[key] = attempt
        elif row.outcome == COMPLETED:
            failures.pop(key, None)
        started = _utc(row.started)
        yield TraceRow(
            kind="task",
            token=row.token_position,
            step=row.step,
            outcome=row.outcome,
            started=started,
            ended=started + timedelta(seconds=row.duration),
            duration=row.duration,
            worker=row.worker,
            callback_pos=_position(row.callback_pos),
            attempt=attempt,
            error_type=row.error_type,
            error_message=row.error_message,
        )


def _position(text: str) -> list[int]:
    """Read a stored position (``[1, 0]``); a damaged one reads as ``[]``."""
    try:
        found = json.loads(text)
    except ValueError:
        return []
    if isinstance(found, list) and all(type(index) is int for index in found):
        return found
    return []


def prune_trace(store: Store, *, before: datetime) -> int:
    """Delete the trace rows of the tasks that started before ``before``; return how many.

    Rows are appended in time order (give or take the few seconds a batch
    waits, see :data:`BATCH_SECONDS`), so this deletes the rows of the tasks
    that started before ``before`` (naive UTC, or aware) by their ids: one
    scan of the old rows in id order, then a delete by id range, without an
    index on the time that every append would pay for. Return how many were
    deleted. The answers stay: they belong to the waits.
    """
    if not isinstance(before, datetime):
        raise WorkflowValueError(f"prune_trace(before=...) needs a datetime, not {before!r}")
    moment = before.replace(tzinfo=timezone.utc) if before.tzinfo is None else before
    first_kept = (
        sa.select(_TABLE.c.id)
        .where(_TABLE.c.started >= moment.timestamp())
        .order_by(_TABLE.c.id)
        .limit(1)
    )
    with store.transaction("prune trace") as conn:
        boundary = conn.execute(first_kept).scalar()
        doomed = sa.delete(_TABLE)
        if boundary is not None:
            doomed = doomed.where(_TABLE.c.id < boundary)
        result = conn.execute(doomed)
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
    A task that is not :func:`traced` is only called.
    """
    kind = _traced_types.get(task.__class__) or _kind_of(task)
    if not kind[0]:
        task(obj, eng)
        return
    state = eng.state
    try:
        token = obj.position  # a stored token's
    except AttributeError:
        token = state.token_pos
    position = state.position  # a tuple; reading callback_pos would flag the engine
    name = task_name(task)
    watcher = observer
    handle = None
    if watcher is not None:
        handle = watcher.step_started(eng, token, name, list(position))
    clock = time.time
    started = clock()
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
        if kind[1]:
            failure = task.trace_failure(obj)
            if failure:
                outcome, error = FAILED, failure
    finally:
        if buffer is not None:
            duration = clock() - started
            if error is None and duration >= 0.0 and len(name) <= _NAME_LIMIT:
                # The row note() would make, without the call.
                buffer.rows.append(
                    (
                        buffer.uuid,
                        token,
                        name,
                        _position_texts.get(position) or _position_text(position),
                        outcome,
                        started,
                        duration,
                        buffer.worker,
                    )
                )
            else:
                buffer.note(token, name, position, outcome, started, duration, error)
        if watcher is not None:
            watcher.step_finished(handle, outcome, error)
