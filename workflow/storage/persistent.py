"""PersistentWorkflowEngine: an engine whose run lives in a :class:`Store`.

The token loop is the generic engine's. The engine's hooks
(:mod:`workflow.storage.hooks`) call its typed ``on_*`` methods below, which
take the lock and store the run as it goes through a
:class:`~workflow.storage.run_writes.RunWriter`, the one place that writes a
run; ``execute_callback`` checkpoints after each task when asked to.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._hooks import ExcInfo
from ..engine import GenericWorkflowEngine, ProcessingFactory
from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import (
    HaltProcessing,
    StorageError,
    TokenEncodingError,
    WorkflowAPIError,
    WorkflowError,
    WorkflowInterrupted,
)
from ..utils import classproperty
from . import interrupts, run_checks, trace
from .heartbeat import LockHeartbeat
from .hooks import PersistentProcessingFactory, PersistentTransitionActions
from .persistent_fixes import RunFixes
from .run_checks import check_input, check_run_row, failed_task_note, tokens_from_rows
from .run_fixes import refuse_cancelled
from .run_keys import OnConflict
from .run_rows import RunRow, TokenChange
from .run_writes import RunWriter
from .store import Store
from .token import CheckpointPolicy, Token, resume_point
from .trace import FLUSH_AT, TraceBuffer, call_traced, outcome_of_halt

__all__ = [
    "CheckpointPolicy",
    "PersistentProcessingFactory",
    "PersistentTransitionActions",
    "PersistentWorkflowEngine",
    "Token",
]

log = logging.getLogger(__name__)

COMPLETED = ObjectStatus.COMPLETED


class PersistentWorkflowEngine(RunFixes, GenericWorkflowEngine):
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
        #: The tokens a :meth:`resume` goes on with (``None``: all).
        self._only: frozenset[int] | None = None
        self._heartbeat: LockHeartbeat | None = None
        self._stop_request: str | None = None
        #: Held around this engine's transactions and the heartbeat's renewals, so
        #: that the two never wait on each other's row locks (a deadlock on MariaDB).
        self._db_guard = threading.RLock()
        row = self._read_run(store, uuid)
        check_run_row(row)
        self.name: str = row["name"]
        self._writes = RunWriter(
            store, uuid, self.owner, WorkflowStatus(row["status"]), guard=self._db_guard
        )
        if store.trace_steps:
            self._writes.trace = TraceBuffer(uuid)
        self.extra_data = row["extra_data"] or {}
        #: The stored definition the run was made from (see :class:`Definitions`), if any.
        self.definition_name: str | None = row["definition_name"]
        #: Its version, if any.
        self.definition_version: int | None = row["definition_version"]
        self.state.token_pos = row["token_pos"]
        self.state.callback_pos = row["callback_pos"] or [0]
        #: ``False`` when :meth:`with_name` returned a run that existed already
        #: (its uuid, or an active run holding its key): :meth:`process` refuses it.
        self.created = True

    def _read_run(self, store: Store, uuid: str) -> dict[str, Any]:
        """The run's row, as the engine is built from it."""
        return store.workflow(uuid)

    @property
    def trace_worker(self) -> str | None:
        """Who the trace says ran this engine's tasks (``host:pid`` by default; ``None``: no trace).

        .. versionadded:: 3.0
        """
        buffer = self._writes.trace
        return None if buffer is None else buffer.worker

    @trace_worker.setter
    def trace_worker(self, name: str) -> None:
        if self._writes.trace is not None:
            self._writes.trace.worker = name[:255]

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
        uuid: str | None = None,
        key: str | int | None = None,
        on_conflict: OnConflict = "refuse",
    ) -> PersistentWorkflowEngine:
        """Store a new workflow called ``name`` and return an engine for it.

        ``definition_name`` and ``definition_version`` record the stored
        definition (:class:`~workflow.storage.Definitions`) the run is made
        from, so that a later process resumes it with the same version; they
        are kept in the workflow's row and read back by :meth:`from_uuid`.

        A run that must start once gets a ``key`` (unique among the active
        runs called ``name``) or a ``uuid`` chosen by the caller (see
        :meth:`Store.start_workflow`). When the run exists already (its
        ``uuid`` is stored, or an active run holds ``key`` and
        ``on_conflict="existing"``), the engine returned is that run's, with
        :attr:`created` ``False``: its :meth:`process` refuses to add tokens,
        :meth:`resume` goes on with it.

        :raises ~workflow.errors.RunKeyConflictError: when an active run
            holds ``key`` and ``on_conflict="refuse"`` (the default).

        .. versionchanged:: 3.0
           Added ``definition_name``, ``definition_version``, ``uuid``,
           ``key`` and ``on_conflict``.
        """
        started = store.start_workflow(
            name,
            extra_data=extra_data,
            definition_name=definition_name,
            definition_version=definition_version,
            uuid=uuid,
            key=key,
            on_conflict=on_conflict,
        )
        engine = cls(store, started.uuid, checkpoint=checkpoint, lock_wait=lock_wait)
        engine.created = started.created
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

        :raises ~workflow.errors.WorkflowAPIError: when :meth:`with_name`
            returned a run that existed already (:attr:`created` is ``False``).
        """
        if not self.created:
            raise WorkflowAPIError(
                f"workflow {self.uuid} existed already (same uuid or key): it was not "
                "started again, so process() adds no tokens to it; resume() goes on with it"
            )
        if not (
            isinstance(objects, list)
            and objects
            and all(isinstance(item, Token) for item in objects)
        ):
            self._check_objects(objects)
            objects = self._writes.store_tokens(list(objects))
        with self._interruptible():
            super().process(objects, stop_on_error, stop_on_halt, initial_run, reset_state)

    def enqueue(self, objects: Any, queue: str = "default") -> int:
        """Store ``objects`` as the run's tokens and put the run on the work queue ``queue``.

        Returns at once: workers (``workflow worker --queue NAME`` or a
        :class:`~workflow.runtime.Worker` with ``queue=NAME``) run the tokens,
        several at a time, and the last to finish stores the run's outcome
        (see :mod:`workflow.storage.queue`). Return how many tokens were
        queued.

        :raises ~workflow.errors.WorkflowAPIError: as :meth:`process`, for a
            run that existed already.

        .. versionadded:: 3.0
        """
        from .queue import WorkQueue

        work = WorkQueue(self.storage, queue)  # a bad name fails before anything is stored
        if not self.created:
            raise WorkflowAPIError(
                f"workflow {self.uuid} existed already (same uuid or key): it was not "
                "started again, so enqueue() adds no tokens to it"
            )
        self._check_objects(objects)
        self._writes.store_tokens(list(objects))
        return work.enqueue(self.uuid)

    def resume(
        self,
        *,
        stop_on_error: bool = True,
        stop_on_halt: bool = True,
        tokens: Collection[int] | None = None,
    ) -> None:
        """Go on with the stored run, from the database, exactly where it stopped.

        Tokens already COMPLETED are never run again. The first other token
        resumes after the task it halted on, at the task that failed, at the
        last task checkpoint, or from its first task when it has none.

        :param tokens: the positions of the tokens to go on with (default:
            every token); the others stay as they are. A worker passes the
            tokens whose waits were decided, so that a token halted for a
            person is not moved on with them.

        .. versionchanged:: 3.0
           Added ``tokens``.
        """
        if self.callbacks.empty():
            raise WorkflowError("The callbacks are empty, did you set them?")
        # Lock first, then read: a holder we waited for may have moved on meanwhile.
        self.storage.acquire(self.uuid, self.owner, wait=self.lock_wait)
        self._unsaved.clear()
        _, objects = self._load_run(check_positions=True)
        self._only = None if tokens is None else frozenset(tokens)
        pending = [
            token
            for token in objects
            if token.status is not ObjectStatus.COMPLETED
            and (self._only is None or token.position in self._only)
        ]
        if not pending and self._reload_status() is WorkflowStatus.COMPLETED:
            self._writes.release()
            return  # nothing left to do: resuming a completed run changes nothing
        if not pending:
            self.state.token_pos = len(objects) - 1
            self.state.callback_pos = [0]
        else:
            first = pending[0]
            self.state.token_pos = first.position - 1
            self.state.callback_pos = resume_point(first) or [0]
        self._resuming = True
        try:
            with self._interruptible():
                GenericWorkflowEngine.process(
                    self,
                    objects,
                    stop_on_error=stop_on_error,
                    stop_on_halt=stop_on_halt,
                    reset_state=False,
                )
        finally:
            self._resuming = False
            self._only = None

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
        row, stored = self._load_run(check_positions=False)
        self.state.token_pos = row["token_pos"]
        self.state.callback_pos = row["callback_pos"] or [0]
        with self._interruptible():
            super().restart(
                obj,
                task,
                stored if objects is None else objects,
                stop_on_error=stop_on_error,
                stop_on_halt=stop_on_halt,
            )

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the running pass to stop once the task that runs now returns.

        The token is then stored after that task, with the tokens completed
        before it, the lock is released and the pass raises
        :class:`~workflow.errors.WorkflowInterrupted`; the run stays
        ``RUNNING`` and may be resumed at once, by any process. Safe to call
        from a signal handler or another thread; a request made between
        passes stops the next one after its first task.

        :param reason: what asked, for the status log and the error
            (the ``workflow`` command passes ``'SIGINT'`` or ``'SIGTERM'``).

        .. versionadded:: 3.0
        """
        self._stop_request = reason

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """Run a pass; if it is interrupted, store what it did and release the lock."""
        try:
            yield
        except WorkflowInterrupted:
            raise
        except KeyboardInterrupt as exc:
            error = interrupts.abandon(self, exc)
            if error is None:
                raise
            raise error from exc
        except SystemExit:  # a task called sys.exit(): the process ends, the lock must not stay
            interrupts.abandon(self, SystemExit("SystemExit"))
            raise
        finally:
            self._stop_heartbeat()
            if trace.observer is not None:
                # A pass a halt or a failure ended, or one interrupted (a no-op after
                # on_pass_finished): its spans end with the status stored.
                trace.observer.pass_finished(self, self.status.name.lower())

    def callback_chooser(self, obj: Any) -> Any:
        """Skip tokens that already completed; others get the definition under ``'*'``."""
        if isinstance(obj, Token) and (
            obj.status is ObjectStatus.COMPLETED
            or (self._only is not None and obj.position not in self._only)
        ):
            return None
        return super().callback_chooser(obj)

    def execute_callback(self, callback: Any, obj: Any) -> None:
        """Call the task (noting it in the trace), then :meth:`on_task_completed`."""
        buffer = self._writes.trace
        if buffer is None and trace.observer is None:
            callback(obj, self)
        else:
            call_traced(self, callback, obj, buffer)
            if buffer is not None and len(buffer.rows) >= FLUSH_AT:
                self._writes.flush_trace()
        self.on_task_completed(obj)
        reason = self._stop_request
        if reason is not None:
            self._stop_request = None
            interrupts.stop_after_task(self, obj, reason)

    @property
    def status(self) -> WorkflowStatus:
        """The run's :class:`~workflow.engine_db.WorkflowStatus`, as this engine last stored it."""
        return self._writes.status

    @status.setter
    def status(self, status: WorkflowStatus) -> None:
        self._writes.status = status

    # -- reading the store ------------------------------------------------------------

    def load_tokens(self, status: ObjectStatus | None = None) -> list[Token]:
        """Return the stored tokens of this run (optionally of one status), in order.

        :raises ~workflow.errors.StoredRunError: naming a token whose row
            cannot be read (a status or position that is none).
        """
        rows = self.storage.token_rows(self.uuid, None if status is None else status.value)
        return tokens_from_rows(self.uuid, rows)

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

    def status_changes(self) -> list[dict[str, Any]]:
        """Return the status log of this run, oldest first: one row per status change.

        .. versionadded:: 3.0
        """
        return self.storage.status_change_rows(self.uuid)

    def transitions(self) -> list[dict[str, Any]]:
        """Return :meth:`status_changes` (its former name, kept working)."""
        return self.status_changes()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} {self.uuid} {self.status.name} "
            f"token_pos={self.state.token_pos} callback_pos={self.state.callback_pos}>"
        )

    # -- the seams the persistent hooks call --------------------------------------------

    def on_pass_started(self, objects: Sequence[Token]) -> None:
        """Take the lock (kept by a heartbeat while tasks run) and store the run ``RUNNING``.

        Called by :meth:`~workflow.storage.hooks.PersistentProcessingFactory.before_processing`.

        .. versionadded:: 3.0
        """
        self.storage.acquire(self.uuid, self.owner, wait=self.lock_wait)
        if self._reload_status() is WorkflowStatus.CANCELLED:
            self._writes.release(quietly=True)
            refuse_cancelled(self.uuid, WorkflowStatus.CANCELLED.value, "start")
        self._start_heartbeat()
        if trace.observer is not None:  # it may keep the trace context in extra_data
            trace.observer.pass_started(self, self._resuming)
        self._writes.start(self._run_row())

    def on_token_started(self, obj: Token) -> None:
        """During :meth:`resume`, put ``obj`` back where it stopped.

        Called by :meth:`~workflow.storage.hooks.PersistentProcessingFactory.before_object`.

        .. versionadded:: 3.0
        """
        if self._resuming and obj.status is not COMPLETED and self.state.callback_pos == [0]:
            self.state.callback_pos = resume_point(obj) or [0]
        if trace.observer is not None:
            trace.observer.token_started(self, obj.position)

    def on_task_completed(self, obj: Token) -> None:
        """Checkpoint ``obj`` after one of its tasks returned (the ``TASK`` policy).

        Called by :meth:`execute_callback`.

        .. versionadded:: 3.0
        """
        if self.checkpoint is CheckpointPolicy.TASK:
            position = list(self.state.callback_pos)
            change = TokenChange(obj, ObjectStatus.RUNNING, position)
            self._writes.checkpoint(self._run_row(position), change)

    def on_token_completed(self, obj: Token) -> None:
        """Checkpoint ``obj``, which completed (kept for later under the ``HALT`` policy).

        Called by :meth:`~workflow.storage.hooks.PersistentProcessingFactory.after_object`.

        .. versionadded:: 3.0
        """
        if trace.observer is not None:
            trace.observer.token_finished(self, obj.position, "completed", "")
        if self.checkpoint is CheckpointPolicy.HALT:
            self._unsaved.append(obj)  # the heartbeat keeps the lock meanwhile
            return
        self._writes.checkpoint(self._run_row([0]), TokenChange(obj, COMPLETED, None))

    def on_token_halted(self, obj: Token, exc: HaltProcessing) -> None:
        """Store ``obj`` ``HALTED`` at its task; when the halt ends the pass, the run too.

        Called by :meth:`~workflow.storage.hooks.PersistentTransitionActions.HaltProcessing`; a run
        stored ``HALTED`` releases its lock.

        .. versionadded:: 3.0
        """
        message = str(exc)
        if trace.observer is not None:
            trace.observer.token_finished(self, obj.position, outcome_of_halt(exc), message)
        change = TokenChange(obj, ObjectStatus.HALTED, list(self.state.callback_pos), message)
        self._stop_token("halt", change, exc)

    def on_token_failed(self, obj: Token, exc_info: ExcInfo) -> WorkflowError:
        """Store ``obj`` ``ERROR`` with the traceback; when that ends the pass, the run too.

        Called by :meth:`~workflow.storage.hooks.PersistentTransitionActions.Exception`. Return the
        error to raise, built by
        :meth:`~workflow.errors.WorkflowError.from_task_failure` (as
        :class:`~workflow.engine_db.DbWorkflowEngine` builds it).

        .. versionadded:: 3.0
        """
        exc = exc_info[1]
        position = list(self.state.callback_pos)
        text = "".join(traceback.format_exception(exc_info[0], exc, exc_info[2]))
        task = self.current_taskname
        error = WorkflowError.from_task_failure(
            exc,
            workflow=self.uuid,
            token=obj.position,
            callback_pos=position,
            task=task,
            details=text,
        )
        log.error(
            "workflow %s: token %d failed in task %s at %s: %s: %s",
            self.uuid,
            obj.position,
            task,
            position,
            type(exc).__name__,
            exc,
            extra={"workflow_uuid": self.uuid},
        )
        message = f"{exc}{failed_task_note(task)}"
        if trace.observer is not None:
            trace.observer.token_finished(self, obj.position, "failed", message)
        change = TokenChange(obj, ObjectStatus.ERROR, position, message, text)
        self._stop_token("error", change, error)
        return error

    def on_storage_failed(self, obj: Token, exc: StorageError) -> None:
        """Store the run ``ERROR`` when ``exc`` says a value of ``obj`` cannot be stored.

        Called by :meth:`~workflow.storage.hooks.PersistentTransitionActions.StorageError` for a
        storage error raised while ``obj``'s tasks ran. The run's own writes
        store their failure themselves; other storage errors leave the run
        as after a crash, to be resumed.

        .. versionadded:: 3.0
        """
        if isinstance(exc, TokenEncodingError) and not self._writes.recorded(exc):
            self._writes.fail(self._run_row(), obj, exc, self._take_unsaved())

    def on_pass_finished(self, objects: Sequence[Token]) -> None:
        """Store the outcome of the pass and release the lock.

        ``COMPLETED`` when every token completed; ``ERROR`` when a token
        failed (with ``stop_on_error=False``), even if others halted;
        ``HALTED`` otherwise.

        Called by :meth:`~workflow.storage.hooks.PersistentProcessingFactory.after_processing`.

        .. versionadded:: 3.0
        .. versionchanged:: 3.0
           A pass in which a token failed ends ``ERROR`` (it ended ``HALTED``).
        """
        unsaved = {id(obj) for obj in self._unsaved}
        failed = sum(obj.status is ObjectStatus.ERROR for obj in objects)
        if all(obj.status is COMPLETED or id(obj) in unsaved for obj in objects):
            status, message = WorkflowStatus.COMPLETED, "finished"
        elif failed:
            status = WorkflowStatus.ERROR
            message = f"stopped: {failed} token{'' if failed == 1 else 's'} failed"
        else:
            status, message = WorkflowStatus.HALTED, "stopped"
        self._writes.finish(self._run_row(), status, message, self._take_unsaved())
        if trace.observer is not None:
            trace.observer.pass_finished(self, status.name.lower())
        if status is not WorkflowStatus.HALTED and self.storage.trace_retention is not None:
            self.storage.prune_trace_when_due()

    # -- helpers ----------------------------------------------------------------------------

    def _load_run(self, *, check_positions: bool) -> tuple[dict[str, Any], list[Token]]:
        """Read the run's row and tokens under its lock, refusing what cannot resume (unlocking).

        :raises ~workflow.errors.StoredRunError: see :mod:`workflow.storage.run_checks`.
        """
        try:
            row = self.storage.workflow(self.uuid)
            refuse_cancelled(self.uuid, row["status"], "resume")
            objects = self.load_tokens()
            check_input(self.uuid, row["token_count"], objects)
            if check_positions:
                run_checks.check_positions(self.uuid, objects, self.callback_chooser)
        except BaseException:
            self._writes.release(quietly=True)
            raise
        return row, objects

    def _stop_token(self, operation: str, change: TokenChange, exc: BaseException) -> None:
        """Store a token that halted or failed; the run stops with it if ``exc`` ends the pass."""
        if self.ends_pass(exc):
            status = WorkflowStatus.HALTED if operation == "halt" else WorkflowStatus.ERROR
            run = self._run_row()
        else:  # the pass goes on with the next token
            status, run = None, self._run_row([0])
        self._writes.stop_token(
            operation,
            run,
            change,
            completed=self._take_unsaved(),
            status=status,
            message=change.message,
        )

    def _run_row(self, callback_pos: list[int] | None = None) -> RunRow:
        """The run as this engine holds it, at ``callback_pos`` (default: its own)."""
        position = self.state.callback_pos if callback_pos is None else callback_pos
        return RunRow(self.state.token_pos, list(position), self.extra_data)

    def _take_unsaved(self) -> list[Token]:
        """Hand over the tokens completed since the last commit (the ``HALT`` policy)."""
        unsaved, self._unsaved = self._unsaved, []
        return unsaved

    def _reload_status(self) -> WorkflowStatus:
        """Read the workflow's status again (another process may have moved it on)."""
        self.status = WorkflowStatus(self.storage.workflow(self.uuid)["status"])
        return self.status

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
