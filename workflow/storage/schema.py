"""The versioned schema: bring a database up to date with the migrations shipped in the package.

The migrations are an Alembic environment inside the package
(``workflow/storage/migrations``); the functions here configure Alembic in
code, so no ``alembic.ini`` is needed and nothing is read from the working
directory. The revision a database is at is kept in its own table,
:data:`VERSION_TABLE`, so that an application's own Alembic history can live
in the same database.

>>> from workflow.storage import Store
>>> from workflow.storage.schema import current_revision, head_revision, upgrade
>>> store = Store("sqlite://")
>>> current_revision(store) is None
True
>>> upgrade(store)
>>> current_revision(store) == head_revision()
True

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import WorkflowImportError

try:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError
except ImportError as exc:  # pragma: no cover - the db extra installs Alembic with SQLAlchemy
    raise WorkflowImportError(
        "workflow.storage.schema needs Alembic: install it with pip install 'workflow-ng[db]'"
    ) from exc
from sqlalchemy.engine import Connection, Engine

from ..errors import StorageError
from .store import Store, map_errors

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

#: The Alembic environment shipped in the package.
MIGRATIONS = Path(__file__).resolve().with_name("migrations")

#: The table that records the revision a database is at.
VERSION_TABLE = "wf_alembic_version"


def _config(connection: Connection | None = None) -> Config:
    """Build the Alembic configuration of the shipped migrations, running on ``connection``."""
    config = Config()
    # The options are a ConfigParser, which would read "%" in the path as interpolation.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _connection(target: Store | Engine | str, operation: str) -> Iterator[Connection]:
    """Yield a connection to ``target`` inside one transaction, translating every error.

    A URL gets an engine of its own, disposed of on the way out.
    """
    with map_errors(operation):
        store = Store(target) if isinstance(target, str) else target
        engine = store.sql_engine if isinstance(store, Store) else store
        try:
            with engine.begin() as conn:
                yield conn
        except CommandError as exc:
            raise StorageError(f"the {operation} failed: {exc}", operation=operation) from exc
        finally:
            if isinstance(target, str):
                engine.dispose()


def upgrade(target: Store | Engine | str, revision: str = "head") -> None:
    """Migrate the tables of ``target`` up to ``revision``, creating them in an empty database.

    Every migration runs in one transaction where the database allows it
    (PostgreSQL, SQLite); MariaDB commits each schema change as it goes.
    Upgrading a database that is already at ``revision`` does nothing.

    :param target: the database: a :class:`~workflow.storage.Store`, an
        :class:`~sqlalchemy.engine.Engine` (both used as they are) or a
        SQLAlchemy URL (connected to for this call only).
    :param revision: the revision to reach; ``"head"``, the newest one
        shipped, by default.
    :raises ~workflow.errors.DatabaseUnavailableError: when the database
        cannot be reached.
    :raises ~workflow.errors.StorageError: when the database refuses a
        migration or is at a revision this version of :mod:`workflow` does
        not know.
    """
    with _connection(target, "schema upgrade") as conn:
        command.upgrade(_config(conn), revision)


def downgrade(target: Store | Engine | str, revision: str) -> None:
    """Migrate the tables of ``target`` down to ``revision``; ``"base"`` drops them all.

    Downgrades lose data: the tables and columns they remove are gone with
    their rows. Arguments and errors are those of :func:`upgrade`.
    """
    with _connection(target, "schema downgrade") as conn:
        command.downgrade(_config(conn), revision)


def current_revision(target: Store | Engine | str) -> str | None:
    """Return the revision the database ``target`` is at, or ``None`` when it has none yet.

    A database whose tables were made by
    :meth:`~workflow.storage.Store.create_all` has no revision either.
    Arguments and errors are those of :func:`upgrade`.
    """
    with _connection(target, "schema lookup") as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str:
    """Return the newest revision shipped in the package, which :func:`upgrade` goes to."""
    # The history is linear: exactly one head.
    [head] = ScriptDirectory.from_config(_config()).get_heads()
    return head
