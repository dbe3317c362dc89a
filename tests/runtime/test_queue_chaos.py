"""Chaos: queue workers killed with SIGKILL while they run a run's tokens.

Four real worker processes run 1,000 tokens of five tasks each on
PostgreSQL (300 on SQLite and MariaDB, to keep CI's time) while a random
worker is killed every 2 s and a new one started in its place. The run must
complete; every token's data must equal an uninterrupted run's (each task's
result stored once: a task whose result was stored twice would show in the
token's ``done`` list); the status log must show each token completing once.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.runtime.queue_worker import DEFINITIONS, FAN_FLOW, expected, expected_fanout
from tests.runtime.racing import child_env, wait_until
from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.storage import PersistentWorkflowEngine, Store

pytestmark = pytest.mark.crash

WORKER = Path(__file__).with_name("queue_worker.py")
TOKENS = {"sqlite": 300, "postgresql": 1000, "mariadb": 300}
#: Tokens of the parallel chaos run: each forks three items of two tasks.
FANOUT_TOKENS = {"sqlite": 30, "postgresql": 80, "mariadb": 30}


def start_worker(url: str, stop: Path, log: Path, queue: str = "chaos") -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(WORKER), url, queue, "--stop", str(stop)],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=child_env(),
        )


def run_with_kills(store: Store, uid: str, db_url: str, tmp_path: Path, queue: str) -> int:
    """Run ``uid`` with four workers, one killed every 2 s and replaced; return the kills."""
    stop, log = tmp_path / "stop", tmp_path / "workers.log"
    workers = [start_worker(db_url, stop, log, queue) for _ in range(4)]
    chooser = random.Random(20261206)
    kills = 0
    try:
        deadline = time.monotonic() + 240
        next_kill = time.monotonic() + 1.0  # the first soon, then every 2 s
        while store.workflow(uid)["status"] == WorkflowStatus.RUNNING.value:
            assert time.monotonic() < deadline, f"the run did not finish ({kills} kills)"
            if time.monotonic() >= next_kill:
                victim = chooser.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = start_worker(db_url, stop, log, queue)
                kills += 1
                next_kill += 2.0
            time.sleep(0.05)
    finally:
        stop.touch()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    wait_until(lambda: all(w.poll() is not None for w in workers), "the workers stopped", 30)
    return kills


def assert_completed_once(store: Store, uid: str, tokens: int) -> None:
    """Each of the run's ``tokens`` completed once in the status log; the run finished once."""
    changes = store.status_change_rows(uid)
    completed = Counter(
        change["token_position"]
        for change in changes
        if change["token_position"] is not None
        and change["to_status"] == ObjectStatus.COMPLETED.value
    )
    assert completed == Counter(range(tokens))
    finished = [c for c in changes if c["token_position"] is None and c["message"] == "finished"]
    assert len(finished) == 1


def test_killed_workers_leave_every_token_as_an_uninterrupted_run(
    backend: str, store: Store, db_url: str, tmp_path: Path
) -> None:
    count = TOKENS[backend]
    engine = PersistentWorkflowEngine.with_name(
        "chaos", store=store, definition=DEFINITIONS["chaos"], checkpoint="task"
    )
    engine.enqueue([{"value": n, "done": []} for n in range(count)], "chaos")
    log = tmp_path / "workers.log"
    kills = run_with_kills(store, engine.uuid, db_url, tmp_path, "chaos")
    assert kills >= 1, "the run finished before any worker was killed: make it longer"
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.COMPLETED.value, log.read_text()
    rows = store.token_rows(engine.uuid)
    assert [row["data"] for row in rows] == [expected(n) for n in range(count)]
    assert {row["status"] for row in rows} == {ObjectStatus.COMPLETED.value}
    assert_completed_once(store, engine.uuid, count)


def test_killed_workers_join_every_parallel_step_once(
    backend: str, store: Store, db_url: str, tmp_path: Path
) -> None:
    count = FANOUT_TOKENS[backend]
    engine = PersistentWorkflowEngine.with_name(
        "fanout", store=store, definition=DEFINITIONS["fanout"], checkpoint="task"
    )
    engine.enqueue([FAN_FLOW.new_context(n) for n in range(count)], "fanout")
    log = tmp_path / "workers.log"
    kills = run_with_kills(store, engine.uuid, db_url, tmp_path, "fanout")
    assert kills >= 1, "the run finished before any worker was killed: make it longer"
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.COMPLETED.value, log.read_text()
    rows = store.token_rows(engine.uuid)
    assert len(rows) == count * 4  # each token and its three items
    assert {row["status"] for row in rows} == {ObjectStatus.COMPLETED.value}
    for row in rows[:count]:
        data = dict(row["data"])
        data.pop("_runtime")
        wanted = expected_fanout(data["_input"])
        wanted.pop("_runtime")
        assert data == wanted
    assert_completed_once(store, engine.uuid, count * 4)
