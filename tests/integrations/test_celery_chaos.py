"""Chaos: ``celery worker`` processes killed with SIGKILL while they run a run's tokens.

Two real workers (two pool processes each) run 200 tokens of five tasks,
over Redis and over RabbitMQ, while every 2 s a pool process (Celery
redelivers its message: late acks, reject on worker lost) or a whole
worker (its messages come back from the broker, or from the sweep) is
killed and a new worker started. The test sweeps as ``celery beat`` would.
The run must complete with every token's data equal to an uninterrupted
run's, each token completing once in the status log.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest

from tests.integrations.celery_app import expected
from tests.integrations.conftest import Celery
from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.storage import PersistentWorkflowEngine

pytestmark = pytest.mark.crash

TOKENS = 200
#: Seconds each task pauses: long enough that the run outlasts a few kills.
PAUSE = 0.03


def test_killed_celery_workers_leave_every_token_as_an_uninterrupted_run(
    celery_setup: Celery,
) -> None:
    celery, store = celery_setup, celery_setup.store
    engine = PersistentWorkflowEngine.with_name("steps", store=store)
    items = [{"value": n, "done": []} for n in range(TOKENS)]
    workers = [celery.start_worker(f"chaos{n}", concurrency=2, pause=PAUSE) for n in range(2)]
    started = len(workers)
    celery.queue.enqueue(engine, items)
    chooser = random.Random(20261206)
    kills = {"pool process": 0, "worker": 0}
    try:
        deadline = time.monotonic() + 120
        next_kill = time.monotonic() + 2.0
        while store.workflow(engine.uuid)["status"] == WorkflowStatus.RUNNING.value:
            assert time.monotonic() < deadline, f"the run did not finish ({kills})"
            if time.monotonic() >= next_kill:
                victim = chooser.randrange(len(workers))
                pool = workers[victim].pool()
                if sum(kills.values()) % 2 == 0 and pool:
                    os.kill(chooser.choice(pool), signal.SIGKILL)
                    kills["pool process"] += 1
                else:
                    workers[victim].kill()
                    workers[victim] = celery.start_worker(
                        f"chaos{started}", concurrency=2, pause=PAUSE
                    )
                    started += 1
                    kills["worker"] += 1
                next_kill = time.monotonic() + 2.0
            celery.queue.sweep()  # what celery beat does every sweep_every seconds
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()
    assert kills["pool process"] >= 1, f"too few kills: {kills}"
    assert kills["worker"] >= 1, f"too few kills: {kills}"
    logs = "".join(path.read_text() for path in celery.logs.glob("chaos*.log"))
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.COMPLETED.value, logs
    rows = store.token_rows(engine.uuid)
    assert [row["data"] for row in rows] == [expected(n) for n in range(TOKENS)]
    assert {row["status"] for row in rows} == {ObjectStatus.COMPLETED.value}
    changes = store.status_change_rows(engine.uuid)
    completed = Counter(
        change["token_position"]
        for change in changes
        if change["token_position"] is not None
        and change["to_status"] == ObjectStatus.COMPLETED.value
    )
    assert completed == Counter(range(TOKENS))
    assert [c["message"] for c in changes if c["token_position"] is None].count("finished") == 1
