"""DatabaseLogHandler against a database that stops answering: the run never waits.

The server is real, behind :class:`~tests.storage.blackhole.BlackHoleProxy`,
which keeps the connections open but stops forwarding bytes, as a stalled
network or a frozen server does. SQLite stalls on a file another connection
keeps locked.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from workflow.storage import DatabaseLogHandler, PersistentWorkflowEngine, Store, Token

from .blackhole import BlackHoleProxy
from .test_log_handler import messages, wait_for

SERVERS = ["postgresql", "mariadb"]


class Counter(logging.Handler):
    """Count the records a logger hands its handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@pytest.fixture
def proxy(db_url: str) -> Iterator[BlackHoleProxy]:
    """A proxy to the server under test, forwarding until told otherwise."""
    with BlackHoleProxy.to(db_url) as proxy:
        yield proxy
        proxy.forward()  # let the handlers' last writes through before the teardown


def proxied_handler(
    proxy: BlackHoleProxy, db_url: str, logger: logging.Logger, **options: Any
) -> DatabaseLogHandler:
    """A handler writing through ``proxy``, attached to ``logger``, connected already."""
    handler = DatabaseLogHandler(Store(proxy.url(db_url)), **options)
    logger.addHandler(handler)
    logger.info("connected")
    handler.flush()
    assert handler.dropped == 0
    return handler


def run_logging(store: Store, logger: logging.Logger, tokens: int) -> PersistentWorkflowEngine:
    """Run ``tokens`` tokens through two tasks that log five records each."""

    def chatty(obj: Token, eng: PersistentWorkflowEngine) -> None:
        obj.data["n"] = obj.data.get("n", 0) + 1
        for i in range(5):
            logger.info("token %d line %d", obj.position, i, extra={"workflow_uuid": eng.uuid})

    eng = PersistentWorkflowEngine.with_name("chatty", store=store, definition=[chatty, chatty])
    eng.process([{} for _ in range(tokens)])
    return eng


def assert_completed_chatty(store: Store, eng: PersistentWorkflowEngine, tokens: int) -> None:
    stored = store.token_rows(eng.uuid)
    assert len(stored) == tokens
    assert [row["data"] for row in stored] == [{"n": 2}] * tokens


@pytest.mark.parametrize("backend", SERVERS)
def test_a_run_logging_to_a_black_holed_server_is_not_held_and_drops_records(
    db_url: str,
    store: Store,
    proxy: BlackHoleProxy,
    logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = proxied_handler(proxy, db_url, logger, timeout=1.0, queue_size=200)
    counter = Counter()
    logger.addHandler(counter)
    proxy.black_hole()

    started = time.monotonic()
    eng = run_logging(store, logger, tokens=100)
    took = time.monotonic() - started

    assert took < 5  # the run used to wait as long as the server did not answer
    assert_completed_chatty(store, eng, tokens=100)
    assert counter.count == 1000
    # What is neither queued nor dropped is the one batch the writer holds.
    unwritten = handler.dropped + len(handler.buffer)
    assert counter.count - handler.capacity <= unwritten <= counter.count
    assert handler.dropped >= counter.count - handler.queue_size - handler.capacity
    assert len(handler.buffer) <= handler.queue_size
    assert "records wait for the database already (queue_size)" in capsys.readouterr().err


@pytest.mark.parametrize("backend", SERVERS)
def test_records_reach_the_server_again_once_it_answers(
    db_url: str,
    store: Store,
    proxy: BlackHoleProxy,
    logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = proxied_handler(proxy, db_url, logger, timeout=1.0, flush_interval=0.2)
    proxy.black_hole()
    logger.error("into the void")  # an error: the writer tries at once, and waits
    wait_for(lambda: handler.buffer == [])
    proxy.forward()

    def a_new_record_arrived() -> bool:
        logger.info("back")
        return "back" in messages(store)

    wait_for(a_new_record_arrived, seconds=30)
    assert messages(store)[0] == "connected"
    capsys.readouterr()


class Stall:
    """Stop the database of ``backend`` answering the handler, and let it answer again."""

    def __init__(self, backend: str, db_url: str, tmp_path: Path) -> None:
        self.backend = backend
        if backend == "sqlite":
            #: A store the stall applies to, where the rows are read from too.
            self.store = Store(f"sqlite:///{tmp_path / 'logs.sqlite'}")
            self.store.create_all()
            self._locker = sqlite3.connect(tmp_path / "logs.sqlite", isolation_level=None)
        else:
            self._proxy = BlackHoleProxy.to(db_url)
            self.store = Store(self._proxy.url(db_url))

    def begin(self) -> None:
        if self.backend == "sqlite":
            self._locker.execute("BEGIN EXCLUSIVE")
        else:
            self._proxy.black_hole()

    def end(self) -> None:
        if self.backend == "sqlite":
            self._locker.execute("ROLLBACK")
        else:
            self._proxy.forward()

    def close(self) -> None:
        self.store.dispose()
        if self.backend == "sqlite":
            self._locker.close()
        else:
            self._proxy.close()


@pytest.fixture
def stall(backend: str, db_url: str, store: Store, tmp_path: Path) -> Iterator[Stall]:
    stall = Stall(backend, db_url, tmp_path)
    yield stall
    stall.close()


def test_a_full_queue_drops_and_counts_records_and_says_so_once(
    stall: Stall, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = stall.store
    handler = DatabaseLogHandler(logs, capacity=1, queue_size=5, flush_interval=60, timeout=5)
    logger.addHandler(handler)
    stall.begin()
    logger.error("first")  # the writer takes it, and waits for the database
    wait_for(lambda: handler.buffer == [])
    for i in range(15):
        logger.info("record %d", i)

    assert (len(handler.buffer), handler.dropped) == (5, 10)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "DatabaseLogHandler: dropped a log record, 5 records wait for the database already "
        "(queue_size); the records lost until the queue empties are counted in .dropped"
    ]

    stall.end()
    handler.flush(timeout=30)
    assert messages(logs) == ["first"] + [f"record {i}" for i in range(5)]
    assert handler.dropped == 10


@pytest.mark.parametrize("backend", SERVERS)
def test_flush_and_close_give_up_in_time_on_a_black_holed_server(
    db_url: str,
    store: Store,
    proxy: BlackHoleProxy,
    logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = proxied_handler(proxy, db_url, logger, capacity=5, timeout=1.0, flush_interval=60)
    proxy.black_hole()
    for i in range(8):
        logger.info("record %d", i)
    wait_for(lambda: len(handler.buffer) == 3)  # the writer holds one batch

    started = time.monotonic()
    handler.flush(timeout=0.1)
    assert time.monotonic() - started < 1
    assert len(handler.buffer) == 3  # still queued

    started = time.monotonic()
    logger.removeHandler(handler)
    handler.close()
    assert time.monotonic() - started < 10  # twice the timeout, and a margin
    assert handler.buffer == []
    assert handler.dropped >= 3  # the queued records
    wait_for(lambda: handler.dropped == 8)  # and the held batch, once its write fails
    handler.handle(logging.makeLogRecord({"name": "t", "msg": "after the close"}))
    assert handler.dropped == 9
    capsys.readouterr()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_forked_child_writes_its_own_records_and_not_the_parents(
    store: Store, logger: logging.Logger
) -> None:
    handler = DatabaseLogHandler(store, capacity=100, flush_interval=60)
    logger.addHandler(handler)
    logger.info("parent, written")
    handler.flush()
    logger.info("parent, queued at the fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        logger.info("child")
        handler.flush(timeout=10)
        os._exit(0 if handler.buffer == [] and handler.dropped == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    handler.flush()
    assert sorted(messages(store)) == ["child", "parent, queued at the fork", "parent, written"]


def test_records_are_written_at_interpreter_exit_without_a_close(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'exit.sqlite'}"
    store = Store(url)
    store.create_all()
    script = textwrap.dedent(
        f"""
        import logging
        from workflow.storage import DatabaseLogHandler, Store
        log = logging.getLogger("leaving")
        log.addHandler(DatabaseLogHandler(Store({url!r}), flush_interval=60))
        log.warning("last words")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert messages(store) == ["last words"]
    store.dispose()


@pytest.mark.parametrize("backend", SERVERS)
def test_the_exit_of_a_program_logging_to_a_black_holed_server_is_bounded(
    db_url: str, store: Store, proxy: BlackHoleProxy
) -> None:
    script = textwrap.dedent(
        f"""
        import logging
        from workflow.storage import DatabaseLogHandler, Store
        log = logging.getLogger("leaving")
        log.addHandler(DatabaseLogHandler(Store({proxy.url(db_url)!r}), timeout=1.0))
        """
    )
    proxy.black_hole()
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", script + "log.error('lost')\n"],
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 15  # flush and close: twice the timeout each at most


def test_an_in_memory_database_is_written_through_the_stores_own_engine(
    logger: logging.Logger,
) -> None:
    shared = Store(
        Store.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    )
    shared.create_all()
    handler = DatabaseLogHandler(shared)
    assert handler.engine is shared.engine
    logger.addHandler(handler)
    try:
        logger.info("in memory")
        handler.flush()
        assert messages(shared) == ["in memory"]
    finally:
        logger.removeHandler(handler)
        handler.close()
        shared.dispose()  # closes the one connection of its StaticPool


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_flush_from_inside_the_handlers_write_does_not_wait_for_itself(
    store: Store, logger: logging.Logger
) -> None:
    handler = DatabaseLogHandler(store, capacity=1)
    logger.addHandler(handler)
    flushed: list[float] = []

    def flush_from_the_writer(*args: Any) -> None:
        started = time.monotonic()
        handler.flush(timeout=30)
        flushed.append(time.monotonic() - started)

    event.listen(handler.engine, "before_cursor_execute", flush_from_the_writer)
    logger.info("one")
    logger.info("two")
    handler.flush()
    assert messages(store) == ["one", "two"]
    assert flushed
    assert max(flushed) < 5


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://u@h/db",
            {"connect_timeout": 2, "options": "-c statement_timeout=1500"},
        ),
        (
            "mysql+pymysql://u@h/db",
            {"connect_timeout": 1.5, "read_timeout": 1.5, "write_timeout": 1.5},
        ),
        ("sqlite:///some.sqlite", {"timeout": 1.5}),
    ],
)
def test_each_driver_gets_its_timeouts(
    url: str, expected: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    handler = DatabaseLogHandler(Store(url), timeout=1.5)
    seen: dict[str, Any] = {}

    @event.listens_for(handler.engine, "do_connect")
    def capture(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise sa.exc.OperationalError("connect", {}, Exception("not in this test"))

    handler.handle(logging.makeLogRecord({"name": "t", "msg": "x", "levelno": logging.ERROR}))
    handler.close()
    assert expected.items() <= seen.items()
    assert handler.dropped == 1
    assert "not in this test" in capsys.readouterr().err
