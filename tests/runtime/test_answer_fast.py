"""Answers on PostgreSQL: two statements without a lock, the locked way when the wait moved.

Runs on PostgreSQL (the ``db_url`` fixture; a missing server fails CI).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.errors import AnswerRefusedError
from workflow.runtime import Waits, WaitSpec
from workflow.runtime import _answer_fast as fast
from workflow.storage import Store

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


def ask(store: Store, quorum: int = 2, **spec: Any) -> str:
    run = store.create_workflow("answers")
    ident = str(uuid.uuid4())
    Waits(store).open(
        run, 0, ident, WaitSpec("ask", "ship", message="Ship?", quorum=quorum, **spec)
    )
    return ident


def statements(store: Store) -> list[str]:
    """The statements run from now on: their first word, ``+`` when inside a transaction."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        alone = context.execution_options.get("isolation_level") == "AUTOCOMMIT"
        seen.append(statement.split()[0] + ("" if alone else "+"))

    sa.event.listen(store.sql_engine, "before_cursor_execute", note)
    return seen


def test_an_answer_is_a_read_and_one_write_without_a_transaction(store: Store) -> None:
    ident = ask(store)
    seen = statements(store)
    done = Waits(store).answer(ident, by="ann", decision="approve")
    assert (done.recorded, done.decided, done.wait.approvals) == (True, False, 1)
    # the read; then the count and the insert as one statement; each commits alone
    assert seen == ["SELECT", "WITH"]
    done = Waits(store).answer(ident, by="bob", decision="approve")
    assert (done.decided, done.wait.decision, [a.by for a in done.wait.answers]) == (
        True,
        "approved",
        ["ann", "bob"],
    )
    row = Waits(store).get(ident)
    assert (row.phase, row.approvals, [a.by for a in row.answers]) == ("decided", 2, ["ann", "bob"])


def test_an_answer_to_a_wait_that_moved_since_its_read_goes_the_locked_way(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = ask(store)
    judge = fast._judge
    moved: list[str] = []

    def judge_then_move(*args: Any) -> Any:
        judged = judge(*args)
        if not moved:  # another answer lands between this one's read and its write
            moved.append("cyd")
            Waits(store)._answer_locked(ident, "cyd", "approve", None, None)
        return judged

    monkeypatch.setattr(fast, "_judge", judge_then_move)
    seen = statements(store)
    done = Waits(store).answer(ident, by="ann", decision="approve")
    # Judged on the read, ann's answer would count 1 of 2; the wait had moved: the
    # conditional write wrote nothing, and the locked way counted it as the second.
    assert (done.recorded, done.decided, done.wait.decision) == (True, True, "approved")
    assert seen[0] == "SELECT"  # the fast way's read (cyd's locked answer follows it)
    locked = seen[seen.index("WITH") + 1 :]  # after the fast way's write, which wrote nothing
    assert locked[0] == "SELECT+"  # the locked way: the wait's row locked, in a transaction
    assert all(kind.endswith("+") for kind in locked)
    row = Waits(store).get(ident)
    assert (row.approvals, sorted(a.by for a in row.answers)) == (2, ["ann", "cyd"])


def test_an_answer_after_the_deadline_times_the_wait_out_the_locked_way(store: Store) -> None:
    ident = ask(store, timeout=timedelta(milliseconds=50))
    time.sleep(0.2)  # due, and no worker fired the timer
    with pytest.raises(AnswerRefusedError) as refused:
        Waits(store).answer(ident, by="ann", decision="approve")
    assert refused.value.reason == "expired"
    assert Waits(store).get(ident).decision == "timed_out"


def test_refusals_from_the_read_are_the_locked_ways(store: Store) -> None:
    ident = ask(store, approvers=("ann", "bob"))
    waits = Waits(store)
    with pytest.raises(AnswerRefusedError, match="eve is not an approver of 'ship'"):
        waits.answer(ident, by="eve", decision="approve")
    waits.answer(ident, by="ann", decision="approve", key="k1")
    again = waits.answer(ident, by="ann", decision="approve", key="k1")
    assert (again.recorded, again.answer.decision) == (False, "approve")
    with pytest.raises(AnswerRefusedError) as refused:
        waits.answer(ident, by="bob", decision="approve", key="k1")
    assert refused.value.reason == "key_in_use"
    with pytest.raises(AnswerRefusedError) as refused:
        waits.answer(ident, by="ann", decision="reject")
    assert refused.value.reason == "already_answered"
    with pytest.raises(AnswerRefusedError) as refused:
        waits.answer(str(uuid.uuid4()), by="ann", decision="approve")
    assert refused.value.reason == "not_found"
