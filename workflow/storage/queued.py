"""Running one leased token of a queued run (see :mod:`workflow.storage.queue`).

:class:`QueuedTokenEngine` is a :class:`PersistentWorkflowEngine` that runs
one token under a :class:`~workflow.storage.queue.Lease` instead of the
run's lock. Its writes are the persistent engine's, through a
:class:`LeaseWriter`: each transaction begins by checking the lease's
fencing epoch, in place of writing the run's row; the transaction that
ends the token counts it in the run's join counter, and the last one
stores the run's outcome.

What differs from a run driven in-process:

- tokens of one run run at once in several workers, each on its own: a
  task sees its own token only (``eng.state.token_pos`` is 0) and jumps
  between tokens do nothing useful;
- ``eng.extra_data`` is the run's, read when the token starts; what tasks
  write into it is not stored (tokens of one run would overwrite each
  other's): keep per-token data in ``obj.extra_data``;
- a halt or a failure ends the token, never the other tokens.

.. versionadded:: 3.0
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

import sqlalchemy as sa

from ..engine import GenericWorkflowEngine
from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import StorageError, StoredRunError, WorkflowError
from . import run_checks
from .fanout import (
    BRANCH,
    BranchResult,
    FanOut,
    add_branches,
    branch_finished,
    branch_rows,
    branch_tree,
)
from .keeper import Beat, lease_keeper
from .persistent import PersistentWorkflowEngine
from .queue import DONE, READY, Lease, WorkQueue, fence, finish_item
from .run_fixes import refuse_cancelled
from .run_rows import RunRow, TokenChange, tokens, workflows
from .run_writes import RunWriter
from .store import Store
from .token import CheckpointPolicy, Token, resume_point

__all__ = ["LeaseWriter", "QueuedTokenEngine"]

log = logging.getLogger(__name__)

#: The token's outcome, from the status a one-token pass ends in.
_OUTCOME = {
    WorkflowStatus.COMPLETED: ObjectStatus.COMPLETED,
    WorkflowStatus.HALTED: ObjectStatus.HALTED,
    WorkflowStatus.ERROR: ObjectStatus.ERROR,
}


#: A leased token's row, with its run's status (built once: see :mod:`.queue`).
_LEASED_TOKEN = (
    sa.select(tokens, workflows.c.status.label("run_status"))
    .join(workflows, workflows.c.uuid == tokens.c.workflow_uuid)
    .where(
        tokens.c.workflow_uuid == sa.bindparam("t_run"),
        tokens.c.position == sa.bindparam("t_position"),
    )
)


class LeaseWriter(RunWriter):
    """A :class:`RunWriter` for one leased token: fenced by the lease, not the run's lock.

    Every transaction starts with :func:`~workflow.storage.queue.fence`,
    which refuses it when the lease was taken over. A transaction that
    releases (the end of the token's pass) ends the work item: with a
    status, the item is done and counted in the join (the last item stores
    the run's outcome); without (an interrupted pass), it goes back to the
    queue.
    """

    def __init__(
        self,
        store: Store,
        lease: Lease,
        status: WorkflowStatus,
        *,
        lease_ttl: float,
        guard: threading.RLock,
    ) -> None:
        super().__init__(store, lease.run, lease.owner, status, guard=guard)
        self.lease = lease
        self.lease_ttl = lease_ttl
        #: The token's outcome, set by a transaction that ends the item.
        self._ending: ObjectStatus | None = None
        #: The run's outcome, when this token's item was its last.
        self.run_outcome: WorkflowStatus | None = None
        #: The branches a forking token stores with its halt.
        self.fanout: FanOut | None = None
        #: Whether the token is a branch of a parallel step (its end counts in its parent's join).
        self.branch = False

    def __repr__(self) -> str:
        return f"<LeaseWriter {self.lease}>"

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
        self._ending = None
        if not release:
            fence(conn, self.lease, now, self.lease_ttl)
        elif status is None:  # an interrupted pass: another worker goes on with the token
            fence(conn, self.lease, now, self.lease_ttl, state=READY)
        else:
            fence(conn, self.lease, now, self.lease_ttl, state=DONE)
            self._ending = _OUTCOME.get(status, ObjectStatus.ERROR)

    def _log_run(
        self,
        conn: sa.Connection,
        run: RunRow,
        status: WorkflowStatus | None,
        message: str,
        now: datetime,
    ) -> None:
        # After the token's own changes: the run's outcome, if this was its last item.
        ending, self._ending = self._ending, None
        fanout, self.fanout = self.fanout, None
        if ending is None:
            return
        counted = ending
        if fanout is not None and ending is ObjectStatus.HALTED:
            add_branches(conn, self.lease, fanout, now)
        elif self.branch and ending is not ObjectStatus.HALTED:
            branch_finished(conn, self.lease, now)
            counted = ObjectStatus.COMPLETED  # a failure is its parent's, which reports it
        self.run_outcome = finish_item(conn, self.lease, counted, now)

    def release(self, *, quietly: bool = False) -> None:
        """Give the token back to the queue (if the lease still holds)."""
        now = self.store.now()
        try:
            with self.transaction("release lease", token=self.lease.position) as conn:
                fence(conn, self.lease, now, self.lease_ttl, state=READY)
        except StorageError:
            if not quietly:
                raise
            log.debug("could not give back %s", self.lease, exc_info=True)


class QueuedTokenEngine(PersistentWorkflowEngine):
    """Run the token a :class:`~workflow.storage.queue.Lease` holds, from where it stopped.

    :param store: the database.
    :param lease: what a worker claimed (:meth:`WorkQueue.claim`).
    :param lease_ttl: the queue's lease time: the process's lease keeper renews the lease
        every third of it while a task runs.
    :param checkpoint: ``TOKEN`` (default) or ``TASK``; ``HALT`` counts as
        ``TOKEN`` (a queued token has no later commit to wait for).
    :param run_row: the run's row (:meth:`Store.workflow`), when the caller
        read it already: a queued run's row does not change while it is on
        the queue, so a worker reads it once for all of the run's tokens.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        store: Store,
        lease: Lease,
        *,
        lease_ttl: float,
        checkpoint: CheckpointPolicy | str = CheckpointPolicy.TOKEN,
        run_row: dict[str, Any] | None = None,
    ) -> None:
        self._given_row = run_row
        super().__init__(store, lease.run, checkpoint=checkpoint)
        self.lease = lease
        self.owner = lease.owner
        self._queue = WorkQueue(store, lease.queue, lease_ttl=lease_ttl)
        self._writes = LeaseWriter(
            store,
            lease,
            WorkflowStatus.RUNNING,
            lease_ttl=lease_ttl,
            guard=self._db_guard,
        )
        self._beat: Beat | None = None
        #: Whether a halt or a failure ended the work item already.
        self._ended = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.lease}>"

    def _read_run(self, store: Store, uuid: str) -> dict[str, Any]:
        # A queued run's row does not change while it is queued (its workers write
        # their tokens only): a worker reads it once for all of the run's tokens.
        given, self._given_row = self._given_row, None
        return dict(given) if given is not None else store.workflow(uuid)

    @property
    def checkpoint(self) -> CheckpointPolicy:
        """When progress is committed: ``TOKEN`` or ``TASK`` (``HALT`` is taken as ``TOKEN``)."""
        return self._checkpoint

    @checkpoint.setter
    def checkpoint(self, policy: CheckpointPolicy | str) -> None:
        policy = CheckpointPolicy(policy)
        self._checkpoint = CheckpointPolicy.TOKEN if policy is CheckpointPolicy.HALT else policy

    @property
    def run_outcome(self) -> WorkflowStatus | None:
        """The run's final status, when this engine finished its last token."""
        return self._writes.run_outcome if isinstance(self._writes, LeaseWriter) else None

    def run_token(self) -> ObjectStatus:
        """Run the leased token from where it stopped; return how it ended.

        A halt or a failure of a task is stored as in any run and ends this
        token only.

        :raises ~workflow.errors.LeaseLostError: when the lease was taken
            over meanwhile (nothing more was stored).
        :raises ~workflow.errors.StoredRunError: when the token's row
            cannot be run (the lease is given back first).
        """
        if self.callbacks.empty():
            raise WorkflowError("The callbacks are empty, did you set them?")
        try:
            token = self._load_token()
        except BaseException:
            self._writes.release(quietly=True)
            raise
        self.state.token_pos = -1
        self.state.callback_pos = resume_point(token) or [0]
        self._resuming = True
        try:
            with self._interruptible():
                GenericWorkflowEngine.process(
                    self, [token], stop_on_error=False, stop_on_halt=False, reset_state=False
                )
        finally:
            self._resuming = False
        return token.status

    def _load_token(self) -> Token:
        uid, position = self.lease.run, self.lease.position
        params = {"t_run": uid, "t_position": position}
        with self.storage.autocommit("load a queued token", workflow=uid, token=position) as conn:
            found = conn.execute(_LEASED_TOKEN, params).mappings().first()
        row = None if found is None else dict(found)
        if row is not None:
            refuse_cancelled(uid, row.pop("run_status"), "run")
        if row is None:
            raise StoredRunError(
                f"workflow {uid} has no token at position {position} for its work item",
                workflow=uid,
                token=position,
                operation="run queued token",
            )
        [token] = run_checks.tokens_from_rows(uid, [row])
        self._writes_branch(token)
        run_checks.check_positions(uid, [token], self.callback_chooser)
        return token

    def _writes_branch(self, token: Token) -> None:
        if isinstance(self._writes, LeaseWriter):
            self._writes.branch = isinstance(token.extra_data.get(BRANCH), dict)

    # -- parallel steps: branches as tokens of their own ------------------------------------

    def callback_chooser(self, obj: Any) -> Any:
        """The run's tree, or for a branch token the branch's callback list."""
        tree = super().callback_chooser(obj)
        marker = getattr(obj, "extra_data", None)
        branch = marker.get(BRANCH) if isinstance(marker, dict) else None
        if tree is None or not isinstance(branch, dict):
            return tree
        try:
            return branch_tree(tree, branch["route"])
        except (LookupError, TypeError) as exc:
            raise StoredRunError(
                f"token {getattr(obj, 'position', '?')} of workflow {self.uuid} is branch "
                f"{branch.get('index')} of a parallel step that its definition no longer has "
                f"({exc}); run it with the definition it was started with",
                workflow=self.uuid,
                token=getattr(obj, "position", None),
                operation="run queued token",
            ) from None

    def fan_out(
        self,
        obj: Token,
        fork: int,
        contexts: list[dict[str, Any]],
        *,
        limit: int | None,
        message: str,
    ) -> NoReturn:
        """Store ``contexts`` as branch tokens, each a work item, and halt ``obj`` until they end.

        What a parallel step's fork does on a work queue (see
        :mod:`workflow.storage.fanout`): the branches and the halt are one
        transaction.
        """
        parent = obj.extra_data.get(BRANCH)
        route = list(parent["route"]) if isinstance(parent, dict) else []
        at = list(self.state.callback_pos)
        if isinstance(self._writes, LeaseWriter):
            self._writes.fanout = FanOut(fork, at, route, contexts, limit)
        self.halt(message)
        raise AssertionError("halt() returned")  # pragma: no cover

    def branch_results(self, obj: Token, fork: int) -> list[BranchResult]:
        """How each branch of ``obj``'s fork ``fork`` ended, in branch order."""
        with self.storage.autocommit(
            "read branches", workflow=self.uuid, token=obj.position
        ) as conn:
            rows = branch_rows(conn, self.lease.item, fork)
        return [
            BranchResult(
                row.branch,
                row.status == ObjectStatus.COMPLETED.value,
                row.data,
                row.last_error,
            )
            for row in rows
        ]

    # -- the seams: no run lock, a lease and its heartbeat ------------------------------

    def on_pass_started(self, objects: Sequence[Token]) -> None:
        """Keep the lease renewed (by the :data:`~.keeper.lease_keeper`) while the token runs."""
        self._ended = False
        self._start_heartbeat()

    def on_token_completed(self, obj: Token) -> None:
        """Keep the completed token for the transaction that ends its work item."""
        self._unsaved.append(obj)

    def on_pass_finished(self, objects: Sequence[Token]) -> None:
        """End the work item with the token's outcome, unless its halt or failure did."""
        if not self._ended:
            super().on_pass_finished(objects)

    def _stop_token(self, operation: str, change: TokenChange, exc: BaseException) -> None:
        """Store a token that halted or failed, ending its work item in the same transaction."""
        status = WorkflowStatus.HALTED if operation == "halt" else WorkflowStatus.ERROR
        self._writes.stop_token(
            operation,
            self._run_row(),
            change,
            completed=self._take_unsaved(),
            status=status,
            message=change.message,
        )
        self._ended = True

    def _start_heartbeat(self) -> None:
        if self._beat is None:
            self._beat = lease_keeper.every(self._queue.lease_ttl / 3, self._renew)

    def _stop_heartbeat(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()

    def _renew(self) -> bool:
        """Extend the lease; tell whether to go on (not once the lease is gone)."""
        try:
            with self._db_guard:
                return self._queue.renew(self.lease)
        except StorageError as exc:  # the next write reports a real outage
            log.warning("could not renew the lease on %s: %s", self.lease, exc)
            return True
