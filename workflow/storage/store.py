"""The database: engine and sessions, SQLite settings, error translation, locks."""

from __future__ import annotations

import functools
import logging
import math
import os
import socket
import time
import uuid as _uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from ..engine_db import WorkflowStatus
from ..errors import (
    StorageError,
    WorkflowNotFoundError,
    WorkflowValueError,
)
from . import run_fixes
from .codec import JSONCodec
from .db_errors import is_contention, map_errors
from .models import Base, utcnow
from .pool import check_on_checkout
from .run_keys import OnConflict, Started, check_key, check_uuid, run_keys, start_run
from .run_rows import WorkflowInsert, status_changes, tokens, workflows
from .run_statements import release_lock, take_lock, update_workflow
from .trace import PRUNE_INTERVAL, TraceRow, prune_trace, read_trace

__all__ = ["DEFAULT_URL", "Store", "is_contention", "map_errors"]

log = logging.getLogger(__name__)

#: The database used when none is given: a SQLite file in the working directory.
DEFAULT_URL = "sqlite:///workflow.sqlite"

#: Seconds between two readings of a server database's clock (see :meth:`Store.now`).
CLOCK_CHECK_INTERVAL = 300.0
#: How each server database tells its time, as naive UTC.
_DATABASE_CLOCK = {
    "postgresql": "SELECT timezone('utc', clock_timestamp())",
    "mysql": "SELECT UTC_TIMESTAMP(6)",
    "mariadb": "SELECT UTC_TIMESTAMP(6)",
}

#: How many times :meth:`Store.acquire` tries again after losing a race for
#: row locks (see :func:`is_contention`), even when it may not wait.
_CONTENTION_RETRIES = 10


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_uuid.uuid4().hex[:8]}"


class Store:
    """A database of workflows, tokens and their status changes.

    :param url: a SQLAlchemy URL or an :class:`~sqlalchemy.engine.Engine`.
        SQLite files get WAL journaling, ``synchronous=NORMAL`` and enforced
        foreign keys. PostgreSQL: ``postgresql+psycopg://...``; MariaDB:
        ``mysql+pymysql://...``.
    :param codec: how token data becomes JSON (a :class:`JSONCodec`). With an
        ``Engine``, pass the codec it was built with by :meth:`create_engine`.
    :param lock_ttl: seconds a workflow lock holds without being renewed; a
        running engine renews it at every checkpoint; a finite number above 0.
    :param trace: whether persistent engines store the trace of the steps
        their runs run (:meth:`trace`); on by default, cheap enough to leave on.
    :param trace_retention: how long trace rows are kept: when given, a run
        that ends deletes the rows older than this (at most once every
        :data:`~workflow.storage.trace.PRUNE_INTERVAL` seconds per store).
        Without it, the trace is kept until :meth:`prune_trace` deletes it.
    :raises WorkflowValueError: when ``lock_ttl`` is not a finite number above 0,
        or ``trace_retention`` not a positive :class:`~datetime.timedelta`.

    .. versionchanged:: 3.0
       Added ``trace`` and ``trace_retention``.
    """

    def __init__(
        self,
        url: str | Engine = DEFAULT_URL,
        *,
        codec: JSONCodec | None = None,
        lock_ttl: float = 60.0,
        trace: bool = True,
        trace_retention: timedelta | None = None,
    ) -> None:
        if not isinstance(lock_ttl, (int, float)) or not 0 < lock_ttl < math.inf:
            raise WorkflowValueError(
                f"lock_ttl must be a finite number of seconds above 0, not {lock_ttl!r}"
            )
        if trace_retention is not None and not (
            isinstance(trace_retention, timedelta) and trace_retention > timedelta(0)
        ):
            raise WorkflowValueError(
                f"trace_retention must be a timedelta above 0 or None, not {trace_retention!r}"
            )
        #: Whether persistent engines store the trace of their runs' steps.
        self.trace_steps = bool(trace)
        #: How long trace rows are kept (``None``: until :meth:`prune_trace`).
        self.trace_retention = trace_retention
        self._pruned_at = -math.inf
        self.lock_ttl = float(lock_ttl)
        if isinstance(url, Engine):
            # The engine stores JSON with whatever serializer it was built with:
            # build it with Store.create_engine(url, codec=codec) to use a codec.
            self.codec = codec or JSONCodec()
            #: The SQLAlchemy :class:`~sqlalchemy.engine.Engine` of this store
            #: (``engine``, its former name, still works).
            self.sql_engine = url
        else:
            self.codec = codec or JSONCodec()
            self.sql_engine = self.create_engine(url, codec=self.codec)
        if self.sql_engine.dialect.name == "sqlite":
            event.listen(self.sql_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = sessionmaker(self.sql_engine, expire_on_commit=False)
        #: This machine's clock (naive UTC); the store corrects it by the
        #: database's (see :meth:`now`).
        self._client_clock = utcnow
        self._offset = timedelta(0)
        self._offset_measured = -math.inf

    @staticmethod
    def create_engine(url: str, *, codec: JSONCodec | None = None, **kwargs: Any) -> Engine:
        """Build a SQLAlchemy engine that stores JSON through ``codec``.

        Extra keyword arguments go to :func:`sqlalchemy.create_engine`. A
        pooled connection is checked before it is handed out (a dead one is
        replaced), without a round trip while its socket is quiet (see
        :mod:`workflow.storage.pool`); ``pool_pre_ping=True`` pings every time.

        .. versionchanged:: 3.0
           Connections are checked by :func:`~workflow.storage.pool.check_on_checkout`
           instead of ``pool_pre_ping``.
        """
        codec = codec or JSONCodec()
        # Fresh callables per engine: psycopg caches JSON dumpers by code object.
        engine = sa.create_engine(
            url,
            json_serializer=functools.partial(codec.dumps),
            json_deserializer=functools.partial(codec.loads),
            **kwargs,
        )
        if not kwargs.get("pool_pre_ping"):
            check_on_checkout(engine)
        return engine

    @property
    def engine(self) -> Engine:
        """:attr:`sql_engine` (its former name, kept working)."""
        return self.sql_engine

    def __repr__(self) -> str:
        return f"<Store {self.sql_engine.url.render_as_string(hide_password=True)}>"

    # -- schema ---------------------------------------------------------------

    def create_all(self) -> None:
        """Create the tables that do not exist yet, for tests and quick starts.

        A database meant to live should be created and kept current with
        :func:`workflow.storage.schema.upgrade` (the shipped migrations) instead.
        """
        with map_errors("create_all"):
            Base.metadata.create_all(self.sql_engine)

    def drop_all(self) -> None:
        """Drop the storage tables (tests and tear-downs)."""
        with map_errors("drop_all"):
            Base.metadata.drop_all(self.sql_engine)

    # -- sessions and transactions --------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield an ORM session for queries; committed on success."""
        with map_errors("query"), self.sessionmaker.begin() as session:
            yield session

    @contextmanager
    def transaction(
        self, operation: str, *, workflow: str | None = None, token: int | None = None
    ) -> Iterator[Connection]:
        """Yield a connection inside one transaction, translating errors."""
        with map_errors(operation, workflow=workflow, token=token), self.sql_engine.begin() as conn:
            yield conn

    @contextmanager
    def autocommit(
        self, operation: str, *, workflow: str | None = None, token: int | None = None
    ) -> Iterator[Connection]:
        """Yield a connection whose every statement commits on its own, translating errors.

        For one statement that decides alone (a claim): no ``BEGIN`` and
        ``COMMIT`` round trips around it.
        """
        with (
            map_errors(operation, workflow=workflow, token=token),
            self.sql_engine.connect() as conn,
        ):
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.sql_engine.dispose()

    # -- workflows --------------------------------------------------------------

    def create_workflow(
        self,
        name: str,
        *,
        extra_data: dict[str, Any] | None = None,
        definition_name: str | None = None,
        definition_version: int | None = None,
        uuid: str | None = None,
        key: str | int | None = None,
    ) -> str:
        """Store a new workflow (status NEW) and return its uuid.

        :param extra_data: the run's initial ``extra_data``.
        :param definition_name: the stored definition (see
            :class:`~workflow.storage.Definitions`) the run is made from, if any.
        :param definition_version: its version; needs ``definition_name``.
        :param uuid: the run's uuid (``8-4-4-4-12`` hex digits), chosen by the
            caller; when a run has it already, that run's uuid is returned
            and nothing is stored (an idempotent start).
        :param key: the run's key, unique among the active runs called
            ``name`` (see :mod:`workflow.storage.run_keys`).
        :raises RunKeyConflictError: when an active run called ``name`` holds ``key``.
        :raises WorkflowValueError: for a malformed ``uuid`` or ``key``, or a
            ``uuid`` taken by a run of another name or definition.

        .. versionchanged:: 3.0
           Added ``definition_name``, ``definition_version``, ``uuid`` and ``key``.
        """
        return self.start_workflow(
            name,
            extra_data=extra_data,
            definition_name=definition_name,
            definition_version=definition_version,
            uuid=uuid,
            key=key,
        ).uuid

    def start_workflow(
        self,
        name: str,
        *,
        extra_data: dict[str, Any] | None = None,
        definition_name: str | None = None,
        definition_version: int | None = None,
        uuid: str | None = None,
        key: str | int | None = None,
        on_conflict: OnConflict = "refuse",
    ) -> Started:
        """Store a new workflow as :meth:`create_workflow` does; tell whether it did.

        :param on_conflict: when an active run holds ``key``: ``"refuse"``
            raises :class:`~workflow.errors.RunKeyConflictError`,
            ``"existing"`` returns that run.
        :returns: a :class:`~workflow.storage.run_keys.Started`: the run's
            uuid, and ``created=False`` (with the run's status) when the run
            existed already.

        .. versionadded:: 3.0
        """
        if definition_version is not None and definition_name is None:
            raise WorkflowValueError(
                f"definition_version={definition_version!r} needs a definition_name"
            )
        now = self.now()
        row = WorkflowInsert(
            uuid=str(_uuid.uuid4()) if uuid is None else check_uuid(uuid),
            name=name,
            status=WorkflowStatus.NEW.value,
            token_pos=-1,
            callback_pos=[0],
            extra_data=extra_data or {},
            definition_name=definition_name,
            definition_version=definition_version,
            created=now,
            modified=now,
        )
        checked = None if key is None else check_key(key)
        return start_run(self, row, key=checked, on_conflict=on_conflict)

    def workflow(self, uid: str) -> dict[str, Any]:
        """Return the row of workflow ``uid`` as a dict.

        :raises WorkflowNotFoundError: when there is none.
        """
        with self.transaction("load workflow", workflow=uid) as conn:
            row = (
                conn.execute(sa.select(workflows).where(workflows.c.uuid == uid)).mappings().first()
            )
        if row is None:
            raise WorkflowNotFoundError(f"no stored workflow has the uuid {uid!r}", workflow=uid)
        return dict(row)

    def workflows(
        self,
        *,
        status: WorkflowStatus | int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return rows of stored workflows as dicts, newest first.

        :param status: only the workflows of this
            :class:`~workflow.engine_db.WorkflowStatus` (or its integer value).
        :param name: only the workflows of this name.
        :param limit: at most this many rows (the newest ones).

        .. versionadded:: 3.0
        """
        if limit is not None and limit < 0:
            raise WorkflowValueError(f"limit must be 0 or more, not {limit!r}")
        query = sa.select(workflows)
        if status is not None:
            value = status.value if isinstance(status, WorkflowStatus) else int(status)
            query = query.where(workflows.c.status == value)
        if name is not None:
            query = query.where(workflows.c.name == name)
        query = query.order_by(workflows.c.created.desc(), workflows.c.uuid)
        if limit is not None:
            query = query.limit(limit)
        with self.transaction("list workflows") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def token_rows(self, uid: str, status: int | None = None) -> list[dict[str, Any]]:
        """Return the token rows of workflow ``uid`` in order, optionally of one status."""
        query = sa.select(tokens).where(tokens.c.workflow_uuid == uid)
        if status is not None:
            query = query.where(tokens.c.status == status)
        with self.transaction("load tokens", workflow=uid) as conn:
            return [dict(row) for row in conn.execute(query.order_by(tokens.c.position)).mappings()]

    def token_row(self, uid: str, position: int) -> dict[str, Any] | None:
        """Return the row of the token at ``position`` of workflow ``uid``, if it has one.

        .. versionadded:: 3.0
        """
        query = sa.select(tokens).where(
            tokens.c.workflow_uuid == uid, tokens.c.position == position
        )
        with self.transaction("load a token", workflow=uid, token=position) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def status_change_rows(self, uid: str) -> list[dict[str, Any]]:
        """Return the status log of workflow ``uid``, oldest first."""
        query = (
            sa.select(status_changes)
            .where(status_changes.c.workflow_uuid == uid)
            .order_by(status_changes.c.id)
        )
        with self.transaction("load status changes", workflow=uid) as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def stored_rows(self, uid: str) -> dict[str, list[dict[str, Any]]]:
        """Return the rows of run ``uid`` as stored, for reading a run that may be damaged.

        Nothing is decoded: JSON and timestamp columns come back as the text
        the database holds, so that a damaged value cannot stop the others
        from being read. The keys are ``"workflow"`` (one row, or none),
        ``"tokens"`` (by position) and ``"status_changes"`` (oldest first).

        .. versionadded:: 3.0
        """
        queries = {
            "workflow": sa.select(*_as_text(workflows)).where(workflows.c.uuid == uid),
            "tokens": sa.select(*_as_text(tokens))
            .where(tokens.c.workflow_uuid == uid)
            .order_by(tokens.c.position),
            "status_changes": sa.select(*_as_text(status_changes))
            .where(status_changes.c.workflow_uuid == uid)
            .order_by(status_changes.c.id),
        }
        with self.transaction("load stored rows", workflow=uid) as conn:
            return {
                key: [dict(row) for row in conn.execute(query).mappings()]
                for key, query in queries.items()
            }

    def stored_workflow_rows(
        self,
        *,
        status: int | None = None,
        limit: int | None = None,
        flow: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        key: str | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Return :meth:`workflows` rows as stored (see :meth:`stored_rows`), newest first.

        :param status: only the runs of this status (its integer value).
        :param flow: only the runs made from the stored definition, or called, ``flow``.
        :param since: only the runs created at or after this time (naive UTC).
        :param until: only the runs created before this time (naive UTC).
        :param key: only the runs that took this run key (of any name).
        :param offset: skip this many of the newest rows first (paging).

        .. versionadded:: 3.0
        .. versionchanged:: 3.0
           Added ``flow``, ``since``, ``until``, ``key`` and ``offset``.
        """
        if offset < 0:
            raise WorkflowValueError(f"offset must be 0 or more, not {offset!r}")
        query = sa.select(*_as_text(workflows))
        if key is not None:
            holders = sa.select(run_keys.c.workflow_uuid).where(run_keys.c.key == key)
            query = query.where(workflows.c.uuid.in_(holders))
        if status is not None:
            query = query.where(workflows.c.status == status)
        if flow is not None:
            query = query.where(
                sa.or_(workflows.c.definition_name == flow, workflows.c.name == flow)
            )
        if since is not None:
            query = query.where(workflows.c.created >= since)
        if until is not None:
            query = query.where(workflows.c.created < until)
        query = query.order_by(workflows.c.created.desc(), workflows.c.uuid).limit(limit)
        if offset:
            query = query.offset(offset)
        with self.transaction("list workflows") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def status_counts(self) -> dict[int, int]:
        """Count the stored runs by status (its integer value), in one query.

        .. versionadded:: 3.0
        """
        query = sa.select(workflows.c.status, sa.func.count()).group_by(workflows.c.status)
        with self.transaction("count workflows") as conn:
            return {int(status): int(count) for status, count in conn.execute(query)}

    def token_counts(self, uids: list[str]) -> dict[str, dict[str, int]]:
        """Count the tokens of each run of ``uids`` by status (lower-case names), in one query.

        .. versionadded:: 3.0
        """
        return run_fixes.token_counts(self, uids)

    def cancel(
        self, uid: str, reason: str = "", *, owner: str | None = None, by: str | None = None
    ) -> bool:
        """Stop run ``uid`` for good: store it ``CANCELLED``, its lock released.

        One conditional write decides, and the status log records it with
        ``reason`` (and ``by``, who asked). A cancelled run is never resumed:
        ``resume()``, ``restart()`` and ``process()`` refuse it with a
        :class:`~workflow.errors.StoredRunError`.

        :param owner: the lock holder asking, if it holds the run's lock.
        :returns: ``True`` when cancelled now, ``False`` when it already was.
        :raises WorkflowLockedError: while another process holds a live lock of the run.
        :raises StoredRunError: when the run completed.
        :raises WorkflowNotFoundError: when there is no such run.

        .. versionadded:: 3.0
        """
        return run_fixes.cancel_run(self, uid, reason, owner, by)

    # -- locks ------------------------------------------------------------------

    def transition_rows(self, uid: str) -> list[dict[str, Any]]:
        """Return :meth:`status_change_rows` (its former name, kept working)."""
        return self.status_change_rows(uid)

    # -- the step trace ---------------------------------------------------------------

    def trace(self, uid: str, *, token: int | None = None) -> list[TraceRow]:
        """Return the step trace of the run ``uid`` (of one ``token``), oldest first.

        The answers given to its ``ask`` steps are merged in by time (see
        :class:`~workflow.storage.trace.TraceRow`).

        :raises WorkflowNotFoundError: when no run has that uuid.

        .. versionadded:: 3.0
        """
        return read_trace(self, uid, token=token)

    def prune_trace(self, *, before: datetime) -> int:
        """Delete the trace rows of tasks that ended before ``before``; return how many.

        .. versionadded:: 3.0
        """
        return prune_trace(self, before=before)

    def prune_trace_when_due(self) -> None:
        """Apply :attr:`trace_retention`, at most once every ``PRUNE_INTERVAL`` seconds."""
        if self.trace_retention is None:
            return
        moment = time.monotonic()
        if moment - self._pruned_at < PRUNE_INTERVAL:
            return
        self._pruned_at = moment
        try:
            prune_trace(self, before=self.now() - self.trace_retention)
        except StorageError:  # the next run that ends tries again
            self._pruned_at = -math.inf
            log.warning("could not prune the trace", exc_info=True)

    def now(self) -> datetime:
        """Return the database's time (naive UTC): what lock expiry is judged by.

        Processes on machines whose clocks differ by more than ``lock_ttl``
        would otherwise take a live holder's lock over early. A server
        database's clock is read now and then (every
        :data:`CLOCK_CHECK_INTERVAL` seconds) and this machine's clock is
        corrected by the difference, to within half the round trip of that
        query. SQLite runs on this machine: its clock is this one.

        .. versionadded:: 3.0
        """
        if self.clock_due():
            self._measure_offset()
        return self._client_clock() + self._offset

    def clock_due(self) -> bool:
        """Whether :meth:`now` reads the database's clock before it answers (a round trip).

        Code on an event loop calls :meth:`now` in a thread when it is.
        """
        return (
            self.sql_engine.dialect.name != "sqlite"
            and time.monotonic() - self._offset_measured > CLOCK_CHECK_INTERVAL
        )

    def _measure_offset(self) -> None:
        query = _DATABASE_CLOCK.get(self.sql_engine.dialect.name)
        if query is None:  # pragma: no cover - the three supported databases have one
            self._offset_measured = math.inf
            return
        with self.transaction("read the database clock") as conn:
            before = self._client_clock()
            database = conn.execute(sa.text(query)).scalar_one()
            after = self._client_clock()
        if isinstance(database, str):  # pragma: no cover - drivers return datetimes
            database = datetime.fromisoformat(database)
        self._offset = database.replace(tzinfo=None) - (before + (after - before) / 2)
        self._offset_measured = time.monotonic()

    def new_owner(self) -> str:
        """Return a name for a lock holder: host, process id and a random part."""
        return _owner_name()

    def acquire(self, uid: str, owner: str, *, wait: float = 0.0) -> None:
        """Take the lock of workflow ``uid`` for ``owner``.

        A lock held by someone else is taken over only once it expired (its
        holder stopped renewing it, e.g. because it died).

        :param wait: seconds to keep trying while another process holds it.
        :raises WorkflowLockedError: when the lock is still held after ``wait``.

        A try the database gave up as the loser of a race for row locks (a
        deadlock, a serialisation failure, SQLite's "database is locked": see
        :func:`is_contention`) counts as a busy lock and is made again, at
        least ten times even without ``wait``.
        """
        deadline = time.monotonic() + wait
        contended = 0
        while True:
            now = self.now()
            expires = now + timedelta(seconds=self.lock_ttl)
            try:
                with self.transaction("acquire lock", workflow=uid) as conn:
                    taken = take_lock(conn, uid, owner, now, expires)
                    if not taken:
                        row = conn.execute(
                            sa.select(workflows.c.lock_owner, workflows.c.lock_expires).where(
                                workflows.c.uuid == uid
                            )
                        ).first()
            except StorageError as failure:
                contended += 1
                if not is_contention(failure) or (
                    time.monotonic() >= deadline and contended > _CONTENTION_RETRIES
                ):
                    raise
                # The database chose this attempt as the victim of a deadlock
                # (or a serialisation failure): the lock is busy; wait as for a holder.
                log.debug("taking the lock of workflow %s: %s; retrying", uid, failure)
                time.sleep(min(0.05, max(deadline - time.monotonic(), 0.01)))
                continue
            if taken:
                return
            if row is None:
                raise WorkflowNotFoundError(
                    f"no stored workflow has the uuid {uid!r}", workflow=uid, operation="lock"
                )
            if time.monotonic() >= deadline:
                expires = row.lock_expires or datetime.fromtimestamp(0, timezone.utc)
                raise run_fixes.locked_error(uid, row.lock_owner, expires, "lock")
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0.0)))

    def renew(self, uid: str, owner: str) -> bool:
        """Extend the lock of ``uid`` by ``lock_ttl`` if ``owner`` still holds it.

        :returns: whether ``owner`` holds the lock (and it was renewed).
        """
        expires = self.now() + timedelta(seconds=self.lock_ttl)
        with self.transaction("renew lock", workflow=uid) as conn:
            return update_workflow(conn, {"w_uuid": uid, "w_owner": owner, "lock_expires": expires})

    def release(self, conn: Connection, uid: str, owner: str) -> None:
        """Release the lock of ``uid`` held by ``owner``, inside ``conn``'s transaction."""
        release_lock(conn, uid, owner)


def _as_text(table: sa.Table) -> list[sa.ColumnElement[Any]]:
    """The columns of ``table``, its JSON and timestamp columns as the text stored."""
    return [
        sa.cast(column, sa.Text).label(column.name)
        if isinstance(column.type, (sa.JSON, sa.DateTime))
        else column
        for column in table.columns
    ]
