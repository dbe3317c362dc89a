"""A :mod:`logging` handler that writes records to table ``wf_syslog``.

.. versionadded:: 3.0
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, cast

import sqlalchemy as sa

from ..errors import WorkflowValueError
from .models import SyslogRecord
from .store import Store

__all__ = ["DatabaseLogHandler"]

syslog = cast(sa.Table, SyslogRecord.__table__)


class DatabaseLogHandler(logging.Handler):
    """Write log records to the table ``wf_syslog`` of ``store``, in batches.

    Records are buffered and written in one transaction when ``capacity`` of
    them are waiting, when a record of level ``ERROR`` or above arrives, when
    a record arrives ``flush_interval`` seconds or more after the last write,
    and on :meth:`flush` and :meth:`close` (which :func:`logging.shutdown`
    calls at exit). Nothing writes in the background: buffered records of a
    quiet logger wait for the next record or for :meth:`flush`.

    A record's ``workflow_uuid`` attribute, given as
    ``log.info(..., extra={"workflow_uuid": eng.uuid})``, is stored in its
    own column.

    Logging never fails because of the database: a batch that cannot be
    written is dropped and counted in :attr:`dropped`, and the first failure
    of an outage is reported in one line on :data:`sys.stderr` (when
    :data:`logging.raiseExceptions` is true, as
    :meth:`logging.Handler.handleError` does), without a traceback. So that
    a database that hangs does not slow the program down at every record,
    after a failure the handler waits ``flush_interval`` seconds (at least
    one) before it tries again, dropping the batches due meanwhile; an
    explicit :meth:`flush` always tries.

    The records of SQLAlchemy's loggers (``sqlalchemy.*``) are never
    written: they would describe the handler's own writes, and SQLAlchemy
    logs statements from inside transactions, where a write to the same
    SQLite file would wait for that very transaction. Nor is anything logged
    while the handler writes, in the thread that writes.

    :param store: the database; its tables must exist.
    :param capacity: how many records to buffer before writing them.
    :param flush_interval: seconds after which an arriving record writes the buffer.
    :param level: the handler's level.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        store: Store,
        *,
        capacity: int = 100,
        flush_interval: float = 2.0,
        level: int | str = logging.NOTSET,
    ) -> None:
        if capacity < 1:
            raise WorkflowValueError(f"capacity must be 1 or more, not {capacity!r}")
        if flush_interval < 0:
            raise WorkflowValueError(f"flush_interval must be 0 or more, not {flush_interval!r}")
        super().__init__(level)
        self.store = store
        self.capacity = capacity
        self.flush_interval = flush_interval
        #: The rows waiting to be written.
        self.buffer: list[dict[str, Any]] = []
        #: How many records were lost because the database failed.
        self.dropped = 0
        self._last_write = time.monotonic()
        self._failing = False
        self._retry_at = 0.0
        self._local = threading.local()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return (
            f"<{type(self).__name__} {self.store!r} ({level}) buffered={len(self.buffer)} "
            f"dropped={self.dropped}>"
        )

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer ``record``, and write the buffer when it is due."""
        name = record.name
        if name == "sqlalchemy" or name.startswith("sqlalchemy."):
            return  # statements, often logged inside a transaction: see the class docstring
        if getattr(self._local, "writing", False):
            return  # logged while this thread writes to the database
        try:
            row = self._row(record)
        except Exception:  # a broken format string or argument: logging's usual report
            self.handleError(record)
            return
        self.buffer.append(row)
        if (
            len(self.buffer) >= self.capacity
            or record.levelno >= logging.ERROR
            or time.monotonic() - self._last_write >= self.flush_interval
        ):
            self._write(backing_off=self._failing and time.monotonic() < self._retry_at)

    def flush(self) -> None:
        """Write the buffered records now; drop and count them when the database fails."""
        self._write(backing_off=False)

    def _write(self, *, backing_off: bool) -> None:
        self.acquire()
        try:
            if not self.buffer or getattr(self._local, "writing", False):
                return
            batch, self.buffer = self.buffer, []
            self._last_write = time.monotonic()
            if backing_off:  # the database failed a moment ago: do not wait for it again
                self.dropped += len(batch)
                return
            self._local.writing = True
            try:
                with self.store.transaction("write log records") as conn:
                    conn.execute(syslog.insert(), batch)
            except Exception as error:  # whatever failed, logging must go on
                self.dropped += len(batch)
                self._retry_at = time.monotonic() + max(self.flush_interval, 1.0)
                self._report(error, len(batch))
            else:
                self._failing = False
            finally:
                self._local.writing = False
        finally:
            self.release()

    def close(self) -> None:
        """Write the buffered records, then close the handler."""
        try:
            self.flush()
        finally:
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

    def _report(self, error: Exception, count: int) -> None:
        """Say once per outage, on stderr, that records are being dropped."""
        if self._failing:
            return
        self._failing = True
        if not (logging.raiseExceptions and sys.stderr):
            return
        text = (str(error).splitlines() or [""])[0][:300]
        records = "record" if count == 1 else "records"
        with contextlib.suppress(Exception):  # a closed stderr: nowhere left to report
            sys.stderr.write(
                f"{type(self).__name__}: dropped {count} log {records}, the database failed "
                f"({type(error).__name__}: {text}); the records lost until it works again "
                "are counted in .dropped\n"
            )
