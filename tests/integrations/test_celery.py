"""Celery carries a work queue's tokens: real brokers, a real ``celery worker`` process.

Each test runs over Redis and over RabbitMQ, with PostgreSQL as the
database. The worker runs one task at a time, so messages are run in the
order they were sent: a message sent last tells when those before it ran.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integrations.celery_app import DEFINITIONS, expected, make_queue
from tests.integrations.conftest import Celery, Worker
from tests.runtime.racing import wait_until
from workflow.engine_db import WorkflowStatus
from workflow.errors import WorkflowValueError
from workflow.integrations.celery import SAFE_SETTINGS, CeleryQueue
from workflow.storage import PersistentWorkflowEngine
from workflow.storage.queue import WorkQueue, work_items


@pytest.fixture(scope="module")
def worker(celery_setup: Celery) -> Iterator[Worker]:
    """One ``celery worker`` process for the module's tests."""
    started = celery_setup.start_worker("tests")
    yield started
    started.stop()


def new_run(celery: Celery, values: list[int], *, send: bool = True) -> str:
    engine = PersistentWorkflowEngine.with_name("steps", store=celery.store)
    items = [{"value": value, "done": []} for value in values]
    if send:
        assert celery.queue.enqueue(engine, items) == len(values)
    else:  # queued, its messages lost: as if the sender died after the commit
        assert engine.enqueue(items, celery.queue.queue) == len(values)
    return engine.uuid


def finished(celery: Celery, uid: str, timeout: float = 30) -> None:
    def done() -> bool:
        return bool(celery.store.workflow(uid)["status"] != WorkflowStatus.RUNNING.value)

    wait_until(done, f"run {uid} finished", timeout)


def test_a_run_completes_through_a_celery_worker(celery_setup: Celery, worker: Worker) -> None:
    uid = new_run(celery_setup, list(range(20)))
    finished(celery_setup, uid)
    store = celery_setup.store
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value, worker.log.read_text()
    assert [row["data"] for row in store.token_rows(uid)] == [expected(n) for n in range(20)]
    assert WorkQueue(store, "steps").counts(uid) == {"ready": 0, "claimed": 0, "done": 20}
    messages = [c["message"] for c in store.status_change_rows(uid) if c["token_position"] is None]
    assert messages == ["created", "queued on 'steps': 20 tokens", "finished"]


def test_parallel_items_fan_out_over_celery_and_join(celery_setup: Celery, worker: Worker) -> None:
    from tests.runtime.queue_worker import FAN_FLOW, expected_fanout

    engine = PersistentWorkflowEngine.with_name("fanout", store=celery_setup.store)
    assert celery_setup.queue.enqueue(engine, [FAN_FLOW.new_context(n) for n in (1, 2)]) == 2
    finished(celery_setup, engine.uuid)
    store = celery_setup.store
    status = store.workflow(engine.uuid)["status"]
    assert status == WorkflowStatus.COMPLETED.value, worker.log.read_text()
    rows = store.token_rows(engine.uuid)
    assert len(rows) == 2 + 2 * 3  # each token's three items ran as tokens of their own
    for row in rows[:2]:
        data, wanted = dict(row["data"]), expected_fanout(row["data"]["_input"])
        data.pop("_runtime"), wanted.pop("_runtime")
        assert data == wanted


def test_duplicate_and_stale_messages_do_nothing(celery_setup: Celery, worker: Worker) -> None:
    celery, store = celery_setup, celery_setup.store
    done = new_run(celery, [1, 2])
    finished(celery, done)
    before = (store.token_rows(done), store.status_change_rows(done))
    # A token held by a live worker (here, the test) and a message naming it.
    held = new_run(celery, [7], send=False)
    work = WorkQueue(store, "steps", lease_ttl=60)
    [item] = [lease.item for lease in work.claim("the-test", limit=1)]
    task = celery.queue.run_task
    with store.transaction("read items") as conn:
        items = conn.execute(
            sa.select(work_items.c.position, work_items.c.id).where(
                work_items.c.workflow_uuid == done
            )
        ).all()
    assert len(items) == 2
    for position, item_id in items:
        for _ in range(2):  # a duplicate, and a redelivery
            task.apply_async(args=(done, position, item_id, 1), queue=celery.celery_queue)
    task.apply_async(args=(held, 0, item, 0), queue=celery.celery_queue)
    task.apply_async(args=(held, 5, item, 0), queue=celery.celery_queue)  # not its position
    marker = new_run(celery, [3])
    finished(celery, marker)
    assert (store.token_rows(done), store.status_change_rows(done)) == before
    assert store.token_rows(held)[0]["data"] == {"value": 7, "done": []}
    assert work.counts(held) == {"ready": 0, "claimed": 1, "done": 0}
    assert worker.log.read_text().count("succeeded in") >= 7
    assert "'skipped'" in worker.log.read_text()


def test_the_sweep_sends_the_messages_that_were_lost(celery_setup: Celery, worker: Worker) -> None:
    celery, store = celery_setup, celery_setup.store
    lost = new_run(celery, [4, 5, 6], send=False)
    celery.queue.sweep_task.apply_async(queue=celery.celery_queue)  # what beat sends
    finished(celery, lost)
    assert store.workflow(lost)["status"] == WorkflowStatus.COMPLETED.value
    assert [row["data"] for row in store.token_rows(lost)] == [expected(n) for n in (4, 5, 6)]
    # The same sweep, called in this process.
    again = new_run(celery, [9], send=False)
    assert celery.queue.sweep() == 1
    finished(celery, again)
    assert store.token_rows(again)[0]["data"] == expected(9)
    assert repr(celery.queue) == f"<CeleryQueue 'steps' via {celery.celery_queue!r}>"


def test_a_token_whose_timer_fired_is_sent_by_the_sweep(
    celery_setup: Celery, worker: Worker
) -> None:
    celery, store = celery_setup, celery_setup.store
    engine = PersistentWorkflowEngine.with_name("nap", store=store)
    celery.queue.enqueue(engine, [{"value": 8, "done": []}])
    finished(celery, engine.uuid)
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.HALTED.value
    time.sleep(0.3)  # the nap is over: the next sweep fires its timer and sends the token
    celery.queue.sweep_task.apply_async(queue=celery.celery_queue)
    wait_until(
        lambda: store.workflow(engine.uuid)["status"] == WorkflowStatus.COMPLETED.value,
        "the run went on after its nap",
        30,
    )
    assert store.token_rows(engine.uuid)[0]["data"] == expected(8)


def test_the_safe_settings_are_the_defaults(celery_setup: Celery) -> None:
    conf = celery_setup.queue.app.conf
    for name, value in SAFE_SETTINGS.items():
        assert conf[name] == value, name
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == celery_setup.celery_queue


def test_bad_settings_and_messages_are_refused(celery_setup: Celery) -> None:
    with pytest.raises(WorkflowValueError, match="lease_ttl"):
        CeleryQueue(celery_setup.url, celery_setup.database, DEFINITIONS, lease_ttl=0)
    with pytest.raises(WorkflowValueError, match="queue's name"):
        CeleryQueue(celery_setup.url, celery_setup.database, DEFINITIONS, queue="no spaces")
    run_token: Any = celery_setup.queue.run_task
    with pytest.raises(WorkflowValueError, match=r"\(run uuid, token position"):
        run_token("a-run", "0", 1, 1)


def test_import_workflow_does_not_import_celery() -> None:
    code = "import sys, workflow, workflow.storage, workflow.runtime.worker; "
    code += "print('celery' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_a_message_names_the_work_item_only_and_has_no_eta(celery_setup: Celery) -> None:
    from kombu import Connection

    peek = f"{celery_setup.celery_queue}_peek"
    queue = make_queue(celery_setup.url, celery_setup.database, peek)
    engine = PersistentWorkflowEngine.with_name("steps", store=celery_setup.store)
    secret = {"value": 12345, "done": ["token data stays in the database"]}
    try:
        assert queue.enqueue(engine, [secret]) == 1
        with Connection(celery_setup.url) as conn:
            simple = conn.SimpleQueue(peek)
            message = simple.get(timeout=10)
            message.ack()
            simple.close()
        with celery_setup.store.transaction("read the item") as conn:
            item = conn.scalar(
                sa.select(work_items.c.id).where(work_items.c.workflow_uuid == engine.uuid)
            )
        assert message.headers["task"] == "workflow.steps.run_token"
        assert message.headers["eta"] is None
        assert message.headers["expires"] is None
        assert message.content_type == "application/json"
        args, kwargs, _ = message.decode()
        assert args == [engine.uuid, 0, item, 0]  # (run, position, item, epoch): no token data
        assert kwargs == {}
    finally:
        queue.app.control.purge()
