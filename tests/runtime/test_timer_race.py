"""Timers with many workers, timers that passed while no process ran, and SIGKILL chaos.

Real processes throughout: workers forked by ``race_worker.py fork`` race for
the same timers; a ``race_worker.py worker`` program started after the
timers' due time continues the runs; workers killed with SIGKILL at random
moments while they fire and continue leave nothing half done. Each task that
matters writes a line to an effects file outside the database before it
changes its token (see ``race_flows.py``), so the tests count how often it
really ran. On SQLite, PostgreSQL and MariaDB.

``WORKFLOW_RACE_SEED`` replays a plan (the moments the kills land on still
vary with the machine's timing).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from workflow.engine_db import ObjectStatus
from workflow.runtime import Worker
from workflow.storage import PersistentWorkflowEngine, Store

from .race_flows import DEFINITIONS, EFFECTS, in_
from .racing import (
    WORKER,
    Crowd,
    all_completed,
    child_env,
    effect_lines,
    statuses,
    wait_rows,
    wait_until,
)

pytestmark = [
    pytest.mark.crash,
    pytest.mark.skipif(sys.platform == "win32", reason="needs fork() and SIGKILL"),
]

SEED = int(os.environ.get("WORKFLOW_RACE_SEED") or random.SystemRandom().randrange(2**32))
COMPLETED = ObjectStatus.COMPLETED.value


def start_runs(
    store: Store, name: str, runs: list[list[float]]
) -> tuple[list[str], list[list[dict[str, Any]]]]:
    """Start one run called ``name`` per item of ``runs``; return their uuids and tokens.

    Each item lists the run's tokens as the seconds from the run's start to
    its token's due time (``data["until"]``), so that however long starting
    the runs takes, no token is due before its run stored its wait.
    """
    uuids = []
    started = []
    for seconds in runs:
        items = [{"until": in_(offset)} for offset in seconds]
        engine = PersistentWorkflowEngine.with_name(name, store=store, definition=DEFINITIONS[name])
        engine.process(items, stop_on_halt=False)  # each token halts at its first wait
        uuids.append(engine.uuid)
        started.append(items)
    return uuids, started


def token_rows(store: Store, uuids: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(uuid, row["position"]): row for uuid in uuids for row in store.token_rows(uuid)}


def start_worker(url: str, stop: Path, effects: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``race_worker.py worker``: a real Worker with a one-second lock TTL."""
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, str(WORKER), "worker", url, "--stop", str(stop), "--lock-ttl", "1"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=child_env(effects),
        )


# -- a timer fires once, whatever the number of workers --------------------------------


def test_each_timer_fires_once_and_never_early_with_six_racing_workers(
    store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    effects = tmp_path / "effects.txt"
    monkeypatch.setenv(EFFECTS, str(effects))
    # 100 runs of two tokens: most timers due a second after their run
    # started, the others within the next seconds, while the workers run
    plan = [
        [1.0 if rng.random() < 0.75 else 2 + 2 * rng.random() for _ in range(2)] for _ in range(100)
    ]
    uuids, runs = start_runs(store, "nap", plan)
    assert statuses(store, "nap") == Counter({"HALTED": 100})
    roles = [{"role": "work", "batch": 20}] * 4 + [{"role": "fire", "limit": 10}] * 2
    crowd = Crowd(tmp_path / "workers", db_url, roles, effects=effects)
    try:
        crowd.go()
        done = all_completed(store, "nap", 100)
        wait_until(lambda: (crowd.check(), done())[1], "every run continued")
        crowd.stop()
        results = crowd.results()
    finally:
        crowd.close()

    rows = wait_rows(store)
    assert len(rows) == 200
    # each timer fired by exactly one fire_due of one process, never before its time
    assert sum(result["fired"] for result in results) == 200, f"seed {SEED}"
    for row in rows.values():
        assert (row.kind, row.phase, row.decision) == ("sleep", "done", "fired"), row
        assert row.decided >= row.due, (SEED, row.id, row.decided, row.due)
    # each token continued once: one "woke" line per token, outside the database
    assert effect_lines(effects) == Counter(
        {(uuid, position, "woke"): 1 for uuid in uuids for position in range(2)}
    ), f"seed {SEED}"
    for (uuid, position), row in token_rows(store, uuids).items():
        assert row["status"] == COMPLETED
        assert row["data"] == {**runs[uuids.index(uuid)][position], "trace": ["woke"]}
        assert row["extra_data"]["nap"]["fired"] >= row["extra_data"]["nap"]["due"]


# -- timers that passed while nothing ran ---------------------------------------------


def test_a_worker_started_after_the_deadlines_continues_every_run(
    store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    effects = tmp_path / "effects.txt"
    monkeypatch.setenv(EFFECTS, str(effects))
    naps, _ = start_runs(store, "nap", [[0.5]] * 20)
    questions, _ = start_runs(store, "deadline", [[0.5]] * 20)
    # every process is down while the times pass
    wait_until(lambda: all(row.due < store.now() for row in wait_rows(store).values()), "due")
    assert {row.phase for row in wait_rows(store).values()} == {"waiting"}
    stop = tmp_path / "stop"
    worker = start_worker(db_url, stop, effects, tmp_path / "worker.txt")
    try:
        wait_until(all_completed(store, "nap", 20), "the naps continued")
        wait_until(all_completed(store, "deadline", 20), "the questions continued")
    finally:
        stop.touch()
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.txt").read_text()
    assert effect_lines(effects) == Counter(
        {(uuid, 0, "woke"): 1 for uuid in naps} | {(uuid, 0, "shipped"): 1 for uuid in questions}
    )
    for (_, _), row in token_rows(store, questions).items():
        result = row["extra_data"]["approve"]
        assert (result["decision"], result["timed_out"], result["answers"]) == (
            "approved",
            True,
            [],
        )
    assert {row.phase for row in wait_rows(store).values()} == {"done"}


# -- SIGKILL while firing and continuing ------------------------------------------------

#: Runs (of two tokens) of the chaos test, and how many workers are killed.
CHAOS_RUNS = 40
KILLS = int(os.environ.get("WORKFLOW_RACE_KILLS") or 10)
#: Workers running at once.
CHAOS_WORKERS = 3


def in_a_task(
    workers: list[subprocess.Popen[bytes]], effects: Path, timeout: float = 2.0
) -> subprocess.Popen[bytes] | None:
    """Return the worker whose task writes its line now (``None`` if none does soon)."""
    by_pid = {worker.pid: worker for worker in workers}
    seen = effects.stat().st_size if effects.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if effects.exists() and effects.stat().st_size > seen:
            with effects.open("rb") as lines:
                lines.seek(seen)
                for line in lines.read().decode().splitlines():
                    pid = int(line.split()[-1])
                    if pid in by_pid:
                        return by_pid[pid]
                seen = lines.tell()
        time.sleep(0.0005)
    return None


def reference(tmp_path: Path, runs: list[list[float]]) -> list[list[Any]]:
    """The tokens' data after an uninterrupted run of each chain, in one process."""
    store = Store(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    store.create_all()
    try:
        uuids, _ = start_runs(store, "chain", runs)
        worker = Worker(store, DEFINITIONS, poll=0.01)
        worker.run(until=all_completed(store, "chain", len(runs)))
        return [[row["data"] for row in store.token_rows(uuid)] for uuid in uuids]
    finally:
        store.dispose()


def test_workers_killed_while_firing_and_continuing_leave_nothing_half_done(
    store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    effects = tmp_path / "effects.txt"
    plan = [[0.5 + 6 * rng.random() for _ in range(2)] for _ in range(CHAOS_RUNS)]
    expected = reference(tmp_path, plan)
    monkeypatch.setenv(EFFECTS, str(effects))
    uuids, runs = start_runs(store, "chain", plan)
    stop = tmp_path / "stop"
    log = tmp_path / "workers.txt"
    workers = [start_worker(db_url, stop, effects, log) for _ in range(CHAOS_WORKERS)]
    killed = []
    try:
        for number in range(KILLS):
            # every other kill at a random moment, the others inside a task
            victim = None if number % 2 else in_a_task(workers, effects)
            if victim is None:
                time.sleep(rng.uniform(0.1, 0.6))
                victim = rng.choice(workers)
            workers.remove(victim)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed.append(victim.returncode)
            workers.append(start_worker(db_url, stop, effects, log))
        wait_until(all_completed(store, "chain", CHAOS_RUNS), f"every run completed (seed {SEED})")
    finally:
        stop.touch()
        for worker in workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    assert [worker.returncode for worker in workers] == [0] * CHAOS_WORKERS, log.read_text()
    assert killed == [-signal.SIGKILL] * KILLS

    # every wait opened once and done once; never fired early
    rows = wait_rows(store)
    assert len(rows) == CHAOS_RUNS * 2 * 2, f"seed {SEED}"
    for row in rows.values():
        assert (row.phase, row.decision) == ("done", "fired"), (SEED, row)
        assert row.decided >= row.due, (SEED, row.id)
    # each token completed with the data of an uninterrupted run
    for index, uuid in enumerate(uuids):
        stored = store.token_rows(uuid)
        assert [row["status"] for row in stored] == [COMPLETED, COMPLETED], (SEED, uuid)
        assert [row["data"] for row in stored] == [
            {**data, "until": runs[index][position]["until"]}
            for position, data in enumerate(expected[index])
        ], (SEED, uuid)
    # each task ran at least once (more only where a kill cut it off before its commit)
    ran = effect_lines(effects)
    for uuid in uuids:
        for position in range(2):
            for step in ("b", "c"):
                assert ran[(uuid, position, step)] >= 1, (SEED, uuid, position, step)
            assert ran[(uuid, position, "a")] == 1  # run by this process, before the workers
