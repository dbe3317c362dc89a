"""What a task queue's message does in the database: claim one named item, stamp dispatches.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture);
the Celery tests themselves are in ``tests/integrations/test_celery.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from workflow.engine_db import WorkflowStatus
from workflow.errors import LeaseLostError, WorkflowValueError
from workflow.runtime import SLEEP, Worker
from workflow.runtime.worker import run_leased
from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.dispatch import take_dispatches
from workflow.storage.queue import WorkQueue, fence


def double(obj: Any, eng: Any) -> None:
    obj.data = obj.data * 2


def queued(store: Store, items: list[Any]) -> str:
    engine = PersistentWorkflowEngine.with_name("double", store=store, definition=[double])
    engine.enqueue(items, "q")
    return engine.uuid


def test_claim_item_claims_a_ready_item_once_and_raises_its_epoch(store: Store) -> None:
    uid = queued(store, [1, 2])
    queue = WorkQueue(store, "q")
    [first, _] = take_dispatches(queue, run=uid)
    lease = queue.claim_item(first.item, "a", run=uid, position=0)
    assert lease is not None
    assert (lease.run, lease.position, lease.epoch, lease.owner) == (uid, 0, 1, "a")
    # A duplicate message: the item is held under a live lease.
    assert queue.claim_item(first.item, "b", run=uid, position=0) is None
    assert queue.counts(uid) == {"ready": 1, "claimed": 1, "done": 0}


def test_claim_item_refuses_a_message_that_names_another_token_or_queue(store: Store) -> None:
    uid = queued(store, [1, 2])
    [first, second] = take_dispatches(WorkQueue(store, "q"), run=uid)
    queue = WorkQueue(store, "q")
    assert queue.claim_item(first.item, "a", run=uid, position=1) is None
    assert queue.claim_item(first.item, "a", run="not-this-run", position=0) is None
    assert WorkQueue(store, "other").claim_item(second.item, "a", run=uid, position=1) is None
    assert queue.counts(uid)["ready"] == 2


def test_claim_item_takes_over_a_lapsed_lease_and_fences_the_old_holder(store: Store) -> None:
    uid = queued(store, [1])
    queue = WorkQueue(store, "q", lease_ttl=0.05)
    [message] = take_dispatches(queue, run=uid)
    old = queue.claim_item(message.item, "dead", run=uid, position=0)
    assert old is not None
    time.sleep(0.1)
    new = queue.claim_item(message.item, "alive", run=uid, position=0)
    assert new is not None
    assert new.epoch == old.epoch + 1
    with pytest.raises(LeaseLostError), store.transaction("late write") as conn:
        fence(conn, old, store.now(), 1.0)
    assert run_leased(store, new, {"double": [double]}, lease_ttl=1.0)
    assert store.token_rows(uid)[0]["data"] == 2
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value
    # A message for a done item does nothing.
    assert queue.claim_item(message.item, "late", run=uid, position=0) is None


def test_dispatches_are_stamped_once_and_resent_only_when_still_claimable(store: Store) -> None:
    uid = queued(store, [1, 2, 3])
    queue = WorkQueue(store, "q")
    assert [d.position for d in take_dispatches(queue, run=uid)] == [0, 1, 2]
    assert take_dispatches(queue) == []
    assert take_dispatches(queue, older_than=60) == []  # sent a moment ago
    lease = queue.claim_item(take_dispatches(queue, older_than=0)[0].item, "a", run=uid, position=0)
    assert lease is not None
    # Sweeping now: the claimed item (its lease is live) is not sent again.
    assert [d.position for d in take_dispatches(queue, older_than=0)] == [1, 2]
    assert [d.epoch for d in take_dispatches(queue, older_than=0, limit=1)] == [0]


def test_a_requeued_token_is_dispatched_again_at_once(store: Store) -> None:
    steps = [*SLEEP("nap", "PT0.05S"), double]
    engine = PersistentWorkflowEngine.with_name("nap", store=store, definition=steps)
    engine.enqueue([3], "q")
    queue = WorkQueue(store, "q")
    [message] = take_dispatches(queue, run=engine.uuid)
    lease = queue.claim_item(message.item, "a", run=engine.uuid, position=0)
    assert lease is not None
    run_leased(store, lease, {"nap": steps}, lease_ttl=5.0)
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.HALTED.value
    assert take_dispatches(queue, older_than=0) == []  # halted: nothing to run
    time.sleep(0.1)
    Worker(store, {"nap": steps}).run_once()  # fires the timer, requeues the token
    [again] = take_dispatches(queue)  # dispatched is cleared: sent without waiting
    assert (again.item, again.position, again.epoch) == (message.item, 0, 1)


def test_take_dispatches_refuses_bad_limits(store: Store) -> None:
    queue = WorkQueue(store, "q")
    with pytest.raises(WorkflowValueError, match="limit"):
        take_dispatches(queue, limit=0)
    with pytest.raises(WorkflowValueError, match="older_than"):
        take_dispatches(queue, older_than=-1)
