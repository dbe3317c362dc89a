"""The storage suite runs against every database: SQLite always, PostgreSQL and MariaDB
when their servers answer (always in CI, where a missing server fails the run).

Point the suite at other servers with ``WORKFLOW_TEST_POSTGRESQL_URL`` and
``WORKFLOW_TEST_MARIADB_URL``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa

from workflow.storage import Store

SERVER_URLS = {
    "postgresql": os.environ.get(
        "WORKFLOW_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get(
        "WORKFLOW_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}
ENV_NAMES = {"postgresql": "WORKFLOW_TEST_POSTGRESQL_URL", "mariadb": "WORKFLOW_TEST_MARIADB_URL"}
BACKENDS = ["sqlite", "postgresql", "mariadb"]

_reachable: dict[str, str | None] = {}


def _problem(backend: str) -> str | None:
    """Return why ``backend``'s server cannot be used, or None when it answers."""
    if backend not in _reachable:
        url = SERVER_URLS[backend]
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            _reachable[backend] = None
        except Exception as exc:  # any driver or connection failure means "not here"
            _reachable[backend] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            engine.dispose()
    return _reachable[backend]


def database_url(backend: str, tmp_path: Path) -> str:
    """Return the URL of a usable database for ``backend``, or skip (fail in CI)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'workflow.sqlite'}"
    problem = _problem(backend)
    if problem is not None:
        message = (
            f"{backend} is not reachable at {SERVER_URLS[backend]} ({problem}); start the "
            f"server or set {ENV_NAMES[backend]} to run the {backend} storage tests"
        )
        unavailable("every storage backend", message)
    return SERVER_URLS[backend]


def unavailable(what: str, message: str) -> NoReturn:
    """Skip a test whose service is missing here; in CI (``$CI`` set) fail it: CI runs ``what``."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run {what}: {message}")
    pytest.skip(message)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the database backend under test."""
    return str(request.param)


def empty_database(backend: str, tmp_path: Path) -> str:
    """Return the URL of a database of ``backend`` without any of the workflow tables."""
    url = database_url(backend, tmp_path)
    if backend != "sqlite":  # a new file in tmp_path is empty already
        store = Store(url)
        try:
            store.drop_all()
            with store.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS wf_alembic_version"))
        finally:
            store.dispose()
    return url


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> str:
    """A URL of an empty database of the backend under test."""
    return empty_database(backend, tmp_path)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A :class:`Store` with the tables created, on the backend under test."""
    store = Store(db_url, lock_ttl=5.0)
    store.create_all()
    yield store
    store.dispose()


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own at DEBUG, whose handlers are closed afterwards."""
    log = logging.getLogger("tests.storage.logged")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    log.setLevel(logging.NOTSET)
    log.propagate = True
