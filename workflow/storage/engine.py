"""PersistentWorkflowEngine: an engine whose run lives in a :class:`Store`.

Everything happens through the engine's hooks: the processing factory takes
the lock and checkpoints, the transition actions store halts and errors, and
``execute_callback`` checkpoints after each task when asked to. The token
loop is the generic engine's.
"""

from __future__ import annotations

import enum
import logging
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .._hooks import ExcInfo
from ..engine import GenericWorkflowEngine, ProcessingFactory, TransitionActions
from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import (
    StorageError,
    TokenEncodingError,
    WorkflowError,
    WorkflowLockedError,
    WorkflowObjectStatusError,
)
from ..utils import classproperty
from .heartbeat import LockHeartbeat
from .models import utcnow
from .store import Store, tokens, transitions, workflows

__all__ = ["CheckpointPolicy", "PersistentWorkflowEngine", "Token"]

# The statements of a checkpoint, built once: building them per call costs more
# than a SQLite commit. Their SET clauses come from the parameters given.
_SAVE_TOKEN = tokens.update().where(
    tokens.c.workflow_uuid == sa.bindparam("w_uuid"),
    tokens.c.position == sa.bindparam("w_position"),
)
_UPDATE_WORKFLOW = workflows.update().where(
    workflows.c.uuid == sa.bindparam("w_uuid"),
    workflows.c.lock_owner == sa.bindparam("w_owner"),
)
_LOG = transitions.insert()

log = logging.getLogger(__name__)

INITIAL = ObjectStatus.INITIAL.value
RUNNING = ObjectStatus.RUNNING.value
COMPLETED = ObjectStatus.COMPLETED.value
HALTED = ObjectStatus.HALTED.value
ERROR = ObjectStatus.ERROR.value


class CheckpointPolicy(str, enum.Enum):
    """When a :class:`PersistentWorkflowEngine` commits its progress.

    Every policy also commits when a run starts, halts, fails and ends.
    """

    #: After each token (the default): one commit per token. A crash re-runs
    #: the tasks of the token that was running, from its first task.
    TOKEN = "token"
    #: After each task too: one commit per task. A crash re-runs at most the
    #: task that was running.
    TASK = "task"
    #: Only when the run halts, fails or ends: the cheapest. A crash re-runs
    #: every token since the last halt.
    HALT = "halt"


class Token:
    """A token of a stored run: the data tasks work on, and where it stands.

    Tasks receive it as ``obj``: change ``obj.data`` (any JSON value, or a
    type registered on the store's codec) and ``obj.extra_data`` (a dict).

    :ivar position: the token's index in the run.
    :ivar status: its :class:`~workflow.engine_db.ObjectStatus`.
    :ivar callback_pos: where it resumes, or ``None`` before it started.
    :ivar last_error: the traceback of the task that failed on it, if any.
    """

    __slots__ = ("callback_pos", "data", "extra_data", "last_error", "position", "status")

    def __init__(
        self,
        data: Any,
        *,
        position: int = -1,
        extra_data: dict[str, Any] | None = None,
        status: ObjectStatus = ObjectStatus.INITIAL,
        callback_pos: list[int] | None = None,
        last_error: str | None = None,
    ) -> None:
        self.data = data
        self.position = position
        self.extra_data = {} if extra_data is None else extra_data
        self.status = status
        self.callback_pos = callback_pos
        self.last_error = last_error

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Token:
        """Build a token from its stored row."""
        return cls(
            row["data"],
            position=row["position"],
            extra_data=row["extra_data"] or {},
            status=ObjectStatus(row["status"]),
            callback_pos=row["callback_pos"],
            last_error=row["last_error"],
        )

    def __repr__(self) -> str:
        return f"<Token #{self.position} {self.status.name} data={self.data!r}>"


class PersistentWorkflowEngine(GenericWorkflowEngine):
    """An engine that stores its run, its tokens and their history in a :class:`Store`.

    Build one with :meth:`with_name` (a new workflow) or :meth:`from_uuid` (a
    stored one), give it its definition (``eng.callbacks.replace([...])``),
    then :meth:`process` data or :meth:`resume` a halted or crashed run.

    :param store: the database.
    :param uuid: the stored workflow this engine runs.
    :param checkpoint: when progress is committed (:class:`CheckpointPolicy`).
    :param lock_wait: seconds to wait for another process to release the
        workflow before :class:`~workflow.errors.WorkflowLockedError`.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        store: Store,
        uuid: str,
        *,
        checkpoint: CheckpointPolicy | str = CheckpointPolicy.TOKEN,
        lock_wait: float = 0.0,
    ) -> None:
        super().__init__()
        self.storage = store
        self.uuid = uuid
        self.checkpoint = CheckpointPolicy(checkpoint)
        self.lock_wait = lock_wait
        self.owner = store.new_owner()
        self._unsaved: list[Token] = []
        self._resuming = False
        self._heartbeat: LockHeartbeat | None = None
        #: Held around this engine's transactions and the heartbeat's renewals, so
        #: that the two never wait on each other's row locks (a deadlock on MariaDB).
        self._db_guard = threading.RLock()
        row = store.workflow(uuid)
        self.name: str = row["name"]
        self.status = WorkflowStatus(row["status"])
        self.extra_data = row["extra_data"] or {}
        #: The stored definition the run was made from (see :class:`Definitions`), if any.
        self.definition_name: str | None = row["definition_name"]
        #: Its version, if any.
        self.definition_version: int | None = row["definition_version"]
        self.state.token_pos = row["token_pos"]
        self.state.callback_pos = row["callback_pos"] or [0]

    @classmethod
    def with_name(
        cls,
        name: str,
        *,
        store: Store,
        definition: Any = None,
        extra_data: dict[str, Any] | None = None,
        checkpoint: CheckpointPolicy | str = CheckpointPolicy.TOKEN,
        lock_wait: float = 0.0,
        definition_name: str | None = None,
        definition_version: int | None = None,
    ) -> PersistentWorkflowEngine:
        """Store a new workflow called ``name`` and return an engine for it.

        ``definition_name`` and ``definition_version`` record the stored
        definition (:class:`~workflow.storage.Definitions`) the run is made
        from, so that a later process resumes it with the same version; they
        are kept in the workflow's row and read back by :meth:`from_uuid`.

        .. versionchanged:: 3.0
           Added ``definition_name`` and ``definition_version``.
        """
        uid = store.create_workflow(
            name,
            extra_data=extra_data,
            definition_name=definition_name,
            definition_version=definition_version,
        )
        engine = cls(store, uid, checkpoint=checkpoint, lock_wait=lock_wait)
        if definition is not None:
            engine.callbacks.replace(definition)
        return engine

    @classmethod
    def from_uuid(
        cls,
        uuid: str,
        *,
        store: Store,
        definition: Any = None,
        checkpoint: CheckpointPolicy | str = CheckpointPolicy.TOKEN,
        lock_wait: float = 0.0,
    ) -> PersistentWorkflowEngine:
        """Return an engine for the stored workflow ``uuid``.

        :raises WorkflowNotFoundError: when no workflow has that uuid.
        """
        engine = cls(store, uuid, checkpoint=checkpoint, lock_wait=lock_wait)
        if definition is not None:
            engine.callbacks.replace(definition)
        return engine

    @classproperty
    def processing_factory(cls) -> type[ProcessingFactory]:
        """:class:`PersistentProcessingFactory`: takes the lock and checkpoints."""
        return PersistentProcessingFactory

    # -- running ------------------------------------------------------------------

    def process(
        self,
        objects: Any,
        stop_on_error: bool = True,
        stop_on_halt: bool = True,
        initial_run: bool = True,
        reset_state: bool = True,
    ) -> None:
        """Store ``objects`` as the run's tokens, then run them.

        Each item becomes a :class:`Token` whose ``data`` is the item (items
        that are already tokens of this run are run as they are). The workflow
        must not have tokens yet: use :meth:`resume` to go on with a stored run.
        """
        if not (
            isinstance(objects, list)
            and objects
            and all(isinstance(item, Token) for item in objects)
        ):
            self._check_objects(objects)
            objects = self._store_tokens(list(objects))
        try:
            super().process(objects, stop_on_error, stop_on_halt, initial_run, reset_state)
        finally:
            self._stop_heartbeat()

    def resume(self, *, stop_on_error: bool = True, stop_on_halt: bool = True) -> None:
        """Go on with the stored run, from the database, exactly where it stopped.

        Tokens already COMPLETED are never run again. The first other token
        resumes after the task it halted on, at the task that failed, at the
        last task checkpoint, or from its first task when it has none.
        """
        if self.callbacks.empty():
            raise WorkflowError("The callbacks are empty, did you set them?")
        # Lock first, then read: a holder we waited for may have moved on meanwhile.
        self.storage.acquire(self.uuid, self.owner, wait=self.lock_wait)
        self._unsaved.clear()
        objects = self.load_tokens()
        pending = [token for token in objects if token.status is not ObjectStatus.COMPLETED]
        if not pending and self._reload_status() is WorkflowStatus.COMPLETED:
            with self._transaction("release lock") as conn:
                self.storage.release(conn, self.uuid, self.owner)
            return  # nothing left to do: resuming a completed run changes nothing
        if not pending:
            self.state.token_pos = len(objects) - 1
            self.state.callback_pos = [0]
        else:
            first = pending[0]
            self.state.token_pos = first.position - 1
            self.state.callback_pos = _resume_point(first)
        self._resuming = True
        try:
            GenericWorkflowEngine.process(
                self,
                objects,
                stop_on_error=stop_on_error,
                stop_on_halt=stop_on_halt,
                reset_state=False,
            )
        finally:
            self._resuming = False
            self._stop_heartbeat()

    def restart(
        self,
        obj: str,
        task: str,
        objects: Any = None,
        stop_on_error: bool = True,
        stop_on_halt: bool = True,
    ) -> None:
        """Reload the run from the database, then :meth:`GenericWorkflowEngine.restart` it."""
        self.storage.acquire(self.uuid, self.owner, wait=self.lock_wait)
        self._unsaved.clear()
        row = self.storage.workflow(self.uuid)
        self.state.token_pos = row["token_pos"]
        self.state.callback_pos = row["callback_pos"] or [0]
        try:
            super().restart(
                obj,
                task,
                self.load_tokens() if objects is None else objects,
                stop_on_error=stop_on_error,
                stop_on_halt=stop_on_halt,
            )
        finally:
            self._stop_heartbeat()

    def callback_chooser(self, obj: Any) -> Any:
        """Skip tokens that already completed; others get the definition under ``'*'``."""
        if isinstance(obj, Token) and obj.status is ObjectStatus.COMPLETED:
            return None
        return super().callback_chooser(obj)

    def execute_callback(self, callback: Any, obj: Any) -> None:
        """Call the task; with the TASK policy, checkpoint after it returns."""
        callback(obj, self)
        if self.checkpoint is CheckpointPolicy.TASK:
            self._checkpoint_task(obj)

    # -- reading the store ------------------------------------------------------------

    def load_tokens(self, status: ObjectStatus | None = None) -> list[Token]:
        """Return the stored tokens of this run (optionally of one status), in order."""
        rows = self.storage.token_rows(self.uuid, None if status is None else status.value)
        return [Token.from_row(row) for row in rows]

    @property
    def completed_tokens(self) -> list[Token]:
        """The stored tokens that completed."""
        return self.load_tokens(ObjectStatus.COMPLETED)

    @property
    def halted_tokens(self) -> list[Token]:
        """The stored tokens that halted."""
        return self.load_tokens(ObjectStatus.HALTED)

    @property
    def error_tokens(self) -> list[Token]:
        """The stored tokens whose task failed."""
        return self.load_tokens(ObjectStatus.ERROR)

    def transitions(self) -> list[dict[str, Any]]:
        """Return the transition log of this run, oldest first."""
        return self.storage.transition_rows(self.uuid)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} {self.uuid} {self.status.name} "
            f"token_pos={self.state.token_pos} callback_pos={self.state.callback_pos}>"
        )

    # -- writing the store --------------------------------------------------------------

    def update_token(self, position: int, data: Any) -> None:
        """Replace the stored data of the token at ``position``, before :meth:`resume`.

        Meant for a person fixing a halted or failed token: the token keeps its
        status and resume point, the change is logged in the transitions as
        ``'data updated'``, and ``data`` is stored through the store's codec.
        Tokens that did not start, halted, failed or wait may be changed.

        The change takes the workflow's lock (waiting ``lock_wait`` seconds),
        so it never races a run in another process; call it between runs.

        :raises IndexError: when the run has no token at ``position``.
        :raises ~workflow.errors.WorkflowObjectStatusError: when the token is
            ``RUNNING`` or ``COMPLETED``.
        :raises ~workflow.errors.WorkflowLockedError: when another process
            runs the workflow.
        :raises ~workflow.errors.TokenEncodingError: when ``data`` cannot be
            stored as JSON.

        .. versionadded:: 3.0
        """
        held = self.storage.workflow(self.uuid)["lock_owner"] == self.owner
        self.storage.acquire(self.uuid, self.owner, wait=self.lock_wait)
        try:
            with self._transaction("update token", token=position) as conn:
                row = conn.execute(
                    sa.select(tokens.c.status, tokens.c.callback_pos).where(
                        tokens.c.workflow_uuid == self.uuid, tokens.c.position == position
                    )
                ).first()
                if row is None:
                    count = conn.execute(
                        sa.select(sa.func.count()).where(tokens.c.workflow_uuid == self.uuid)
                    ).scalar_one()
                    raise IndexError(
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
                now = utcnow()
                conn.execute(
                    _SAVE_TOKEN,
                    {"w_uuid": self.uuid, "w_position": position, "data": data, "modified": now},
                )
                conn.execute(
                    _LOG,
                    {
                        "workflow_uuid": self.uuid,
                        "token_position": position,
                        "from_status": status.value,
                        "to_status": status.value,
                        "callback_pos": row.callback_pos,
                        "message": "data updated",
                        "created": now,
                    },
                )
                values: dict[str, Any] = {"modified": now}
                if held:
                    values["lock_expires"] = _lock_expiry(self.storage, now)
                else:
                    values.update(lock_owner=None, lock_expires=None)
                self._update_workflow(conn, values)
        except BaseException:
            if not held:
                self._release_quietly()
            raise

    def _release_quietly(self) -> None:
        """Release the lock after a failed write; a failure here must not hide the first."""
        try:
            with self._transaction("release lock") as conn:
                self.storage.release(conn, self.uuid, self.owner)
        except StorageError:
            log.debug("could not release the lock of workflow %s", self.uuid, exc_info=True)

    def _store_tokens(self, items: list[Any]) -> list[Token]:
        if self.storage.token_rows(self.uuid):
            raise WorkflowError(
                f"workflow {self.uuid} already has tokens; use resume() to go on with it",
                id_workflow=self.uuid,
            )
        objects = [Token(item, position=index) for index, item in enumerate(items)]
        now = utcnow()
        rows = [
            {
                "workflow_uuid": self.uuid,
                "position": token.position,
                "data": token.data,
                "extra_data": token.extra_data,
                "status": INITIAL,
                "callback_pos": None,
                "created": now,
                "modified": now,
            }
            for token in objects
        ]
        if rows:
            try:
                with self._transaction("store tokens") as conn:
                    conn.execute(tokens.insert(), rows)
            except TokenEncodingError:
                # One statement stores them all: encode them one by one to name the culprit.
                for token in objects:
                    try:
                        self.storage.codec.dumps(token.data)
                    except TokenEncodingError as error:
                        error.workflow = self.uuid
                        error.token = token.position
                        error.operation = "store tokens"
                        raise
                raise
        return objects

    def _set_status(
        self,
        conn: sa.Connection,
        status: WorkflowStatus,
        message: str = "",
        *,
        release: bool = False,
    ) -> None:
        """Store the workflow's status, position and extra_data (checking the lock)."""
        now = utcnow()
        values: dict[str, Any] = {
            "status": status.value,
            "token_pos": self.state.token_pos,
            "callback_pos": self.state.callback_pos,
            "extra_data": self.extra_data,
            "modified": now,
        }
        if release:
            values.update(lock_owner=None, lock_expires=None)
        else:
            values["lock_expires"] = _lock_expiry(self.storage)
        self._update_workflow(conn, values)
        if status is not self.status:
            conn.execute(
                _LOG,
                {
                    "workflow_uuid": self.uuid,
                    "token_position": None,
                    "from_status": self.status.value,
                    "to_status": status.value,
                    "callback_pos": self.state.callback_pos,
                    "message": message,
                    "created": now,
                },
            )
            self.status = status

    def _update_workflow(self, conn: sa.Connection, values: dict[str, Any]) -> None:
        updated = conn.execute(
            _UPDATE_WORKFLOW, {"w_uuid": self.uuid, "w_owner": self.owner, **values}
        ).rowcount
        if updated != 1:
            raise WorkflowLockedError(
                f"this engine lost the lock of workflow {self.uuid} (it expired and another "
                "process took it over); nothing of the current step was saved",
                workflow=self.uuid,
                operation="checkpoint",
            )

    def _save_token(
        self,
        conn: sa.Connection,
        obj: Token,
        status: ObjectStatus,
        message: str = "",
        *,
        callback_pos: list[int] | None,
        error: str | None = None,
        now: datetime | None = None,
    ) -> None:
        now = now or utcnow()
        conn.execute(
            _SAVE_TOKEN,
            {
                "w_uuid": self.uuid,
                "w_position": obj.position,
                "data": obj.data,
                "extra_data": obj.extra_data,
                "status": status.value,
                "callback_pos": callback_pos,
                "last_error": error,
                "modified": now,
            },
        )
        if status is not obj.status:
            conn.execute(
                _LOG,
                {
                    "workflow_uuid": self.uuid,
                    "token_position": obj.position,
                    "from_status": obj.status.value,
                    "to_status": status.value,
                    "callback_pos": callback_pos,
                    "message": message,
                    "created": now,
                },
            )
        obj.status = status
        obj.callback_pos = callback_pos
        obj.last_error = error

    def _reload_status(self) -> WorkflowStatus:
        """Read the workflow's status again (another process may have moved it on)."""
        self.status = WorkflowStatus(self.storage.workflow(self.uuid)["status"])
        return self.status

    @contextmanager
    def _transaction(self, operation: str, *, token: int | None = None) -> Iterator[sa.Connection]:
        """One transaction on this workflow, never at the same time as a heartbeat's renewal."""
        with (
            self._db_guard,
            self.storage.transaction(operation, workflow=self.uuid, token=token) as conn,
        ):
            yield conn

    def _start_heartbeat(self) -> None:
        """Keep the lock from a thread while this engine runs (see :class:`LockHeartbeat`)."""
        if self._heartbeat is None:
            self._heartbeat = LockHeartbeat(
                self.storage, self.uuid, self.owner, guard=self._db_guard
            )
            self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()

    def _fail_unstorable(
        self, obj: Token, error: StorageError, *, from_first_task: bool = False
    ) -> None:
        """Store a token whose data cannot be saved as ERROR, keeping its last stored data.

        It resumes where that stored data belongs: at its first task when its
        tasks' results were only to be stored once it completed, else at the
        task whose results could not be stored.
        """
        error.workflow, error.token = self.uuid, obj.position
        position = None if from_first_task else list(self.state.callback_pos)
        now = utcnow()
        with self._transaction("error", token=obj.position) as conn:
            _flush_completed(self, conn)
            conn.execute(
                _SAVE_TOKEN,
                {
                    "w_uuid": self.uuid,
                    "w_position": obj.position,
                    "status": ERROR,
                    "callback_pos": position,
                    "last_error": str(error),
                    "modified": now,
                },
            )
            conn.execute(
                _LOG,
                {
                    "workflow_uuid": self.uuid,
                    "token_position": obj.position,
                    "from_status": obj.status.value,
                    "to_status": ERROR,
                    "callback_pos": position,
                    "message": str(error),
                    "created": now,
                },
            )
            obj.status = ObjectStatus.ERROR
            self._set_status(conn, WorkflowStatus.ERROR, str(error), release=True)

    def _checkpoint_token(self, obj: Token) -> None:
        """Store a token that completed, with the run's position."""
        self._checkpoint(obj, ObjectStatus.COMPLETED, None, [0])

    def _checkpoint_task(self, obj: Token) -> None:
        """Store a token after one of its tasks returned."""
        position = list(self.state.callback_pos)
        self._checkpoint(obj, ObjectStatus.RUNNING, position, position)

    def _checkpoint(
        self,
        obj: Token,
        status: ObjectStatus,
        token_position: list[int] | None,
        run_position: list[int],
    ) -> None:
        """Commit a token and the run's position in one transaction, renewing the lock."""
        now = utcnow()
        with self._transaction("checkpoint", token=obj.position) as conn:
            self._save_token(conn, obj, status, callback_pos=token_position, now=now)
            self._update_workflow(
                conn,
                {
                    "token_pos": self.state.token_pos,
                    "callback_pos": run_position,
                    "extra_data": self.extra_data,
                    "modified": now,
                    "lock_expires": _lock_expiry(self.storage, now),
                },
            )


def _lock_expiry(store: Store, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=store.lock_ttl)


def _resume_point(token: Token) -> list[int]:
    """Where a stored token that did not complete goes on."""
    position = token.callback_pos
    if position is None:
        return [0]
    if token.status is ObjectStatus.ERROR:
        return list(position)  # run the failed task again
    moved = list(position)
    moved[-1] += 1  # after the task that halted, or the last task checkpointed
    return moved


class PersistentProcessingFactory(ProcessingFactory):
    """Takes the workflow's lock and stores the run as it goes."""

    @classproperty
    def transition_exception_mapper(cls) -> type[TransitionActions]:
        """:class:`PersistentTransitionActions`."""
        return PersistentTransitionActions

    @staticmethod
    def before_processing(eng: Any, objects: Any) -> None:
        """Take the lock (kept by a heartbeat while tasks run) and store the run as RUNNING."""
        eng.storage.acquire(eng.uuid, eng.owner, wait=eng.lock_wait)
        eng._start_heartbeat()
        eng._reload_status()
        with eng._transaction("start") as conn:
            eng._set_status(conn, WorkflowStatus.RUNNING, "started")
        ProcessingFactory.before_processing(eng, objects)

    @staticmethod
    def before_object(eng: Any, objects: Any, obj: Any) -> None:
        """During :meth:`~PersistentWorkflowEngine.resume`, put each token back where it stopped."""
        if (
            eng._resuming
            and obj.status is not ObjectStatus.COMPLETED
            and eng.state.callback_pos == [0]
        ):
            eng.state.callback_pos = _resume_point(obj)

    @staticmethod
    def after_object(eng: Any, objects: Any, obj: Any) -> None:
        """Checkpoint the completed token (TOKEN and TASK policies)."""
        if eng.checkpoint is CheckpointPolicy.HALT:
            eng._unsaved.append(obj)  # the heartbeat keeps the lock meanwhile
            return
        try:
            eng._checkpoint_token(obj)
        except TokenEncodingError as error:
            eng._fail_unstorable(obj, error, from_first_task=True)
            raise

    @staticmethod
    def after_processing(eng: Any, objects: Any) -> None:
        """Store the outcome of the pass and release the lock."""
        with eng._transaction("finish") as conn:
            _flush_completed(eng, conn)
            done = all(obj.status is ObjectStatus.COMPLETED for obj in objects)
            status = WorkflowStatus.COMPLETED if done else WorkflowStatus.HALTED
            eng._set_status(conn, status, "finished" if done else "stopped", release=True)
        ProcessingFactory.after_processing(eng, objects)


class PersistentTransitionActions(TransitionActions):
    """Store halts and errors before the engine's usual handling."""

    @staticmethod
    def StorageError(obj: Any, eng: Any, callbacks: Any, exc_info: ExcInfo) -> None:
        """Let a database failure of a checkpoint through: it is not the task's failure."""
        exc = exc_info[1]
        if isinstance(exc, TokenEncodingError):
            eng._fail_unstorable(obj, exc)
        try:
            raise exc
        finally:
            del exc, exc_info

    @staticmethod
    def HaltProcessing(obj: Any, eng: Any, callbacks: Any, exc_info: ExcInfo) -> None:
        """Store the token HALTED at its task, the run HALTED, and release the lock."""
        exc = exc_info[1]
        position = list(eng.state.callback_pos)
        message = str(exc)
        with eng._transaction("halt", token=obj.position) as conn:
            _flush_completed(eng, conn)
            eng._save_token(conn, obj, ObjectStatus.HALTED, message, callback_pos=position)
            if eng.ends_pass(exc):
                eng._set_status(conn, WorkflowStatus.HALTED, message, release=True)
        del exc
        try:
            TransitionActions.HaltProcessing(obj, eng, callbacks, exc_info)
        finally:
            del exc_info

    @staticmethod
    def Exception(obj: Any, eng: Any, callbacks: Any, exc_info: ExcInfo) -> None:
        """Store the token ERROR with the traceback, the run ERROR, then raise a WorkflowError.

        The error is built as :class:`~workflow.engine_db.DbTransitionAction`
        builds it (:meth:`~workflow.errors.WorkflowError.from_task_failure`).
        """
        exc = exc_info[1]
        position = list(eng.state.callback_pos)
        text = "".join(traceback.format_exception(exc_info[0], exc, exc_info[2]))
        error = WorkflowError.from_task_failure(
            exc,
            workflow=eng.uuid,
            token=obj.position,
            callback_pos=position,
            task=eng.current_taskname,
            details=text,
        )
        with eng._transaction("error", token=obj.position) as conn:
            _flush_completed(eng, conn)
            eng._save_token(
                conn, obj, ObjectStatus.ERROR, str(exc), callback_pos=position, error=text
            )
            if eng.ends_pass(error):
                eng._set_status(conn, WorkflowStatus.ERROR, str(exc), release=True)
        try:
            TransitionActions.Exception(obj, eng, callbacks, exc_info)
        except BaseException:
            if error is exc:
                raise
            raise error from exc
        finally:
            del exc, error, exc_info


def _flush_completed(eng: Any, conn: sa.Connection) -> None:
    """Store the tokens completed since the last commit (the HALT policy keeps them)."""
    for token in eng._unsaved:
        eng._save_token(conn, token, ObjectStatus.COMPLETED, callback_pos=None)
    eng._unsaved.clear()
