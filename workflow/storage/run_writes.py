"""Every write of a stored run, in one place: each statement once, with its row shape.

A run lives in three tables: its row in ``wf_workflow`` (status, position,
``extra_data`` and lock), its tokens in ``wf_token``, and the append-only
``wf_transition`` log; its step trace (``wf_trace``, see
:mod:`workflow.storage.trace`) is written in the same transactions. The
statements of :mod:`workflow.storage.run_statements` are the only ones
that change them (they are re-exported here).
:class:`RunWriter` groups them into the transactions of one run —
storing its tokens, starting, each checkpoint, a halt or a failure, the end,
releasing the lock — for a
:class:`~workflow.storage.PersistentWorkflowEngine`.

A value that cannot be stored (a ``set`` in a token's data, an ``object()``
in the engine's ``extra_data``) fails the write that meets it. That write is
then replaced by the failure of the run, which stores only what it can: the
token that holds the value keeps its last stored data and is stored
``ERROR`` where that data resumes, the run is stored ``ERROR`` and its lock
released, and a :class:`~workflow.errors.TokenEncodingError` names what
could not be stored (``obj.data``, ``obj.extra_data`` or ``eng.extra_data``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import (
    StorageError,
    TokenEncodingError,
    WorkflowError,
    WorkflowIndexError,
    WorkflowLockedError,
    WorkflowObjectStatusError,
)
from .run_rows import (
    RunRow,
    StatusChangeInsert,
    TokenChange,
    TokenInsert,
    TokenUpdate,
    WorkflowUpdate,
    find_unstorable,
    tokens,
)
from .run_statements import (
    COUNT_TOKENS,
    insert_tokens,
    insert_workflow,
    log_status_change,
    release_lock,
    take_lock,
    update_token,
    update_workflow,
)
from .token import Token, resume_point
from .trace import TraceBuffer, insert_trace

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "RunRow",
    "RunWriter",
    "TokenChange",
    "insert_tokens",
    "insert_workflow",
    "log_status_change",
    "release_lock",
    "take_lock",
    "update_token",
    "update_workflow",
]

log = logging.getLogger(__name__)

# -- a run's transactions ------------------------------------------------------------


class RunWriter:
    """Write the run ``uuid`` of ``store`` for the engine that holds its lock as ``owner``.

    Each method is one transaction. Tokens and :attr:`status` change in
    memory only once their transaction committed. ``guard`` is held around
    every transaction (the lock's heartbeat holds it too, so that the two
    never wait on each other's row locks).

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        store: Store,
        uuid: str,
        owner: str,
        status: WorkflowStatus,
        *,
        guard: threading.RLock,
    ) -> None:
        self.store = store
        self.uuid = uuid
        self.owner = owner
        #: The run's status as last stored by this writer (or read).
        self.status = status
        self.guard = guard
        #: The trace rows of the run's tasks, stored with each transaction (``None``: no trace).
        self.trace: TraceBuffer | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"<RunWriter {self.uuid} {self.status.name} as {self.owner}>"

    @contextmanager
    def transaction(self, operation: str, *, token: int | None = None) -> Iterator[sa.Connection]:
        """Yield a connection in one transaction on this run, holding the guard."""
        with (
            self.guard,
            self.store.transaction(operation, workflow=self.uuid, token=token) as conn,
        ):
            yield conn

    def recorded(self, error: BaseException) -> bool:
        """Tell whether ``error`` was raised by this writer after storing the run's failure."""
        return error is self._failure

    def flush_trace(self) -> None:
        """Store the trace rows noted so far on their own (a long pass between checkpoints)."""
        if self.trace is not None and self.trace.rows:
            with self.transaction("store trace") as conn:
                insert_trace(conn, self.trace)
            self.trace.written()

    # -- the writes of a run -------------------------------------------------------------

    def store_tokens(self, items: Sequence[Any]) -> list[Token]:
        """Store ``items`` as the run's tokens, all ``INITIAL``, and return them.

        One transaction stores them all with their number
        (``wf_workflow.token_count``), so a run's input is stored whole or
        not at all; its conditional write decides between two processes
        storing the tokens of one run.

        :raises WorkflowError: when the run has tokens already.
        :raises TokenEncodingError: naming the first item that cannot be stored.
        """
        objects = [Token(item, position=index) for index, item in enumerate(items)]
        now = self.store.now()
        rows = [
            TokenInsert(
                workflow_uuid=self.uuid,
                position=token.position,
                data=token.data,
                extra_data=token.extra_data,
                status=ObjectStatus.INITIAL.value,
                callback_pos=None,
                created=now,
                modified=now,
            )
            for token in objects
        ]
        try:
            with self.transaction("store tokens") as conn:
                counted = conn.execute(
                    COUNT_TOKENS, {"w_uuid": self.uuid, "token_count": len(rows), "modified": now}
                )
                if counted.rowcount != 1:
                    self.store.workflow(self.uuid)  # WorkflowNotFoundError when it is gone
                    raise WorkflowError(
                        f"workflow {self.uuid} already has tokens; use resume() to go on with it",
                        id_workflow=self.uuid,
                    )
                if rows:
                    insert_tokens(conn, rows)
        except TokenEncodingError as error:
            # One statement stores them all: encode them one by one to name the culprit.
            changes = [TokenChange(token, token.status, None) for token in objects]
            found = find_unstorable(self.store.codec, changes, None, otherwise=error.message)
            raise self._error(found.message, found.token, "store tokens") from error
        return objects

    def start(self, run: RunRow) -> None:
        """Store the run ``RUNNING`` (its lock renewed)."""
        self._failure = None
        self._commit("start", run, status=WorkflowStatus.RUNNING, message="started")

    def checkpoint(self, run: RunRow, change: TokenChange) -> None:
        """Store a token and the run's position and ``extra_data``, renewing the lock."""
        self._commit("checkpoint", run, change=change)

    def stop_token(
        self,
        operation: str,
        run: RunRow,
        change: TokenChange,
        *,
        completed: Sequence[Token] = (),
        status: WorkflowStatus | None = None,
        message: str = "",
    ) -> None:
        """Store a token that halted or failed, after the ``completed`` ones not stored yet.

        The run's position and ``extra_data`` are stored with it. With a
        ``status``, the run is stored in it and its lock released; without,
        the pass goes on and the lock is renewed.
        """
        self._commit(
            operation,
            run,
            status=status,
            message=message,
            release=status is not None,
            change=change,
            completed=completed,
        )

    def finish(
        self, run: RunRow, status: WorkflowStatus, message: str, completed: Sequence[Token] = ()
    ) -> None:
        """Store the end of a pass, after the ``completed`` tokens not stored yet; release."""
        self._commit(
            "finish", run, status=status, message=message, release=True, completed=completed
        )

    def interrupt(
        self,
        run: RunRow,
        change: TokenChange | None,
        completed: Sequence[Token],
        message: str,
    ) -> None:
        """Store what an interrupted pass did, log ``message`` and release the lock.

        The run stays ``RUNNING``, without a lock: any process may resume it
        at once.
        """
        self._commit(
            "interrupt", run, release=True, change=change, completed=completed, note=message
        )

    def fail(
        self, run: RunRow, token: Token, error: StorageError, completed: Sequence[Token] = ()
    ) -> None:
        """Store the run ``ERROR`` for ``error``, met on ``token``, and release the lock.

        ``token`` keeps its last stored data and resumes where that data
        belongs; the ``completed`` tokens not stored yet are stored.
        """
        error.workflow, error.token = self.uuid, token.position
        changes = [TokenChange(done, ObjectStatus.COMPLETED, None) for done in completed]
        changes.append(TokenChange(token, token.status, token.callback_pos))
        self._store_failure("error", run, changes, {token.position: str(error)}, str(error))

    def release(self, *, quietly: bool = False) -> None:
        """Release the run's lock; ``quietly`` logs a failure instead of raising it."""
        try:
            with self.transaction("release lock") as conn:
                release_lock(conn, self.uuid, self.owner)
        except StorageError:
            if not quietly:
                raise
            log.debug("could not release the lock of workflow %s", self.uuid, exc_info=True)

    def update_token(
        self, position: int, data: Any, *, keep_lock: bool, message: str = "data updated"
    ) -> None:
        """Replace the data of the token at ``position``, logged with ``message``.

        The lock must be held; ``keep_lock`` renews it, else it is released.
        """
        with self.transaction("update token", token=position) as conn:
            row = conn.execute(
                sa.select(tokens.c.status, tokens.c.callback_pos).where(
                    tokens.c.workflow_uuid == self.uuid, tokens.c.position == position
                )
            ).first()
            if row is None:
                count = conn.execute(
                    sa.select(sa.func.count()).where(tokens.c.workflow_uuid == self.uuid)
                ).scalar_one()
                raise WorkflowIndexError(
                    f"workflow {self.uuid} has no token at position {position} "
                    f"(it has {count} tokens)"
                )
            status = ObjectStatus(row.status)
            if status in (ObjectStatus.RUNNING, ObjectStatus.COMPLETED):
                raise WorkflowObjectStatusError(
                    f"cannot update the data of a {status.name} token of workflow "
                    f"{self.uuid}; only tokens that did not start, halted, failed or "
                    "wait can be changed",
                    id_object=position,
                    obj_status=status,
                )
            now = self.store.now()
            values = self._key(modified=now)
            if keep_lock:
                values["lock_expires"] = self._expiry(now)
            else:
                values["lock_owner"] = values["lock_expires"] = None
            self._fenced(conn, values)  # the run's row before any other (see _write_run)
            update_token(
                conn, {"w_uuid": self.uuid, "w_position": position, "data": data, "modified": now}
            )
            self._log(conn, position, status.value, status.value, row.callback_pos, message, now)

    # -- how a transaction is written ------------------------------------------------------

    def _commit(
        self,
        operation: str,
        run: RunRow,
        *,
        status: WorkflowStatus | None = None,
        message: str = "",
        release: bool = False,
        change: TokenChange | None = None,
        completed: Sequence[Token] = (),
        note: str = "",
    ) -> None:
        changes = [TokenChange(done, ObjectStatus.COMPLETED, None) for done in completed]
        if change is not None:
            changes.append(change)
        now = self.store.now()
        try:
            position = None if change is None else change.token.position
            with self.transaction(operation, token=position) as conn:
                self._write_run(conn, run, status, release, now)
                trace = self._write_trace(conn, operation != "checkpoint")
                for each in changes:
                    self._save(conn, each, now)
                self._log_run(conn, run, status, message, now)
                if note:  # an event of the run that changes no status
                    status_now = self.status.value
                    self._log(conn, None, status_now, status_now, run.callback_pos, note, now)
        except TokenEncodingError as error:
            problem: TokenEncodingError = error
        else:
            for each in changes:
                _apply(each)
            if status is not None:
                self.status = status
            if trace is not None:
                trace.written()
            return
        # Raised outside the except clause: the caller's exception (a task's) is its context.
        raise self._replace_by_failure(operation, run, changes, problem)

    def _write_trace(self, conn: sa.Connection, force: bool) -> TraceBuffer | None:
        """Store the trace rows noted so far, if due (see :meth:`TraceBuffer.due`).

        Return the buffer written, to forget its rows once committed.
        """
        trace = self.trace
        if trace is None or not trace.due(force=force):
            return None
        insert_trace(conn, trace)
        return trace

    def _save(self, conn: sa.Connection, change: TokenChange, now: datetime) -> None:
        token = change.token
        values: TokenUpdate = {
            "w_uuid": self.uuid,
            "w_position": token.position,
            "status": change.status.value,
            "callback_pos": change.callback_pos,
            "last_error": change.error,
            "modified": now,
        }
        if not change.keep_data:
            values["data"], values["extra_data"] = token.data, token.extra_data
        update_token(conn, values)
        if change.status is not token.status:
            self._log(
                conn,
                token.position,
                token.status.value,
                change.status.value,
                change.callback_pos,
                change.message,
                now,
            )

    # Every transaction of a run writes the run's row first: the row lock it
    # takes is the first lock of the transaction, as in a waiter's attempt to
    # take the run's lock, so the two never wait on each other crosswise (a
    # status-log insert before it took a shared lock on the row through its
    # foreign key, and MariaDB then found a deadlock).

    def _write_run(
        self,
        conn: sa.Connection,
        run: RunRow,
        status: WorkflowStatus | None,
        release: bool,
        now: datetime,
        *,
        extra_data: bool = True,
    ) -> None:
        values = self._key(token_pos=run.token_pos, callback_pos=run.callback_pos, modified=now)
        if extra_data:
            values["extra_data"] = run.extra_data
        if status is not None:
            values["status"] = status.value
        if release:
            values["lock_owner"] = values["lock_expires"] = None
        else:
            values["lock_expires"] = self._expiry(now)
        self._fenced(conn, values)

    def _log_run(
        self,
        conn: sa.Connection,
        run: RunRow,
        status: WorkflowStatus | None,
        message: str,
        now: datetime,
    ) -> None:
        """Log the run's change of status, if it changes, after its tokens' changes."""
        if status is not None and status is not self.status:
            self._log(conn, None, self.status.value, status.value, run.callback_pos, message, now)

    def _fenced(self, conn: sa.Connection, values: WorkflowUpdate) -> None:
        if not update_workflow(conn, values):
            raise WorkflowLockedError(
                f"this engine lost the lock of workflow {self.uuid} (it expired and another "
                "process took it over); nothing of the current step was saved",
                workflow=self.uuid,
                operation="checkpoint",
            )

    def _log(
        self,
        conn: sa.Connection,
        token: int | None,
        from_status: int | None,
        to_status: int,
        callback_pos: list[int] | None,
        message: str,
        now: datetime,
    ) -> None:
        log_status_change(
            conn,
            StatusChangeInsert(
                workflow_uuid=self.uuid,
                token_position=token,
                from_status=from_status,
                to_status=to_status,
                callback_pos=callback_pos,
                message=message,
                created=now,
            ),
        )

    def _key(self, **values: Any) -> WorkflowUpdate:
        return cast(WorkflowUpdate, {"w_uuid": self.uuid, "w_owner": self.owner, **values})

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.store.lock_ttl)

    # -- a value that cannot be stored -------------------------------------------------------

    def _error(self, message: str, token: int | None, operation: str) -> TokenEncodingError:
        return TokenEncodingError(message, workflow=self.uuid, token=token, operation=operation)

    def _replace_by_failure(
        self, operation: str, run: RunRow, changes: list[TokenChange], error: TokenEncodingError
    ) -> TokenEncodingError:
        """Store the run's failure instead of a write that met an unstorable value.

        Return the error naming the first value that cannot be stored.
        """
        found = find_unstorable(self.store.codec, changes, run, otherwise=error.message)
        failure = self._error(found.message, found.token, operation)
        self._store_failure(
            operation, run, changes, found.culprits, str(failure), found.run_extra_data
        )
        self._failure = failure
        return failure

    def _store_failure(
        self,
        operation: str,
        run: RunRow,
        changes: list[TokenChange],
        culprits: dict[int, str],
        message: str,
        run_extra_data: bool = True,
    ) -> None:
        """Store the ``culprits`` ``ERROR``, the other ``changes``, and the run ``ERROR``.

        A culprit keeps its last stored data and resumes where that data
        belongs; its ``last_error`` is the error its change was to store, if
        any, then its problem. When even this cannot be stored, the run is
        left as after a crash (its lock released when possible).
        """
        stored: list[TokenChange] = []
        for change in changes:
            text = culprits.get(change.token.position)
            if text is None:
                stored.append(change)
                continue
            if change.error:
                text = f"{change.error.rstrip()}\n\nThis failure could not be stored: {text}"
            point = resume_point(change.token)
            stored.append(TokenChange(change.token, ObjectStatus.ERROR, point, text, text, True))
        now = self.store.now()
        token = next(iter(culprits), None)
        try:
            with self.transaction(operation, token=token) as conn:
                error = WorkflowStatus.ERROR
                self._write_run(conn, run, error, True, now, extra_data=run_extra_data)
                trace = self._write_trace(conn, True)
                for change in stored:
                    self._save(conn, change, now)
                self._log_run(conn, run, error, message, now)
        except StorageError:
            log.warning("could not store the failure of workflow %s", self.uuid, exc_info=True)
            self.release(quietly=True)
            return
        for change in stored:
            _apply(change)
        if trace is not None:
            trace.written()
        self.status = WorkflowStatus.ERROR


def _apply(change: TokenChange) -> None:
    """Make a token in memory what its committed change stored."""
    token = change.token
    token.status = change.status
    token.callback_pos = change.callback_pos
    token.last_error = change.error
