"""The step trace of stored runs: what it records, when it is written, reading and pruning it.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.errors import WorkflowError, WorkflowNotFoundError, WorkflowValueError
from workflow.patterns import IF_ELSE
from workflow.runtime import ASK, RETRY, Waits, Worker
from workflow.storage import CheckpointPolicy, PersistentWorkflowEngine, Store, trace
from workflow.storage.models import TraceRecord
from workflow.storage.schema import current_revision, downgrade, head_revision, upgrade
from workflow.storage.trace import FLUSH_AT, summarize


def add_one(obj: Any, eng: Any) -> None:
    obj.data["n"] = obj.data.get("n", 0) + 1


def check_positive(obj: Any, eng: Any) -> None:
    if obj.data["n"] < 0:
        raise ValueError(f"n is {obj.data['n']}")


def is_big(obj: Any, eng: Any) -> bool:
    return bool(obj.data["n"] > 5)


def ask_a_person(obj: Any, eng: Any) -> None:
    if not obj.data.get("seen"):
        obj.data["seen"] = True
        eng.halt("look at it")


def steps_of(rows: list[Any]) -> list[tuple[int, str, str]]:
    return [(row.token, row.step, row.outcome) for row in rows]


def run(store: Store, steps: list[Any], tokens: list[Any], **options: Any) -> str:
    engine = PersistentWorkflowEngine.with_name("traced", store=store, definition=steps, **options)
    engine.process(tokens, stop_on_halt=False, stop_on_error=False)
    return engine.uuid


def test_every_task_a_token_runs_is_traced_but_not_the_jumps_of_patterns(store: Store) -> None:
    steps = [add_one, IF_ELSE(is_big, [check_positive], [add_one]), check_positive]
    uid = run(store, steps, [{"n": 0}, {"n": 9}])

    rows = store.trace(uid)
    assert steps_of(rows) == [
        (0, "add_one", "completed"),
        (0, "add_one", "completed"),
        (0, "check_positive", "completed"),
        (1, "add_one", "completed"),
        (1, "check_positive", "completed"),
        (1, "check_positive", "completed"),
    ]
    first = rows[0]
    assert first.kind == "task"
    assert first.callback_pos == [0]
    assert rows[1].callback_pos == [1, 3, 0]
    assert first.attempt == 1
    assert first.started <= first.ended
    assert first.duration >= 0
    host, _, pid = first.worker.rpartition(":")
    assert host
    assert pid.isdigit()
    assert store.trace(uid, token=1) == rows[3:]


def test_a_failure_records_its_type_and_message_and_a_resume_is_the_next_attempt(
    store: Store,
) -> None:
    uid = run(store, [add_one, check_positive], [{"n": -5}])
    [_added, failed] = store.trace(uid)
    assert (failed.outcome, failed.error_type, failed.attempt) == ("failed", "ValueError", 1)
    assert failed.error_message == "n is -4"

    engine = PersistentWorkflowEngine.from_uuid(
        uid, store=store, definition=[add_one, check_positive]
    )
    with pytest.raises(WorkflowError):
        engine.resume()
    store_rows = store.trace(uid)
    assert [(row.outcome, row.attempt) for row in store_rows[1:]] == [("failed", 1), ("failed", 2)]
    assert summarize(store_rows).failures == 2


def test_halts_are_traced_halted_and_the_resume_goes_on_in_the_trace(store: Store) -> None:
    steps = [add_one, ask_a_person, add_one]
    uid = run(store, steps, [{"n": 0}])
    [_, halted] = store.trace(uid)
    assert (halted.outcome, halted.error_type, halted.error_message) == (
        "halted",
        None,
        "look at it",
    )
    engine = PersistentWorkflowEngine.from_uuid(uid, store=store, definition=steps)
    engine.resume()
    assert steps_of(store.trace(uid))[2:] == [(0, "add_one", "completed")]


def test_the_answers_of_an_ask_appear_in_the_trace_with_who_and_when(store: Store) -> None:
    steps = [*ASK("approve", "Refund?", approvers=["alice", "bob"], quorum=2), add_one]
    uid = run(store, steps, [{"n": 0}])
    waits = Waits(store)
    [wait] = waits.waiting(run=uid)
    waits.answer(wait.id, by="alice", decision="approve", data={"note": "fine"})
    waits.answer(wait.id, by="bob", decision="approve")
    Worker(store, {"traced": steps}, name="worker-7").run_once()

    rows = store.trace(uid)
    assert [(row.kind, row.step, row.outcome, row.worker) for row in rows] == [
        ("task", "approve", "waiting", rows[0].worker),
        ("answer", "approve", "approve", "alice"),
        ("answer", "approve", "approve", "bob"),
        ("task", "approve", "completed", "worker-7"),
        ("task", "add_one", "completed", "worker-7"),
    ]
    assert rows[1].data == {"note": "fine"}
    assert rows[0].error_message == "Refund?"
    assert rows[1].as_dict()["started"].endswith("Z")


def test_a_retried_task_traces_each_failed_attempt(store: Store) -> None:
    calls: list[int] = []

    def flaky(obj: Any, eng: Any) -> None:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("down")

    steps = [*RETRY(flaky, attempts=3, backoff="PT0S", jitter=False), add_one]
    uid = run(store, steps, [{"n": 0}])
    Worker(store, {"traced": steps}).run_once()
    rows = [row for row in store.trace(uid) if row.step == "flaky"]
    assert [(row.outcome, row.attempt, row.error_type) for row in rows][:1] == [
        ("failed", 1, "ConnectionError")
    ]
    assert rows[-1].outcome == "completed"
    assert [row.attempt for row in rows if row.callback_pos == rows[0].callback_pos][-1] == 2


def test_rows_are_written_in_batches_with_the_checkpoints_not_one_statement_per_task(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "BATCH_SECONDS", math.inf)  # batches by size alone
    statements: list[tuple[str, int]] = []

    def count(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if "wf_trace" in statement:  # one executemany (SQLite), or one multi-row statement
            rows = len(parameters) if many else statement.count("), (") + 1
            statements.append((statement.split()[0], rows))

    sa.event.listen(store.sql_engine, "before_cursor_execute", count)
    try:
        uid = run(store, [add_one] * 20, [{"n": 0}] * 10, checkpoint=CheckpointPolicy.TOKEN)
    finally:
        sa.event.remove(store.sql_engine, "before_cursor_execute", count)
    # 20 rows a token: written with the checkpoints of tokens 3 and 7, and at the end.
    assert statements == [("INSERT", 80), ("INSERT", 80), ("INSERT", 40)]
    assert len(store.trace(uid)) == 200


def test_a_long_pass_without_checkpoints_writes_its_rows_in_bounded_batches(store: Store) -> None:
    uid = run(store, [add_one] * (FLUSH_AT + 5), [{"n": 0}], checkpoint="halt")
    assert len(store.trace(uid)) == FLUSH_AT + 5


def test_the_trace_can_be_turned_off(db_url: str) -> None:
    quiet = Store(db_url, trace=False)
    quiet.create_all()
    try:
        uid = run(quiet, [add_one, add_one], [{"n": 0}])
        assert quiet.trace(uid) == []
        engine = PersistentWorkflowEngine.from_uuid(uid, store=quiet)
        assert engine.trace_worker is None
    finally:
        quiet.dispose()


def test_pruning_deletes_the_rows_that_ended_before_the_given_time(store: Store) -> None:
    uid = run(store, [add_one, add_one], [{"n": 0}])
    assert store.prune_trace(before=datetime(2000, 1, 1, tzinfo=timezone.utc)) == 0
    assert store.prune_trace(before=store.now() + timedelta(seconds=1)) == 2
    assert store.trace(uid) == []
    with pytest.raises(WorkflowValueError, match="needs a datetime"):
        store.prune_trace(before="yesterday")  # type: ignore[arg-type]


def test_a_retention_setting_prunes_old_rows_when_a_run_ends(store: Store, db_url: str) -> None:
    old = run(store, [add_one], [{"n": 0}])
    with store.transaction("age") as conn:
        long_ago = datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp()
        conn.execute(sa.update(TraceRecord).values(started=long_ago))
    kept = Store(db_url, trace_retention=timedelta(days=1))
    try:
        new = run(kept, [add_one], [{"n": 0}])
        assert kept.trace(old) == []
        assert len(kept.trace(new)) == 1
    finally:
        kept.dispose()
    with pytest.raises(WorkflowValueError, match="trace_retention"):
        Store(db_url, trace_retention=timedelta(0))


def test_a_summary_counts_steps_failures_answers_and_time(store: Store) -> None:
    uid = run(store, [add_one, check_positive], [{"n": 1}, {"n": -9}])
    summary = summarize(store.trace(uid))
    assert (summary.steps, summary.failures, summary.answers) == (4, 1, 0)
    assert summary.first is not None
    assert summary.last is not None
    assert summary.busy >= 0


def test_a_halting_halt_step_in_a_flow_is_traced_by_its_step_name(store: Store) -> None:
    from workflow.flows import TaskRegistry, load_flow

    registry = TaskRegistry()
    registry.register("add_one", lambda scope, params: {"n": 1})
    flow = {
        "name": "f",
        "steps": [
            {"name": "first", "task": "add_one"},
            {"name": "wait", "halt": {"message": "check"}},
        ],
    }
    steps = load_flow(flow, registry=registry).callbacks()
    uid = run(store, steps, [{}])
    assert [(row.step, row.outcome) for row in store.trace(uid)] == [
        ("first", "completed"),
        ("wait", "halted"),
    ]


def test_reading_the_trace_of_a_run_that_does_not_exist_fails(store: Store) -> None:
    with pytest.raises(WorkflowNotFoundError):
        store.trace("0" * 36)


def test_migration_0010_adds_the_trace_to_a_database_with_runs(db_url: str) -> None:
    store = Store(db_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS wf_alembic_version"))
        upgrade(store, "0005")
        old = store.create_workflow("before")  # stored before the trace existed
        upgrade(store)
        assert current_revision(store) == head_revision()
        assert store.trace(old) == []
        uid = run(store, [add_one], [{"n": 0}])
        assert len(store.trace(uid)) == 1
        downgrade(store, "0005")
        assert "wf_trace" not in set(sa.inspect(store.engine).get_table_names())
        assert {row["uuid"] for row in store.workflows()} == {old, uid}
    finally:
        store.dispose()
