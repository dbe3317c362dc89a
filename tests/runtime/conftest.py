"""The runtime's tests use the storage suite's databases: SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from tests.storage.conftest import backend, db_url, store

__all__ = ["backend", "db_url", "store"]
