"""DatabaseLogHandler: what it writes, when it writes, and that a broken database
never reaches the code that logs.

The failures are real: a dropped table, a SQLite file another connection keeps
locked, server sessions killed under the handler's insert, and a server that
does not answer. A persistent run logs through the handler meanwhile, and must
complete with its tokens stored.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.storage import (
    DatabaseLogHandler,
    PersistentWorkflowEngine,
    Store,
    SyslogRecord,
    Token,
)
from workflow.storage.models import utcnow

from .test_errors_mapping import Outage

syslog = cast(sa.Table, SyslogRecord.__table__)


@pytest.fixture
def attach(logger: logging.Logger) -> Iterator[Any]:
    """Attach handlers to loggers (the test's by default); detached afterwards."""
    attached: list[tuple[logging.Logger, logging.Handler]] = []

    def attach(handler: logging.Handler, to: logging.Logger = logger) -> None:
        to.addHandler(handler)
        attached.append((to, handler))

    yield attach
    for log, handler in attached:
        log.removeHandler(handler)
        handler.close()


def rows(store: Store) -> list[dict[str, Any]]:
    with store.transaction("test") as conn:
        return [dict(r) for r in conn.execute(sa.select(syslog).order_by(syslog.c.id)).mappings()]


def messages(store: Store) -> list[str]:
    return [row["message"] for row in rows(store)]


# -- what is written ---------------------------------------------------------------


def test_a_record_is_written_with_its_level_origin_message_and_time(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=1)
    attach(handler)
    before = utcnow()
    logger.warning("disk %s is %d%% full", "sda", 93)
    handler.flush()
    [row] = rows(store)
    assert row["level"] == logging.WARNING
    assert row["logger_name"] == "tests.storage.logged"
    assert row["module"] == "test_log_handler"
    assert row["func_name"] == "test_a_record_is_written_with_its_level_origin_message_and_time"
    assert row["message"] == "disk sda is 93% full"
    assert row["workflow_uuid"] is None
    assert row["created"].tzinfo is None  # naive UTC, as every timestamp
    assert before - timedelta(seconds=1) <= row["created"] <= utcnow() + timedelta(seconds=1)


def test_the_stored_rows_map_to_syslog_records(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=1)
    attach(handler)
    logger.info("mapped")
    handler.flush()
    with store.session() as session:
        [record] = session.scalars(sa.select(SyslogRecord)).all()
        assert repr(record) == "<SyslogRecord tests.storage.logged 20: 'mapped'>"


def test_the_workflow_uuid_given_as_extra_is_stored(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=1)
    attach(handler)
    uid = store.create_workflow("logged")
    logger.info("about a run", extra={"workflow_uuid": uid})
    handler.flush()
    [row] = rows(store)
    assert row["workflow_uuid"] == uid


def test_the_message_is_formatted_with_the_traceback(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    attach(handler)
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    handler.flush()
    [message] = messages(store)
    assert message.startswith("ERROR lookup failed\nTraceback (most recent call last):")
    assert message.endswith("KeyError: 'missing'")


def test_records_below_the_handler_level_are_not_written(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=1, level=logging.INFO)
    attach(handler)
    logger.debug("too detailed")
    logger.info("kept")
    handler.flush()
    assert messages(store) == ["kept"]


# -- when it is written -------------------------------------------------------------


def wait_for(condition: Callable[[], bool], *, seconds: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {seconds} s"
        time.sleep(0.02)


def test_records_wait_in_the_queue_until_capacity(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=3, flush_interval=60)
    attach(handler)
    logger.info("one")
    logger.info("two")
    assert len(handler.buffer) == 2  # not due: the writer leaves them
    logger.info("three")
    wait_for(lambda: messages(store) == ["one", "two", "three"])  # without a flush
    assert handler.buffer == []


def test_an_error_record_is_written_at_once_with_the_records_before_it(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=100, flush_interval=60)
    attach(handler)
    logger.info("context")
    assert len(handler.buffer) == 1
    logger.error("failure")
    wait_for(lambda: messages(store) == ["context", "failure"])


def test_a_quiet_loggers_record_is_written_after_the_flush_interval(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=100, flush_interval=0.5)
    attach(handler)
    logger.info("alone")
    wait_for(lambda: messages(store) == ["alone"])  # no other record, no flush
    assert handler.buffer == []


def test_flush_and_close_write_the_buffer(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=100, flush_interval=60)
    attach(handler)
    logger.info("flushed")
    handler.flush()
    assert messages(store) == ["flushed"]
    handler.flush()  # nothing buffered: nothing happens
    logger.info("closed")
    handler.close()
    assert messages(store) == ["flushed", "closed"]


def test_records_logged_by_several_threads_are_all_written(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=7, flush_interval=60)
    attach(handler)

    def work(thread: int) -> None:
        for i in range(25):
            logger.info("thread %d record %d", thread, i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush()
    assert sorted(messages(store)) == sorted(
        f"thread {t} record {i}" for t in range(4) for i in range(25)
    )
    assert handler.dropped == 0


@pytest.fixture
def statement_log() -> Iterator[logging.Logger]:
    """SQLAlchemy's statement log, on: it logs each statement, inside its transaction."""
    log = logging.getLogger("sqlalchemy.engine")
    log.setLevel(logging.INFO)
    log.propagate = False  # nothing but the handlers of the test
    yield log
    log.setLevel(logging.NOTSET)
    log.propagate = True


def test_what_sqlalchemy_logs_is_never_written(
    db_url: str, store: Store, statement_log: logging.Logger, logger: logging.Logger, attach: Any
) -> None:
    echoing = Store(db_url)  # made after the log level is set: it logs its statements
    handler = DatabaseLogHandler(echoing, capacity=1)
    attach(handler)
    attach(handler, to=statement_log)
    try:
        logger.info("from the application")  # its write logs statements too
        echoing.workflows()
        handler.flush()
    finally:
        statement_log.removeHandler(handler)
        echoing.dispose()
    assert messages(store) == ["from the application"]
    assert handler.dropped == 0


def test_a_run_logging_its_statements_to_its_own_database_is_not_slowed_down(
    db_url: str,
    statement_log: logging.Logger,
    engine_logger: logging.Logger,
    attach: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # On SQLite, a write from inside the run's own transaction would wait for it.
    echoing = Store(db_url)
    echoing.create_all()
    handler = DatabaseLogHandler(echoing, capacity=2)
    attach(handler, to=engine_logger)
    attach(handler, to=statement_log)
    try:
        started = time.monotonic()
        eng = run_with_breakage(echoing, lambda: None)
        assert time.monotonic() - started < 10
        assert_completed(echoing, eng)
        handler.flush()
        written = messages(echoing)
    finally:
        statement_log.removeHandler(handler)
        echoing.dispose()
    assert handler.dropped == 0
    assert capsys.readouterr().err == ""
    assert any("token 5 stepped" in m for m in written)
    assert not any("wf_token" in m for m in written)


def test_what_is_logged_while_the_handler_writes_is_not_written_again(
    store: Store, logger: logging.Logger, attach: Any
) -> None:
    handler = DatabaseLogHandler(store, capacity=1)
    attach(handler)

    def log_the_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        logger.info("running %s", statement.split()[0])

    event.listen(handler.engine, "before_cursor_execute", log_the_statement)
    try:
        logger.info("from the application")
        handler.flush()
    finally:
        event.remove(handler.engine, "before_cursor_execute", log_the_statement)
    assert messages(store) == ["from the application"]
    assert handler.dropped == 0


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"capacity": 0}, "capacity must be 1 or more, not 0"),
        ({"flush_interval": -1.0}, "flush_interval must be 0 or more, not -1.0"),
        ({"capacity": 10, "queue_size": 5}, r"queue_size must be capacity \(10\) or more, not 5"),
        ({"timeout": 0}, "timeout must be more than 0, not 0"),
    ],
)
def test_bad_options_are_refused(store: Store, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DatabaseLogHandler(store, **options)


def test_the_handler_has_a_useful_repr(store: Store) -> None:
    handler = DatabaseLogHandler(store, level="WARNING")
    assert repr(handler) == f"<DatabaseLogHandler {store!r} (WARNING) buffered=0 dropped=0>"
    handler.close()


def test_a_record_that_cannot_be_formatted_is_reported_as_logging_does(
    store: Store, logger: logging.Logger, attach: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = DatabaseLogHandler(store, capacity=1)
    attach(handler)
    # The caller's bug, not the database's.
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "%d items", ("x",), None)
    handler.handle(record)
    assert "--- Logging error ---" in capsys.readouterr().err
    assert (handler.buffer, handler.dropped, messages(store)) == ([], 0, [])


# -- a broken database ----------------------------------------------------------------


def step(obj: Token, eng: PersistentWorkflowEngine) -> None:
    obj.data["n"] = obj.data.get("n", 0) + 1
    eng.log.info("token %d stepped", obj.position, extra={"workflow_uuid": eng.uuid})


def complain(obj: Token, eng: PersistentWorkflowEngine) -> None:
    if obj.position % 2:
        eng.log.error("token %d looks odd", obj.position, extra={"workflow_uuid": eng.uuid})


@pytest.fixture
def engine_logger() -> Iterator[logging.Logger]:
    """The persistent engine's logger, at DEBUG so that it logs every task.

    It does not propagate: what stderr shows is this handler's, whatever
    handlers other code left on ``workflow`` or the root logger.
    """
    log = logging.getLogger(f"workflow.engine.{PersistentWorkflowEngine.__qualname__}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.setLevel(logging.NOTSET)
    log.propagate = True


def run_with_breakage(store: Store, break_it: Any, tokens: int = 6) -> PersistentWorkflowEngine:
    """Run ``tokens`` tokens, calling ``break_it()`` in the first task of token 2."""

    def breaker(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 2:
            break_it()

    eng = PersistentWorkflowEngine.with_name(
        "logged", store=store, definition=[breaker, step, complain, step]
    )
    eng.process([{} for _ in range(tokens)])
    return eng


def assert_completed(store: Store, eng: PersistentWorkflowEngine, tokens: int = 6) -> None:
    stored = store.token_rows(eng.uuid)
    assert [ObjectStatus(row["status"]) for row in stored] == [ObjectStatus.COMPLETED] * tokens
    assert [row["data"] for row in stored] == [{"n": 2}] * tokens
    assert WorkflowStatus(store.workflow(eng.uuid)["status"]) is WorkflowStatus.COMPLETED


def assert_reported_once(err: str, *, problem: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("DatabaseLogHandler: dropped ")
    assert problem in lines[0]
    assert "Traceback" not in err


def test_a_dropped_log_table_mid_run_loses_records_but_not_the_run(
    store: Store, engine_logger: logging.Logger, attach: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = DatabaseLogHandler(store, capacity=5)
    attach(handler, to=engine_logger)

    eng = run_with_breakage(store, lambda: syslog.drop(store.engine))

    assert_completed(store, eng)
    handler.flush()  # the records queued after the drop fail: dropped
    assert handler.dropped > 0
    assert len(handler.buffer) < handler.capacity  # memory stays bounded
    assert_reported_once(capsys.readouterr().err, problem="wf_syslog")

    syslog.create(store.engine)  # the table is back: records are written again
    engine_logger.info("after the repair", extra={"workflow_uuid": eng.uuid})
    handler.flush()
    assert messages(store)[-1] == "after the repair"
    assert rows(store)[-1]["workflow_uuid"] == eng.uuid


def test_records_written_before_the_breakage_are_kept(
    store: Store, engine_logger: logging.Logger, attach: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = DatabaseLogHandler(store, capacity=3)
    attach(handler, to=engine_logger)
    renamed: list[bool] = []

    def hide_the_table() -> None:
        handler.flush()  # what was logged so far is written
        with store.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE wf_syslog RENAME TO wf_syslog_hidden"))
        renamed.append(True)

    eng = run_with_breakage(store, hide_the_table)
    assert_completed(store, eng)
    handler.flush()  # what was logged since fails: dropped
    with store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE wf_syslog_hidden RENAME TO wf_syslog"))
    kept = messages(store)
    assert any("token 1 stepped" in m for m in kept)
    assert not any("token 5" in m for m in kept)
    assert handler.dropped > 0
    assert_reported_once(capsys.readouterr().err, problem="wf_syslog")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_log_file_locked_by_another_process_mid_run_loses_records_but_not_the_run(
    store: Store,
    tmp_path: Path,
    engine_logger: logging.Logger,
    attach: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_url = f"sqlite:///{tmp_path / 'logs.sqlite'}"
    logs = Store(log_url)
    logs.create_all()
    other = sqlite3.connect(tmp_path / "logs.sqlite", isolation_level=None)
    handler = DatabaseLogHandler(logs, capacity=4, flush_interval=60, timeout=0.05)
    attach(handler, to=engine_logger)
    try:
        started = time.monotonic()
        eng = run_with_breakage(store, lambda: other.execute("BEGIN EXCLUSIVE"))
        took = time.monotonic() - started
        handler.flush()  # tries while the file is locked
        other.execute("ROLLBACK")

        assert_completed(store, eng)
        assert handler.dropped > 0
        assert took < 2  # the run never waits on the lock
        assert_reported_once(capsys.readouterr().err, problem="database is locked")

        engine_logger.info("unlocked")
        handler.flush()
        assert messages(logs)[-1] == "unlocked"
    finally:
        other.close()
        logs.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_sessions_killed_under_the_handler_lose_one_batch_but_not_the_run(
    backend: str,
    db_url: str,
    store: Store,
    engine_logger: logging.Logger,
    attach: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # psycopg warns on its own logger about the pipeline the kill broke: that goes to
    # the application's handlers, not through this one; keep it off stderr here.
    monkeypatch.setattr(logging.getLogger("psycopg"), "disabled", True)
    outage = Outage(backend, db_url)
    armed: list[bool] = []

    def kill_at_next_log_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if armed and statement.lstrip().upper().startswith("INSERT INTO WF_SYSLOG"):
            armed.clear()
            assert outage.kill() >= 1

    handler = DatabaseLogHandler(outage.store, capacity=4, flush_interval=60)
    # The handler writes through an engine of its own: watch and kill its sessions.
    event.listen(handler.engine, "connect", outage._remember)
    event.listen(handler.engine, "before_cursor_execute", kill_at_next_log_write)
    attach(handler, to=engine_logger)
    try:
        eng = run_with_breakage(store, lambda: armed.append(True))
        handler.flush()
        assert armed == []  # the sessions were killed under the handler's insert
        assert_completed(store, eng)
        assert handler.dropped >= 1
        assert_reported_once(capsys.readouterr().err, problem="unavailable")

        engine_logger.info("after the outage")
        handler.flush()  # a flush tries at once; the pool connects again
        assert messages(store)[-1] == "after the outage"
    finally:
        outage.close()


UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_database_that_never_answers_costs_bounded_memory_and_one_report(
    store: Store,
    engine_logger: logging.Logger,
    attach: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    down = Store(UNREACHABLE)
    handler = DatabaseLogHandler(down, capacity=3, flush_interval=60)
    attempts: list[int] = []
    event.listen(handler.engine, "do_connect", lambda *args: attempts.append(1))
    attach(handler, to=engine_logger)
    try:
        eng = run_with_breakage(store, lambda: None, tokens=20)
        assert_completed(store, eng, tokens=20)
        # At most one attempt during the run: after a failure, the writer waits a minute.
        assert len(attempts) <= 1
        handler.flush()  # a flush always tries, once, and drops what it waited for
        assert 1 <= len(attempts) <= 2
        assert handler.buffer == []
        assert handler.dropped >= 20 * 4  # at least the debug line of every task
        assert_reported_once(capsys.readouterr().err, problem="unavailable")

        tried = len(attempts)
        engine_logger.info("again")
        handler.flush()  # tries again, and fails quietly
        assert len(attempts) == tried + 1
        assert handler.buffer == []
        assert capsys.readouterr().err == ""
    finally:
        down.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_without_raise_exceptions_a_failure_is_not_reported(
    store: Store,
    logger: logging.Logger,
    attach: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)
    handler = DatabaseLogHandler(store, capacity=1)
    attach(handler)
    syslog.drop(store.engine)
    logger.error("lost")
    handler.flush()
    assert handler.dropped == 1
    assert capsys.readouterr().err == ""
