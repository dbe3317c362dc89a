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

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..engine_db import WorkflowStatus
from ..storage.run_rows import workflows
from .waits import (
    _COUNT_ANSWER,
    _RUN_STATUS,
    Answer,
    AnswerOutcome,
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
    from ..storage import Store

__all__ = ["answer_at_once"]

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


def answer_at_once(
    store: Store, ident: str, by: str, decision: str, data: Any, key: str | None
) -> AnswerOutcome | _Refusal | None:
    """Judge and record an answer in two statements; ``None``: take the locked way."""
    with store.autocommit("record an answer") as conn:
        now = store.now()
        rows = conn.execute(_READ, {"ident": ident}).all()
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
        params = {
            **judged.values(ident, now),
            "seen_version": row.version,
            "now": now,
            "a_by": by,
            "a_decision": decision,
            "a_data": data,
            "a_key": key,
            "a_created": now,
        }
        if conn.execute(_RECORD, params).first() is None:
            return None  # the wait changed since it was read
    return judged.outcome(wait, Answer(by, decision, data, now, key), row.run_status)
