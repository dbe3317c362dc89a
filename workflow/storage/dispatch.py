"""Which work items a task queue (Celery) must be told about, decided in the database.

A broker only carries *messages* that name a work item
(:class:`Dispatch`); the item's state stays in ``wf_work``. Before
messages are sent, :func:`take_dispatches` stamps the items' ``dispatched``
column in one conditional write, so that two processes sweeping at once
send each item once (a duplicate would be harmless anyway: the task's
claim is conditional too). An item whose message was lost — its sender
died before sending, a broker dropped it, or a task found it held under a
lease that later lapsed — is claimable and was not dispatched for a while:
the next sweep sends it again.

.. versionadded:: 3.0
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import WorkflowValueError
from .queue import claimable_at, work_items

if TYPE_CHECKING:
    from .queue import WorkQueue

__all__ = ["Dispatch", "take_dispatches"]

#: The most messages one call stamps.
MAX_BATCH = 10_000


@dataclass(frozen=True)
class Dispatch:
    """What a task message says: work item ``item`` is token ``position`` of ``run``.

    Never any token data: the task reads the token from the database.
    """

    #: The run's uuid.
    run: str
    #: The token's position in the run.
    position: int
    #: The work item's id.
    item: int
    #: The item's fencing epoch when the message was sent (the claim raises it).
    epoch: int

    def as_args(self) -> tuple[str, int, int, int]:
        """The message's arguments: ``(run, position, item, epoch)``."""
        return (self.run, self.position, self.item, self.epoch)


def take_dispatches(
    queue: WorkQueue,
    *,
    run: str | None = None,
    older_than: float | None = None,
    limit: int = 1000,
) -> list[Dispatch]:
    """Stamp up to ``limit`` claimable items of ``queue`` as dispatched now; return them.

    :param run: only the items of this run (what is sent after it was queued).
    :param older_than: also the items last dispatched more than this many
        seconds ago (a sweep); ``None``: only items never dispatched.
    :param limit: the most items stamped (at most 10,000).

    >>> from workflow.storage import Store, PersistentWorkflowEngine
    >>> from workflow.storage.queue import WorkQueue
    >>> store = Store("sqlite://"); store.create_all()
    >>> engine = PersistentWorkflowEngine.with_name("double", store=store)
    >>> engine.enqueue([1, 2], "numbers")
    2
    >>> queue = WorkQueue(store, "numbers")
    >>> [d.position for d in take_dispatches(queue, run=engine.uuid)]
    [0, 1]
    >>> take_dispatches(queue, run=engine.uuid)  # sent already
    []
    """
    if not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH:
        raise WorkflowValueError(
            f"limit must be a whole number from 1 to {MAX_BATCH}, not {limit!r}"
        )
    now = queue.store.now()
    due: sa.ColumnElement[bool] = work_items.c.dispatched.is_(None)
    if older_than is not None:
        if not isinstance(older_than, (int, float)) or older_than < 0:
            raise WorkflowValueError(
                f"older_than must be a number of seconds, 0 or more, not {older_than!r}"
            )
        due = sa.or_(due, work_items.c.dispatched < now - timedelta(seconds=older_than))
    wanted = sa.and_(work_items.c.queue == queue.name, claimable_at(now), due)
    if run is not None:
        wanted = sa.and_(wanted, work_items.c.workflow_uuid == run)
    columns = (
        work_items.c.workflow_uuid,
        work_items.c.position,
        work_items.c.id,
        work_items.c.epoch,
    )
    with queue.store.transaction("dispatch work", workflow=run) as conn:
        ids = list(
            conn.scalars(
                sa.select(work_items.c.id).where(wanted).order_by(work_items.c.id).limit(limit)
            )
        )
        if not ids:
            return []
        # The same condition again: of two sweeps, the second stamps nothing.
        conn.execute(
            work_items.update().where(work_items.c.id.in_(ids), wanted).values(dispatched=now)
        )
        rows = conn.execute(
            sa.select(*columns)
            .where(work_items.c.id.in_(ids), work_items.c.dispatched == now)
            .order_by(work_items.c.id)
        ).all()
    return [Dispatch(row[0], row[1], row[2], row[3]) for row in rows]
