"""Two processes never run the same workflow at once.

Process A is a real subprocess (``lock_worker.py``) that takes the workflow's lock
and waits, on the token ``hold_at``, until the test opens its gate file. Process B
is this test process, or a second worker. Locks held by dead processes expire
after the store's ``lock_ttl``; an engine whose expired lock was taken over finds
out at its next checkpoint.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.storage.lock_worker import DEFINITION
from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import WorkflowLockedError, WorkflowValueError
from workflow.storage import CheckpointPolicy, PersistentWorkflowEngine, Store, Token

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("lock_worker.py")
COMPLETED = ObjectStatus.COMPLETED
INITIAL = ObjectStatus.INITIAL


class Worker:
    """A ``lock_worker.py`` process whose output lines the test reads one by one."""

    def __init__(self, url: str, uid: str, *options: str) -> None:
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), url, uid, *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path},
        )
        self.pid = self.process.pid
        self._pending = b""

    def line(self, timeout: float = 20.0) -> str:
        """Return the worker's next output line; fail when it exits or stays silent."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"the worker printed nothing for {timeout} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                pytest.fail(f"the worker exited ({self.finish()}): {self.stderr()}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def finish(self, timeout: float = 20.0) -> int:
        """Wait for the worker to exit and return its exit status."""
        return self.process.wait(timeout)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_worker(db_url: str) -> Iterator[Callable[..., Worker]]:
    """Start ``lock_worker.py`` processes on the database under test; kill leftovers."""
    started: list[Worker] = []

    def start(uid: str, *options: str) -> Worker:
        worker = Worker(db_url, uid, *options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Any]:
    """The workflow ``extra_data`` that points the worker's tasks at this test's files."""
    return {"calls": str(tmp_path / "calls.log"), "gate": str(tmp_path / "gate"), "hold_at": 1}


def calls(files: dict[str, Any]) -> list[tuple[int, int]]:
    """Return the logged task calls as ``(pid, token)``, in the order they happened."""
    path = Path(files["calls"])
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [(int(line.split()[0]), int(line.split()[1])) for line in lines]


def open_gate(files: dict[str, Any], after: float = 0.0) -> threading.Timer:
    timer = threading.Timer(after, Path(files["gate"]).touch)
    timer.start()
    return timer


def statuses(store: Store, uid: str) -> list[ObjectStatus]:
    return [ObjectStatus(row["status"]) for row in store.token_rows(uid)]


def test_a_second_process_cannot_resume_a_workflow_another_process_runs(
    store: Store, start_worker: Callable[..., Worker], files: dict[str, Any]
) -> None:
    uid = PersistentWorkflowEngine.with_name("busy", store=store, extra_data=files).uuid
    a = start_worker(uid, "--tokens", "3")
    holding = a.line()
    assert holding.startswith("holding ")
    owner = holding.removeprefix("holding ")
    assert f":{a.pid}:" in owner  # host:pid:random

    # Another worker process is turned away, naming the holder...
    b = start_worker(uid)
    assert b.line() == f"locked {owner}"
    assert b.finish() == 3
    # ... and so is this process.
    before = store.token_rows(uid)
    here = PersistentWorkflowEngine.from_uuid(uid, store=store, definition=DEFINITION)
    with pytest.raises(WorkflowLockedError, match="is being run by") as info:
        here.resume()
    error = info.value
    assert error.owner == owner
    assert owner in str(error)
    assert (error.workflow, error.operation) == (uid, "lock")
    assert error.expires > datetime.now(timezone.utc)
    assert store.token_rows(uid) == before  # the refused engine wrote nothing
    assert store.workflow(uid)["lock_owner"] == owner

    open_gate(files).join()
    assert a.line() == "finished"
    assert a.finish() == 0
    assert calls(files) == [(a.pid, 0), (a.pid, 1), (a.pid, 2)]
    assert statuses(store, uid) == [COMPLETED] * 3
    assert store.workflow(uid)["lock_owner"] is None


def run_while_a_worker_holds_the_lock(
    store: Store, start_worker: Callable[..., Worker], files: dict[str, Any], **extra: Any
) -> tuple[Worker, PersistentWorkflowEngine, float]:
    """Start worker A on 4 tokens; resume with ``lock_wait`` here while A holds the lock.

    A is released 0.3 s after this process starts waiting. Return A, this
    process's engine and how long its resume() waited and ran.
    """
    uid = PersistentWorkflowEngine.with_name(
        "queue", store=store, extra_data={**files, **extra}
    ).uuid
    a = start_worker(uid, "--tokens", "4")
    assert a.line().startswith("holding ")
    waiting = PersistentWorkflowEngine.from_uuid(
        uid, store=store, definition=DEFINITION, lock_wait=20
    )
    timer = open_gate(files, after=0.3)
    started = time.monotonic()
    try:
        waiting.resume()
    finally:
        timer.join()
    return a, waiting, time.monotonic() - started


def test_a_resume_given_lock_wait_waits_for_the_holder_and_then_proceeds(
    store: Store, start_worker: Callable[..., Worker], files: dict[str, Any]
) -> None:
    a, waiting, took = run_while_a_worker_holds_the_lock(store, start_worker, files)

    assert a.line() == "finished"
    assert a.finish() == 0
    assert took >= 0.3
    log = calls(files)
    here = [index for index, (pid, _) in enumerate(log) if pid == os.getpid()]
    there = [index for index, (pid, _) in enumerate(log) if pid == a.pid]
    assert there
    assert all(i < j for i in there for j in here)  # never both at once
    assert statuses(store, waiting.uuid) == [COMPLETED] * 4
    assert WorkflowStatus(store.workflow(waiting.uuid)["status"]) is WorkflowStatus.COMPLETED
    assert store.workflow(waiting.uuid)["lock_owner"] is None


def test_a_resume_that_waited_for_the_lock_runs_only_what_the_holder_left(
    store: Store, start_worker: Callable[..., Worker], files: dict[str, Any]
) -> None:
    a, waiting, _ = run_while_a_worker_holds_the_lock(store, start_worker, files, halt_at=3)

    assert a.line() == "halted waiting for the next process"
    assert a.finish() == 0
    assert Counter(token for _, token in calls(files)) == Counter(range(4))
    assert [t.data for t in waiting.load_tokens()] == [{"calls": 1}] * 4
    assert statuses(store, waiting.uuid) == [COMPLETED] * 4


def test_the_lock_of_a_killed_process_expires_and_its_run_is_recovered(
    store: Store, start_worker: Callable[..., Worker], files: dict[str, Any]
) -> None:
    uid = PersistentWorkflowEngine.with_name("orphan", store=store, extra_data=files).uuid
    a = start_worker(uid, "--tokens", "4", "--lock-ttl", "1.0")
    owner = a.line().removeprefix("holding ")
    os.kill(a.pid, signal.SIGKILL)
    assert a.finish() == -signal.SIGKILL

    # The dead process's lock still holds for a while...
    with pytest.raises(WorkflowLockedError) as info:
        PersistentWorkflowEngine.from_uuid(uid, store=store, definition=DEFINITION).resume()
    assert info.value.owner == owner
    assert WorkflowStatus(store.workflow(uid)["status"]) is WorkflowStatus.RUNNING

    # ... then it expires and another process recovers the run.
    Path(files["gate"]).touch()
    recovering = PersistentWorkflowEngine.from_uuid(
        uid, store=store, definition=DEFINITION, lock_wait=10
    )
    started = time.monotonic()
    recovering.resume()
    assert time.monotonic() - started < 5

    me = os.getpid()
    # Token 0 was committed by A; token 1, running when A died, starts over.
    assert calls(files) == [(a.pid, 0), (a.pid, 1), (me, 1), (me, 2), (me, 3)]
    assert [t.data for t in recovering.load_tokens()] == [{"calls": 1}] * 4
    assert statuses(store, uid) == [COMPLETED] * 4
    row = store.workflow(uid)
    assert (WorkflowStatus(row["status"]), row["lock_owner"]) == (WorkflowStatus.COMPLETED, None)


def committed(observer: Store, uid: str) -> dict[str, Any]:
    """Everything stored about the run, to compare before and after."""
    return {
        "workflow": observer.workflow(uid),
        "tokens": observer.token_rows(uid),
        "transitions": observer.transition_rows(uid),
    }


@pytest.mark.parametrize("policy", list(CheckpointPolicy), ids=lambda p: p.value)
def test_an_engine_that_lost_its_lock_raises_at_its_next_checkpoint_and_writes_nothing(
    db_url: str, store: Store, policy: CheckpointPolicy
) -> None:
    ttl = 0.2
    short = Store(db_url, lock_ttl=ttl)
    taken: dict[str, Any] = {}

    def stall(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 1 and not taken:
            # A process frozen whole (SIGSTOP, a paused VM) stops its heartbeat too.
            eng._stop_heartbeat()
            time.sleep(ttl + 0.1)  # the engine's lock expires...
            intruder = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=[])
            store.acquire(eng.uuid, intruder.owner)  # ... and another engine takes it over
            taken.update(intruder=intruder, state=committed(store, eng.uuid))

    def mark(obj: Token, eng: PersistentWorkflowEngine) -> None:
        obj.data["marks"] = obj.data.get("marks", 0) + 1

    try:
        eng = PersistentWorkflowEngine.with_name(
            "lapsed", store=short, definition=[mark, stall, mark], checkpoint=policy
        )
        with pytest.raises(WorkflowLockedError, match="lost the lock") as info:
            eng.process([{}, {}, {}])
    finally:
        short.dispose()

    assert info.value.workflow == eng.uuid
    assert committed(store, eng.uuid) == taken["state"]
    intruder: PersistentWorkflowEngine = taken["intruder"]
    assert store.workflow(eng.uuid)["lock_owner"] == intruder.owner

    # The engine that holds the lock now finishes the run.
    intruder.callbacks.replace([mark, stall, mark])
    intruder.checkpoint = policy
    intruder.resume()
    assert statuses(store, eng.uuid) == [COMPLETED] * 3
    assert [t.data for t in intruder.load_tokens()] == [{"marks": 2}] * 3


RESUMERS = 8
RACE_TOKENS = 40


def test_eight_processes_resuming_one_halted_run_run_it_once_without_an_error(
    store: Store, start_worker: Callable[..., Worker], files: dict[str, Any]
) -> None:
    # Eight real processes resume one halted run at once, each willing to wait
    # 60 s for the lock. While one runs (a checkpoint per token), the others
    # poll the lock: no deadlock or serialisation failure may reach them (on
    # MariaDB four of eight used to end with "Deadlock found"), and every task
    # call happens once.
    uid = PersistentWorkflowEngine.with_name(
        "raced", store=store, extra_data={**files, "hold_at": None, "halt_at": 0}
    ).uuid
    first = start_worker(uid, "--tokens", str(RACE_TOKENS))
    assert first.line() == "halted waiting for the next process"
    assert first.finish() == 0
    workers = [start_worker(uid, "--lock-wait", "60") for _ in range(RESUMERS)]
    outcomes = Counter()
    for worker in workers:
        line = worker.line(timeout=120)
        outcomes[line] += 1
        assert worker.finish(timeout=120) == 0, f"{line}: {worker.stderr()}"
    assert outcomes == Counter({"finished": RESUMERS})
    assert Counter(token for _, token in calls(files)) == Counter(range(RACE_TOKENS))
    assert len({pid for pid, token in calls(files) if token > 0}) == 1  # one process ran them
    assert statuses(store, uid) == [COMPLETED] * RACE_TOKENS
    assert store.workflow(uid)["lock_owner"] is None


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan"), float("inf"), "60"])
def test_lock_ttl_is_a_finite_number_of_seconds_above_0(ttl: Any, tmp_path: Path) -> None:
    with pytest.raises(WorkflowValueError, match="lock_ttl must be a finite number of seconds"):
        Store(f"sqlite:///{tmp_path / 'x.sqlite'}", lock_ttl=ttl)
    assert not (tmp_path / "x.sqlite").exists()
