"""An answer on PostgreSQL in two statements, without a transaction around them.

:meth:`Waits.answer <workflow.runtime.Waits.answer>` locks the wait's row,
reads its answers, records the answer and counts it: five round trips with
``BEGIN`` and ``COMMIT``. On PostgreSQL it first tries this way:

1. one ``SELECT`` reads the wait's row, its run's status and its answers
   (one snapshot: they agree with each other);
2. the answer is judged on what was read, as the locked way judges it;
3. one statement counts it and records it, only if the wait's row is as it
   was read: ``WITH counted AS (UPDATE wf_wait ... WHERE version = :seen
   ... RETURNING id) INSERT INTO wf_answer ... SELECT ... FROM counted``.

Every write to a wait's row raises its ``version``, so the conditional
``UPDATE`` succeeds only when nothing changed the wait since the read, and
then the judgement is the one the lock would have given. That ``UPDATE`` is
the one write that decides a race, as in the locked way. When it finds the
wait changed, or the deadline passed (a write must time the wait out
first), the answer goes the locked way.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..engine_db import WorkflowStatus
from ..errors import DatabaseUnavailableError, StorageError
from ..storage.run_rows import workflows
from .waits import (
    _COUNT_ANSWER,
    _RUN_STATUS,
    Answer,
    AnswerOutcome,
    Wait,
    _Count,
    _DeadlinePassed,
    _judge,
    _not_an_ask,
    _not_found,
    _Refusal,
    _wait_of,
    answers,
    waits,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ..storage import Store

__all__ = ["AnswerPool", "answer_at_once"]

#: The columns of an answer, named apart from the wait's.
_ANSWER_COLUMNS = [column.label(f"a_{column.key}") for column in answers.c]

#: The wait's row, its run's status and its answers (one row each, oldest first;
#: one row of NULL answer columns when it has none).
_READ = (
    sa.select(*waits.c, _RUN_STATUS, *_ANSWER_COLUMNS)
    .select_from(waits.outerjoin(answers, answers.c.wait_id == waits.c.id))
    .where(waits.c.id == sa.bindparam("ident"))
    .order_by(answers.c.created, answers.c.id)
)

#: The count, if the wait is as it was read (and its run not cancelled since).
_COUNTED = (
    _COUNT_ANSWER.where(
        waits.c.version == sa.bindparam("seen_version"),
        sa.or_(waits.c.due.is_(None), waits.c.due > sa.bindparam("now")),
        ~sa.exists().where(
            workflows.c.uuid == waits.c.workflow_uuid,
            workflows.c.status == WorkflowStatus.CANCELLED.value,
        ),
    )
    .returning(waits.c.id)
    .cte("counted")
)

#: The answer, recorded by the same statement only when it was counted (its id
#: returned then).
_RECORD = (
    answers.insert()
    .from_select(
        ["wait_id", "by", "decision", "data", "key", "created"],
        sa.select(
            _COUNTED.c.id,
            sa.bindparam("a_by", type_=answers.c.by.type),
            sa.bindparam("a_decision", type_=answers.c.decision.type),
            sa.bindparam("a_data", type_=answers.c.data.type),
            sa.bindparam("a_key", type_=answers.c.key.type),
            sa.bindparam("a_created", type_=answers.c.created.type),
        ),
    )
    .returning(answers.c.id)
)


def _judged(
    rows: Sequence[Any],
    ident: str,
    by: str,
    decision: str,
    data: Any,
    key: str | None,
    now: datetime,
) -> AnswerOutcome | _Refusal | tuple[_Count, Wait, Any] | None:
    """Judge an answer on the rows of :data:`_READ`.

    :return: a refusal, or the outcome of an answer given before with the key;
        ``None`` to take the locked way (the deadline passed);
        or the count to record, the wait as read and its row.
    """
    if not rows:
        return _not_found(ident)
    row = rows[0]
    if row.kind != "ask":
        return _not_an_ask(row)
    found = tuple(
        Answer(each.a_by, each.a_decision, each.a_data, each.a_created, each.a_key)
        for each in rows
        if each.a_id is not None
    )
    wait = _wait_of(row, found)
    judged = _judge(wait, row.run_status, by, decision, data, key, now)
    if isinstance(judged, _DeadlinePassed):
        return None  # a write times the wait out first: the locked way makes it
    if not isinstance(judged, _Count):
        return judged
    return judged, wait, row


def _record_params(
    count: _Count,
    row: Any,
    ident: str,
    by: str,
    decision: str,
    data: Any,
    key: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The parameters of :data:`_RECORD`."""
    return {
        **count.values(ident, now),
        "seen_version": row.version,
        "now": now,
        "a_by": by,
        "a_decision": decision,
        "a_data": data,
        "a_key": key,
        "a_created": now,
    }


def answer_at_once(
    store: Store, ident: str, by: str, decision: str, data: Any, key: str | None
) -> AnswerOutcome | _Refusal | None:
    """Judge and record an answer in two statements; ``None``: take the locked way."""
    with store.autocommit("record an answer") as conn:
        now = store.now()
        judged = _judged(
            conn.execute(_READ, {"ident": ident}).all(), ident, by, decision, data, key, now
        )
        if not isinstance(judged, tuple):
            return judged
        count, wait, row = judged
        params = _record_params(count, row, ident, by, decision, data, key, now)
        if conn.execute(_RECORD, params).first() is None:
            return None  # the wait changed since it was read
    return count.outcome(wait, Answer(by, decision, data, now, key), row.run_status)


class AnswerPool:
    """Answers on PostgreSQL from an event loop: the same two statements, no thread.

    A few psycopg :class:`~psycopg.AsyncConnection` objects, made from the
    store's engine (its URL, and its JSON codec), each in autocommit mode.
    :meth:`answer` runs :data:`_READ` and :data:`_RECORD` on one of them and
    judges the answer as :func:`answer_at_once` does, with the same pure
    functions. Whatever it cannot settle there (a wait that changed, a
    deadline that passed, a lost connection before the write) it leaves to
    the locked way, in a thread.

    Made by :meth:`open`, inside the loop that uses it; :meth:`close` it there.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        engine = store.sql_engine
        self._args, self._kwargs = engine.dialect.create_connect_args(engine.url)
        self._read = str(_READ.compile(dialect=engine.dialect))
        record = _RECORD.compile(dialect=engine.dialect)
        self._record = str(record)
        self._record_defaults = dict(record.params)  # the literals SQLAlchemy bound
        self._idle: asyncio.Queue[Any] = asyncio.Queue()
        self._all: list[Any] = []

    @staticmethod
    def usable(store: Store) -> bool:
        """Whether the store is PostgreSQL through psycopg (the driver this pool uses)."""
        dialect = store.sql_engine.dialect
        return dialect.name == "postgresql" and dialect.driver == "psycopg"

    @classmethod
    async def open(cls, store: Store, size: int) -> AnswerPool:
        """Connect ``size`` connections.

        :raises DatabaseUnavailableError: when the database cannot be reached.
        """
        pool = cls(store)
        try:
            for _ in range(size):
                pool._idle.put_nowait(await pool._connect())
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _connect(self) -> Any:
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(
                *self._args, **self._kwargs, autocommit=True
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(
                f"the database is unavailable: {exc}", operation="record an answer"
            ) from exc
        self._all.append(conn)
        return conn

    async def close(self) -> None:
        """Close every connection."""
        while self._all:
            await self._all.pop().close()

    async def answer(
        self, ident: str, by: str, decision: str, data: Any, key: str | None
    ) -> AnswerOutcome | _Refusal | None:
        """Judge and record a checked answer; ``None``: take the locked way.

        :raises DatabaseUnavailableError: when the connection was lost while
            the answer was written (whether it was recorded is not known).
        """
        import psycopg
        from psycopg.rows import namedtuple_row
        from psycopg.types.json import Json

        conn = await self._idle.get()
        written = False
        try:
            if conn.closed:
                conn = await self._replace(conn)
            store = self.store
            now = await asyncio.to_thread(store.now) if store.clock_due() else store.now()
            cursor = conn.cursor(row_factory=namedtuple_row)
            await cursor.execute(self._read, {"ident": ident}, prepare=True)
            judged = _judged(await cursor.fetchall(), ident, by, decision, data, key, now)
            if not isinstance(judged, tuple):
                return judged
            count, wait, row = judged
            params = _record_params(count, row, ident, by, decision, Json(data), key, now)
            written = True
            await cursor.execute(self._record, self._record_defaults | params, prepare=True)
            if await cursor.fetchone() is None:
                return None  # the wait changed since it was read
        except asyncio.CancelledError:
            conn.pgconn.finish()  # a statement may be under way: replaced at its next turn
            raise
        except psycopg.Error as exc:
            if not conn.closed:  # refused: in autocommit, the statement wrote nothing
                raise StorageError(
                    f"the database refused the answer: {exc}", operation="record an answer"
                ) from exc
            if written:
                raise DatabaseUnavailableError(
                    f"the database is unavailable: {exc}", operation="record an answer"
                ) from exc
            return None  # nothing was written: the locked way answers, on a fresh connection
        finally:
            self._idle.put_nowait(conn)
        return count.outcome(wait, Answer(by, decision, data, now, key), row.run_status)

    async def _replace(self, conn: Any) -> Any:
        """A new connection in place of ``conn`` (which stays, if none can be made)."""
        fresh = await self._connect()
        self._all.remove(conn)
        return fresh
