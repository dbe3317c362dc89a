"""What a person does to a stored run between two passes: cancel it, retry a failed token.

Each change is decided by one conditional write of the run's row (its
status, or its lock's holder, in the ``WHERE`` clause) and recorded in the
status log in the same transaction, as :mod:`workflow.storage.run_writes`
records a run's own changes.

.. versionadded:: 3.0
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import StoredRunError, WorkflowIndexError, WorkflowLockedError, WorkflowNotFoundError
from .queue import is_queue_owner, stop_work
from .run_rows import StatusChangeInsert, WorkflowUpdate, tokens, workflows
from .run_statements import cancel_workflow, log_status_change, update_token, update_workflow

if TYPE_CHECKING:
    from .store import Store

__all__ = ["cancel_run", "refuse_cancelled", "retry_token", "token_counts"]

CANCELLED = WorkflowStatus.CANCELLED
#: How many times :func:`cancel_run` reads the run again when its status
#: changed between its read and its write.
_CANCEL_TRIES = 5


def refuse_cancelled(uid: str, status: int, operation: str) -> None:
    """Raise :class:`~workflow.errors.StoredRunError` when ``status`` is ``CANCELLED``."""
    if status == CANCELLED.value:
        raise StoredRunError(
            f"workflow {uid} was cancelled: a cancelled run is never resumed, retried or "
            "changed (start a new run instead)",
            workflow=uid,
            operation=operation,
        )


class _ReadAgain(Exception):
    """The run changed between the read and the write: roll back, read again."""


def cancel_run(store: Store, uid: str, reason: str, owner: str | None, by: str | None) -> bool:
    """Store run ``uid`` ``CANCELLED`` with its lock released; see :meth:`Store.cancel`."""
    for _ in range(_CANCEL_TRIES):
        try:
            return _cancel_once(store, uid, reason, owner, by)
        except _ReadAgain:
            continue  # another process changed the run between the read and the write
    raise WorkflowLockedError(
        f"workflow {uid} kept changing while it was being cancelled; try again",
        workflow=uid,
        operation="cancel",
    )


def _cancel_once(store: Store, uid: str, reason: str, owner: str | None, by: str | None) -> bool:
    now = store.now()
    read = sa.select(workflows.c.status, workflows.c.lock_owner, workflows.c.lock_expires).where(
        workflows.c.uuid == uid
    )
    with store.transaction("cancel", workflow=uid) as conn:
        row = conn.execute(read).first()
        if row is not None and is_queue_owner(row.lock_owner):
            # A queued run: its waiting and running tokens are stopped first (their
            # rows locked in the order the workers lock them: items, then the run).
            stop_work(conn, uid, now)
            row = conn.execute(read.with_for_update()).first()
            assert row is not None
            if is_queue_owner(row.lock_owner):
                owner = row.lock_owner
        if row is None:
            raise WorkflowNotFoundError(
                f"no stored workflow has the uuid {uid!r}", workflow=uid, operation="cancel"
            )
        if row.status == CANCELLED.value:
            return False
        if row.status == WorkflowStatus.COMPLETED.value:
            raise StoredRunError(
                f"workflow {uid} is completed: there is nothing left to cancel",
                workflow=uid,
                operation="cancel",
            )
        held = row.lock_owner is not None and row.lock_owner != owner
        if held and row.lock_expires is not None and row.lock_expires >= now:
            raise locked_error(uid, row.lock_owner, row.lock_expires, "cancel")
        if cancel_workflow(conn, uid, row.status, owner, now, CANCELLED.value):
            who = f" by {by}" if by else ""
            message = f"cancelled{who}" + (f": {reason}" if reason else "")
            log_status_change(
                conn,
                StatusChangeInsert(
                    workflow_uuid=uid,
                    token_position=None,
                    from_status=row.status,
                    to_status=CANCELLED.value,
                    callback_pos=None,
                    message=message,
                    created=now,
                ),
            )
            return True
        raise _ReadAgain


def locked_error(uid: str, owner: str, expires: datetime, operation: str) -> WorkflowLockedError:
    """The error saying that ``owner`` holds the lock of ``uid`` until ``expires``."""
    error = WorkflowLockedError(
        f"workflow {uid} is being run by {owner} "
        f"(lock valid until {expires:%Y-%m-%d %H:%M:%S} UTC)",
        workflow=uid,
        operation=operation,
    )
    error.owner = owner
    error.expires = expires.replace(tzinfo=timezone.utc)
    return error


def retry_token(
    store: Store,
    uid: str,
    owner: str,
    position: int,
    callback_pos: list[int] | None,
    message: str,
) -> None:
    """Store the failed token ``position`` of ``uid`` to run again at ``callback_pos``.

    ``owner`` must hold the run's lock (it is renewed); the token must be
    ``ERROR``; it stays ``ERROR`` until it runs, and the move is logged.
    """
    now = store.now()
    with store.transaction("retry token", workflow=uid, token=position) as conn:
        renewed = now + timedelta(seconds=store.lock_ttl)
        fenced: WorkflowUpdate = {
            "w_uuid": uid,
            "w_owner": owner,
            "modified": now,
            "lock_expires": renewed,
        }
        if not update_workflow(conn, fenced):
            raise WorkflowLockedError(
                f"the lock of workflow {uid} is not held by this process", workflow=uid
            )
        row = conn.execute(
            sa.select(tokens.c.status, tokens.c.callback_pos).where(
                tokens.c.workflow_uuid == uid, tokens.c.position == position
            )
        ).first()
        if row is None:
            raise WorkflowIndexError(f"workflow {uid} has no token at position {position}")
        if row.status != ObjectStatus.ERROR.value:
            raise StoredRunError(
                f"token {position} of workflow {uid} is {ObjectStatus(row.status).name}, not "
                "ERROR: only a failed token is retried",
                workflow=uid,
                token=position,
                operation="retry token",
            )
        target = row.callback_pos if callback_pos is None else callback_pos
        update_token(
            conn,
            {"w_uuid": uid, "w_position": position, "callback_pos": target, "modified": now},
        )
        log_status_change(
            conn,
            StatusChangeInsert(
                workflow_uuid=uid,
                token_position=position,
                from_status=row.status,
                to_status=row.status,
                callback_pos=target,
                message=message,
                created=now,
            ),
        )


def token_counts(store: Store, uids: list[str]) -> dict[str, dict[str, int]]:
    """Count the tokens of each run of ``uids`` by status name (lower case), in one query."""
    counts: dict[str, dict[str, int]] = {uid: {} for uid in uids}
    if not uids:
        return counts
    query = (
        sa.select(tokens.c.workflow_uuid, tokens.c.status, sa.func.count())
        .where(tokens.c.workflow_uuid.in_(uids))
        .group_by(tokens.c.workflow_uuid, tokens.c.status)
    )
    with store.transaction("count tokens") as conn:
        for uid, status, number in conn.execute(query):
            counts[uid][_status_name(status)] = int(number)
    return {uid: dict(sorted(found.items())) for uid, found in counts.items()}


def _status_name(value: Any) -> str:
    try:
        return ObjectStatus(value).name.lower()
    except ValueError:
        return f"unknown({value!r})"
