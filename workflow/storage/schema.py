"""The versioned schema: bring a database up to date with the migrations shipped in the package.

The migrations are an Alembic environment inside the package
(``workflow/storage/migrations``); the functions here configure Alembic in
code, so no ``alembic.ini`` is needed and nothing is read from the working
directory. The revision a database is at is kept in its own table,
:data:`VERSION_TABLE`, so that an application's own Alembic history can live
in the same database. Only :func:`upgrade` and :func:`downgrade` import Alembic:
reading the revision a database is at, and the newest one shipped, is
cheap, so that commands which only read never pay for it.

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

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import StorageError, WorkflowImportError
from .store import Store, map_errors

if TYPE_CHECKING:
    from alembic.config import Config

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


def _alembic() -> Any:
    """Import Alembic's ``command`` module: only upgrades and downgrades need Alembic.

    Reading the revision a database is at is one query, so that the commands
    that only read (``workflow list``, ``workflow show``) never import it.
    """
    try:
        from alembic import command
    except ImportError as exc:  # pragma: no cover - the db extra installs Alembic with SQLAlchemy
        raise WorkflowImportError(
            "workflow.storage.schema needs Alembic: install it with pip install 'workflow-ng[db]'"
        ) from exc
    return command


def _config(connection: Connection | None = None) -> Config:
    """Build the Alembic configuration of the shipped migrations, running on ``connection``."""
    from alembic.config import Config

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
        finally:
            if isinstance(target, str):
                engine.dispose()


def _migrate(target: Store | Engine | str, direction: str, revision: str) -> None:
    """Run Alembic's ``upgrade`` or ``downgrade`` command to ``revision``."""
    command = _alembic()
    from alembic.util import CommandError

    operation = f"schema {direction}"
    with _connection(target, operation) as conn:
        try:
            getattr(command, direction)(_config(conn), revision)
        except CommandError as exc:
            raise StorageError(f"the {operation} failed: {exc}", operation=operation) from exc


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
    _migrate(target, "upgrade", revision)


def downgrade(target: Store | Engine | str, revision: str) -> None:
    """Migrate the tables of ``target`` down to ``revision``; ``"base"`` drops them all.

    Downgrades lose data: the tables and columns they remove are gone with
    their rows. Arguments and errors are those of :func:`upgrade`.
    """
    _migrate(target, "downgrade", revision)


def current_revision(target: Store | Engine | str) -> str | None:
    """Return the revision the database ``target`` is at, or ``None`` when it has none yet.

    A database whose tables were made by
    :meth:`~workflow.storage.Store.create_all` has no revision either.
    Arguments and errors are those of :func:`upgrade`.
    """
    with _connection(target, "schema lookup") as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        table = sa.table(VERSION_TABLE, sa.column("version_num", sa.String()))
        revisions = list(conn.execute(sa.select(table.c.version_num)).scalars())
    if len(revisions) > 1:
        raise StorageError(
            f"the table {VERSION_TABLE} records several revisions ({', '.join(revisions)}); "
            "the history of the workflow schema has one",
            operation="schema lookup",
        )
    return revisions[0] if revisions else None


def head_revision() -> str:
    """Return the newest revision shipped in the package, which :func:`upgrade` goes to.

    The migrations are read as source, without importing Alembic: the
    history is linear, and its head is the one revision no other revises.
    """
    revised: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        values = _assignments(path, ("revision", "down_revision"))
        if isinstance(values.get("revision"), str):
            revised[values["revision"]] = values.get("down_revision")
    [head] = set(revised) - set(revised.values())
    return head


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Return the constant values a module's top level assigns to ``names``."""
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            found[target.id] = ast.literal_eval(value)
    return found
