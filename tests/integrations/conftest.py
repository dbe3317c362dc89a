"""The Celery suites: real brokers (Redis and RabbitMQ), real ``celery worker`` processes.

The brokers are those of ``WORKFLOW_TEST_REDIS_URL`` and
``WORKFLOW_TEST_RABBITMQ_URL`` (this machine's by default); the broker's
queues are named with ``WORKFLOW_TEST_CELERY_PREFIX``. A broker that does
not answer skips its tests, and fails them in CI. The database is the
storage suite's PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integrations.celery_app import make_queue
from tests.runtime.racing import child_env
from tests.storage.conftest import backend, database_url, db_url, store, unavailable
from workflow.integrations.celery import CeleryQueue
from workflow.storage import Store

__all__ = ["backend", "db_url", "store"]

BROKER_URLS = {
    "redis": os.environ.get("WORKFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("WORKFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
ENV_NAMES = {"redis": "WORKFLOW_TEST_REDIS_URL", "rabbitmq": "WORKFLOW_TEST_RABBITMQ_URL"}
PREFIX = os.environ.get("WORKFLOW_TEST_CELERY_PREFIX", "workflow_test_")

_reachable: dict[str, str | None] = {}


def broker_url(name: str) -> str:
    """The URL of broker ``name`` if it answers; else skip (fail in CI)."""
    if name not in _reachable:
        from kombu import Connection

        try:
            with Connection(BROKER_URLS[name], connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1)
            _reachable[name] = None
        except Exception as exc:  # any failure to connect means "not here"
            _reachable[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    problem = _reachable[name]
    if problem is not None:
        message = (
            f"{name} is not reachable at {BROKER_URLS[name]} ({problem}); start it or set "
            f"{ENV_NAMES[name]} to run the Celery tests over {name}"
        )
        unavailable("the Celery tests over every broker", message)
    return BROKER_URLS[name]


@dataclass
class Celery:
    """A broker, the database and the tests' :class:`CeleryQueue` over them."""

    broker: str
    url: str
    database: str
    celery_queue: str
    queue: CeleryQueue
    store: Store
    logs: Path

    def env(self, pause: float = 0.0) -> dict[str, str]:
        """The environment of a ``celery worker`` of this setup."""
        return {
            **child_env(),
            "WORKFLOW_TEST_CELERY_BROKER": self.url,
            "WORKFLOW_TEST_CELERY_DB": self.database,
            "WORKFLOW_TEST_CELERY_QUEUE": self.celery_queue,
            "WORKFLOW_TEST_CELERY_PAUSE": str(pause),
        }

    def start_worker(self, name: str, *, concurrency: int = 1, pause: float = 0.0) -> Worker:
        """Start a real ``celery worker`` process (a session of its own) and wait until ready."""
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.integrations.celery_app",
                    "worker",
                    "--queues",
                    self.celery_queue,
                    "--concurrency",
                    str(concurrency),
                    "--pool",
                    "prefork",
                    "--hostname",  # two test runs on one broker never share a node's name
                    f"{PREFIX}{name}-{os.getpid()}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "--loglevel",
                    "INFO",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(pause),
                start_new_session=True,
            )
        worker = Worker(process, log)
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                worker.kill()
                raise AssertionError(f"celery worker {name} did not start:\n{log.read_text()}")
            time.sleep(0.05)
        return worker


@dataclass
class Worker:
    """A ``celery worker`` process started by the tests."""

    process: subprocess.Popen[bytes]
    log: Path

    def pool(self) -> list[int]:
        """The process ids of its pool processes."""
        found = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in found.stdout.split()]

    def kill(self) -> None:
        """SIGKILL the worker and its pool (its whole session)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Ask for a warm shutdown (SIGTERM); SIGKILL if it does not stop in 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        self.kill()


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def celery_setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Celery]:
    """Empty tables on PostgreSQL, an empty broker queue, the tests' :class:`CeleryQueue`."""
    name = str(request.param)
    url = broker_url(name)
    logs = tmp_path_factory.mktemp(f"celery-{name}")
    database = database_url("postgresql", logs)
    store = Store(database)
    store.drop_all()
    store.create_all()
    module = request.module.__name__.rsplit(".", 1)[-1]
    celery_queue = f"{PREFIX}{module}_{name}"
    queue = make_queue(url, database, celery_queue)
    queue.app.control.purge()
    yield Celery(name, url, database, celery_queue, queue, store, logs)
    queue.app.control.purge()
    store.dispose()
    queue.store.dispose()
