"""``workflow worker --celery`` and ``workflow run --queue --celery``: real brokers, real processes.

Over Redis and over RabbitMQ, with PostgreSQL as the database: a worker
started through the command line (a Celery worker with a prefork pool and an
embedded beat) runs the tokens of runs that ``workflow run --queue NAME
--celery URL`` queued and sent, and those of runs queued without
``--celery``, which its sweep sends; SIGTERM and Ctrl-C (SIGINT) stop it
cleanly, its pool and beat with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integrations.cli_celery_tasks import expected
from tests.integrations.conftest import Celery
from tests.runtime.racing import child_env, wait_until
from workflow.engine_db import WorkflowStatus
from workflow.storage.queue import WorkQueue

TASKS = "tests.integrations.cli_celery_tasks"
QUEUE = "steps"


@dataclass
class CLIWorker:
    """A ``workflow worker --celery`` process (a session of its own) and its output files."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum``; return the exit code once the worker stopped (SIGKILL after 30 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"the worker did not stop:\n{self.err.read_text()}")
        return self.process.returncode

    def session_left(self) -> list[str]:
        """The processes of the worker's session still alive (its pool, its beat)."""
        found = subprocess.run(
            ["ps", "-o", "pid=,stat=", "-s", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [line for line in found.stdout.splitlines() if line.split()[1:2] != ["Z"]]


def workflow(celery: Celery, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m workflow --database <the tests' PostgreSQL> ARGV`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "workflow", "--database", celery.database, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(),
        timeout=120,
    )


def start_worker(celery: Celery, name: str, *, concurrency: int = 2) -> CLIWorker:
    """Start ``workflow worker --celery`` and wait until Celery says it is ready."""
    out, err = celery.logs / f"{name}.out", celery.logs / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workflow",
                "--database",
                celery.database,
                "--import",
                TASKS,
                "worker",
                "--celery",
                celery.url,
                "--queue",
                QUEUE,
                "--celery-queue",
                celery.celery_queue,
                "--concurrency",
                str(concurrency),
            ],
            stdout=stdout,
            stderr=stderr,
            cwd=celery.logs,
            env=child_env(),
            start_new_session=True,
        )
    worker = CLIWorker(process, out, err)
    deadline = time.monotonic() + 60
    while "Ctrl-C or SIGTERM stops it" not in err.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f"the worker did not start:\n{err.read_text()}")
        time.sleep(0.05)
    return worker


@pytest.fixture(scope="module")
def worker(celery_setup: Celery) -> Iterator[CLIWorker]:
    """One ``workflow worker --celery`` for the module's tests over one broker."""
    started = start_worker(celery_setup, "cli-worker")
    yield started
    assert started.stop() == 0, started.err.read_text()


def queue_run(celery: Celery, values: list[int], *extra: str) -> dict[str, object]:
    tokens = celery.logs / "tokens.json"
    tokens.write_text(json.dumps([{"value": value, "done": []} for value in values]))
    done = workflow(
        celery,
        "--json",
        "run",
        f"{TASKS}:steps",
        "--tokens",
        str(tokens),
        "--queue",
        QUEUE,
        *extra,
        cwd=celery.logs,
    )
    assert done.returncode == 0, done.stderr
    queued: dict[str, object] = json.loads(done.stdout)
    return queued


def completed(celery: Celery, uid: str, values: list[int], worker: CLIWorker) -> None:
    store = celery.store

    def done() -> bool:
        return bool(store.workflow(uid)["status"] != WorkflowStatus.RUNNING.value)

    wait_until(done, f"run {uid} finished", 60)
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value, worker.err.read_text()
    rows = store.token_rows(uid)
    assert [(row["data"]["value"], row["data"]["done"]) for row in rows] == [
        expected(value) for value in values
    ]
    assert WorkQueue(store, QUEUE).counts(uid) == {"ready": 0, "claimed": 0, "done": len(values)}


def test_a_run_queued_with_celery_completes_on_a_cli_worker(
    celery_setup: Celery, worker: CLIWorker
) -> None:
    values = list(range(12))
    queued = queue_run(
        celery_setup,
        values,
        "--celery",
        celery_setup.url,
        "--celery-queue",
        celery_setup.celery_queue,
    )
    assert (queued["queued"], queued["sent"]) == (12, 12)
    assert queued["celery_queue"] == celery_setup.celery_queue
    uid = str(queued["uuid"])
    completed(celery_setup, uid, values, worker)
    # The worker's pool processes ran the tasks, never the worker's main process.
    pids = {pid for row in celery_setup.store.token_rows(uid) for pid in row["data"]["pids"]}
    assert worker.process.pid not in pids


def test_the_sweep_sends_a_run_queued_without_celery(
    celery_setup: Celery, worker: CLIWorker
) -> None:
    values = [5, 6, 7]
    queued = queue_run(celery_setup, values)  # stored and queued; no message was sent
    assert "sent" not in queued
    completed(celery_setup, str(queued["uuid"]), values, worker)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_worker_and_its_pool_cleanly(celery_setup: Celery, signum: int) -> None:
    started = start_worker(celery_setup, f"stopped-{signum}", concurrency=2)
    assert len(started.session_left()) >= 3  # the main process, its pool and its beat
    assert started.stop(signum) == 0, started.err.read_text()
    name = signal.Signals(signum).name
    assert started.out.read_text() == f"worker stopped ({name})\n"
    assert f"worker: {name}: stopping once the running tasks are done" in started.err.read_text()
    wait_until(lambda: not started.session_left(), "the pool and the beat stopped", 30)
