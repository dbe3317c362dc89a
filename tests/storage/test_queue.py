"""The work queue through the Python API: enqueue, claim, leases and fencing, the join.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import (
    LeaseLostError,
    StoredRunError,
    WorkflowAPIError,
    WorkflowLockedError,
    WorkflowValueError,
)
from workflow.runtime import SLEEP, Worker, time_limited
from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.queue import WorkQueue
from workflow.storage.queued import QueuedTokenEngine


def double(obj: Any, eng: Any) -> None:
    obj.data = obj.data * 2


def add_one(obj: Any, eng: Any) -> None:
    obj.data = obj.data + 1


def fail_on_three(obj: Any, eng: Any) -> None:
    if obj.data == 3:
        raise ValueError("three is not allowed")


def halt_on_four(obj: Any, eng: Any) -> None:
    if obj.data == 4:
        eng.halt("four waits for a person")


STEPS = [double, add_one]


def queued(store: Store, name: str, steps: list[Any], items: list[Any], queue: str = "q") -> str:
    engine = PersistentWorkflowEngine.with_name(name, store=store, definition=steps)
    assert engine.enqueue(items, queue) == len(items)
    return engine.uuid


def drain(worker: Worker, passes: int = 100) -> int:
    ran = 0
    for _ in range(passes):
        done = worker.run_once()
        ran += done.ran
        if done.idle:
            return ran
    raise AssertionError(f"the worker still had work after {passes} passes")


def test_workers_run_every_token_and_the_last_stores_the_outcome(store: Store) -> None:
    uid = queued(store, "double", STEPS, list(range(20)))
    row = store.workflow(uid)
    assert row["status"] == WorkflowStatus.RUNNING.value
    assert row["lock_owner"] == "queue:q"
    worker = Worker(store, {"double": STEPS}, queue="q", concurrency=4)
    assert drain(worker) == 20
    assert [r["data"] for r in store.token_rows(uid)] == [n * 2 + 1 for n in range(20)]
    row = store.workflow(uid)
    assert row["status"] == WorkflowStatus.COMPLETED.value
    assert row["lock_owner"] is None
    assert WorkQueue(store, "q").counts(uid) == {"ready": 0, "claimed": 0, "done": 20}
    runs = [c for c in store.status_change_rows(uid) if c["token_position"] is None]
    assert [c["message"] for c in runs] == ["created", "queued on 'q': 20 tokens", "finished"]


def test_a_failed_and_a_halted_token_end_only_themselves(store: Store) -> None:
    steps = [fail_on_three, halt_on_four, add_one]
    uid = queued(store, "mixed", steps, [1, 3, 4, 5])
    drain(Worker(store, {"mixed": steps}, queue="q", concurrency=2))
    rows = store.token_rows(uid)
    assert [r["status"] for r in rows] == [
        ObjectStatus.COMPLETED.value,
        ObjectStatus.ERROR.value,
        ObjectStatus.HALTED.value,
        ObjectStatus.COMPLETED.value,
    ]
    assert "three is not allowed" in rows[1]["last_error"]
    assert [rows[0]["data"], rows[3]["data"]] == [2, 6]
    row = store.workflow(uid)
    assert row["status"] == WorkflowStatus.ERROR.value
    assert store.status_change_rows(uid)[-1]["message"] == "stopped: 1 token failed"
    # Finished: the run is no longer the queue's, and resumes in-process as any run.
    engine = PersistentWorkflowEngine.from_uuid(uid, store=store, definition=steps)
    engine.resume(stop_on_error=False, stop_on_halt=False)
    assert [r["data"] for r in store.token_rows(uid)] == [2, 3, 5, 6]


def test_a_queued_run_is_not_resumed_in_a_process_meanwhile(store: Store) -> None:
    uid = queued(store, "double", STEPS, [1, 2])
    engine = PersistentWorkflowEngine.from_uuid(uid, store=store, definition=STEPS)
    with pytest.raises(WorkflowLockedError, match="queue:q"):
        engine.resume()


def test_what_cannot_be_queued_is_refused_naming_why(store: Store) -> None:
    engine = PersistentWorkflowEngine.with_name("double", store=store, definition=STEPS)
    with pytest.raises(StoredRunError, match="no input stored"):
        WorkQueue(store, "q").enqueue(engine.uuid)
    with pytest.raises(WorkflowValueError, match="a queue's name"):
        engine.enqueue([1], "no spaces")
    uid = queued(store, "double", STEPS, [1])
    with pytest.raises(WorkflowLockedError, match="queued on 'q'"):
        WorkQueue(store, "other").enqueue(uid)
    again = PersistentWorkflowEngine.with_name("double", store=store, uuid=uid)
    with pytest.raises(WorkflowAPIError, match="existed already"):
        again.enqueue([1])
    running = PersistentWorkflowEngine.with_name("double", store=store, definition=STEPS)
    running._writes.store_tokens([1])
    store.acquire(running.uuid, "someone else")
    with pytest.raises(WorkflowLockedError, match="runs in a process"):
        WorkQueue(store, "q").enqueue(running.uuid)


def test_claims_never_hand_one_token_to_two_workers(store: Store) -> None:
    uid = queued(store, "double", STEPS, list(range(60)))
    queue = WorkQueue(store, "q")
    claimed: list[list[int]] = [[] for _ in range(4)]

    def claimer(index: int) -> None:
        while True:
            leases = queue.claim(f"worker-{index}", limit=3)
            if not leases:
                return
            claimed[index] += [lease.position for lease in leases]

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(p for positions in claimed for p in positions)
    assert every == list(range(60))
    assert queue.counts(uid) == {"ready": 0, "claimed": 60, "done": 0}


def test_a_lapsed_lease_is_taken_over_and_the_old_holder_writes_nothing(store: Store) -> None:
    uid = queued(store, "double", STEPS, [10])
    queue = WorkQueue(store, "q", lease_ttl=0.2)
    [stalled] = queue.claim("stalled")
    assert queue.claim("other") == []  # held: not claimable
    time.sleep(0.3)
    [taken] = queue.claim("other")
    assert (taken.position, taken.epoch) == (stalled.position, stalled.epoch + 1)
    assert not queue.renew(stalled)
    engine = QueuedTokenEngine(store, stalled, lease_ttl=0.2)
    engine.callbacks.replace(STEPS)
    with pytest.raises(LeaseLostError, match="another worker claimed the token"):
        engine.run_token()
    assert store.token_row(uid, 0)["data"] == 10  # nothing of the stalled worker's
    engine = QueuedTokenEngine(store, taken, lease_ttl=5.0)
    engine.callbacks.replace(STEPS)
    assert engine.run_token() is ObjectStatus.COMPLETED
    assert store.token_row(uid, 0)["data"] == 21
    assert engine.run_outcome is WorkflowStatus.COMPLETED


def test_a_task_longer_than_the_lease_keeps_it_renewed(store: Store) -> None:
    claims: list[int] = []

    def slow(obj: Any, eng: Any) -> None:
        for _ in range(3):  # 3 lease times in all: unrenewed, the lease lapses twice
            time.sleep(0.4)
            claims.append(len(WorkQueue(store, "q", lease_ttl=0.4).claim("intruder")))
        obj.data += 1

    uid = queued(store, "slow", [slow], [1])
    worker = Worker(store, {"slow": [slow]}, queue="q", lease_ttl=0.4)
    assert drain(worker) == 1
    assert claims == [0, 0, 0]  # never claimable while the task ran
    assert store.token_row(uid, 0)["data"] == 2
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value


def test_a_dead_workers_token_is_run_again_from_its_last_checkpoint(store: Store) -> None:
    uid = queued(store, "double", STEPS, [1, 2, 3])
    queue = WorkQueue(store, "q", lease_ttl=0.2)
    queue.claim("died")  # and never ran it
    time.sleep(0.3)
    worker = Worker(store, {"double": STEPS}, queue="q", lease_ttl=0.2)
    assert drain(worker) == 3
    assert [r["data"] for r in store.token_rows(uid)] == [3, 5, 7]
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value


def test_a_token_that_waits_is_queued_again_when_its_wait_is_decided(store: Store) -> None:
    steps = [double, *SLEEP("nap", "PT2S"), add_one]
    uid = queued(store, "naps", steps, [1, 2])
    worker = Worker(store, {"naps": steps}, queue="q", concurrency=2, poll=0.05)
    assert worker.run_once().ran == 2  # both halt at their nap, well before it ends
    assert store.workflow(uid)["status"] == WorkflowStatus.HALTED.value
    assert store.workflow(uid)["lock_owner"] is None
    deadline = time.monotonic() + 30
    while store.workflow(uid)["status"] != WorkflowStatus.COMPLETED.value:
        assert time.monotonic() < deadline, "the run did not go on after its naps"
        worker.run_once()
        time.sleep(0.05)
    assert [r["data"] for r in store.token_rows(uid)] == [3, 5]
    messages = [c["message"] for c in store.status_change_rows(uid) if c["token_position"] is None]
    assert any(message.startswith("requeued on 'q': ") for message in messages)
    assert messages[-1] == "finished"


def test_an_enqueued_run_whose_tokens_all_completed_is_finished_at_once(store: Store) -> None:
    engine = PersistentWorkflowEngine.with_name("double", store=store, definition=STEPS)
    engine.process([1])
    with store.transaction("reopen") as conn:  # completed tokens, but a run not finished
        conn.execute(
            sa.text("UPDATE wf_workflow SET status = :s WHERE uuid = :u"),
            {"s": WorkflowStatus.RUNNING.value, "u": engine.uuid},
        )
    assert WorkQueue(store, "q").enqueue(engine.uuid) == 0
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.COMPLETED.value
    assert store.workflow(engine.uuid)["lock_owner"] is None


def test_a_worker_without_the_definition_gives_the_token_back(store: Store) -> None:
    uid = queued(store, "double", STEPS, [1])
    worker = Worker(store, {}, queue="q")
    assert worker.run_once().ran == 0
    assert WorkQueue(store, "q").counts(uid) == {"ready": 1, "claimed": 0, "done": 0}
    drain(Worker(store, {"double": STEPS}, queue="q"))
    assert store.token_row(uid, 0)["data"] == 3


def test_worker_options_are_checked() -> None:
    store = Store("sqlite://")
    with pytest.raises(WorkflowValueError, match="concurrency"):
        Worker(store, {}, queue="q", concurrency=0)
    with pytest.raises(WorkflowValueError, match="lease_ttl"):
        WorkQueue(store, "q", lease_ttl=0)
    with pytest.raises(WorkflowValueError, match="in-memory SQLite database"):
        Worker(store, {}, queue="q", concurrency=2)


def test_a_queued_run_is_cancelled_and_its_workers_stop(store: Store) -> None:
    uid = queued(store, "double", STEPS, [1, 2, 3])
    queue = WorkQueue(store, "q")
    [running] = queue.claim("busy")  # a worker runs token 0 as the run is cancelled
    assert store.cancel(uid, "not needed", by="alice")
    row = store.workflow(uid)
    assert (row["status"], row["lock_owner"]) == (WorkflowStatus.CANCELLED.value, None)
    assert queue.counts(uid) == {"ready": 0, "claimed": 0, "done": 3}
    engine = QueuedTokenEngine(store, running, lease_ttl=5.0)
    engine.callbacks.replace(STEPS)
    with pytest.raises(StoredRunError, match="was cancelled"):
        engine.run_token()
    assert Worker(store, {"double": STEPS}, queue="q").run_once().ran == 0
    assert [r["data"] for r in store.token_rows(uid)] == [1, 2, 3]
    with pytest.raises(StoredRunError, match="cancelled"):
        queue.requeue(uid, [0])
    assert store.workflow(uid)["status"] == WorkflowStatus.CANCELLED.value


def test_a_worker_whose_token_is_cancelled_mid_task_stores_nothing(store: Store) -> None:
    started, go_on = threading.Event(), threading.Event()

    def slow(obj: Any, eng: Any) -> None:
        started.set()
        assert go_on.wait(10)
        obj.data = "changed"

    uid = queued(store, "slow", [slow], ["kept"])
    worker = Worker(store, {"slow": [slow]}, queue="q")
    passing = threading.Thread(target=worker.run_once)
    passing.start()
    assert started.wait(10)
    assert store.cancel(uid)
    go_on.set()
    passing.join(10)
    assert store.token_row(uid, 0)["data"] == "kept"
    assert store.workflow(uid)["status"] == WorkflowStatus.CANCELLED.value


def test_a_worker_thread_fails_a_task_over_its_time_limit(store: Store) -> None:
    def slow(obj: Any, eng: Any) -> None:
        time.sleep(0.4)  # in a worker's thread: not interrupted, but failed when it returns

    steps = [time_limited(0.2, slow)]
    uid = queued(store, "slow", steps, [1, 2])
    drain(Worker(store, {"slow": steps}, queue="q", concurrency=2))
    rows = store.token_rows(uid)
    assert [r["status"] for r in rows] == [ObjectStatus.ERROR.value] * 2
    assert all("ran past its time limit of 0.2 s (it took" in r["last_error"] for r in rows)
    assert store.workflow(uid)["status"] == WorkflowStatus.ERROR.value
