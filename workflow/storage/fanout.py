"""Parallel steps on a work queue: branches as tokens of their own, and their join.

When a token of a queued run reaches a parallel step (``parallel``, or a
``for_each`` with ``"parallel": true``), its worker stores each branch as a
new token of the run (after the run's own: its *branch tokens*, marked in
``extra_data`` under :data:`BRANCH`) with a work item that names the
forking token's item as its parent, and halts the forking token. In the
same transaction, the parent's item gets its join counter
(``children_left``) and the run's join counter grows by the branches.

Each branch item is claimed and run like any other (a branch that waits is
a token that waits). The transaction that ends a branch (completed or
failed) decrements its parent's counter, under the parent item's row lock,
so that exactly one transaction sees it reach 0: that one puts the parent
back on the queue, and the parent's join reads the branches' results. With
``max_concurrency``, the branches beyond it are stored ``pending`` and each
finished branch makes the next one ready.

.. versionadded:: 3.0
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..engine_db import ObjectStatus
from ..errors import WorkflowKeyError
from .queue import DONE, READY, Lease, queued_runs, work_items
from .run_rows import TokenInsert, tokens, workflows
from .run_statements import insert_tokens

__all__ = [
    "BRANCH",
    "PENDING",
    "BranchResult",
    "FanOut",
    "add_branches",
    "branch_finished",
    "branch_rows",
    "branch_tree",
]

#: The key of a branch token's ``extra_data`` that says whose branch it is.
BRANCH = "_branch"
#: The state of a branch item waiting for a place under its step's ``max_concurrency``.
PENDING = "pending"


@dataclass(frozen=True)
class BranchResult:
    """How one branch of a fork on a work queue ended (what ``branch_results`` gives)."""

    #: The branch's index (the item's, for a ``for_each``).
    index: int
    #: Whether it completed; otherwise it failed.
    completed: bool
    #: The branch token's context when it ended.
    context: dict[str, Any]
    #: Why it failed, if it did.
    error: str | None = None


@dataclass(frozen=True)
class FanOut:
    """What a forking token asks to store with its halt."""

    #: The number of this fork among the token's forks.
    fork: int
    #: Where the fork task is in the callback tree the forking token runs.
    at: list[int]
    #: How the forking token's own tree is reached, when it is a branch token itself.
    route: list[dict[str, Any]]
    #: Each branch's starting context.
    contexts: list[dict[str, Any]]
    #: How many branches may be ready at once (``None``: all).
    limit: int | None


def add_branches(conn: sa.Connection, lease: Lease, fan: FanOut, now: datetime) -> list[int]:
    """Store ``fan``'s branches as tokens and work items of ``lease``'s run; return positions.

    Inside the transaction that stores the forking token's halt (its item
    ended ``done`` by :func:`~workflow.storage.queue.fence`).
    """
    uid = lease.run
    # The run's join counter row, locked (a locking read sees the latest row on every
    # database): forks of one run number their branch tokens in turn.
    counter = conn.execute(
        sa.select(queued_runs.c.next_position)
        .where(queued_runs.c.workflow_uuid == uid)
        .with_for_update()
    ).one()
    first = counter.next_position
    if first is None:  # the first fork: branch tokens come after the run's input
        first = conn.scalar(sa.select(workflows.c.token_count).where(workflows.c.uuid == uid))
    positions = [first + index for index in range(len(fan.contexts))]
    insert_tokens(
        conn,
        [
            TokenInsert(
                workflow_uuid=uid,
                position=position,
                data=context,
                extra_data={
                    BRANCH: {
                        "of": lease.position,
                        "fork": fan.fork,
                        "index": index,
                        "route": [*fan.route, {"at": fan.at, "index": index}],
                    }
                },
                status=ObjectStatus.INITIAL.value,
                callback_pos=None,
                created=now,
                modified=now,
            )
            for index, (position, context) in enumerate(zip(positions, fan.contexts, strict=True))
        ],
    )
    conn.execute(
        work_items.insert(),
        [
            {
                "workflow_uuid": uid,
                "position": position,
                "queue": lease.queue,
                "state": READY if fan.limit is None or index < fan.limit else PENDING,
                "epoch": 0,
                "created": now,
                "modified": now,
                "parent_item": lease.item,
                "fork": fan.fork,
                "branch": index,
            }
            for index, position in enumerate(positions)
        ],
    )
    conn.execute(
        work_items.update()
        .where(work_items.c.id == lease.item)
        .values(children_left=len(positions))
    )
    conn.execute(
        queued_runs.update()
        .where(queued_runs.c.workflow_uuid == uid)
        .values(
            items_left=queued_runs.c.items_left + len(positions),
            next_position=first + len(positions),
        )
    )
    return positions


def branch_finished(conn: sa.Connection, lease: Lease, now: datetime) -> bool:
    """Count ``lease``'s branch finished in its parent's join; tell whether it was the last.

    Inside the transaction that stores the branch's end, before the run's
    join counter counts the item: the last branch puts the parent back on
    the queue (its item ``ready``, counted in the run again); another makes
    the next ``pending`` branch of its fork ready.
    """
    parent, fork = conn.execute(
        sa.select(work_items.c.parent_item, work_items.c.fork).where(work_items.c.id == lease.item)
    ).one()
    conn.execute(
        work_items.update()
        .where(work_items.c.id == parent)
        .values(children_left=work_items.c.children_left - 1)
    )
    left = conn.scalar(sa.select(work_items.c.children_left).where(work_items.c.id == parent))
    if left:
        waiting = conn.scalar(
            sa.select(work_items.c.id)
            .where(
                work_items.c.parent_item == parent,
                work_items.c.fork == fork,
                work_items.c.state == PENDING,
            )
            .order_by(work_items.c.branch)
            .limit(1)
        )
        if waiting is not None:
            conn.execute(
                work_items.update()
                .where(work_items.c.id == waiting, work_items.c.state == PENDING)
                .values(state=READY, modified=now)
            )
        return False
    moved = conn.execute(
        work_items.update()
        .where(work_items.c.id == parent, work_items.c.state == DONE)
        .values(state=READY, owner=None, lease_until=None, modified=now, dispatched=None)
    ).rowcount
    if moved:
        conn.execute(
            queued_runs.update()
            .where(queued_runs.c.workflow_uuid == lease.run)
            .values(items_left=queued_runs.c.items_left + 1, halts=queued_runs.c.halts - 1)
        )
    return True


def branch_rows(conn: sa.Connection, item: int, fork: int) -> list[Any]:
    """The branch tokens of fork ``fork`` of the token whose item is ``item``, in branch order.

    Each row has ``branch``, ``position``, ``status``, ``data`` and ``last_error``.
    """
    query = (
        sa.select(
            work_items.c.branch,
            tokens.c.position,
            tokens.c.status,
            tokens.c.data,
            tokens.c.last_error,
        )
        .join(
            tokens,
            sa.and_(
                tokens.c.workflow_uuid == work_items.c.workflow_uuid,
                tokens.c.position == work_items.c.position,
            ),
        )
        .where(work_items.c.parent_item == item, work_items.c.fork == fork)
        .order_by(work_items.c.branch)
    )
    return list(conn.execute(query))


def branch_tree(tree: list[Any], route: list[dict[str, Any]]) -> list[Any]:
    """The callback list a branch token runs: ``route`` followed from the run's ``tree``.

    Each hop names where a fork task is (``at``, in the tree of the token
    that forked) and which of its branches (``index``).

    :raises WorkflowKeyError: when the route leads to no fork (the definition changed).
    """
    for hop in route:
        node: Any = tree
        try:
            for index in hop["at"]:
                node = node[index]
            callbacks_of = node.callbacks_of
        except (LookupError, TypeError, AttributeError):
            raise WorkflowKeyError(f"no parallel step at {hop['at']}") from None
        tree = callbacks_of(hop["index"])
    return tree
