"""A lost race for row locks is told apart from other database errors, and waited out.

The errors are real: two transactions update two rows crosswise until the
server picks a deadlock victim (PostgreSQL, MariaDB), or a second
connection holds SQLite's write lock. :func:`~workflow.storage.store.is_contention`
must recognise them (taking a workflow's lock retries them as waiting) and
nothing else.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from workflow.errors import StorageError, WorkflowLockedError
from workflow.storage import Store
from workflow.storage.store import is_contention

from .conftest import database_url

TABLE = "wf_test_contention"


def crosswise(store: Store) -> StorageError:
    """Make two transactions deadlock on two rows; return the victim's error."""
    with store.sql_engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
        conn.execute(sa.text(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(sa.text(f"INSERT INTO {TABLE} (id, n) VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2, timeout=30)
    errors: list[StorageError] = []

    def update(first: int, second: int) -> None:
        try:
            with store.transaction("test") as conn:
                conn.execute(sa.text(f"UPDATE {TABLE} SET n = n + 1 WHERE id = {first}"))
                both_hold_one.wait()
                conn.execute(sa.text(f"UPDATE {TABLE} SET n = n + 1 WHERE id = {second}"))
        except StorageError as error:
            errors.append(error)

    threads = [threading.Thread(target=update, args=order) for order in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with store.sql_engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {TABLE}"))
    [error] = errors
    return error


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_deadlock_victim_is_contention(backend: str, tmp_path: Path) -> None:
    store = Store(database_url(backend, tmp_path))
    try:
        error = crosswise(store)
    finally:
        store.dispose()
    assert "deadlock" in str(error).lower()
    assert is_contention(error)


def test_sqlite_database_is_locked_is_contention(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.sqlite'}"
    store = Store(url, lock_ttl=5)
    # Wait 50 ms for SQLite's write lock, not the store's 30 s.
    sa.event.listen(
        store.sql_engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=50")
    )
    store.create_all()
    uid = store.create_workflow("busy")
    holder = sa.create_engine(url)
    try:
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's one writer, held
            with pytest.raises(StorageError) as caught:
                store.renew(uid, "someone")
            assert is_contention(caught.value)
            # Taking the lock waits the contention out, then names the lock as busy.
            with pytest.raises(StorageError) as waited:
                store.acquire(uid, "me", wait=0.2)
            assert is_contention(waited.value)
            conn.exec_driver_sql("ROLLBACK")
        store.acquire(uid, "me", wait=0.2)
        assert store.workflow(uid)["lock_owner"] == "me"
    finally:
        holder.dispose()
        store.dispose()


def test_other_database_errors_are_not_contention(store: Store) -> None:
    with pytest.raises(StorageError) as caught, store.transaction("test") as conn:
        conn.execute(sa.text("SELECT * FROM wf_no_such_table"))
    assert not is_contention(caught.value)
    assert not is_contention(WorkflowLockedError("held"))
    assert not is_contention(StorageError("no cause"))
