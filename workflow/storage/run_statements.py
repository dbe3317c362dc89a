"""Every statement that changes a stored run, each built once, with its row shape.

:class:`~workflow.storage.run_writes.RunWriter` groups them into the
transactions of a running engine; :mod:`workflow.storage.run_fixes` into
the changes a person makes between passes (cancelling, retrying a token).
No other module writes ``wf_workflow``, ``wf_token`` or ``wf_transition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from .run_rows import (
    StatusChangeInsert,
    TokenInsert,
    TokenUpdate,
    WorkflowInsert,
    WorkflowUpdate,
    status_changes,
    tokens,
    workflows,
)

__all__ = [
    "COUNT_TOKENS",
    "cancel_workflow",
    "insert_tokens",
    "insert_workflow",
    "log_status_change",
    "release_lock",
    "take_lock",
    "update_token",
    "update_workflow",
]

# -- the statements (built once: building one costs more than a SQLite commit) ------

_INSERT_WORKFLOW = workflows.insert()
_INSERT_TOKEN = tokens.insert()
_INSERT_STATUS_CHANGE = status_changes.insert()
# The SET clauses of the updates come from the columns given.
_UPDATE_TOKEN = tokens.update().where(
    tokens.c.workflow_uuid == sa.bindparam("w_uuid"),
    tokens.c.position == sa.bindparam("w_position"),
)
_UPDATE_WORKFLOW = workflows.update().where(  # fenced: only the lock's holder writes
    workflows.c.uuid == sa.bindparam("w_uuid"),
    workflows.c.lock_owner == sa.bindparam("w_owner"),
)
COUNT_TOKENS = workflows.update().where(  # once: the first to store the tokens wins
    workflows.c.uuid == sa.bindparam("w_uuid"), workflows.c.token_count.is_(None)
)
_TAKE_LOCK = workflows.update().where(
    workflows.c.uuid == sa.bindparam("w_uuid"),
    sa.or_(
        workflows.c.lock_owner.is_(None),
        workflows.c.lock_owner == sa.bindparam("w_owner"),
        workflows.c.lock_expires < sa.bindparam("w_now"),
    ),
)


def insert_workflow(conn: sa.Connection, row: WorkflowInsert) -> None:
    """Insert a new run."""
    conn.execute(_INSERT_WORKFLOW, row)


def insert_tokens(conn: sa.Connection, rows: Sequence[TokenInsert]) -> None:
    """Insert the tokens of a run, in one statement."""
    conn.execute(_INSERT_TOKEN, list(rows))


def log_status_change(conn: sa.Connection, row: StatusChangeInsert) -> None:
    """Append a row to the status log."""
    conn.execute(_INSERT_STATUS_CHANGE, row)


def update_token(conn: sa.Connection, values: TokenUpdate) -> None:
    """Change the columns given of one token."""
    conn.execute(_UPDATE_TOKEN, values)


def update_workflow(conn: sa.Connection, values: WorkflowUpdate) -> bool:
    """Change the columns given of a run if ``w_owner`` holds its lock; tell whether it did."""
    return bool(conn.execute(_UPDATE_WORKFLOW, values).rowcount == 1)


def take_lock(conn: sa.Connection, uid: str, owner: str, now: datetime, expires: datetime) -> bool:
    """Lock run ``uid`` for ``owner`` if it is free, ``owner``'s, or expired; tell whether."""
    values = {"w_uuid": uid, "w_owner": owner, "w_now": now}
    taken = conn.execute(_TAKE_LOCK, {**values, "lock_owner": owner, "lock_expires": expires})
    return bool(taken.rowcount == 1)


def release_lock(conn: sa.Connection, uid: str, owner: str) -> bool:
    """Release the lock of run ``uid`` if ``owner`` holds it; tell whether it did."""
    return update_workflow(
        conn, {"w_uuid": uid, "w_owner": owner, "lock_owner": None, "lock_expires": None}
    )


# Cancelled only from the status it was read in, and only while no other
# process holds a live lock: the one write that decides a cancellation.
_CANCEL = workflows.update().where(
    workflows.c.uuid == sa.bindparam("w_uuid"),
    workflows.c.status == sa.bindparam("w_status"),
    sa.or_(
        workflows.c.lock_owner.is_(None),
        workflows.c.lock_owner == sa.bindparam("w_owner"),
        workflows.c.lock_expires < sa.bindparam("w_now"),
    ),
)


def cancel_workflow(
    conn: sa.Connection, uid: str, status: int, owner: str | None, now: datetime, cancelled: int
) -> bool:
    """Store run ``uid`` ``cancelled``, its lock released, if it is still in ``status``
    and no one but ``owner`` holds a live lock of it; tell whether it did."""
    values = {"w_uuid": uid, "w_status": status, "w_owner": owner, "w_now": now}
    changed = conn.execute(
        _CANCEL, {**values, "status": cancelled, "lock_owner": None, "lock_expires": None}
    )
    return bool(changed.rowcount == 1)
