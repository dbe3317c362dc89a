"""Pooled connections are checked on checkout: a dead one is replaced, a quiet one costs nothing.

Runs on SQLite, PostgreSQL and MariaDB (the ``db_url`` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from workflow.storage import Store
from workflow.storage import pool as pool_check


def session_id(conn: sa.Connection) -> int:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return id(conn.connection.driver_connection)
    query = "SELECT pg_backend_pid()" if dialect == "postgresql" else "SELECT CONNECTION_ID()"
    return int(conn.execute(sa.text(query)).scalar_one())


def count_pings(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    dialect = store.sql_engine.dialect
    pings: list[Any] = []
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


def kill(db_url: str, session: int) -> None:
    """End server session ``session`` from a connection of our own; wait until it is gone."""
    killer = sa.create_engine(db_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with killer.connect() as conn:
            if conn.dialect.name == "postgresql":
                # With a timeout, pg_terminate_backend returns once the session ended.
                conn.execute(sa.text("SELECT pg_terminate_backend(:s, 5000)"), {"s": session})
            else:
                conn.execute(sa.text(f"KILL {session:d}"))
    finally:
        killer.dispose()


def test_a_connection_back_from_a_moment_ago_is_checked(
    backend: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(db_url)
    try:
        pings = count_pings(store, monkeypatch)
        with store.sql_engine.connect() as conn:
            first = session_id(conn)
        assert pings == []  # a new connection is not pinged
        with store.sql_engine.connect() as conn:
            assert session_id(conn) == first  # the pool handed the same one out again
        if backend == "postgresql":
            assert pings == []  # its socket was quiet: no round trip
        else:  # no socket to look at (SQLite's file, PyMySQL): pinged as before
            assert len(pings) == 1
    finally:
        store.dispose()


def test_a_connection_idle_longer_than_the_limit_is_pinged(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_check, "IDLE_PING", 0.0)
    store = Store(db_url)
    try:
        pings = count_pings(store, monkeypatch)
        for _ in range(3):
            with store.sql_engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert len(pings) == 2  # every checkout but the first (a new connection)
    finally:
        store.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_session_the_server_ended_is_replaced_unnoticed(db_url: str) -> None:
    store = Store(db_url)
    try:
        with store.sql_engine.connect() as conn:
            first = session_id(conn)
        kill(db_url, first)
        with store.sql_engine.connect() as conn:  # no error: a new connection
            second = session_id(conn)
            assert conn.execute(sa.text("SELECT 41 + 1")).scalar_one() == 42
        assert second != first
    finally:
        store.dispose()


def test_an_engine_built_with_pool_pre_ping_pings_every_time(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(Store.create_engine(db_url, pool_pre_ping=True))
    try:
        pings = count_pings(store, monkeypatch)
        for _ in range(3):
            with store.sql_engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert len(pings) == 2  # SQLAlchemy's own pre-ping, before every reuse
    finally:
        store.dispose()
