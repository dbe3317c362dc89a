"""The tables: workflows, their tokens, the append-only status log, stored
definitions, log records, run keys, what runs wait for (waits, answers
and messages), the work queue (queued runs and their work items), the
trace of the steps they ran, and schedules with the times they fired.

Statuses are stored as the integer values of
:class:`~workflow.engine_db.WorkflowStatus` and
:class:`~workflow.engine_db.ObjectStatus`; positions (``callback_pos``) and
data as JSON.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..engine_db import ObjectStatus, WorkflowStatus

__all__ = [
    "AnswerRecord",
    "Base",
    "DefinitionRecord",
    "MessageRecord",
    "QueuedRunRecord",
    "RunKeyRecord",
    "ScheduleFireRecord",
    "ScheduleRecord",
    "StatusChangeRecord",
    "SyslogRecord",
    "TokenRecord",
    "TraceRecord",
    "TransitionRecord",
    "WaitRecord",
    "WorkItemRecord",
    "WorkflowRecord",
    "utcnow",
]

#: Names for constraints and indexes, so that migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Timestamps are naive UTC, with microseconds on every backend.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

#: Text that may be long (log messages with tracebacks): MariaDB's TEXT stops at 64 KB.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def utcnow() -> datetime:
    """Return the current UTC time as a naive datetime, as every timestamp here is stored."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    """The declarative base of the storage tables (their own :class:`MetaData`)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[int]: JSON,
        list[Any]: JSON,
    }


class WorkflowRecord(Base):
    """One run of a definition over a list of tokens."""

    __tablename__ = "wf_workflow"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[int] = mapped_column(Integer, default=WorkflowStatus.NEW.value, index=True)
    #: Index of the token the run is at (-1 before the first).
    token_pos: Mapped[int] = mapped_column(Integer, default=-1)
    #: Where the token at ``token_pos`` resumes (see the persistence docs).
    callback_pos: Mapped[list[int]] = mapped_column(JSON, default=lambda: [0])
    extra_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The stored definition the run started with (declarative flows).
    definition_name: Mapped[str | None] = mapped_column(String(255), default=None)
    definition_version: Mapped[int | None] = mapped_column(Integer, default=None)
    #: How many tokens the run was given, written in the transaction that
    #: stores them: ``None`` until its input is stored whole.
    token_count: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Who runs the workflow now, and until when the lock holds without renewal.
    lock_owner: Mapped[str | None] = mapped_column(String(255), default=None)
    lock_expires: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    modified: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    tokens: Mapped[list[TokenRecord]] = relationship(
        back_populates="workflow",
        cascade="all, delete-orphan",
        order_by="TokenRecord.position",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        status = WorkflowStatus(self.status).name if self.status is not None else None
        return f"<WorkflowRecord {self.uuid} {self.name!r} {status}>"


class TokenRecord(Base):
    """One token of a run: its data, status and resume position."""

    __tablename__ = "wf_token"
    __table_args__ = (UniqueConstraint("workflow_uuid", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("wf_workflow.uuid", ondelete="CASCADE"), index=True
    )
    #: The token's index in the run.
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[Any] = mapped_column(JSON)
    extra_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[int] = mapped_column(Integer, default=ObjectStatus.INITIAL.value, index=True)
    #: Where this token resumes; ``None`` when it has not started.
    callback_pos: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    modified: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    workflow: Mapped[WorkflowRecord] = relationship(back_populates="tokens")

    def __repr__(self) -> str:
        return (
            f"<TokenRecord {self.workflow_uuid}#{self.position} {ObjectStatus(self.status).name}>"
        )


class StatusChangeRecord(Base):
    """An append-only log line: a workflow or one of its tokens changed status.

    The table keeps its first name, ``wf_transition``.

    .. versionchanged:: 3.0
       Was called ``TransitionRecord`` (still importable): a "transition" is a
       control-flow exception of the engine.
    """

    __tablename__ = "wf_transition"
    __table_args__ = (Index("ix_wf_transition_workflow_token", "workflow_uuid", "token_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("wf_workflow.uuid", ondelete="CASCADE")
    )
    #: The token's index, or ``None`` for a transition of the workflow itself.
    token_position: Mapped[int | None] = mapped_column(Integer, default=None)
    from_status: Mapped[int | None] = mapped_column(Integer, default=None)
    to_status: Mapped[int] = mapped_column(Integer)
    callback_pos: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    def __repr__(self) -> str:
        who = "workflow" if self.token_position is None else f"token {self.token_position}"
        return f"<StatusChangeRecord {who}: {self.from_status} -> {self.to_status}>"


#: The former name of :class:`StatusChangeRecord`.
TransitionRecord = StatusChangeRecord


class DefinitionRecord(Base):
    """One version of a stored flow definition (see :class:`~workflow.storage.Definitions`).

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_definition"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    #: 1, 2, ... per name; never reused, even after a delete.
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The sha256 (hex) of the body's canonical JSON.
    checksum: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Deleted versions are kept (soft delete) so that their numbers are not reused.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<DefinitionRecord {self.name!r} v{self.version}>"


class SyslogRecord(Base):
    """A log record written by :class:`~workflow.storage.DatabaseLogHandler`.

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_syslog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: When the record was made (``LogRecord.created``), naive UTC.
    created: Mapped[datetime] = mapped_column(Timestamp, index=True)
    #: The numeric level (``logging.INFO`` is 20).
    level: Mapped[int] = mapped_column(Integer)
    logger_name: Mapped[str] = mapped_column(String(255))
    module: Mapped[str] = mapped_column(String(255))
    func_name: Mapped[str] = mapped_column(String(255))
    #: The formatted message, with the traceback when the record has one.
    message: Mapped[str] = mapped_column(LongText)
    #: The record's ``workflow_uuid`` attribute (``extra={"workflow_uuid": ...}``), if any.
    workflow_uuid: Mapped[str | None] = mapped_column(String(36), default=None, index=True)

    def __repr__(self) -> str:
        return f"<SyslogRecord {self.logger_name} {self.level}: {self.message[:40]!r}>"


class RunKeyRecord(Base):
    """The run that holds a key: one row per ``(scope, key)``, the primary key.

    Written with the run's row (see :mod:`workflow.storage.run_keys`): a
    second start with the key hits the primary key. The row stays when its
    run finishes; the next start takes it over.

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_run_key"

    #: The name of the runs the key is unique among (the run's name).
    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    workflow_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("wf_workflow.uuid", ondelete="CASCADE"), index=True
    )
    #: When the run took the key.
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    def __repr__(self) -> str:
        return f"<RunKeyRecord {self.scope!r} {self.key!r} -> {self.workflow_uuid}>"


class WaitRecord(Base):
    """What a token waits for: an answer (``ask``), a time (``sleep``, a retry's
    back-off) or a message (``receive``).

    A wait goes from ``waiting`` to ``decided`` exactly once, by one
    conditional write (an answer that reaches the quorum, a timer that is
    due, a message that arrives), then to ``done`` once the run went on past
    it (see :mod:`workflow.runtime`).

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_wait"
    __table_args__ = (Index("ix_wf_wait_phase_due", "phase", "due"),)

    #: Derived from the run, the token, the step and how often the token came
    #: to the step, so that a task run again after a crash finds its wait.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("wf_workflow.uuid", ondelete="CASCADE"), index=True
    )
    token_position: Mapped[int] = mapped_column(Integer)
    #: The step (or pattern) that waits, as people read it.
    step: Mapped[str] = mapped_column(String(255))
    #: ``ask``, ``sleep``, ``receive`` or ``retry``.
    kind: Mapped[str] = mapped_column(String(16))
    #: ``waiting``, ``decided`` or ``done``.
    phase: Mapped[str] = mapped_column(String(16), default="waiting")
    #: What decided it: ``approved``, ``rejected``, ``timed_out``, ``fired`` or ``received``.
    decision: Mapped[str | None] = mapped_column(String(16), default=None)
    #: When the timer of the wait is due (naive UTC), if it has one.
    due: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    #: The topic a ``receive`` waits on.
    topic: Mapped[str | None] = mapped_column(String(255), default=None)
    #: What the wait asks: message, approvers, quorums, schema, on_timeout.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    approvals: Mapped[int] = mapped_column(Integer, default=0)
    rejections: Mapped[int] = mapped_column(Integer, default=0)
    #: The message a ``receive`` was given.
    message_id: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Raised by every write, so that the first statement of a transaction locks the row.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    decided: Mapped[datetime | None] = mapped_column(Timestamp, default=None)

    def __repr__(self) -> str:
        return f"<WaitRecord {self.id} {self.kind} {self.step!r} {self.phase}>"


class AnswerRecord(Base):
    """One answer to an ``ask``: who, what, when; counted once per person and key.

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_answer"
    __table_args__ = (
        UniqueConstraint("wait_id", "by", name="uq_wf_answer_wait_id_by"),
        UniqueConstraint("wait_id", "key", name="uq_wf_answer_wait_id_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    wait_id: Mapped[str] = mapped_column(String(36), ForeignKey("wf_wait.id", ondelete="CASCADE"))
    by: Mapped[str] = mapped_column(String(255))
    #: ``approve`` or ``reject``.
    decision: Mapped[str] = mapped_column(String(16))
    data: Mapped[Any] = mapped_column(JSON, default=None)
    #: The idempotency key the answer came with: the same key is the same answer.
    key: Mapped[str | None] = mapped_column(String(255), default=None)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    def __repr__(self) -> str:
        return f"<AnswerRecord {self.wait_id} {self.by!r} {self.decision}>"


class MessageRecord(Base):
    """A message sent to a run on a topic; kept until a ``receive`` takes it.

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_message"
    __table_args__ = (
        UniqueConstraint("workflow_uuid", "topic", "key", name="uq_wf_message_run_topic_key"),
        Index("ix_wf_message_run_topic", "workflow_uuid", "topic", "wait_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("wf_workflow.uuid", ondelete="CASCADE")
    )
    topic: Mapped[str] = mapped_column(String(255))
    #: The sender's idempotency key: a message is delivered once per key.
    key: Mapped[str | None] = mapped_column(String(255), default=None)
    data: Mapped[Any] = mapped_column(JSON, default=None)
    #: The wait that took the message, once one did.
    wait_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    def __repr__(self) -> str:
        return f"<MessageRecord {self.workflow_uuid} {self.topic!r} #{self.id}>"


class QueuedRunRecord(Base):
    """A run whose tokens workers process from a queue: its join counter.

    ``items_left`` counts the run's work items not finished; the worker that
    finishes the last one (its decrement reaches 0, under this row's lock)
    stores the run's outcome from ``errors`` and ``halts``.

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_queued_run"

    workflow_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("wf_workflow.uuid", ondelete="CASCADE"), primary_key=True
    )
    queue: Mapped[str] = mapped_column(String(255))
    #: Work items not finished.
    items_left: Mapped[int] = mapped_column(Integer)
    #: Finished items whose token failed, and whose token halted (waits).
    errors: Mapped[int] = mapped_column(Integer, default=0)
    halts: Mapped[int] = mapped_column(Integer, default=0)
    #: The position of the next branch token a parallel step stores (``None``: the first
    #: comes after the run's input).
    next_position: Mapped[int | None] = mapped_column(Integer, default=None)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    def __repr__(self) -> str:
        return f"<QueuedRunRecord {self.workflow_uuid} on {self.queue!r}: {self.items_left} left>"


class WorkItemRecord(Base):
    """One token of a queued run, as work for one worker at a time.

    ``ready`` items wait for a worker; a worker *claims* one (``claimed``,
    its ``owner`` and ``lease_until`` set, ``epoch`` raised by one) and every
    write it makes for the token checks that ``epoch``: a worker whose lease
    lapsed and was taken over writes nothing more. ``done`` items finished
    (completed, failed or halted).

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_work"
    __table_args__ = (
        UniqueConstraint("workflow_uuid", "position", name="uq_wf_work_workflow_uuid_position"),
        Index("ix_wf_work_queue_state", "queue", "state", "id"),
        Index("ix_wf_work_state_lease", "state", "lease_until"),
        Index("ix_wf_work_parent", "parent_item", "fork", "branch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("wf_workflow.uuid", ondelete="CASCADE")
    )
    #: The token's position in its run.
    position: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(255))
    #: ``ready``, ``claimed`` or ``done``; ``pending`` for a branch beyond ``max_concurrency``.
    state: Mapped[str] = mapped_column(String(16), default="ready")
    owner: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    #: The fencing epoch: raised by every claim.
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    modified: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    #: When a message for the item was last sent to a task queue (Celery), if ever.
    dispatched: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    #: A branch of a parallel step: the item of the token that forked it (its parent).
    parent_item: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Which fork of the parent token a branch item belongs to (the parent counts its forks).
    fork: Mapped[int | None] = mapped_column(Integer, default=None)
    #: A branch item's index among its fork's branches (or items of a ``for_each``).
    branch: Mapped[int | None] = mapped_column(Integer, default=None)
    #: On a parent's item: how many branches of its fork have not finished.
    children_left: Mapped[int | None] = mapped_column(Integer, default=None)

    def __repr__(self) -> str:
        return f"<WorkItemRecord {self.workflow_uuid}[{self.position}] {self.state} #{self.epoch}>"


class TraceRecord(Base):
    """One task a token ran in a stored run: the step, when, how long, and how it ended.

    Append-only: rows are written with the run's checkpoints and removed only
    by :meth:`~workflow.storage.Store.prune_trace`. Cheap to append on purpose:
    one index (a run's rows, by token, in order), no foreign key (the rows of
    a run deleted by hand go when they are pruned), and no ``ended`` column
    (it is ``started + duration``).

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_trace"
    __table_args__ = (Index("ix_wf_trace_run_token", "workflow_uuid", "token_position", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_uuid: Mapped[str] = mapped_column(String(36))
    token_position: Mapped[int] = mapped_column(Integer)
    #: The flow step or the task's name.
    step: Mapped[str] = mapped_column(String(255))
    #: The task's position in the token's callback tree, as JSON text (``[1, 0]``):
    #: a plain string column, cheaper to write than a JSON one.
    callback_pos: Mapped[str] = mapped_column(String(255))
    #: ``completed``, ``failed``, ``halted`` or ``waiting``.
    outcome: Mapped[str] = mapped_column(String(16))
    #: When the task started: seconds since the epoch (UTC), as :func:`time.time` gives
    #: (a number: the cheapest value to write; :func:`~workflow.storage.trace.read_trace`
    #: gives datetimes).
    started: Mapped[float] = mapped_column(Double)
    #: Seconds the task took (0 when the clock was set back meanwhile).
    duration: Mapped[float] = mapped_column(Double)
    #: Who ran it: ``host:pid`` or a worker's name.
    worker: Mapped[str] = mapped_column(String(255))
    error_type: Mapped[str | None] = mapped_column(String(255), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)

    def __repr__(self) -> str:
        return f"<TraceRecord {self.workflow_uuid} token {self.token_position} {self.step!r}>"


class ScheduleRecord(Base):
    """A cron schedule that starts runs of a flow (see :mod:`workflow.runtime.schedules`).

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_schedule"
    __table_args__ = (Index("ix_wf_schedule_paused_next_fire_at", "paused", "next_fire_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    #: The cron expression, read in ``timezone``.
    cron: Mapped[str] = mapped_column(String(255))
    #: An IANA time zone name (``Europe/Berlin``, ``UTC``).
    timezone: Mapped[str] = mapped_column(String(64))
    #: What a fire runs: ``def:NAME[@VERSION]``, ``module:attribute`` or a run name.
    flow: Mapped[str] = mapped_column(String(255))
    #: The input records: each one token.
    tokens: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: ``skip``, ``queue`` or ``allow``.
    overlap: Mapped[str] = mapped_column(String(16), default="skip")
    #: ``none``, ``latest`` or ``all``.
    catch_up: Mapped[str] = mapped_column(String(16), default="none")
    #: How far back missed fire times are caught up, in seconds.
    catch_up_window: Mapped[int] = mapped_column(Integer, default=86400)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The next fire time not yet decided (naive UTC).
    next_fire_at: Mapped[datetime] = mapped_column(Timestamp)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    def __repr__(self) -> str:
        return f"<ScheduleRecord {self.name!r} {self.cron!r} {self.timezone}>"


class ScheduleFireRecord(Base):
    """What became of one fire time of a schedule; unique per (schedule, fire time).

    The unique key is what lets any number of workers fire schedules: the
    worker whose insert wins starts the run, the others do nothing.

    .. versionadded:: 3.0
    """

    __tablename__ = "wf_schedule_fire"
    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_time", name="uq_wf_schedule_fire_schedule_time"),
        Index("ix_wf_schedule_fire_outcome", "outcome"),
        Index("ix_wf_schedule_fire_claimed", "claimed"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("wf_schedule.id", ondelete="CASCADE")
    )
    #: The cron time (naive UTC), or the time of a manual trigger.
    fire_time: Mapped[datetime] = mapped_column(Timestamp)
    #: The run it started (or queued), derived from the schedule and the fire time.
    run_uuid: Mapped[str | None] = mapped_column(String(36), default=None)
    #: ``started``, ``queued``, ``skipped_overlap``, ``skipped_catchup``, ``missed``,
    #: ``failed``.
    outcome: Mapped[str] = mapped_column(String(32))
    #: Why it failed or was skipped, as people read it.
    detail: Mapped[str | None] = mapped_column(String(1000), default=None)
    created: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    #: When a worker claimed the start of the run (naive UTC); cleared once it is done.
    #: A claim older than a lease is a worker that died: another takes the start over.
    claimed: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    #: How many workers claimed the start of the run (1, or more after takeovers).
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<ScheduleFireRecord {self.schedule_id} {self.fire_time} {self.outcome}>"
