"""The work queue: a run's tokens as work items that stateless workers claim.

A run put on a queue (:meth:`WorkQueue.enqueue`) is locked for the queue
(its lock's owner is ``queue:NAME``, so no process runs it in-process
meanwhile) and gets one work item per token that has not completed. A
worker *claims* items (:meth:`WorkQueue.claim`): each claim is a
:class:`Lease` on one token, with an expiry the worker renews and a
*fencing epoch* the claim raised by one. Every write the worker then makes
for the token checks the epoch in the same transaction (:func:`fence`): a
worker whose lease lapsed and was claimed by another writes nothing more
(:class:`~workflow.errors.LeaseLostError`), so no task result is stored
twice.

Claiming takes ``FOR UPDATE SKIP LOCKED`` rows on PostgreSQL and MariaDB,
so that workers never queue behind each other; SQLite has one writer at a
time, and its claim is a single ``UPDATE`` that takes the write lock first.

The worker that finishes a run's last item (the decrement of the run's
join counter in ``wf_queued_run`` reaches 0, under that row's lock) stores
the run's outcome and releases the run: ``ERROR`` when a token failed,
``HALTED`` when one waits, ``COMPLETED`` otherwise.

.. versionadded:: 3.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import (
    LeaseLostError,
    StoredRunError,
    WorkflowLockedError,
    WorkflowNotFoundError,
    WorkflowValueError,
)
from .models import QueuedRunRecord, WorkItemRecord
from .run_rows import StatusChangeInsert, tokens, workflows
from .run_statements import log_status_change, take_lock, update_workflow

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "DEFAULT_QUEUE",
    "Lease",
    "WorkQueue",
    "claimable_at",
    "fence",
    "finish_item",
    "is_queue_owner",
    "queue_owner",
    "queued_runs",
    "stop_work",
    "work_items",
]

#: The queue a run goes on when none is named.
DEFAULT_QUEUE = "default"

#: The lock owner of a queued run is this prefix and the queue's name.
_OWNER_PREFIX = "queue:"

#: A queued run's lock never lapses: its workers hold leases on its tokens instead.
_FOREVER = datetime(9999, 12, 31)

_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")

work_items = cast(sa.Table, WorkItemRecord.__table__)
queued_runs = cast(sa.Table, QueuedRunRecord.__table__)

READY, CLAIMED, DONE = "ready", "claimed", "done"


def queue_owner(queue: str) -> str:
    """The lock owner of the runs on ``queue``."""
    return _OWNER_PREFIX + queue


def is_queue_owner(owner: str | None) -> bool:
    """Tell whether a run's lock ``owner`` is a queue's (the run is on a work queue)."""
    return owner is not None and owner.startswith(_OWNER_PREFIX)


def stop_work(conn: sa.Connection, uid: str, now: datetime) -> int:
    """End every work item of run ``uid`` that is not done (the run is cancelled).

    A worker running one of its tokens finds its lease gone at its next
    write and stores nothing more. Return how many items were stopped.
    """
    stopped = conn.execute(
        work_items.update()
        .where(work_items.c.workflow_uuid == uid, work_items.c.state != DONE)
        .values(state=DONE, owner=None, lease_until=None, modified=now)
    )
    return int(stopped.rowcount)


def check_queue_name(name: object) -> str:
    """Return ``name`` if it can name a queue, else raise :class:`WorkflowValueError`."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise WorkflowValueError(
            f"a queue's name is 1 to 100 letters, digits and '_.:-', starting with a "
            f"letter or digit, not {name!r}"
        )
    return name


@dataclass(frozen=True)
class Lease:
    """A worker's hold on one token of a queued run (see :meth:`WorkQueue.claim`)."""

    #: The work item's id.
    item: int
    #: The run's uuid.
    run: str
    #: The token's position in the run.
    position: int
    #: The fencing epoch of this claim: a later claim of the item raises it.
    epoch: int
    #: Who holds the lease.
    owner: str
    #: The queue the item is on.
    queue: str

    def __str__(self) -> str:
        return f"token {self.position} of run {self.run} (epoch {self.epoch}, {self.owner})"


class WorkQueue:
    """The queue called ``name`` in ``store``: put runs on it, claim their tokens.

    :param store: the database.
    :param name: the queue's name (letters, digits and ``_.:-``).
    :param lease_ttl: seconds a claim holds without renewal; a worker renews
        its leases at every write and from a heartbeat, so only a dead or
        stalled worker loses one, and another worker takes the token over
        once it lapsed.

    >>> from workflow.storage import Store, PersistentWorkflowEngine
    >>> from workflow.storage.queue import WorkQueue
    >>> store = Store("sqlite://"); store.create_all()
    >>> engine = PersistentWorkflowEngine.with_name("double", store=store)
    >>> _ = engine._writes.store_tokens([1, 2, 3])  # what process() stores first
    >>> queue = WorkQueue(store, "numbers")
    >>> queue.enqueue(engine.uuid)
    3
    >>> [lease.position for lease in queue.claim("worker-1", limit=2)]
    [0, 1]
    >>> queue.counts()
    {'ready': 1, 'claimed': 2, 'done': 0}
    """

    def __init__(self, store: Store, name: str = DEFAULT_QUEUE, *, lease_ttl: float = 10.0):
        self.store = store
        self.name = check_queue_name(name)
        if not isinstance(lease_ttl, (int, float)) or not 0 < lease_ttl < 86400:
            raise WorkflowValueError(
                f"lease_ttl must be a number of seconds above 0 and under a day, not {lease_ttl!r}"
            )
        self.lease_ttl = float(lease_ttl)
        dialect = store.sql_engine.dialect.name
        self._skip_locked = dialect in ("postgresql", "mysql", "mariadb")
        self._returning = dialect == "postgresql"

    def __repr__(self) -> str:
        return f"<WorkQueue {self.name!r} {self.store!r}>"

    # -- putting runs on the queue ----------------------------------------------

    def enqueue(self, uid: str) -> int:
        """Put the stored run ``uid`` on this queue: one work item per token not completed.

        The run must have its input stored and must not be locked by a
        process (nor be on a queue already). It is stored ``RUNNING``, locked
        for the queue, until the worker that finishes its last item stores
        its outcome. Return how many items were queued.

        :raises WorkflowNotFoundError: when no run has that uuid.
        :raises StoredRunError: when the run has no input stored.
        :raises WorkflowLockedError: when a process (or a queue) holds the run.
        """
        now = self.store.now()
        owner = queue_owner(self.name)
        with self.store.transaction("enqueue", workflow=uid) as conn:
            taken = take_lock(conn, uid, owner, now, _FOREVER)
            row = conn.execute(
                sa.select(
                    workflows.c.status,
                    workflows.c.token_count,
                    workflows.c.lock_owner,
                    workflows.c.lock_expires,
                ).where(workflows.c.uuid == uid)
            ).first()
            if row is None:
                raise WorkflowNotFoundError(
                    f"no stored workflow has the uuid {uid!r}", workflow=uid, operation="enqueue"
                )
            if not taken:
                raise _locked(uid, row.lock_owner, row.lock_expires)
            if row.token_count is None:
                raise StoredRunError(
                    f"workflow {uid} has no input stored: store its tokens before queueing it",
                    workflow=uid,
                    operation="enqueue",
                )
            if row.status == WorkflowStatus.CANCELLED.value:
                raise StoredRunError(
                    f"workflow {uid} was cancelled: it cannot be queued",
                    workflow=uid,
                    operation="enqueue",
                )
            positions = conn.scalars(
                sa.select(tokens.c.position)
                .where(
                    tokens.c.workflow_uuid == uid,
                    tokens.c.status != ObjectStatus.COMPLETED.value,
                )
                .order_by(tokens.c.position)
            ).all()
            already = conn.execute(
                sa.select(queued_runs.c.queue).where(queued_runs.c.workflow_uuid == uid)
            ).first()
            if already is not None:
                raise WorkflowLockedError(
                    f"workflow {uid} was queued on {already.queue!r} already",
                    workflow=uid,
                    operation="enqueue",
                )
            conn.execute(
                queued_runs.insert(),
                {
                    "workflow_uuid": uid,
                    "queue": self.name,
                    "items_left": len(positions),
                    "errors": 0,
                    "halts": 0,
                    "created": now,
                },
            )
            if positions:
                conn.execute(
                    work_items.insert(),
                    [
                        {
                            "workflow_uuid": uid,
                            "position": position,
                            "queue": self.name,
                            "state": READY,
                            "epoch": 0,
                            "created": now,
                            "modified": now,
                        }
                        for position in positions
                    ],
                )
                status = WorkflowStatus.RUNNING
                message = f"queued on {self.name!r}: {len(positions)} tokens"
                lock: dict[str, Any] = {}
            else:  # every token completed: nothing for a worker to do
                status, message = WorkflowStatus.COMPLETED, f"queued on {self.name!r}: finished"
                lock = {"lock_owner": None, "lock_expires": None}
            _store_run_status(conn, uid, owner, row.status, status, message, now, **lock)
        return len(positions)

    @staticmethod
    def queue_of(store: Store, uid: str) -> str | None:
        """The queue run ``uid`` was put on, or ``None`` (a run driven in-process)."""
        query = sa.select(queued_runs.c.queue).where(queued_runs.c.workflow_uuid == uid)
        with store.transaction("read the run's queue", workflow=uid) as conn:
            return conn.scalar(query)

    def requeue(self, uid: str, positions: Iterable[int]) -> int:
        """Put the halted tokens at ``positions`` of queued run ``uid`` back on the queue.

        What a worker does for tokens whose waits were decided. Only items
        that are done go back (one conditional write decides, should two
        workers try); the run is stored ``RUNNING`` again, locked for the
        queue, when it had finished ``HALTED``. Return how many went back.

        :raises WorkflowLockedError: when a process holds the run (it was
            resumed in-process meanwhile): that process goes on with it.
        """
        wanted = sorted(set(positions))
        if not wanted:
            return 0
        now = self.store.now()
        owner = queue_owner(self.name)
        with self.store.transaction("requeue", workflow=uid) as conn:
            moved = conn.execute(
                work_items.update()
                .where(
                    work_items.c.workflow_uuid == uid,
                    work_items.c.position.in_(wanted),
                    work_items.c.state == DONE,
                )
                .values(state=READY, owner=None, lease_until=None, modified=now, dispatched=None)
            ).rowcount
            if not moved:
                return 0
            conn.execute(
                queued_runs.update()
                .where(queued_runs.c.workflow_uuid == uid)
                .values(
                    items_left=queued_runs.c.items_left + moved,
                    halts=queued_runs.c.halts - moved,
                )
            )
            row = conn.execute(
                sa.select(workflows.c.status, workflows.c.lock_owner, workflows.c.lock_expires)
                .where(workflows.c.uuid == uid)
                .with_for_update()
            ).one()
            if row.status == WorkflowStatus.CANCELLED.value:  # rolls the items back too
                raise StoredRunError(
                    f"workflow {uid} was cancelled: its tokens are not queued again",
                    workflow=uid,
                    operation="requeue",
                )
            if row.lock_owner != owner:
                if not take_lock(conn, uid, owner, now, _FOREVER):
                    raise _locked(uid, row.lock_owner, row.lock_expires)
                running = WorkflowStatus.RUNNING
                message = f"requeued on {self.name!r}: {moved} tokens go on"
                _store_run_status(conn, uid, owner, row.status, running, message, now)
        return int(moved)

    # -- claiming ---------------------------------------------------------------------

    def claim(self, owner: str, *, limit: int = 1) -> list[Lease]:
        """Claim up to ``limit`` items of this queue for ``owner``, oldest first.

        An item is claimable when it is ready, or claimed under a lease
        that lapsed (its worker died or stalled): that worker's next write
        is then refused. Each claim raises the item's epoch by one.
        """
        now = self.store.now()
        params = {
            "c_queue": self.name,
            "c_now": now,
            "c_limit": limit,
            "c_owner": owner,
            "c_until": self._until(now),
        }
        if self._returning:
            # PostgreSQL: one statement picks (skipping rows others are claiming),
            # claims and returns the items; it commits on its own, in one round trip.
            with self.store.autocommit("claim work") as conn:
                claimed = sorted(conn.execute(_CLAIM_RETURNING, params).all())
            return [Lease(row[0], row[1], row[2], row[3], owner, self.name) for row in claimed]
        with self.store.transaction("claim work") as conn:
            if self._skip_locked:
                rows = conn.execute(_PICK_LOCKED, params).all()
                if not rows:
                    return []
                conn.execute(_CLAIM_IDS, {**params, "c_ids": [row.id for row in rows]})
                found = [(row.id, row.workflow_uuid, row.position, row.epoch + 1) for row in rows]
            else:
                # SQLite: the UPDATE takes the database's write lock before it
                # reads, so the items it picks are no one else's.
                if not conn.execute(_CLAIM_PICKED, params).rowcount:
                    return []
                found = [tuple(row) for row in conn.execute(_CLAIMED_AT, params)]
        return [Lease(item, run, pos, epoch, owner, self.name) for item, run, pos, epoch in found]

    def claim_item(self, item: int, owner: str, *, run: str, position: int) -> Lease | None:
        """Claim the work item ``item`` (token ``position`` of ``run``) for ``owner``, if it can be.

        What a Celery task does with the item its message names: one
        conditional ``UPDATE`` claims the item when it is on this queue and
        claimable (ready, or claimed under a lapsed lease), raising its
        epoch as :meth:`claim` does. Return the lease, or ``None`` when the
        item is done, held under a live lease, or not this token's: a
        duplicate or stale message then does nothing.

        .. versionadded:: 3.0
        """
        now = self.store.now()
        with self.store.transaction("claim work", workflow=run, token=position) as conn:
            changed = conn.execute(
                work_items.update()
                .where(
                    work_items.c.id == item,
                    work_items.c.workflow_uuid == run,
                    work_items.c.position == position,
                    work_items.c.queue == self.name,
                    claimable_at(now),
                )
                .values(self._claim_values(owner, now))
            )
            if changed.rowcount != 1:
                return None
            epoch = conn.execute(
                sa.select(work_items.c.epoch).where(work_items.c.id == item)
            ).scalar_one()
        return Lease(item, run, position, int(epoch), owner, self.name)

    def _claim_values(self, owner: str, now: datetime) -> dict[str, Any]:
        return {**_CLAIM_VALUES, "owner": owner, "lease_until": self._until(now), "modified": now}

    def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by ``lease_ttl`` if it is still held; tell whether it is."""
        now = self.store.now()
        with self.store.transaction(
            "renew lease", workflow=lease.run, token=lease.position
        ) as conn:
            return _fence_statement(conn, lease, CLAIMED, now, self._until(now))

    def release(self, lease: Lease) -> bool:
        """Give ``lease``'s item back to the queue (ready at once); tell whether it was held."""
        now = self.store.now()
        with self.store.transaction(
            "release lease", workflow=lease.run, token=lease.position
        ) as conn:
            return _fence_statement(conn, lease, READY, now, None)

    # -- reading ----------------------------------------------------------------------

    def counts(self, uid: str | None = None) -> dict[str, int]:
        """How many items of this queue (or of run ``uid`` on it) are in each state."""
        query = (
            sa.select(work_items.c.state, sa.func.count())
            .where(work_items.c.queue == self.name)
            .group_by(work_items.c.state)
        )
        if uid is not None:
            query = query.where(work_items.c.workflow_uuid == uid)
        counted = {READY: 0, CLAIMED: 0, DONE: 0}
        with self.store.transaction("count work") as conn:
            for state, count in conn.execute(query):
                counted[state] = count
        return counted

    def runs(self) -> list[str]:
        """The uuids of the runs on this queue that have items left, oldest first."""
        query = (
            sa.select(queued_runs.c.workflow_uuid)
            .where(queued_runs.c.queue == self.name, queued_runs.c.items_left > 0)
            .order_by(queued_runs.c.created)
        )
        with self.store.transaction("list queued runs") as conn:
            return list(conn.scalars(query))

    def _until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_ttl)


def claimable_at(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    """The items a worker may claim at ``now``: ready, or claimed under a lapsed lease."""
    return sa.or_(
        work_items.c.state == READY,
        sa.and_(work_items.c.state == CLAIMED, work_items.c.lease_until < now),
    )


# -- the statements of the hot path, built once -----------------------------------------
#
# Building a statement costs a worker more CPU than running it: the ones a
# token's claim and its writes run are built here once, with bound parameters.

_CLAIMABLE = sa.and_(
    work_items.c.queue == sa.bindparam("c_queue"), claimable_at(sa.bindparam("c_now"))
)
_CLAIM_VALUES = {
    "state": CLAIMED,
    "owner": sa.bindparam("c_owner"),
    "lease_until": sa.bindparam("c_until"),
    "epoch": work_items.c.epoch + 1,
    "modified": sa.bindparam("c_now"),
}
_CLAIMED_COLUMNS = (
    work_items.c.id,
    work_items.c.workflow_uuid,
    work_items.c.position,
    work_items.c.epoch,
)
_PICK = (
    sa.select(work_items.c.id)
    .where(_CLAIMABLE)
    .order_by(work_items.c.id)
    .limit(sa.bindparam("c_limit", type_=sa.Integer))
)
#: PostgreSQL: pick, claim and return in one statement.
_CLAIM_RETURNING = (
    work_items.update()
    .where(work_items.c.id.in_(_PICK.with_for_update(skip_locked=True)))
    .values(_CLAIM_VALUES)
    .returning(*_CLAIMED_COLUMNS)
)
#: MariaDB: lock the rows to claim, skipping those others lock, then claim them.
_PICK_LOCKED = (
    sa.select(*_CLAIMED_COLUMNS)
    .where(_CLAIMABLE)
    .order_by(work_items.c.id)
    .limit(sa.bindparam("c_limit", type_=sa.Integer))
    .with_for_update(skip_locked=True)
)
_CLAIM_IDS = (
    work_items.update()
    .where(work_items.c.id.in_(sa.bindparam("c_ids", expanding=True)))
    .values(_CLAIM_VALUES)
)
#: SQLite: claim what the statement picks under the write lock, then read it back.
_CLAIM_PICKED = work_items.update().where(work_items.c.id.in_(_PICK)).values(_CLAIM_VALUES)
_CLAIMED_AT = (
    sa.select(*_CLAIMED_COLUMNS)
    .where(
        work_items.c.owner == sa.bindparam("c_owner"),
        work_items.c.state == CLAIMED,
        work_items.c.modified == sa.bindparam("c_now"),
    )
    .order_by(work_items.c.id)
)


def _fence_update(state: str) -> sa.Update:
    values: dict[str, Any] = {"modified": sa.bindparam("f_now")}
    if state == CLAIMED:
        values["lease_until"] = sa.bindparam("f_until")
    elif state == READY:
        values.update(state=READY, owner=None, lease_until=None)
    else:
        values.update(state=DONE, lease_until=None)
    return (
        work_items.update()
        .where(
            work_items.c.id == sa.bindparam("f_item"),
            work_items.c.epoch == sa.bindparam("f_epoch"),
            work_items.c.state == CLAIMED,
        )
        .values(values)
    )


#: The fencing write, by the state it leaves the item in.
_FENCE = {state: _fence_update(state) for state in (CLAIMED, READY, DONE)}

_COUNTED = (queued_runs.c.items_left, queued_runs.c.errors, queued_runs.c.halts)
_DECREMENT = (
    queued_runs.update()
    .where(queued_runs.c.workflow_uuid == sa.bindparam("j_run"))
    .values(
        items_left=queued_runs.c.items_left - 1,
        errors=queued_runs.c.errors + sa.bindparam("j_error", type_=sa.Integer),
        halts=queued_runs.c.halts + sa.bindparam("j_halt", type_=sa.Integer),
    )
)
_DECREMENT_RETURNING = _DECREMENT.returning(*_COUNTED)
_COUNTER = (
    sa.select(*_COUNTED)
    .where(queued_runs.c.workflow_uuid == sa.bindparam("j_run"))
    .with_for_update()
)


# -- the writes a lease holder makes ---------------------------------------------------


def _fence_statement(
    conn: sa.Connection, lease: Lease, state: str, now: datetime, until: datetime | None
) -> bool:
    params = {"f_item": lease.item, "f_epoch": lease.epoch, "f_now": now, "f_until": until}
    return bool(conn.execute(_FENCE[state], params).rowcount == 1)


def fence(
    conn: sa.Connection, lease: Lease, now: datetime, lease_ttl: float, *, state: str = CLAIMED
) -> None:
    """Check ``lease`` inside ``conn``'s transaction, renewing it (or ending it in ``state``).

    The first statement of every transaction a lease holder writes: it
    locks the item's row and refuses the whole transaction when the lease
    was taken over.

    :raises LeaseLostError: when another claim raised the item's epoch.
    """
    until = now + timedelta(seconds=lease_ttl) if state == CLAIMED else None
    if not _fence_statement(conn, lease, state, now, until):
        raise LeaseLostError(
            f"the lease on {lease} lapsed and another worker claimed the token; "
            "nothing of the current step was saved",
            workflow=lease.run,
            token=lease.position,
            operation="checkpoint",
        )


def finish_item(
    conn: sa.Connection, lease: Lease, outcome: ObjectStatus, now: datetime
) -> WorkflowStatus | None:
    """Count ``lease``'s item finished with ``outcome``; finish the run if it was the last.

    Inside the transaction that stored the token (after :func:`fence` ended
    the item). The join counter's row is locked by the decrement, so the
    last item of a run is known to exactly one transaction. Return the
    run's final status when this was its last item, else ``None``.
    """
    uid = lease.run
    params = {
        "j_run": uid,
        "j_error": int(outcome is ObjectStatus.ERROR),
        "j_halt": int(outcome is ObjectStatus.HALTED),
    }
    if conn.dialect.name == "postgresql":  # the row as this decrement left it, at once
        counter = conn.execute(_DECREMENT_RETURNING, params).one()
    else:
        conn.execute(_DECREMENT, params)
        counter = conn.execute(_COUNTER, params).one()
    if counter.items_left > 0:
        return None
    if counter.errors:
        status = WorkflowStatus.ERROR
        message = f"stopped: {counter.errors} token{'' if counter.errors == 1 else 's'} failed"
    elif counter.halts:
        status, message = WorkflowStatus.HALTED, "stopped"
    else:
        status, message = WorkflowStatus.COMPLETED, "finished"
    running = WorkflowStatus.RUNNING.value
    owner = queue_owner(lease.queue)
    _store_run_status(
        conn, uid, owner, running, status, message, now, lock_owner=None, lock_expires=None
    )
    return status


def _store_run_status(
    conn: sa.Connection,
    uid: str,
    owner: str,
    before: int,
    status: WorkflowStatus,
    message: str,
    now: datetime,
    **lock: Any,
) -> None:
    values: Any = {"w_uuid": uid, "w_owner": owner, "status": status.value, "modified": now, **lock}
    if not update_workflow(conn, values):  # pragma: no cover - the queue holds the run's lock
        raise WorkflowLockedError(f"workflow {uid} is not held by {owner}", workflow=uid)
    if before != status.value:
        log_status_change(
            conn,
            StatusChangeInsert(
                workflow_uuid=uid,
                token_position=None,
                from_status=before,
                to_status=status.value,
                callback_pos=None,
                message=message,
                created=now,
            ),
        )


def _locked(uid: str, owner: str | None, expires: datetime | None) -> WorkflowLockedError:
    if owner is not None and owner.startswith(_OWNER_PREFIX):
        error = WorkflowLockedError(
            f"workflow {uid} is queued on {owner[len(_OWNER_PREFIX) :]!r}: its workers run it",
            workflow=uid,
            operation="enqueue",
        )
    else:
        error = WorkflowLockedError(
            f"workflow {uid} is locked by {owner} (until {expires} UTC): it runs in a "
            "process; queue it once that stopped",
            workflow=uid,
            operation="enqueue",
        )
    error.owner, error.expires = owner, expires
    return error


def leases_of(leases: Iterable[Lease]) -> dict[str, list[int]]:
    """Group ``leases`` by run: ``{run uuid: [positions]}``."""
    grouped: dict[str, list[int]] = {}
    for lease in leases:
        grouped.setdefault(lease.run, []).append(lease.position)
    return grouped
