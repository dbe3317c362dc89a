"""Runs that start once: run keys, and runs whose uuid the caller chose.

A run may carry a *key* (an order number, a paper id): while a run that
holds a key is active, another start with that key is refused, or gets the
active run. A key is unique among the runs of one name (its *scope*, the
run's name): ``("invoice", "A-17")`` and ``("refund", "A-17")`` are two keys.

*Active* is every status but ``COMPLETED`` and ``CANCELLED``: a run that
halted, failed (``ERROR``) or waits resumes later and keeps its key; only a
run that finished for good lets it go.

Every race is decided by one write of the start's transaction, on every
database: the row of ``wf_run_key`` (primary key ``(scope, key)``) is
inserted with the run's row, so that a second start hits the primary key;
a key whose run finished is taken over by a conditional ``UPDATE ... WHERE
workflow_uuid = <that run> AND <that run is finished>``, which only one
start can make. The loser of either write starts its transaction again and
finds the winner. A finished run never becomes active again, so a start
that reads its holder as active is refused rightly even if the holder
finishes a moment later.

A caller may also choose the run's uuid: a second start with that uuid
returns the run stored by the first (an idempotent start), provided it has
the same name and definition.

.. versionadded:: 3.0
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any, Literal, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..engine_db import WorkflowStatus
from ..errors import RunKeyConflictError, StorageError, WorkflowValueError
from .db_errors import is_contention
from .models import RunKeyRecord
from .pins import pin_definition
from .run_rows import WorkflowInsert, workflows
from .run_statements import insert_workflow, log_status_change

__all__ = [
    "FINISHED",
    "MAX_KEY_LENGTH",
    "OnConflict",
    "Started",
    "check_key",
    "check_uuid",
    "key_holder",
    "start_run",
]

log = logging.getLogger(__name__)

run_keys = cast(sa.Table, RunKeyRecord.__table__)

#: The statuses of a run that gave its key up: it never runs again.
FINISHED = (WorkflowStatus.COMPLETED.value, WorkflowStatus.CANCELLED.value)
#: The longest key the database holds (``wf_run_key.key``).
MAX_KEY_LENGTH = 255
#: What a start does when an active run holds its key.
OnConflict = Literal["refuse", "existing"]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: How many times a start begins again after losing a race (each loss means
#: another start committed: the next try sees it).
_ATTEMPTS = 20

_TAKE_OVER = run_keys.update().where(
    run_keys.c.scope == sa.bindparam("w_scope"),
    run_keys.c.key == sa.bindparam("w_key"),
    run_keys.c.workflow_uuid == sa.bindparam("w_holder"),
    sa.exists().where(
        workflows.c.uuid == sa.bindparam("w_holder"), workflows.c.status.in_(FINISHED)
    ),
)


class Started(NamedTuple):
    """What :func:`start_run` did: the run's uuid, and whether this call stored it."""

    uuid: str
    #: ``False`` when the run existed already (same uuid, or an active run held the key).
    created: bool
    #: The status name of the run found, when ``created`` is ``False``.
    status: str | None = None


class _Found(Exception):
    """Leave the start's transaction (rolled back) with a run that exists."""

    def __init__(self, started: Started, key: str | None = None) -> None:
        super().__init__(started.uuid)
        self.started = started
        self.key = key


class _Again(Exception):
    """Leave the start's transaction (rolled back): another start changed the key first."""


def check_key(key: object) -> str:
    """Return ``key`` as the text stored: a non-empty string, or an integer written out.

    :raises WorkflowValueError: for another type, an empty key, or one too long.
    """
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str):
        raise WorkflowValueError(
            f"a run key is a string or an integer, not {type(key).__name__} {key!r}"
        )
    if not key or len(key) > MAX_KEY_LENGTH:
        raise WorkflowValueError(
            f"a run key has 1 to {MAX_KEY_LENGTH} characters; {key[:40]!r} has {len(key)}"
        )
    return key


def check_uuid(text: object) -> str:
    """Return ``text`` if it is a uuid written as 36 lower-case characters (``8-4-4-4-12``).

    Upper-case hex digits are lowered.

    :raises WorkflowValueError: for anything else.
    """
    value = text.lower() if isinstance(text, str) else text
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise WorkflowValueError(
            f"a run's uuid is written like 0f0f0f0f-0000-4000-8000-000000000001, "
            f"not {str(text)[:60]!r}"
        )
    return value


def key_holder(conn: sa.Connection, scope: str, key: str) -> tuple[str, int] | None:
    """Return the uuid and status of the run holding ``key`` among the runs ``scope``."""
    row = conn.execute(
        sa.select(run_keys.c.workflow_uuid, workflows.c.status)
        .join(workflows, workflows.c.uuid == run_keys.c.workflow_uuid)
        .where(run_keys.c.scope == scope, run_keys.c.key == key)
    ).first()
    return None if row is None else (row.workflow_uuid, row.status)


def start_run(
    store: Any, row: WorkflowInsert, *, key: str | None, on_conflict: OnConflict = "refuse"
) -> Started:
    """Store the run ``row`` (holding ``key`` among the runs of its name) unless it exists.

    :param store: the :class:`~workflow.storage.Store`.
    :param row: the new run; its ``uuid`` may be one the caller chose.
    :param key: the run's key (see :func:`check_key`), or ``None``.
    :param on_conflict: what to do when an active run holds ``key``:
        ``"refuse"`` raises, ``"existing"`` returns that run.
    :returns: a :class:`Started`; ``created`` is ``False`` when a run with
        ``row``'s uuid exists, or ``on_conflict="existing"`` found the key held.
    :raises RunKeyConflictError: when an active run holds ``key`` (``"refuse"``).
    :raises WorkflowValueError: when ``row``'s uuid is a run of another name or definition.
    """
    if on_conflict not in ("refuse", "existing"):
        raise WorkflowValueError(f"on_conflict is 'refuse' or 'existing', not {on_conflict!r}")
    uid = row["uuid"]
    for attempt in range(_ATTEMPTS):
        try:
            with store.transaction("create workflow", workflow=uid) as conn:
                _start(conn, row, key)
            return Started(uid, True)
        except _Found as found:
            if found.key is not None and on_conflict == "refuse":
                raise _conflict(row["name"], found.key, found.started) from None
            return found.started
        except _Again:
            log.debug("run key %r of %r was taken over first; starting again", key, row["name"])
        except StorageError as failure:
            raced = isinstance(failure.__cause__, sa_exc.IntegrityError)
            if not (raced or is_contention(failure)) or attempt == _ATTEMPTS - 1:
                raise
            log.debug("starting run %s lost a race (%s); starting again", uid, failure)
            time.sleep(random.uniform(0.0, 0.02 * (attempt + 1)))
    raise StorageError(
        f"starting run {uid} lost the race for its key {_ATTEMPTS} times",
        workflow=uid,
        operation="create workflow",
    )


def _start(conn: sa.Connection, row: WorkflowInsert, key: str | None) -> None:
    """Store the run and claim its key in one transaction, or leave it with what exists."""
    uid, name = row["uuid"], row["name"]
    stored = conn.execute(sa.select(workflows).where(workflows.c.uuid == uid)).mappings().first()
    if stored is not None:
        _check_same(dict(stored), row)
        raise _Found(Started(uid, False, WorkflowStatus(stored["status"]).name))
    holder = None if key is None else key_holder(conn, name, key)
    if holder is not None and holder[1] not in FINISHED:
        raise _Found(Started(holder[0], False, WorkflowStatus(holder[1]).name), key)
    if row["definition_name"] is not None and row["definition_version"] is not None:
        pin_definition(conn, row["definition_name"], row["definition_version"])
    insert_workflow(conn, row)
    log_status_change(
        conn,
        {
            "workflow_uuid": uid,
            "token_position": None,
            "from_status": None,
            "to_status": WorkflowStatus.NEW.value,
            "callback_pos": None,
            "message": "created" if key is None else f"created with the key {key!r}",
            "created": row["created"],
        },
    )
    if key is None:
        return
    values = {"workflow_uuid": uid, "created": row["created"]}
    if holder is None:  # a concurrent start inserting it too makes one of the two fail
        conn.execute(run_keys.insert(), {"scope": name, "key": key, **values})
        return
    fence = {"w_scope": name, "w_key": key, "w_holder": holder[0]}
    taken = conn.execute(_TAKE_OVER, {**fence, **values})
    if taken.rowcount != 1:
        raise _Again


def _check_same(stored: dict[str, Any], row: WorkflowInsert) -> None:
    """Refuse a start whose uuid is a stored run of another name or definition."""
    fields = ("name", "definition_name", "definition_version")
    differ = [f"{field} {stored[field]!r}" for field in fields if stored[field] != row[field]]  # type: ignore[literal-required]
    if differ:
        raise WorkflowValueError(
            f"the uuid {row['uuid']} is taken by a run of {', '.join(differ)}: a start with "
            "that uuid must have the same name and definition (or choose another uuid)"
        )


def _conflict(scope: str, key: str, holder: Started) -> RunKeyConflictError:
    return RunKeyConflictError(
        f"the run key {key!r} of {scope!r} is held by run {holder.uuid}, which is "
        f"{holder.status}: it was not started again",
        key=key,
        scope=scope,
        status=holder.status,
        workflow=holder.uuid,
        operation="create workflow",
    )
