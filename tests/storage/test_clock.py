"""Lock expiry is judged by the database's clock, not by each machine's own.

Two processes whose machines' clocks differ by more than ``lock_ttl`` must
not take a live holder's lock over. The skew is made real for the store
under test by giving it a clock that runs ahead (its ``_client_clock``, the
one seam for this machine's time); the database's clock is the server's
own. SQLite runs on the machine of every process that opens the file: its
clock is theirs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from workflow.errors import WorkflowLockedError
from workflow.storage import Store
from workflow.storage.models import utcnow

from .conftest import database_url

SKEW = timedelta(minutes=10)


def ahead() -> datetime:
    return utcnow() + SKEW


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_machine_whose_clock_runs_ahead_cannot_take_a_live_lock_over(
    backend: str, tmp_path: Path
) -> None:
    url = database_url(backend, tmp_path)
    holder, skewed = Store(url, lock_ttl=5.0), Store(url, lock_ttl=5.0)
    skewed._client_clock = ahead  # type: ignore[assignment]
    try:
        holder.create_all()
        uid = holder.create_workflow("skewed")
        holder.acquire(uid, "holder")
        with pytest.raises(WorkflowLockedError, match="is being run by holder"):
            skewed.acquire(uid, "skewed")
        # Both stores tell the database's time, ten minutes apart on their machines.
        assert abs(skewed.now() - holder.now()) < timedelta(seconds=1)
        assert skewed._offset < -SKEW + timedelta(seconds=1)
        # A lock the skewed machine takes lasts lock_ttl on the database's clock.
        with holder.transaction("release") as conn:
            holder.release(conn, uid, "holder")
        skewed.acquire(uid, "skewed")
        left = holder.workflow(uid)["lock_expires"] - holder.now()
        assert timedelta(seconds=3) < left <= timedelta(seconds=5)
    finally:
        holder.dispose()
        skewed.dispose()


def test_sqlite_uses_this_machines_clock(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.sqlite'}")
    store._client_clock = ahead  # type: ignore[assignment]
    assert store.now() - utcnow() > SKEW - timedelta(seconds=1)
    assert store._offset == timedelta(0)
    store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_clock_due_says_when_now_reads_the_database(backend: str, tmp_path: Path) -> None:
    store = Store(database_url(backend, tmp_path))
    statements: list[str] = []
    sa.event.listen(store.sql_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        due = store.clock_due()
        store.now()
        assert due == (backend != "sqlite") == bool(statements)  # a round trip when it was due
        statements.clear()
        assert not store.clock_due()
        store.now()
        assert statements == []
    finally:
        store.dispose()
