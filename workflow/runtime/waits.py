"""What runs wait for, as rows: answers from people, times, and messages.

A token that reaches an ``ask``, ``sleep`` or ``receive`` step (or a task
that waits to be tried again) opens a *wait*: a row of ``wf_wait`` whose id
is derived from the run, the token, the step and how often the token came
there, so that a task run again after a crash finds the row it opened. The
token halts; its process may exit. The wait goes from ``waiting`` to
``decided`` exactly once, by one conditional write of the transaction that
decides it:

- an answer that reaches a quorum (:meth:`Waits.answer`): the transaction
  first writes the wait's row, so that answers to one interaction are
  counted one after the other, on every database;
- a timer that is due (:meth:`Waits.fire_due`): ``UPDATE ... WHERE phase =
  'waiting' AND due <= now``, judged by the database's clock;
- a message (:meth:`Waits.send`), or one kept for the step when it opens.

A decided wait is then ``done`` once its run went on past it
(:meth:`Waits.mark_done`, called by the :class:`~workflow.runtime.Worker`
after the pass that continued it). The result a step reads is built from the
rows (:meth:`Wait.result`).

.. versionadded:: 3.0
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import sqlalchemy as sa

from ..engine_db import WorkflowStatus
from ..errors import (
    AnswerRefusedError,
    StorageError,
    WorkflowNotFoundError,
    WorkflowValueError,
)
from ..storage.models import AnswerRecord, MessageRecord, WaitRecord
from ..storage.run_rows import workflows
from ..storage.store import Store

__all__ = [
    "KINDS",
    "MAX_ANSWER_SIZE",
    "MAX_MESSAGE_LENGTH",
    "MAX_MESSAGE_SIZE",
    "MAX_NAME_LENGTH",
    "Answer",
    "AnswerOutcome",
    "Delivery",
    "Wait",
    "WaitSpec",
    "Waits",
    "wait_id",
]

waits = cast(sa.Table, WaitRecord.__table__)
answers = cast(sa.Table, AnswerRecord.__table__)
messages = cast(sa.Table, MessageRecord.__table__)

#: The status of the wait's run, read with the wait's row. (SQLite's RETURNING
#: names the columns unqualified: ``uuid`` is the run's, ``workflow_uuid`` the wait's.)
_RUN_STATUS = (
    sa.select(workflows.c.status)
    .where(workflows.c.uuid == waits.c.workflow_uuid)
    .correlate(waits)
    .scalar_subquery()
    .label("run_status")
)
#: The first write of an answer's transaction: it locks the wait's row, so that
#: answers to one interaction are counted one at a time.
_LOCK_WAIT = (
    waits.update().where(waits.c.id == sa.bindparam("ident")).values(version=waits.c.version + 1)
)
#: The same write, giving the row (and its run's status) back where the database can.
_LOCK_AND_READ_WAIT = _LOCK_WAIT.returning(*waits.c, _RUN_STATUS)
#: PostgreSQL: the lock an UPDATE takes (``FOR NO KEY UPDATE``), without writing a
#: row version that the count writes again a moment later.
_READ_AND_LOCK_WAIT = (
    sa.select(*waits.c, _RUN_STATUS)
    .where(waits.c.id == sa.bindparam("ident"))
    .with_for_update(of=waits, key_share=True)
)
#: The wait's row and its run's status (after :data:`_LOCK_WAIT`, where it cannot).
_READ_WAIT = sa.select(*waits.c, _RUN_STATUS).where(waits.c.id == sa.bindparam("ident"))
#: The answers of a wait, oldest first.
_ANSWERS_OF = (
    sa.select(answers)
    .where(answers.c.wait_id == sa.bindparam("ident"))
    .order_by(answers.c.created, answers.c.id)
)
_INSERT_ANSWER = answers.insert()
#: The one conditional write that counts an answer, and decides the wait on a quorum.
_COUNT_ANSWER = (
    waits.update()
    .where(waits.c.id == sa.bindparam("ident"), waits.c.phase == "waiting")
    .values(
        approvals=sa.bindparam("new_approvals", type_=waits.c.approvals.type),
        rejections=sa.bindparam("new_rejections", type_=waits.c.rejections.type),
        phase=sa.bindparam("new_phase", type_=waits.c.phase.type),
        decision=sa.bindparam("new_decision", type_=waits.c.decision.type),
        decided=sa.bindparam("new_decided", type_=waits.c.decided.type),
        version=waits.c.version + 1,
    )
)

#: The kinds of waits.
KINDS = ("ask", "sleep", "receive", "retry")
Kind = Literal["ask", "sleep", "receive", "retry"]
#: The longest name, key or topic stored (the columns' size).
MAX_NAME_LENGTH = 255
#: The longest message an ``ask`` shows, in characters.
MAX_MESSAGE_LENGTH = 4000
#: The largest answer data, and message data, as stored JSON (characters).
MAX_ANSWER_SIZE = 64 * 1024
MAX_MESSAGE_SIZE = 1024 * 1024
#: ``on_timeout`` words an ``ask`` accepts (or ``{"answer": ...}``).
ON_TIMEOUT = ("approve", "reject", "fail")
#: What a decided wait's ``decision`` column holds.
DECISIONS = ("approved", "rejected", "timed_out", "fired", "received")

#: The statuses of runs that never go on: a message to them is refused.
_FINISHED = {
    WorkflowStatus.COMPLETED.value: "completed",
    WorkflowStatus.CANCELLED.value: "cancelled",
}
_NAMESPACE = _uuid.UUID("6f1c3d52-8f0e-4c1e-9a57-3f5b2b9d4e10")


def wait_id(run: str, token: int, site: str, count: int) -> str:
    """Return the id of the ``count``-th wait the token ``token`` of ``run`` opens at ``site``."""
    return str(_uuid.uuid5(_NAMESPACE, f"{run}\x1f{token}\x1f{site}\x1f{count}"))


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WorkflowValueError(f"{what} must be a non-empty string, not {value!r}")
    if len(value) > MAX_NAME_LENGTH:
        raise WorkflowValueError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if any(ord(char) < 32 for char in value):
        raise WorkflowValueError(f"{what} {value!r} holds a control character")
    return value


@dataclass(frozen=True)
class WaitSpec:
    """What a step waits for, as a wait's row keeps it.

    :param kind: ``"ask"``, ``"sleep"``, ``"receive"`` or ``"retry"``.
    :param step: the step's name, as people read it.
    :param message: what an ``ask`` asks (shown to the approvers).
    :param timeout: how long from now the wait may last.
    :param until: when it ends (naive UTC); ``timeout`` and ``until`` exclude each other.
    :param approvers: who may answer an ``ask`` (``None``: anyone).
    :param quorum: how many approvals decide ``"approved"``.
    :param reject_quorum: how many rejections decide ``"rejected"``.
    :param schema: the JSON Schema each answer's data must match.
    :param on_timeout: ``"approve"``, ``"reject"``, ``"fail"`` or
        ``{"answer": value}``; ``None``: the decision is ``"timed_out"``.
    :param topic: what a ``receive`` waits for.
    """

    kind: Kind
    step: str
    message: str = ""
    timeout: timedelta | None = None
    until: datetime | None = None
    approvers: tuple[str, ...] | None = None
    quorum: int = 1
    reject_quorum: int = 1
    schema: Any = None
    on_timeout: Any = None
    topic: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise WorkflowValueError(f"a wait's kind is one of {KINDS}, not {self.kind!r}")
        _name(self.step, "a wait's step")
        if not isinstance(self.message, str) or len(self.message) > MAX_MESSAGE_LENGTH:
            raise WorkflowValueError(
                f"step {self.step!r}: the message must be a string of at most "
                f"{MAX_MESSAGE_LENGTH} characters"
            )
        if self.timeout is not None and self.until is not None:
            raise WorkflowValueError(f"step {self.step!r}: give a timeout or a time, not both")
        if self.timeout is not None and self.timeout < timedelta(0):
            raise WorkflowValueError(f"step {self.step!r}: the timeout is negative")
        if self.kind in ("sleep", "retry") and self.timeout is None and self.until is None:
            raise WorkflowValueError(f"step {self.step!r}: a {self.kind} needs a time")
        if self.kind == "receive":
            _name(self.topic, f"step {self.step!r}: the topic")
        if self.approvers is not None:
            if not self.approvers:
                raise WorkflowValueError(f"step {self.step!r}: the list of approvers is empty")
            for person in self.approvers:
                _name(person, f"step {self.step!r}: an approver")
            if len(set(self.approvers)) != len(self.approvers):
                raise WorkflowValueError(f"step {self.step!r}: an approver is named twice")
        for what in ("quorum", "reject_quorum"):
            value = getattr(self, what)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise WorkflowValueError(
                    f"step {self.step!r}: {what} must be a whole number from 1, not {value!r}"
                )
            if self.approvers is not None and value > len(self.approvers):
                raise WorkflowValueError(
                    f"step {self.step!r}: {what} {value} is more than the "
                    f"{len(self.approvers)} approvers"
                )
        on_timeout = self.on_timeout
        if (
            on_timeout is not None
            and on_timeout not in ON_TIMEOUT
            and not (isinstance(on_timeout, dict) and set(on_timeout) == {"answer"})
        ):
            raise WorkflowValueError(
                f"step {self.step!r}: on_timeout is one of {', '.join(ON_TIMEOUT)} "
                f"or {{'answer': ...}}, not {on_timeout!r}"
            )

    def stored(self) -> dict[str, Any]:
        """Return what the wait's ``spec`` column keeps."""
        kept: dict[str, Any] = {"message": self.message}
        if self.kind == "ask":
            kept.update(
                approvers=None if self.approvers is None else list(self.approvers),
                quorum=self.quorum,
                reject_quorum=self.reject_quorum,
            )
            if self.schema is not None:
                kept["schema"] = self.schema
        if self.on_timeout is not None:
            kept["on_timeout"] = self.on_timeout
        return kept


@dataclass(frozen=True)
class Answer:
    """One answer to an ``ask``: who gave it, ``"approve"`` or ``"reject"``, its data, when."""

    by: str
    decision: str
    data: Any
    at: datetime
    key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the answer as a step's result lists it (``at`` in ISO 8601, UTC)."""
        return {"by": self.by, "decision": self.decision, "data": self.data, "at": _iso(self.at)}


@dataclass(frozen=True)
class Wait:
    """A wait as stored: what it waits for, and how it was decided.

    ``answers`` holds the answers of an ``ask``; ``message`` the message a
    ``receive`` was given (``{"topic", "data", "key", "at"}``).
    """

    id: str
    workflow_uuid: str
    token: int
    step: str
    kind: str
    phase: str
    decision: str | None
    due: datetime | None
    topic: str | None
    spec: dict[str, Any]
    approvals: int
    rejections: int
    created: datetime
    decided: datetime | None
    answers: tuple[Answer, ...] = ()
    message: dict[str, Any] | None = None

    @property
    def waiting(self) -> bool:
        """Whether nothing decided the wait yet."""
        return self.phase == "waiting"

    @property
    def quorum(self) -> int:
        return int(self.spec.get("quorum", 1))

    @property
    def approvers(self) -> list[str] | None:
        found = self.spec.get("approvers")
        return None if found is None else list(found)

    def outcome(self) -> str | None:
        """Return what the step's result says was decided (``on_timeout`` applied)."""
        if self.decision != "timed_out":
            return self.decision
        on_timeout = self.spec.get("on_timeout")
        if on_timeout == "approve":
            return "approved"
        if on_timeout == "reject":
            return "rejected"
        return "timed_out"

    def result(self) -> dict[str, Any]:
        """Return what the waiting step hands to the next steps, once decided.

        ``ask``: ``{"decision": "approved" | "rejected" | "timed_out",
        "answers": [{"by", "decision", "data", "at"}], "approvals",
        "rejections", "quorum", "reject_quorum", "timed_out"}`` (and
        ``"data"`` when ``on_timeout`` is ``{"answer": data}`` and the time
        ran out); ``receive``: ``{"received", "topic", "data", "key", "at",
        "timed_out"}``; ``sleep`` and retries: ``{"due", "fired"}``.
        """
        timed_out = self.decision == "timed_out"
        if self.kind == "ask":
            result: dict[str, Any] = {
                "decision": self.outcome(),
                "answers": [answer.as_dict() for answer in self.answers],
                "approvals": self.approvals,
                "rejections": self.rejections,
                "quorum": self.quorum,
                "reject_quorum": int(self.spec.get("reject_quorum", 1)),
                "timed_out": timed_out,
            }
            on_timeout = self.spec.get("on_timeout")
            if timed_out and isinstance(on_timeout, dict):
                result["data"] = on_timeout.get("answer")
            return result
        if self.kind == "receive":
            message = self.message or {}
            return {
                "received": self.decision == "received",
                "topic": self.topic,
                "data": message.get("data"),
                "key": message.get("key"),
                "at": message.get("at"),
                "timed_out": timed_out,
            }
        return {"due": _iso(self.due), "fired": _iso(self.decided)}

    def decided_by(self) -> list[str]:
        """Return who gave the answers that decided (the winning side's answers)."""
        side = {"approved": "approve", "rejected": "reject"}.get(self.decision or "")
        return [answer.by for answer in self.answers if answer.decision == side]


@dataclass(frozen=True)
class AnswerOutcome:
    """What :meth:`Waits.answer` did: the answer, the wait after it, and whether it decided."""

    wait: Wait
    answer: Answer
    #: ``False`` when an answer with the same key had been recorded (this is that answer).
    recorded: bool
    #: ``True`` when this answer decided the wait.
    decided: bool
    #: The status of the wait's run (a :class:`~workflow.engine_db.WorkflowStatus`
    #: value) as the answer's transaction saw it.
    #:
    #: .. versionadded:: 3.0
    run_status: int | None = None

    def as_dict(self, interaction: str) -> dict[str, Any]:
        """The answer and its interaction's count after it, as ``workflow answer --json``
        and the HTTP API report them (``at`` a datetime, naive UTC)."""
        wait, answer = self.wait, self.answer
        return {
            "interaction": interaction,
            "run": wait.workflow_uuid,
            "step": wait.step,
            "by": answer.by,
            "answer": answer.decision,
            "data": answer.data,
            "key": answer.key,
            "at": answer.at,
            "recorded": self.recorded,
            "decided": self.decided,
            "decision": wait.outcome(),
            "approvals": wait.approvals,
            "rejections": wait.rejections,
            "quorum": wait.quorum,
            "reject_quorum": int(wait.spec.get("reject_quorum", 1)),
            "continued": False,
        }


@dataclass(frozen=True)
class Delivery:
    """What :meth:`Waits.send` did with a message."""

    message_id: int
    #: The wait that took the message at once, if one waited.
    wait: str | None
    #: ``True`` when a message with the same key had been sent (this is that message).
    duplicate: bool = False


@dataclass
class _Refusal:
    message: str
    reason: str
    decision: str | None = None
    by: list[str] = field(default_factory=list)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="microseconds") + "Z"


class Waits:
    """The waits of the runs of a :class:`~workflow.storage.Store`.

    Every method is one or more short transactions, safe to call from any
    number of processes at once.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- opening and reading --------------------------------------------------

    def open(self, run: str, token: int, ident: str, spec: WaitSpec) -> Wait:
        """Store the wait ``ident`` of token ``token`` of ``run`` unless it is stored; return it.

        Its timer is due ``spec.timeout`` from the database's now (or at
        ``spec.until``); a time already past decides it at once. A
        ``receive`` takes the oldest message kept for its topic, if any.
        The run's row is written first, so that a message sent at the same
        moment is either seen here or sees this wait.
        """
        now = self.store.now()
        due = spec.until if spec.timeout is None else now + spec.timeout
        with self.store.transaction("open a wait", workflow=run, token=token) as conn:
            if self._lock_run(conn, run) == 0:
                raise WorkflowNotFoundError(
                    f"no stored workflow has the uuid {run!r}", workflow=run, operation="wait"
                )
            found = conn.execute(sa.select(waits.c.id).where(waits.c.id == ident)).first()
            if found is None:
                values: dict[str, Any] = {
                    "id": ident,
                    "workflow_uuid": run,
                    "token_position": token,
                    "step": spec.step[:MAX_NAME_LENGTH],
                    "kind": spec.kind,
                    "phase": "waiting",
                    "due": due,
                    "topic": spec.topic,
                    "spec": spec.stored(),
                    "approvals": 0,
                    "rejections": 0,
                    "version": 0,
                    "created": now,
                }
                if due is not None and due <= now:
                    late = "fired" if spec.kind in ("sleep", "retry") else "timed_out"
                    values.update(phase="decided", decision=late, decided=now)
                conn.execute(waits.insert().values(**values))
                if spec.kind == "receive" and values["phase"] == "waiting":
                    self._take_kept_message(conn, run, ident, spec.topic, now)
        return self.get(ident)

    def get(self, ident: str) -> Wait:
        """Return the wait ``ident``, with its answers or message.

        :raises WorkflowNotFoundError: when there is none.
        """
        with self.store.transaction("read a wait") as conn:
            row = conn.execute(sa.select(waits).where(waits.c.id == ident)).first()
            if row is None:
                raise WorkflowNotFoundError(
                    f"no interaction or wait has the id {ident!r}", operation="read wait"
                )
            return self._wait(conn, row)

    def of_run(self, run: str) -> list[Wait]:
        """Return the waits of ``run``, oldest first."""
        with self.store.transaction("read the waits of a run", workflow=run) as conn:
            rows = conn.execute(
                sa.select(waits)
                .where(waits.c.workflow_uuid == run)
                .order_by(waits.c.created, waits.c.id)
            ).all()
            return [self._wait(conn, row) for row in rows]

    def phase(self, ident: str) -> str | None:
        """Return the phase of the wait ``ident`` (one cheap query), or ``None`` if absent."""
        with self.store.transaction("read a wait") as conn:
            return conn.execute(sa.select(waits.c.phase).where(waits.c.id == ident)).scalar()

    def waiting(
        self,
        *,
        user: str | None = None,
        kind: str | None = "ask",
        run: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Wait]:
        """Return the open waits (the interactions, by default), oldest first.

        :param user: only those this person may answer and has not answered.
        :param kind: only waits of this kind (``None``: every kind).
        :param run: only the waits of this run.
        """
        query = sa.select(waits).where(waits.c.phase == "waiting")
        if kind is not None:
            query = query.where(waits.c.kind == kind)
        if run is not None:
            query = query.where(waits.c.workflow_uuid == run)
        query = query.order_by(waits.c.created, waits.c.id)
        found: list[Wait] = []
        with self.store.transaction("list the waits") as conn:
            if user is None:
                rows = conn.execute(query.limit(limit).offset(offset)).all()
                return [self._wait(conn, row) for row in rows]
            skipped = 0
            for row in conn.execute(query).yield_per(500):
                wait = self._wait(conn, row)
                approvers = wait.approvers
                if approvers is not None and user not in approvers:
                    continue
                if any(answer.by == user for answer in wait.answers):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(wait)
                if len(found) >= limit:
                    break
        return found

    # -- answers ---------------------------------------------------------------

    def answer(
        self,
        ident: str,
        *,
        by: str,
        decision: str,
        data: Any = None,
        key: str | None = None,
    ) -> AnswerOutcome:
        """Record ``by``'s answer to the interaction ``ident``; decide it on a quorum.

        ``decision`` is ``"approve"`` or ``"reject"``. An answer with a
        ``key`` given before is that answer again (``recorded`` ``False``).
        The transaction locks the wait's row first (``SELECT ... FOR NO
        KEY UPDATE`` on PostgreSQL, a write elsewhere): answers to one
        interaction are counted one at a time, and the write that reaches
        a quorum is the one that decides it, once. One transaction of four
        statements (five where the database cannot return a row it
        updates). On PostgreSQL an answer first tries two statements
        without the lock: a read, and one write that counts and records it
        only if the wait did not change since (see
        ``workflow/runtime/_answer_fast.py``).

        :raises AnswerRefusedError: naming the reason (see its
            :attr:`~workflow.errors.AnswerRefusedError.reason`); nothing is recorded.
        """
        by, data, key = self._checked(ident, by, decision, data, key)
        found: AnswerOutcome | _Refusal | None = None
        if self.store.sql_engine.dialect.name == "postgresql":
            from ._answer_fast import answer_at_once

            found = answer_at_once(self.store, ident, by, decision, data, key)
        if found is None:
            found = self._answer_locked(ident, by, decision, data, key)
        return _refused(ident, found)

    def _checked(
        self, ident: str, by: object, decision: str, data: Any, key: object
    ) -> tuple[str, Any, str | None]:
        """Return ``by``, ``data`` (as it is read back) and ``key`` of an answer, checked.

        :raises AnswerRefusedError: (``invalid``) naming what is wrong.
        """
        by = self._who(ident, by)
        if decision not in ("approve", "reject"):
            raise AnswerRefusedError(
                f"an answer is 'approve' or 'reject', not {decision!r}",
                reason="invalid",
                interaction=ident,
            )
        if key is not None:
            key = self._key(ident, key)
        if data is not None:
            size = self._size(data, "the answer's data", MAX_ANSWER_SIZE)
            if size is not None:
                raise AnswerRefusedError(size, reason="invalid", interaction=ident)
            data = self.store.codec.loads(self.store.codec.dumps(data))  # as it is read back
        return by, data, key

    def _answer_locked(
        self, ident: str, by: str, decision: str, data: Any, key: str | None
    ) -> AnswerOutcome | _Refusal:
        """Judge and record an answer under the wait's row lock, in one transaction."""
        with self.store.transaction("record an answer") as conn:
            now = self.store.now()
            if conn.dialect.name == "postgresql":
                row = conn.execute(_READ_AND_LOCK_WAIT, {"ident": ident}).first()
            elif conn.dialect.update_returning:
                row = conn.execute(_LOCK_AND_READ_WAIT, {"ident": ident}).first()
            elif conn.execute(_LOCK_WAIT, {"ident": ident}).rowcount:
                row = conn.execute(_READ_WAIT, {"ident": ident}).one()
            else:
                row = None
            if row is None:
                return _not_found(ident)
            return self._answer(conn, row, by, decision, data, key, now)

    def _answer(
        self,
        conn: sa.Connection,
        row: Any,
        by: str,
        decision: str,
        data: Any,
        key: str | None,
        now: datetime,
    ) -> AnswerOutcome | _Refusal:
        """Judge and record an answer to the wait ``row``, whose row this transaction locked."""
        ident = row.id
        if row.kind != "ask":
            return _not_an_ask(row)
        wait = _wait_of(row, tuple(map(_answer_of, conn.execute(_ANSWERS_OF, {"ident": ident}))))
        judged = _judge(wait, row.run_status, by, decision, data, key, now)
        if isinstance(judged, _DeadlinePassed):
            self._decide(conn, ident, "timed_out", now)  # the row is locked: it decides
            return _decided_refusal(
                replace(wait, phase="decided", decision="timed_out", decided=now)
            )
        if not isinstance(judged, _Count):
            return judged
        answer = Answer(by, decision, data, now, key)
        conn.execute(
            _INSERT_ANSWER,
            {
                "wait_id": ident,
                "by": by,
                "decision": decision,
                "data": data,
                "key": key,
                "created": now,
            },
        )
        changed = conn.execute(_COUNT_ANSWER, judged.values(ident, now)).rowcount
        if changed != 1:  # pragma: no cover - the row is locked by this transaction
            raise WorkflowValueError(f"interaction {ident} changed while it was answered")
        return judged.outcome(wait, answer, row.run_status)

    # -- messages ----------------------------------------------------------------

    def send(self, run: str, topic: str, data: Any = None, *, key: str | None = None) -> Delivery:
        """Send ``data`` to ``run`` on ``topic``; a ``receive`` waiting there takes it at once.

        A message nobody waits for is kept, for the first ``receive`` of
        that topic. A message with a ``key`` sent before is not sent again:
        the :class:`Delivery` says ``duplicate``.

        :raises WorkflowNotFoundError: when ``run`` is not stored.
        :raises WorkflowValueError: when ``run`` completed or was cancelled.
        """
        topic = _name(topic, "a topic")
        if key is not None:
            key = _name(key, "a message key")
        size = self._size(data, "a message's data", MAX_MESSAGE_SIZE)
        if size is not None:
            raise WorkflowValueError(size)
        with self.store.transaction("send a message", workflow=run) as conn:
            now = self.store.now()
            if self._lock_run(conn, run) == 0:
                raise WorkflowNotFoundError(
                    f"no stored workflow has the uuid {run!r}", workflow=run, operation="send"
                )
            status = conn.execute(
                sa.select(workflows.c.status).where(workflows.c.uuid == run)
            ).scalar()
            if status in _FINISHED:
                raise WorkflowValueError(
                    f"run {run} is {_FINISHED[status]}: no step of it will ever receive a message"
                )
            if key is not None:
                same = conn.execute(
                    sa.select(messages.c.id, messages.c.wait_id).where(
                        messages.c.workflow_uuid == run,
                        messages.c.topic == topic,
                        messages.c.key == key,
                    )
                ).first()
                if same is not None:
                    return Delivery(same.id, same.wait_id, duplicate=True)
            inserted = conn.execute(
                messages.insert().values(
                    workflow_uuid=run, topic=topic, key=key, data=data, created=now
                )
            ).inserted_primary_key
            assert inserted is not None
            message_id = int(inserted[0])
            waiting = conn.execute(
                sa.select(waits.c.id)
                .where(
                    waits.c.workflow_uuid == run,
                    waits.c.kind == "receive",
                    waits.c.topic == topic,
                    waits.c.phase == "waiting",
                )
                .order_by(waits.c.created, waits.c.id)
                .limit(1)
            ).scalar()
            if waiting is not None:
                self._deliver(conn, waiting, message_id, now)
        return Delivery(message_id, waiting)

    def _take_kept_message(
        self, conn: sa.Connection, run: str, ident: str, topic: str | None, now: datetime
    ) -> None:
        kept = conn.execute(
            sa.select(messages.c.id)
            .where(
                messages.c.workflow_uuid == run,
                messages.c.topic == topic,
                messages.c.wait_id.is_(None),
            )
            .order_by(messages.c.id)
            .limit(1)
        ).scalar()
        if kept is not None:
            self._deliver(conn, ident, kept, now)

    def _deliver(self, conn: sa.Connection, ident: str, message_id: int, now: datetime) -> None:
        conn.execute(
            messages.update()
            .where(messages.c.id == message_id, messages.c.wait_id.is_(None))
            .values(wait_id=ident)
        )
        conn.execute(
            waits.update()
            .where(waits.c.id == ident, waits.c.phase == "waiting")
            .values(
                phase="decided",
                decision="received",
                message_id=message_id,
                decided=now,
                version=waits.c.version + 1,
            )
        )

    # -- timers and continuations ------------------------------------------------------

    def fire_due(self, *, limit: int = 1000) -> int:
        """Decide up to ``limit`` waits whose time came; return how many.

        Judged by the database's clock (:meth:`Store.now`), so a timer never
        fires early; each wait is decided by ``UPDATE ... WHERE phase =
        'waiting' AND due <= now``, which only one worker's transaction can
        make. Sleeps and retries become ``fired``; an ``ask`` or ``receive``
        ``timed_out``.
        """
        now = self.store.now()
        late = sa.case(
            (waits.c.kind.in_(("sleep", "retry")), sa.literal("fired")),
            else_=sa.literal("timed_out"),
        )
        values = {"phase": "decided", "decision": late, "decided": now}
        due = sa.and_(waits.c.phase == "waiting", waits.c.due <= now)
        with self.store.transaction("fire the timers that are due") as conn:
            if conn.dialect.name == "sqlite":  # one statement: SQLite has one writer anyway
                chosen = sa.select(waits.c.id).where(due).order_by(waits.c.due).limit(limit)
                statement = waits.update().where(waits.c.id.in_(chosen.scalar_subquery()))
            else:
                ids = (
                    conn.execute(
                        sa.select(waits.c.id)
                        .where(due)
                        .order_by(waits.c.due)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return 0
                statement = waits.update().where(waits.c.id.in_(ids))
            return int(
                conn.execute(
                    statement.where(due).values(**values, version=waits.c.version + 1)
                ).rowcount
            )

    def next_due(self) -> datetime | None:
        """Return when the next timer is due (naive UTC), or ``None``."""
        with self.store.transaction("read the next timer") as conn:
            return conn.execute(
                sa.select(sa.func.min(waits.c.due)).where(
                    waits.c.phase == "waiting", waits.c.due.is_not(None)
                )
            ).scalar()

    def decided(self, *, limit: int = 100) -> dict[str, list[Wait]]:
        """Return the decided waits whose runs have not gone on yet, by run, oldest first."""
        by_run: dict[str, list[Wait]] = {}
        decided: sa.ColumnElement[Any] = waits.c.phase == "decided"
        with self.store.transaction("read the decided waits") as conn:
            if conn.dialect.name == "sqlite":
                # After ANALYZE, SQLite's statistics see one phase for most rows
                # (all waiting) and would scan the table on every worker pass.
                decided = sa.func.unlikely(decided)
            rows = conn.execute(
                sa.select(waits).where(decided).order_by(waits.c.decided, waits.c.id).limit(limit)
            ).all()
            for row in rows:
                by_run.setdefault(row.workflow_uuid, []).append(self._wait(conn, row))
        return by_run

    def mark_done(self, idents: Iterable[str]) -> int:
        """Record that the runs went on past the decided waits ``idents``; return how many."""
        chosen = sorted(set(idents))
        if not chosen:
            return 0
        with self.store.transaction("mark waits done") as conn:
            return int(
                conn.execute(
                    waits.update()
                    .where(waits.c.id.in_(chosen), waits.c.phase == "decided")
                    .values(phase="done", version=waits.c.version + 1)
                ).rowcount
            )

    # -- helpers ---------------------------------------------------------------

    def _lock_run(self, conn: sa.Connection, run: str) -> int:
        """Write the run's row first (its lock orders this transaction); 0 when absent."""
        return int(
            conn.execute(
                workflows.update()
                .where(workflows.c.uuid == run)
                .values(token_pos=workflows.c.token_pos, modified=workflows.c.modified)
            ).rowcount
        )

    def _decide(self, conn: sa.Connection, ident: str, decision: str, now: datetime) -> bool:
        return bool(
            conn.execute(
                waits.update()
                .where(waits.c.id == ident, waits.c.phase == "waiting")
                .values(
                    phase="decided", decision=decision, decided=now, version=waits.c.version + 1
                )
            ).rowcount
        )

    def _wait(self, conn: sa.Connection, row: Any) -> Wait:
        found: tuple[Answer, ...] = ()
        message = None
        if row.kind == "ask":
            found = tuple(map(_answer_of, conn.execute(_ANSWERS_OF, {"ident": row.id})))
        elif row.message_id is not None:
            kept = conn.execute(sa.select(messages).where(messages.c.id == row.message_id)).first()
            if kept is not None:
                message = {
                    "topic": kept.topic,
                    "data": kept.data,
                    "key": kept.key,
                    "at": _iso(kept.created),
                }
        return _wait_of(row, found, message)

    def _size(self, data: Any, what: str, limit: int) -> str | None:
        """Return why ``data`` cannot be stored (too large, or not JSON), or ``None``."""
        try:
            text = self.store.codec.dumps(data)
        except StorageError as exc:
            return f"{what} cannot be stored: {exc}"
        if len(text) > limit:
            return f"{what} is {len(text)} characters of JSON; at most {limit} are kept"
        return None

    @staticmethod
    def _who(ident: str, by: object) -> str:
        try:
            return _name(by, "who answers")
        except WorkflowValueError as exc:
            raise AnswerRefusedError(str(exc), reason="invalid", interaction=ident) from None

    @staticmethod
    def _key(ident: str, key: object) -> str:
        try:
            return _name(key, "an idempotency key")
        except WorkflowValueError as exc:
            raise AnswerRefusedError(str(exc), reason="invalid", interaction=ident) from None


def _answer_of(row: Any) -> Answer:
    return Answer(row.by, row.decision, row.data, row.created, row.key)


def _wait_of(row: Any, found: tuple[Answer, ...], message: dict[str, Any] | None = None) -> Wait:
    """The :class:`Wait` of a row of ``wf_wait``, with its answers or message."""
    return Wait(
        id=row.id,
        workflow_uuid=row.workflow_uuid,
        token=row.token_position,
        step=row.step,
        kind=row.kind,
        phase=row.phase,
        decision=row.decision,
        due=row.due,
        topic=row.topic,
        spec=row.spec if isinstance(row.spec, dict) else {},
        approvals=row.approvals,
        rejections=row.rejections,
        created=row.created,
        decided=row.decided,
        answers=found,
        message=message,
    )


def _refused(ident: str, found: AnswerOutcome | _Refusal) -> AnswerOutcome:
    """Return ``found``; raise :class:`AnswerRefusedError` when it is a refusal."""
    if isinstance(found, _Refusal):
        raise AnswerRefusedError(
            found.message,
            reason=found.reason,
            interaction=ident,
            decision=found.decision,
            by=tuple(found.by),
        )
    return found


def _decided_refusal(wait: Wait) -> _Refusal:
    """The refusal of an answer to a wait decided before it (expired, or already decided)."""
    outcome = wait.outcome() or "decided"
    if wait.decision == "timed_out":
        return _Refusal(
            f"expired: the deadline of {wait.step!r} passed ({outcome})", "expired", outcome
        )
    who = wait.decided_by()
    by = f" by {', '.join(who)}" if who else ""
    return _Refusal(f"already decided: {outcome}{by}", "already_decided", outcome, who)


@dataclass(frozen=True)
class _DeadlinePassed:
    """The judgement on an answer to a wait whose deadline passed: it times out first."""


@dataclass(frozen=True)
class _Count:
    """The judgement on an answer to record: the wait's counts after it, and its decision."""

    approvals: int
    rejections: int
    decided: str | None

    def values(self, ident: str, now: datetime) -> dict[str, Any]:
        """The parameters of :data:`_COUNT_ANSWER`."""
        return {
            "ident": ident,
            "new_approvals": self.approvals,
            "new_rejections": self.rejections,
            "new_phase": "waiting" if self.decided is None else "decided",
            "new_decision": self.decided,
            "new_decided": None if self.decided is None else now,
        }

    def outcome(self, wait: Wait, answer: Answer, status: int | None) -> AnswerOutcome:
        """What the answer did, once recorded."""
        after = replace(
            wait,
            approvals=self.approvals,
            rejections=self.rejections,
            answers=(*wait.answers, answer),
        )
        if self.decided is not None:
            after = replace(after, phase="decided", decision=self.decided, decided=answer.at)
        return AnswerOutcome(after, answer, True, self.decided is not None, status)


def _not_found(ident: str) -> _Refusal:
    return _Refusal(f"no interaction has the id {ident!r}", "not_found")


def _not_an_ask(row: Any) -> _Refusal:
    return _Refusal(f"{row.id} waits for {row.kind}, not for an answer", "not_found")


def _judge(
    wait: Wait,
    status: int | None,
    by: str,
    decision: str,
    data: Any,
    key: str | None,
    now: datetime,
) -> AnswerOutcome | _Refusal | _Count | _DeadlinePassed:
    """Judge ``by``'s answer to ``wait`` (with its answers, as read at ``now``).

    A pure function of what was read: the same answer again (its key was
    given before), a refusal, the deadline that passed (a write decides
    the wait first), or the counts to record.
    """
    if key is not None:
        same = next((answer for answer in wait.answers if answer.key == key), None)
        if same is not None:
            if same.by != by:
                return _Refusal(f"the key {key!r} was given with {same.by}'s answer", "key_in_use")
            return AnswerOutcome(wait, same, False, False, status)
    if status == WorkflowStatus.CANCELLED.value:
        return _Refusal(f"run {wait.workflow_uuid} was cancelled", "cancelled")
    if wait.waiting and wait.due is not None and wait.due <= now:
        return _DeadlinePassed()
    if not wait.waiting:
        return _decided_refusal(wait)
    approvers = wait.approvers
    if approvers is not None and by not in approvers:
        return _Refusal(f"{by} is not an approver of {wait.step!r}", "not_an_approver")
    earlier = next((answer for answer in wait.answers if answer.by == by), None)
    if earlier is not None:
        message = f"{by} answered already ({earlier.decision}); an approver counts once"
        return _Refusal(message, "already_answered")
    problem = _schema_problem(wait.spec.get("schema"), data)
    if problem is not None:
        return _Refusal(f"answer does not match the schema: {problem}", "invalid")
    approvals = wait.approvals + (decision == "approve")
    rejections = wait.rejections + (decision == "reject")
    decided = None
    if approvals >= wait.quorum:
        decided = "approved"
    elif rejections >= int(wait.spec.get("reject_quorum", 1)):
        decided = "rejected"
    return _Count(approvals, rejections, decided)


def _schema_problem(schema: Any, data: Any) -> str | None:
    """Return why ``data`` does not match ``schema`` (``None`` when it does, or no schema)."""
    if schema is None:
        return None
    from ..flows._answers import answer_problem

    problem = answer_problem(schema, data)
    return None if problem is None else f"{problem[0]}: {problem[1]}"
