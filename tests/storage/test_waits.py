"""Waits through the Python API: answers counted once, timers, messages, the worker, retries.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import AnswerRefusedError, HaltProcessing, WorkflowValueError
from workflow.runtime import (
    ASK,
    RECEIVE,
    RETRY,
    SLEEP,
    Waits,
    WaitSpec,
    Worker,
    wait_id,
)
from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.schema import current_revision, downgrade, head_revision, upgrade


def record_decision(name: str) -> Any:
    def task(obj: Any, eng: Any) -> None:
        obj.data.append(obj.extra_data[name].get("decision", obj.extra_data[name]))

    task.__name__ = f"record_{name}"
    return task


def halt_for_person(obj: Any, eng: Any) -> None:
    if not obj.data:
        eng.halt("a person must look")


def start(store: Store, name: str, steps: list[Any], tokens: list[Any]) -> str:
    engine = PersistentWorkflowEngine.with_name(name, store=store, definition=steps)
    engine.process(tokens, stop_on_halt=False)
    return engine.uuid


def until_due(store: Store, waits: Waits, ident: str) -> None:
    """Wait until the database's clock passed the wait's due time."""
    due = waits.get(ident).due
    assert due is not None
    while store.now() <= due:
        time.sleep(0.01)


def statuses(store: Store, uid: str) -> list[int]:
    return [row["status"] for row in store.token_rows(uid)]


APPROVE_STEPS = [
    *ASK("approve", "Refund?", approvers=["alice", "bob", "carol"], quorum=2),
    record_decision("approve"),
]


def test_two_of_three_approvers_decide_and_the_worker_continues_the_run(store: Store) -> None:
    uid = start(store, "refund", APPROVE_STEPS, [[]])
    waits = Waits(store)
    [open_] = waits.waiting()
    assert (open_.workflow_uuid, open_.step, open_.approvers) == (
        uid,
        "approve",
        ["alice", "bob", "carol"],
    )
    assert store.workflow(uid)["status"] == WorkflowStatus.HALTED.value

    first = waits.answer(open_.id, by="alice", decision="approve", data={"note": "ok"})
    assert (first.recorded, first.decided, first.wait.approvals) == (True, False, 1)
    assert Worker(store, {"refund": APPROVE_STEPS}).run_once().continued == []

    second = waits.answer(open_.id, by="bob", decision="approve")
    assert (second.decided, second.wait.decision) == (True, "approved")
    done = Worker(store, {"refund": APPROVE_STEPS}).run_once()
    assert done.continued == [uid]
    assert store.token_rows(uid)[0]["data"] == ["approved"]
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value
    result = store.token_rows(uid)[0]["extra_data"]["approve"]
    assert [(a["by"], a["decision"], a["data"]) for a in result["answers"]] == [
        ("alice", "approve", {"note": "ok"}),
        ("bob", "approve", None),
    ]
    assert waits.get(open_.id).phase == "done"


def test_each_refusal_names_its_reason(store: Store) -> None:
    uid = start(store, "refund", APPROVE_STEPS, [[]])
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    waits.answer(wait.id, by="alice", decision="approve", key="k-1")

    def refused(**answer: Any) -> AnswerRefusedError:
        with pytest.raises(AnswerRefusedError) as caught:
            waits.answer(wait.id, **answer)
        return caught.value

    assert refused(by="dave", decision="approve").reason == "not_an_approver"
    assert refused(by="alice", decision="reject").reason == "already_answered"
    assert refused(by="bob", decision="approve", key="k-1").reason == "key_in_use"
    assert refused(by="bob", decision="maybe").reason == "invalid"
    assert refused(by="", decision="approve").reason == "invalid"
    with pytest.raises(AnswerRefusedError) as missing:
        waits.answer("0" * 36, by="bob", decision="approve")
    assert missing.value.reason == "not_found"

    again = waits.answer(wait.id, by="alice", decision="approve", key="k-1")
    assert (again.recorded, again.answer.by) == (False, "alice")
    assert waits.get(wait.id).approvals == 1

    waits.answer(wait.id, by="carol", decision="approve")
    late = refused(by="bob", decision="approve")
    assert (late.reason, late.decision, late.by) == (
        "already_decided",
        "approved",
        ("alice", "carol"),
    )
    assert str(late) == "already decided: approved by alice, carol"


def test_a_rejection_quorum_decides_rejected(store: Store) -> None:
    steps = [
        *ASK("approve", "Go?", approvers=["a", "b", "c"], quorum=3, reject_quorum=1),
        record_decision("approve"),
    ]
    uid = start(store, "go", steps, [[]])
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    waits.answer(wait.id, by="a", decision="approve")
    outcome = waits.answer(wait.id, by="b", decision="reject")
    assert (outcome.decided, outcome.wait.decision) == (True, "rejected")
    Worker(store, {"go": steps}).run_once()
    assert store.token_rows(uid)[0]["data"] == ["rejected"]


@pytest.mark.parametrize(
    ("on_timeout", "decision"),
    [(None, "timed_out"), ("approve", "approved"), ("reject", "rejected")],
)
def test_a_deadline_decides_by_on_timeout(store: Store, on_timeout: Any, decision: str) -> None:
    steps = [
        *ASK("approve", "Go?", timeout="PT0.05S", on_timeout=on_timeout),
        record_decision("approve"),
    ]
    uid = start(store, "go", steps, [[]])
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    until_due(store, waits, wait.id)
    with pytest.raises(AnswerRefusedError) as late:
        waits.answer(wait.id, by="anyone", decision="approve")
    assert (late.value.reason, late.value.decision) == ("expired", decision)
    Worker(store, {"go": steps}).run_once()
    assert store.token_rows(uid)[0]["data"] == [decision]
    assert waits.get(wait.id).result()["timed_out"] is True


def test_on_timeout_fail_fails_the_token_and_an_answer_gives_data(store: Store) -> None:
    fail_steps = [*ASK("approve", "Go?", timeout="PT0.05S", on_timeout="fail")]
    answer_steps = [*ASK("approve", "Go?", timeout="PT0.05S", on_timeout={"answer": {"n": 1}})]
    failing = start(store, "fail", fail_steps, [[]])
    answered = start(store, "answer", answer_steps, [[]])
    waits = Waits(store)
    for wait in waits.waiting():
        until_due(store, waits, wait.id)
    Worker(store, {"fail": fail_steps, "answer": answer_steps}).run_once()
    [row] = store.token_rows(failing)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "no decision before the deadline" in row["last_error"]
    assert store.token_rows(answered)[0]["extra_data"]["approve"]["data"] == {"n": 1}


def test_the_worker_moves_only_tokens_whose_wait_was_decided(store: Store) -> None:
    steps = [halt_for_person, *ASK("approve", "Go?"), record_decision("approve")]
    uid = start(store, "mixed", steps, [[], ["has data"]])
    assert statuses(store, uid) == [ObjectStatus.HALTED.value, ObjectStatus.HALTED.value]
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    assert wait.token == 1
    waits.answer(wait.id, by="x", decision="approve")
    Worker(store, {"mixed": steps}).run_once()
    rows = store.token_rows(uid)
    assert [row["status"] for row in rows] == [
        ObjectStatus.HALTED.value,
        ObjectStatus.COMPLETED.value,
    ]
    assert rows[0]["data"] == []  # the token halted for a person was left where it was
    assert store.workflow(uid)["status"] == WorkflowStatus.HALTED.value


def test_timers_fire_when_due_never_before(store: Store) -> None:
    steps = [*SLEEP("nap", "PT0.2S"), record_decision("nap")]
    later = [*SLEEP("nap", "PT1H")]
    uid = start(store, "nap", steps, [[]])
    start(store, "later", later, [[]])
    waits = Waits(store)
    worker = Worker(store, {"nap": steps, "later": later})
    [nap] = waits.waiting(kind="sleep", run=uid)
    assert nap.due is not None
    fired_now = 0
    while not fired_now:
        fired_now = worker.run_once().fired
        if store.now() < nap.due:  # the whole pass came before the due time: nothing fired
            assert fired_now == 0
            assert waits.get(nap.id).waiting
        time.sleep(0.02)
    assert fired_now == 1
    fired = waits.get(nap.id)
    assert fired.decided is not None
    assert fired.due is not None
    assert fired.decided >= fired.due
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value
    assert len(waits.waiting(kind="sleep")) == 1  # the hour-long nap waits on
    assert waits.next_due() is not None


def test_a_message_sent_before_the_step_is_kept_and_keys_deliver_once(store: Store) -> None:
    steps = [halt_for_person, *RECEIVE("pay", "payment"), record_decision("pay")]
    uid = start(store, "pay", steps, [[]])
    waits = Waits(store)
    sent = waits.send(uid, "payment", {"amount": 5}, key="tx-1")
    again = waits.send(uid, "payment", {"amount": 5}, key="tx-1")
    assert (sent.wait, again.duplicate, again.message_id) == (None, True, sent.message_id)
    engine = PersistentWorkflowEngine.from_uuid(uid, store=store, definition=steps)
    engine.resume(stop_on_halt=False)  # past the person's halt: the kept message is taken at once
    [row] = store.token_rows(uid)
    assert row["status"] == ObjectStatus.COMPLETED.value
    assert row["extra_data"]["pay"]["data"] == {"amount": 5}
    assert row["extra_data"]["pay"]["key"] == "tx-1"


def test_a_message_sent_to_a_waiting_step_decides_it(store: Store) -> None:
    steps = [*RECEIVE("pay", "payment"), record_decision("pay")]
    uid = start(store, "pay", steps, [[]])
    waits = Waits(store)
    delivery = waits.send(uid, "payment", [1, 2])
    assert delivery.wait is not None
    assert waits.send(uid, "other", None).wait is None
    Worker(store, {"pay": steps}).run_once()
    assert store.token_rows(uid)[0]["extra_data"]["pay"]["data"] == [1, 2]


def test_a_retried_task_counts_its_attempts_across_engines(store: Store) -> None:
    failures = {"left": 2}

    def flaky(obj: Any, eng: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("down")
        obj.data.append("done")

    steps = RETRY(flaky, attempts=5, backoff="PT0.01S", jitter=False)
    uid = start(store, "flaky", steps, [[]])
    waits = Waits(store)
    for expected in (1, 2):
        [row] = store.token_rows(uid)
        assert row["status"] == ObjectStatus.HALTED.value
        assert row["extra_data"]["_waits"]["flaky"]["attempts"] == expected
        [timer] = waits.waiting(kind="retry", run=uid)
        until_due(store, waits, timer.id)
        Worker(store, {"flaky": steps}).run_once()  # a new worker: the count is in the row
    [row] = store.token_rows(uid)
    assert (row["status"], row["data"]) == (ObjectStatus.COMPLETED.value, ["done"])


def test_the_last_attempt_raises_the_tasks_own_error(store: Store) -> None:
    def broken(obj: Any, eng: Any) -> None:
        raise KeyError("missing")

    steps = RETRY(broken, attempts=2, backoff="PT0.01S")
    uid = start(store, "broken", steps, [[]])
    waits = Waits(store)
    [timer] = waits.waiting(kind="retry")
    until_due(store, waits, timer.id)
    Worker(store, {"broken": steps}).run_once()
    [row] = store.token_rows(uid)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "KeyError" in row["last_error"]
    assert "missing" in row["last_error"]
    assert row["extra_data"]["_waits"]["broken"]["attempts"] == 2


def test_a_run_the_worker_cannot_build_is_left_and_retried_later(store: Store) -> None:
    steps = [*SLEEP("nap", "PT0S"), record_decision("nap")]
    engine = PersistentWorkflowEngine.with_name(
        "unknown", store=store, definition=[*SLEEP("nap", "PT0.05S")]
    )
    with pytest.raises(HaltProcessing):
        engine.process([[]])
    waits = Waits(store)
    [nap] = waits.waiting(kind="sleep")
    until_due(store, waits, nap.id)
    worker = Worker(store, {"other": steps})
    first = worker.run_once()
    assert first.fired == 1
    assert engine.uuid in first.skipped
    assert "no definition" in first.skipped[engine.uuid]
    assert worker.run_once().skipped[engine.uuid] == "backing off after a failure"
    assert waits.get(nap.id).phase == "decided"  # kept for a worker that can


def test_a_cancelled_run_refuses_answers(store: Store) -> None:
    uid = start(store, "refund", APPROVE_STEPS, [[]])
    store.cancel(uid, reason="changed our minds")
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    with pytest.raises(AnswerRefusedError) as caught:
        waits.answer(wait.id, by="alice", decision="approve")
    assert caught.value.reason == "cancelled"


def test_answers_are_checked_against_the_schema(store: Store) -> None:
    schema = {"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}
    steps = [*ASK("approve", "Go?", schema=schema)]
    uid = start(store, "go", steps, [[]])
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    with pytest.raises(AnswerRefusedError) as caught:
        waits.answer(wait.id, by="x", decision="approve", data={"note": 5})
    assert caught.value.reason == "invalid"
    assert str(caught.value).startswith("answer does not match the schema: $.note:")
    assert waits.answer(wait.id, by="x", decision="approve", data={"note": "fine"}).decided


def test_waiting_for_a_user_lists_what_they_may_still_answer(store: Store) -> None:
    start(store, "refund", APPROVE_STEPS, [[], []])
    start(store, "open", [*ASK("anyone", "Anyone?")], [[]])
    waits = Waits(store)
    first = waits.waiting()[0]
    waits.answer(first.id, by="alice", decision="approve")
    assert len(waits.waiting()) == 3
    assert len(waits.waiting(user="alice")) == 2
    assert len(waits.waiting(user="dave")) == 1  # only the question open to anyone
    assert len(waits.waiting(user="bob", limit=1, offset=1)) == 1


def test_a_wait_id_depends_on_run_token_site_and_count() -> None:
    ids = {
        wait_id("run", 0, "a", 1),
        wait_id("run", 0, "a", 2),
        wait_id("run", 1, "a", 1),
        wait_id("run", 0, "b", 1),
        wait_id("other", 0, "a", 1),
    }
    assert len(ids) == 5
    assert wait_id("run", 0, "a", 1) == wait_id("run", 0, "a", 1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "nap"}, "a wait's kind is one of"),
        ({"quorum": 0}, "quorum must be a whole number from 1"),
        ({"approvers": ("a",), "quorum": 2}, "quorum 2 is more than the 1 approvers"),
        ({"approvers": ("a", "a")}, "an approver is named twice"),
        ({"approvers": ()}, "the list of approvers is empty"),
        ({"on_timeout": "maybe"}, "on_timeout is one of approve, reject, fail"),
        ({"timeout": timedelta(-1)}, "the timeout is negative"),
        ({"step": "a\nb"}, "holds a control character"),
    ],
)
def test_a_wait_spec_refuses_what_cannot_be_decided(spec: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"kind": "ask", "step": "approve", **spec}
    with pytest.raises(WorkflowValueError, match=message):
        WaitSpec(**fields)


def test_answer_and_message_data_are_bounded(store: Store) -> None:
    uid = start(store, "go", [*ASK("approve", "Go?"), *RECEIVE("paid", "payment")], [[]])
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    with pytest.raises(AnswerRefusedError, match="at most 65536 are kept") as caught:
        waits.answer(wait.id, by="x", decision="approve", data="x" * 70_000)
    assert caught.value.reason == "invalid"
    with pytest.raises(AnswerRefusedError, match="cannot be stored"):
        waits.answer(wait.id, by="x", decision="approve", data={"n": float("nan")})
    with pytest.raises(WorkflowValueError, match="at most 1048576 are kept"):
        waits.send(uid, "payment", "x" * 1_100_000)
    with pytest.raises(WorkflowValueError, match="control character"):
        waits.send(uid, "pay\x1b[31m", None)
    assert waits.get(wait.id).approvals == 0
    with pytest.raises(WorkflowValueError, match="at most 4000 characters"):
        WaitSpec("ask", "approve", "m" * 4001)


def test_only_a_stored_run_can_wait() -> None:
    from workflow.engine import GenericWorkflowEngine
    from workflow.errors import WorkflowError

    engine = GenericWorkflowEngine()
    engine.callbacks.replace([*SLEEP("nap", "PT1S")])
    with pytest.raises(WorkflowError, match="only a run stored in a database can wait"):
        engine.process([[]])


def test_migration_0005_adds_the_wait_tables_to_a_database_with_runs(db_url: str) -> None:
    store = Store(db_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS wf_alembic_version"))
        upgrade(store, "0004")
        old = store.create_workflow("refund")  # stored before waits existed
        upgrade(store)
        assert current_revision(store) == head_revision()
        uid = start(store, "refund", APPROVE_STEPS, [[]])
        [wait] = Waits(store).waiting()
        Waits(store).answer(wait.id, by="alice", decision="approve")
        downgrade(store, "0004")
        tables = set(sa.inspect(store.engine).get_table_names())
        assert not tables & {"wf_wait", "wf_answer", "wf_message"}
        assert {row["uuid"] for row in store.workflows()} == {old, uid}
    finally:
        store.dispose()


def test_a_message_to_a_finished_run_is_refused(store: Store) -> None:
    uid = start(store, "done", [lambda obj, eng: None], [[]])
    cancelled = start(store, "waits", [*RECEIVE("paid", "payment")], [[]])
    store.cancel(cancelled, reason="no longer needed")
    waits = Waits(store)
    with pytest.raises(WorkflowValueError, match="is completed: no step of it will ever"):
        waits.send(uid, "payment", 1)
    with pytest.raises(WorkflowValueError, match="is cancelled"):
        waits.send(cancelled, "payment", 1)
