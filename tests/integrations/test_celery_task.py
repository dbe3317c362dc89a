"""The Celery task and the sending, called in this process: failures and an unreachable broker.

The behaviour through real brokers and workers is in ``test_celery.py``;
here the task's function is called directly, on SQLite, PostgreSQL and
MariaDB, for what a worker process would log.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integrations.celery_app import DEFINITIONS, expected
from workflow.engine_db import WorkflowStatus
from workflow.integrations.celery import CeleryQueue
from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.dispatch import take_dispatches
from workflow.storage.queue import WorkQueue

#: No broker listens there.
NOWHERE = "redis://127.0.0.1:9/0"


def carrier(db_url: str, definitions: Any = DEFINITIONS) -> CeleryQueue:
    return CeleryQueue(
        NOWHERE,
        db_url,
        definitions,
        queue="steps",
        settings={"broker_connection_retry": False, "broker_connection_max_retries": 0},
    )


def test_the_task_runs_the_named_token_once(store: Store, db_url: str) -> None:
    queue = carrier(db_url)
    engine = PersistentWorkflowEngine.with_name("steps", store=store)
    engine.enqueue([{"value": 2, "done": []}], "steps")
    [message] = take_dispatches(WorkQueue(store, "steps"), run=engine.uuid)
    run_token = queue.run_task.run
    try:
        assert run_token(*message.as_args()) == "ran"
        assert run_token(*message.as_args()) == "skipped"
    finally:
        queue.store.dispose()
    assert store.token_rows(engine.uuid)[0]["data"] == expected(2)
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.COMPLETED.value


def test_a_token_without_a_definition_goes_back_to_the_queue(
    store: Store, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue = carrier(db_url, definitions={})
    engine = PersistentWorkflowEngine.with_name("steps", store=store)
    engine.enqueue([{"value": 2, "done": []}], "steps")
    [message] = take_dispatches(WorkQueue(store, "steps"), run=engine.uuid)
    try:
        with caplog.at_level(logging.ERROR, logger="workflow.integrations.celery"):
            assert queue.run_task.run(*message.as_args()) == "failed"
    finally:
        queue.store.dispose()
    assert "no definition for runs called 'steps'" in caplog.text
    assert "sent again in 30 s" in caplog.text
    assert WorkQueue(store, "steps").counts(engine.uuid) == {"ready": 1, "claimed": 0, "done": 0}


def test_an_unreachable_broker_is_logged_and_the_run_stays_queued(
    store: Store, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue = carrier(db_url)
    engine = PersistentWorkflowEngine.with_name("steps", store=store)
    with caplog.at_level(logging.ERROR, logger="workflow.integrations.celery"):
        assert queue.enqueue(engine, [{"value": n, "done": []} for n in range(3)]) == 3
    assert "could not send 3 of 3 work items to workflow.steps" in caplog.text
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.RUNNING.value
    work = WorkQueue(store, "steps")
    assert work.counts(engine.uuid)["ready"] == 3
    # Stamped as sent: a sweep sends them again once redispatch_after passed.
    assert take_dispatches(work) == []
    assert len(take_dispatches(work, older_than=0)) == 3


def test_a_fork_and_its_last_branch_send_what_they_made_ready(store: Store, db_url: str) -> None:
    from tests.runtime.queue_worker import FAN_FLOW, expected_fanout
    from workflow.storage.queue import work_items

    queue = carrier(db_url, {"fanout": FAN_FLOW.callbacks()})
    engine = PersistentWorkflowEngine.with_name(
        "fanout", store=store, definition=FAN_FLOW.callbacks()
    )
    engine.enqueue([FAN_FLOW.new_context(4)], "steps")
    [message] = take_dispatches(WorkQueue(store, "steps"), run=engine.uuid)

    def items() -> list[Any]:
        with store.transaction("read items") as conn:
            query = sa.select(work_items).where(work_items.c.workflow_uuid == engine.uuid)
            return list(conn.execute(query.order_by(work_items.c.id)))

    run_token = queue.run_task.run
    try:
        assert run_token(*message.as_args()) == "ran"  # forks three items...
        [parent, *branches] = items()
        assert len(branches) == 3
        # ...and stamps their messages at once (the broker is down here: a sweep resends)
        assert all(branch.dispatched is not None for branch in branches)
        for branch in branches:
            args = (engine.uuid, branch.position, branch.id, branch.epoch)
            assert run_token(*args) == "ran"
        [parent, *_] = items()
        assert parent.state == "ready"
        assert parent.dispatched is not None  # the last branch sent the join on its way
        assert run_token(engine.uuid, parent.position, parent.id, parent.epoch) == "ran"
    finally:
        queue.store.dispose()
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.COMPLETED.value
    data = store.token_rows(engine.uuid)[0]["data"]
    wanted = expected_fanout(4)
    assert {k: v for k, v in data.items() if k != "_runtime"} == {
        k: v for k, v in wanted.items() if k != "_runtime"
    }
