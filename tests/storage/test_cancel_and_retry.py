"""A person's changes to a stored run: the status a pass with failures ends in,
cancelling, retrying a failed token from a task, and the ERROR log of a failed task.

Every test runs on SQLite, PostgreSQL and MariaDB (see ``conftest.py``).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import StoredRunError, WorkflowLockedError
from workflow.storage import DatabaseLogHandler, PersistentWorkflowEngine, Store, Token
from workflow.storage.run_rows import workflows

CANCELLED = WorkflowStatus.CANCELLED.value


def fragile(calls: Counter[str]) -> list[Any]:
    """A callback list whose middle task fails on tokens that ask for it."""

    def prepare(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["prepare"] += 1

    def check(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["check"] += 1
        if obj.data.get("fail"):
            raise KeyError("boom")
        if obj.data.get("halt"):
            eng.halt("needs a person")

    def publish(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["publish"] += 1
        obj.data["published"] = True

    return [prepare, check, publish]


def run(store: Store, items: list[Any], calls: Counter[str]) -> PersistentWorkflowEngine:
    eng = PersistentWorkflowEngine.with_name("fix me", store=store, definition=fragile(calls))
    eng.process(items, stop_on_error=False, stop_on_halt=False)
    return eng


def run_status(store: Store, uid: str) -> WorkflowStatus:
    return WorkflowStatus(store.workflow(uid)["status"])


def lock_until(store: Store, uid: str, owner: str, delta: timedelta) -> None:
    """Give the run's lock to ``owner`` until now + ``delta`` (negative: it lapsed)."""
    with store.transaction("test") as conn:
        conn.execute(
            workflows.update()
            .where(workflows.c.uuid == uid)
            .values(lock_owner=owner, lock_expires=store.now() + delta)
        )


# -- the status a pass ends in ------------------------------------------------------


def test_a_pass_with_a_failed_and_a_halted_token_is_stored_error(store: Store) -> None:
    eng = run(store, [{}, {"halt": True}, {"fail": True}], Counter())
    assert run_status(store, eng.uuid) is WorkflowStatus.ERROR
    assert eng.status is WorkflowStatus.ERROR
    last = store.status_change_rows(eng.uuid)[-1]
    assert (last["from_status"], last["to_status"], last["message"]) == (
        WorkflowStatus.RUNNING.value,
        WorkflowStatus.ERROR.value,
        "stopped: 1 token failed",
    )
    assert store.workflow(eng.uuid)["lock_owner"] is None


def test_a_pass_whose_tokens_only_halted_is_stored_halted(store: Store) -> None:
    eng = run(store, [{}, {"halt": True}], Counter())
    assert run_status(store, eng.uuid) is WorkflowStatus.HALTED


def test_the_failed_token_log_names_its_task(store: Store) -> None:
    eng = run(store, [{"fail": True}], Counter())
    [failed] = [row for row in store.status_change_rows(eng.uuid) if row["to_status"] == 4]
    assert failed["message"] == "'boom' [task check]"
    assert failed["callback_pos"] == [1]


def test_token_counts_count_each_run_by_status(store: Store) -> None:
    mixed = run(store, [{}, {"halt": True}, {"fail": True}, {}], Counter())
    done = run(store, [{}], Counter())
    counts = store.token_counts([mixed.uuid, done.uuid, "no-such-run"])
    assert counts == {
        mixed.uuid: {"completed": 2, "error": 1, "halted": 1},
        done.uuid: {"completed": 1},
        "no-such-run": {},
    }


def test_listing_filters_by_flow_and_creation_time(store: Store) -> None:
    first = run(store, [{}], Counter())
    named = PersistentWorkflowEngine.with_name(
        "other", store=store, definition=fragile(Counter()), definition_name="review"
    )
    created = store.workflow(named.uuid)["created"]
    by_flow = store.stored_workflow_rows(flow="review")
    assert [row["uuid"] for row in by_flow] == [named.uuid]
    by_name = store.stored_workflow_rows(flow="fix me")
    assert [row["uuid"] for row in by_name] == [first.uuid]
    later = store.stored_workflow_rows(since=created + timedelta(seconds=1))
    assert later == []
    earlier = store.stored_workflow_rows(until=created - timedelta(days=1))
    assert earlier == []
    around = store.stored_workflow_rows(
        since=created - timedelta(days=1), until=created + timedelta(days=1)
    )
    assert {row["uuid"] for row in around} == {first.uuid, named.uuid}


# -- cancelling --------------------------------------------------------------------------


def test_cancel_stores_cancelled_releases_the_lock_and_logs_why(store: Store) -> None:
    eng = run(store, [{"halt": True}], Counter())
    lock_until(store, eng.uuid, "dead-process", timedelta(seconds=-1))  # a lapsed lock
    assert store.cancel(eng.uuid, "replaced", by="alice") is True
    row = store.workflow(eng.uuid)
    assert (row["status"], row["lock_owner"], row["lock_expires"]) == (CANCELLED, None, None)
    last = store.status_change_rows(eng.uuid)[-1]
    assert (last["token_position"], last["from_status"], last["to_status"]) == (
        None,
        WorkflowStatus.HALTED.value,
        CANCELLED,
    )
    assert last["message"] == "cancelled by alice: replaced"


def test_cancelling_a_cancelled_run_changes_nothing(store: Store) -> None:
    eng = run(store, [{"fail": True}], Counter())
    assert eng.cancel("first") is True
    logged = len(store.status_change_rows(eng.uuid))
    assert store.cancel(eng.uuid, "again") is False
    assert len(store.status_change_rows(eng.uuid)) == logged


def test_cancel_refuses_a_run_another_process_holds(store: Store) -> None:
    eng = run(store, [{"halt": True}], Counter())
    store.acquire(eng.uuid, "busy-process")
    with pytest.raises(WorkflowLockedError) as caught:
        store.cancel(eng.uuid, "stop")
    assert caught.value.owner == "busy-process"
    assert run_status(store, eng.uuid) is WorkflowStatus.HALTED
    # The holder itself may cancel.
    assert store.cancel(eng.uuid, "stop", owner="busy-process") is True


def test_cancel_refuses_a_completed_run(store: Store) -> None:
    eng = run(store, [{}], Counter())
    with pytest.raises(StoredRunError, match="is completed"):
        store.cancel(eng.uuid)
    assert run_status(store, eng.uuid) is WorkflowStatus.COMPLETED


def test_a_cancelled_run_is_never_resumed_restarted_or_changed(store: Store) -> None:
    calls: Counter[str] = Counter()
    eng = run(store, [{"halt": True}], calls)
    store.cancel(eng.uuid, "no")
    before = dict(calls)
    again = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=fragile(calls))
    with pytest.raises(StoredRunError, match="was cancelled"):
        again.resume()
    with pytest.raises(StoredRunError, match="was cancelled"):
        again.restart("next", "first")
    with pytest.raises(StoredRunError, match="was cancelled"):
        again.update_token(0, {"fixed": True})
    with pytest.raises(StoredRunError, match="was cancelled"):
        again.retry_token(0)
    assert dict(calls) == before
    row = store.workflow(eng.uuid)
    assert (row["status"], row["lock_owner"]) == (CANCELLED, None)
    assert store.token_rows(eng.uuid)[0]["data"] == {"halt": True}


def test_a_cancelled_new_run_never_starts(store: Store) -> None:
    calls: Counter[str] = Counter()
    eng = PersistentWorkflowEngine.with_name("new", store=store, definition=fragile(calls))
    assert store.cancel(eng.uuid, "not needed") is True
    with pytest.raises(StoredRunError, match="was cancelled"):
        eng.process([{}])
    assert calls == Counter()
    row = store.workflow(eng.uuid)
    assert (row["status"], row["lock_owner"]) == (CANCELLED, None)
    assert [r["to_status"] for r in store.status_change_rows(eng.uuid)] == [0, CANCELLED]


# -- retrying a failed token -----------------------------------------------------------


def test_retry_token_runs_the_failed_token_again_from_a_task(store: Store) -> None:
    calls: Counter[str] = Counter()
    eng = run(store, [{}, {"fail": True}], calls)
    eng.update_token(1, {"fail": False}, by="bob")
    eng.retry_token(1, at=[0], by="bob")
    token = store.token_rows(eng.uuid)[1]
    assert (token["status"], token["callback_pos"]) == (ObjectStatus.ERROR.value, [0])
    assert store.workflow(eng.uuid)["lock_owner"] is None  # taken for the change only
    messages = [row["message"] for row in store.status_change_rows(eng.uuid)[-2:]]
    assert messages == ["data updated by bob", "retry from [0] (by bob)"]

    before = dict(calls)
    eng.resume()
    assert run_status(store, eng.uuid) is WorkflowStatus.COMPLETED
    # Only token 1 ran, from its first task.
    assert {name: calls[name] - before.get(name, 0) for name in calls} == {
        "prepare": 1,
        "check": 1,
        "publish": 1,
    }


def test_retry_token_without_a_task_runs_the_failed_task_again(store: Store) -> None:
    calls: Counter[str] = Counter()
    eng = run(store, [{"fail": True}], calls)
    eng.update_token(0, {})
    eng.retry_token(0)
    assert store.status_change_rows(eng.uuid)[-1]["message"] == "retry from the task that failed"
    eng.resume()
    assert calls == Counter(prepare=1, check=2, publish=1)


def test_retry_token_refuses_tokens_that_did_not_fail_and_positions_outside(
    store: Store,
) -> None:
    eng = run(store, [{}, {"halt": True}, {"fail": True}], Counter())
    with pytest.raises(StoredRunError, match="is COMPLETED, not ERROR"):
        eng.retry_token(0)
    with pytest.raises(StoredRunError, match="is HALTED, not ERROR"):
        eng.retry_token(1)
    with pytest.raises(StoredRunError, match=r"position \[7\] is not in the definition"):
        eng.retry_token(2, at=[7])
    assert store.token_rows(eng.uuid)[2]["callback_pos"] == [1]
    assert store.workflow(eng.uuid)["lock_owner"] is None


def test_retry_token_is_refused_while_another_process_runs_the_workflow(store: Store) -> None:
    eng = run(store, [{"fail": True}], Counter())
    store.acquire(eng.uuid, "busy-process")
    with pytest.raises(WorkflowLockedError):
        eng.retry_token(0)
    assert store.workflow(eng.uuid)["lock_owner"] == "busy-process"


# -- the log of a failed task ------------------------------------------------------------


def test_a_failed_task_is_logged_at_error_with_its_message(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="workflow"):
        eng = run(store, [{"fail": True}], Counter())
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "workflow.storage.persistent"
    assert record.getMessage() == (
        f"workflow {eng.uuid}: token 0 failed in task check at [1]: KeyError: 'boom'"
    )
    assert record.__dict__["workflow_uuid"] == eng.uuid


def test_the_database_log_handler_records_a_failed_task(store: Store) -> None:
    handler = DatabaseLogHandler(store, level=logging.ERROR)
    logger = logging.getLogger("workflow.storage")
    logger.addHandler(handler)
    try:
        eng = run(store, [{"fail": True}], Counter())
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    syslog = sa.table(
        "wf_syslog",
        sa.column("level", sa.Integer),
        sa.column("message", sa.Text),
        sa.column("workflow_uuid", sa.String),
    )
    with store.transaction("test") as conn:
        rows = conn.execute(sa.select(syslog.c.level, syslog.c.message, syslog.c.workflow_uuid))
        stored = [tuple(row) for row in rows]
    assert stored == [
        (
            logging.ERROR,
            f"workflow {eng.uuid}: token 0 failed in task check at [1]: KeyError: 'boom'",
            eng.uuid,
        )
    ]
