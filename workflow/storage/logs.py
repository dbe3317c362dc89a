"""A :mod:`logging` handler that writes records to table ``wf_syslog`` from a thread of its own.

.. versionadded:: 3.0
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..errors import WorkflowValueError
from .models import SyslogRecord
from .store import Store, map_errors

__all__ = ["DatabaseLogHandler"]

syslog = cast(sa.Table, SyslogRecord.__table__)

#: Seconds the writer waits after a failed write before it tries again (at least).
MIN_BACKOFF = 1.0


class DatabaseLogHandler(logging.Handler):
    """Write log records to the table ``wf_syslog`` of ``store``, from a background thread.

    The thread that logs never waits for the database: :meth:`emit` formats
    the record and puts it in a queue of at most ``queue_size`` records, and a
    writer thread of the handler inserts them, at most ``capacity`` in one
    transaction. It writes when ``capacity`` records wait, when a record of
    level ``ERROR`` or above arrives, when a record has waited
    ``flush_interval`` seconds, and on :meth:`flush` and :meth:`close`
    (which :func:`logging.shutdown` calls at exit).

    The writer connects through an engine of its own (:attr:`engine`), made
    from the store's URL with ``timeout`` as the connect, statement and read
    timeouts of the driver: psycopg's ``connect_timeout`` (at least two
    seconds) and ``statement_timeout``, PyMySQL's ``connect_timeout``,
    ``read_timeout`` and ``write_timeout``, SQLite's ``timeout`` on a locked
    file. As psycopg has no read timeout, a PostgreSQL write still waiting
    after ``timeout`` seconds has its connection shut. An in-memory SQLite
    database is only reachable through the store's own engine, which is used.

    A record's ``workflow_uuid`` attribute, given as
    ``log.info(..., extra={"workflow_uuid": eng.uuid})``, is stored in its
    own column.

    Logging never fails nor waits because of the database. A batch that
    cannot be written is dropped; so is a record that finds the queue full,
    and one logged after :meth:`close`. Every dropped record is counted in
    :attr:`dropped`. The first failure of an outage, and the first record
    dropped because the queue is full, are each reported in one line on
    :data:`sys.stderr` (when :data:`logging.raiseExceptions` is true, as
    :meth:`logging.Handler.handleError` does), never through a handler.
    After a failure the writer waits ``flush_interval`` seconds (at least
    one) before it tries again, keeping what arrives meanwhile in the queue;
    so the records of a short outage are written when it ends.

    The records of SQLAlchemy's loggers (``sqlalchemy.*``) are never
    written: they would describe the handler's own writes. Nor is anything
    that the writer thread logs (a driver's warning, say).

    The handler is safe to use after :func:`os.fork`: the child starts with
    an empty queue and a writer and connections of its own.

    :param store: the database; its tables must exist.
    :param capacity: how many records the writer inserts in one transaction,
        and how many waiting records make it write at once.
    :param flush_interval: seconds a record waits at most before the writer
        writes it, while the database answers.
    :param queue_size: how many records may wait for the writer; beyond,
        records are dropped.
    :param timeout: seconds the writer waits for the database, for each
        connection and each statement.
    :param level: the handler's level.

    .. versionadded:: 3.0
    .. versionchanged:: 3.0
       Written from a background thread, with ``queue_size`` and ``timeout``.
    """

    def __init__(
        self,
        store: Store,
        *,
        capacity: int = 100,
        flush_interval: float = 2.0,
        queue_size: int = 10_000,
        timeout: float = 5.0,
        level: int | str = logging.NOTSET,
    ) -> None:
        if capacity < 1:
            raise WorkflowValueError(f"capacity must be 1 or more, not {capacity!r}")
        if flush_interval < 0:
            raise WorkflowValueError(f"flush_interval must be 0 or more, not {flush_interval!r}")
        if queue_size < capacity:
            raise WorkflowValueError(
                f"queue_size must be capacity ({capacity}) or more, not {queue_size!r}"
            )
        if not timeout > 0:
            raise WorkflowValueError(f"timeout must be more than 0, not {timeout!r}")
        super().__init__(level)
        self.store = store
        self.capacity = capacity
        self.flush_interval = flush_interval
        self.queue_size = queue_size
        self.timeout = timeout
        #: The SQLAlchemy engine the writer thread uses, with the timeouts.
        self.engine, self._owns_engine = _engine_for(store, timeout)
        # psycopg has no read timeout: the writer watches its connection itself.
        self._watched = self._owns_engine and self.engine.url.get_driver_name() == "psycopg"
        if self._watched:
            event.listen(self.engine, "connect", self._remember_connection)
        #: How many records were lost: the database failed, or the queue was full.
        self.dropped = 0
        self._start_afresh()
        _handlers.add(self)

    def _start_afresh(self) -> None:
        """Set up the queue and forget the writer (at creation and in a forked child)."""
        self._cond = threading.Condition(threading.Lock())
        #: The formatted records waiting for the writer, oldest first.
        self.buffer: list[dict[str, Any]] = []
        self._queued = 0  # records ever put in buffer
        self._handled = 0  # of those, records written or dropped
        self._flush_to = 0  # flush() waits until _handled reaches this
        self._stalled_at = -1  # _handled when a flush() last ran out of time
        self._urgent = False  # a record of level ERROR waits
        self._first_at = 0.0  # when the oldest waiting record arrived
        self._retry_at = 0.0  # no write before this, after a failure
        self._failing = False  # the outage was reported
        self._full = False  # the full queue was reported
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._writer_id: int | None = None
        self._connection: Any = None  # the DBAPI connection of the last connect

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return (
            f"<{type(self).__name__} {self.store!r} ({level}) buffered={len(self.buffer)} "
            f"dropped={self.dropped}>"
        )

    # -- the thread that logs -----------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` for the writer thread, or drop and count it when the queue is full."""
        name = record.name
        if name == "sqlalchemy" or name.startswith("sqlalchemy."):
            return  # statements, the handler's own among them: see the class docstring
        if threading.get_ident() == self._writer_id:
            return  # logged by the writer while it writes: never into the same handler
        try:
            row = self._row(record)
        except Exception:  # a broken format string or argument: logging's usual report
            self.handleError(record)
            return
        with self._cond:
            if self._stopped or len(self.buffer) >= self.queue_size:
                self.dropped += 1
                report = not (self._full or self._stopped)
                self._full = True
            else:
                report = False
                if not self.buffer:
                    self._first_at = time.monotonic()
                self.buffer.append(row)
                self._queued += 1
                if record.levelno >= logging.ERROR:
                    self._urgent = True
                if len(self.buffer) == 1 or len(self.buffer) >= self.capacity or self._urgent:
                    self._cond.notify()
                if self._thread is None:
                    self._start_writer()
        if report:
            self._say(
                f"dropped a log record, {self.queue_size} records wait for the database "
                "already (queue_size); the records lost until the queue empties are counted "
                "in .dropped"
            )

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the records queued so far are written or dropped; never hang.

        The writer writes them at once, even while it waits after a failure;
        if the database fails, they are dropped and counted. Records that
        the writer has not handled when ``timeout`` runs out stay queued.

        :param timeout: seconds to wait at most; by default twice the
            handler's ``timeout`` (one write and one connection).
        """
        self._drain(timeout)

    def _drain(self, timeout: float | None) -> bool:
        """Do :meth:`flush`; return whether every record was handled in time."""
        limit = 2 * self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._cond:
            target = self._queued
            if self._handled >= target:
                return True
            if threading.get_ident() == self._writer_id:
                return False  # the writer cannot wait for itself
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while self._handled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._stalled_at = self._handled
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """Write what is queued within the bound of :meth:`flush`, then stop the writer.

        Records still queued then are dropped and counted, as are records
        logged afterwards. When a flush just ran out of time and the writer
        has not written since, close does not wait again. A writer still
        waiting for the database is left to finish in the background: it is
        a daemon thread.
        """
        # logging.shutdown() flushes, then closes: wait once for a writer that is stuck.
        finished = self._drain(0 if self._stalled_at == self._handled else None)
        with self._cond:
            self._stopped = True
            left = len(self.buffer)
            self.dropped += left
            self._handled += left
            self.buffer.clear()
            self._cond.notify_all()
            thread = self._thread
        if finished and thread is not None and thread.ident != threading.get_ident():
            thread.join(timeout=self.timeout)
        if finished and self._owns_engine:
            self.engine.dispose()
        super().close()

    def _row(self, record: logging.LogRecord) -> dict[str, Any]:
        uid = getattr(record, "workflow_uuid", None)
        return {
            "created": datetime.fromtimestamp(record.created, timezone.utc).replace(tzinfo=None),
            "level": record.levelno,
            "logger_name": record.name[:255],
            "module": (record.module or "")[:255],
            "func_name": (record.funcName or "")[:255],
            "message": self.format(record),
            "workflow_uuid": None if uid is None else str(uid)[:36],
        }

    def _start_writer(self) -> None:
        """Start the writer thread; called with the queue's lock held."""
        thread = threading.Thread(
            target=self._work, name=f"{type(self).__name__} writer", daemon=True
        )
        with contextlib.suppress(RuntimeError):  # no new threads at interpreter exit
            thread.start()
            self._thread = thread

    # -- the writer thread -------------------------------------------------------------

    def _work(self) -> None:
        self._writer_id = threading.get_ident()
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                self._writer_id = None  # its ident may be given to another thread
                return
            self._write(batch)

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Wait until a batch is due and take it; None once the handler is closed."""
        while True:
            if self._stopped:
                return None
            now = time.monotonic()
            flushing = self._handled < self._flush_to
            backing_off = now < self._retry_at and not flushing
            due = (
                flushing
                or self._urgent
                or len(self.buffer) >= self.capacity
                or now - self._first_at >= self.flush_interval
            )
            if self.buffer and due and not backing_off:
                batch = self.buffer[: self.capacity]
                del self.buffer[: self.capacity]
                if not self.buffer:
                    self._urgent = self._full = False
                return batch
            if not self.buffer:
                self._cond.wait()
            else:
                self._cond.wait(
                    (self._retry_at if backing_off else self._first_at + self.flush_interval) - now
                )

    def _write(self, batch: list[dict[str, Any]]) -> None:
        failure = self._insert(batch)
        if failure is not None and not self._failing:  # only the writer reads _failing
            text = (str(failure).splitlines() or [""])[0][:300]
            records = "record" if len(batch) == 1 else "records"
            self._say(  # before a waiting flush() returns
                f"dropped {len(batch)} log {records}, the database failed "
                f"({type(failure).__name__}: {text}); the records lost until it works again "
                "are counted in .dropped"
            )
        self._failing = failure is not None
        with self._cond:
            self._handled += len(batch)
            if failure is not None:
                self.dropped += len(batch)
                self._retry_at = time.monotonic() + max(self.flush_interval, MIN_BACKOFF)
                # A flush waits for these: one failure answers it, do not try each batch.
                waited = min(len(self.buffer), max(0, self._flush_to - self._handled))
                del self.buffer[:waited]
                self._handled += waited
                self.dropped += waited
            self._cond.notify_all()

    def _insert(self, batch: list[dict[str, Any]]) -> Exception | None:
        """Insert ``batch`` in one transaction; return what failed, if anything."""
        # Shut the socket of a psycopg write that overstays (see __init__).
        watchdog = threading.Timer(self.timeout, self._sever)
        watchdog.daemon = True
        if self._watched:
            with contextlib.suppress(RuntimeError):  # no new threads at interpreter exit
                watchdog.start()
        try:
            with map_errors("write log records"), self.engine.begin() as conn:
                conn.execute(syslog.insert(), batch)
        except Exception as error:  # whatever failed, logging must go on
            return error
        finally:
            watchdog.cancel()
        return None

    def _remember_connection(self, dbapi_connection: Any, record: Any) -> None:
        self._connection = dbapi_connection

    def _sever(self) -> None:
        """Shut the socket of the writer's connection, so that a waiting read fails."""
        fileno = getattr(self._connection, "fileno", None)
        if fileno is None:
            return
        with contextlib.suppress(Exception):  # closed meanwhile: nothing waits on it
            sock = socket.socket(fileno=os.dup(fileno()))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()

    def _say(self, text: str) -> None:
        """Report on stderr, as logging reports its own errors; never through a handler."""
        if logging.raiseExceptions and sys.stderr:
            with contextlib.suppress(Exception):  # a closed stderr: nowhere left to report
                sys.stderr.write(f"{type(self).__name__}: {text}\n")

    def _after_fork_in_child(self) -> None:
        """Forget the parent's queue, writer and connections: they are the parent's."""
        stopped = self._stopped
        self._start_afresh()
        self._stopped = stopped
        if self._owns_engine:
            self.engine.dispose(close=False)


def _engine_for(store: Store, timeout: float) -> tuple[Engine, bool]:
    """Return an engine to ``store``'s database with ``timeout``, and whether it is new."""
    url = store.engine.url
    backend, driver = url.get_backend_name(), url.get_driver_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            return store.engine, False  # only the store's connections see this database
        connect_args = {"timeout": timeout}
    elif driver == "psycopg":
        connect_args = {
            "connect_timeout": max(2, math.ceil(timeout)),
            "options": f"-c statement_timeout={math.ceil(timeout * 1000)}",
        }
    elif driver == "pymysql":
        connect_args = {
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "write_timeout": timeout,
        }
    engine = sa.create_engine(
        url, pool_size=1, max_overflow=0, pool_pre_ping=True, connect_args=connect_args
    )
    return engine, True


_handlers: weakref.WeakSet[DatabaseLogHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_handlers):
        handler._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
