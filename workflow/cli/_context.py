"""What every command shares: exit codes, user errors, the database, imports.

Nothing here imports SQLAlchemy at module level: ``workflow --help``,
``validate`` and ``graph`` work without the ``db`` extra.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._database import ENV_DATABASE, check_loadable, choose, hidden
from ._output import Output

if TYPE_CHECKING:
    from workflow.storage import Store

    from ._logging import LogSetup

__all__ = [
    "ENV_DATABASE",
    "ENV_IMPORT_ALLOW",
    "CLIError",
    "Context",
    "ExitCode",
    "ModuleImportError",
    "database_url",
    "import_modules",
]

log = logging.getLogger("workflow.cli")

#: The environment variable listing the modules ``workflow resume`` may import
#: without ``--import`` (names separated by commas or spaces).
ENV_IMPORT_ALLOW = "WORKFLOW_IMPORT_ALLOW"

#: Seconds the lock of a run outlives a process that stopped renewing it
#: (``Store(lock_ttl=...)``'s default).
DEFAULT_LOCK_TTL = 60.0


class ExitCode(enum.IntEnum):
    """The exit codes of the ``workflow`` command."""

    #: Everything completed.
    OK = 0
    #: A task failed on a token, or the database failed.
    ERROR = 1
    #: The command line or its input is invalid (argparse's own code).
    USAGE = 2
    #: The run is halted: tokens wait to be resumed.
    HALTED = 3
    #: Ctrl-C or SIGTERM interrupted the command (128 + SIGINT, as shells say).
    INTERRUPTED = 130


class CLIError(Exception):
    """A problem the user can fix, reported as one message without a traceback.

    :param message: what is wrong, and what to do about it when that is known.
    :param code: the exit code.
    """

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def database_url(option: str | None) -> str:
    """Return the database URL: ``--database``, else ``$WORKFLOW_DATABASE_URL``, else SQLite.

    A file path is an SQLite file; ``postgres://`` and ``mysql://`` get the
    drivers of the ``postgresql`` and ``mariadb`` extras (:mod:`._database`).
    """
    return choose(option).url


def _sqlite_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for other databases and in-memory SQLite."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or url.startswith(prefix + ":memory:"):
        return None
    return Path(url[len(prefix) :].split("?", 1)[0])


class Context:
    """The parsed command line, where output goes, and the database, opened on demand.

    :param args: the parsed arguments.
    :param output: renders results as text or JSON.
    :param logs: the logging set up for this invocation.
    """

    def __init__(self, args: argparse.Namespace, output: Output, logs: LogSetup) -> None:
        self.args = args
        self.out = output
        self.logs = logs
        self.database = choose(args.database)
        self.url = self.database.url
        self._store: Store | None = None  # opened, with its schema checked
        self._opened: Store | None = None
        #: Keyword arguments for :func:`sqlalchemy.create_engine` (a pool's size),
        #: taken when the database is opened.
        self.engine_options: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Context {self.args.command!r} database={hidden(self.url)!r}>"

    @property
    def shown_url(self) -> str:
        """The database URL without its password, for messages."""
        if self._opened is not None:
            return _shown(self._opened)
        return hidden(self.url)

    def store(self, *, write: bool = True) -> Store:
        """Open the database once, with its schema checked.

        A command that writes creates the tables of an empty database; a
        command that only reads never changes the database, and says so when
        there is nothing to read. A database whose schema is older than this
        version of :mod:`workflow` is never migrated behind the user's back:
        the error says to run ``workflow db upgrade``.

        :raises CLIError: when the database is missing, unreachable or out of date.
        """
        if self._store is not None:
            return self._store
        path = _sqlite_path(self.url)
        if not write and path is not None and not path.exists():
            raise CLIError(
                f"no workflow database at {path} (run a workflow first, or give "
                f"--database or ${ENV_DATABASE})",
                ExitCode.ERROR,
            )
        store = self.open_store()
        check_schema(store, create=write)
        self._store = store
        return store

    def open_store(self) -> Store:
        """Open the database without looking at its schema (``workflow db upgrade``).

        :raises CLIError: with exit code 2 when the URL is none SQLAlchemy can
            load with an installed driver, naming where it was given.
        """
        if self._opened is None:
            storage = import_storage()
            problem = check_loadable(self.database)
            if problem is not None:
                raise CLIError(problem)
            url = self.url
            if self.engine_options:
                url = storage.Store.create_engine(url, **self.engine_options)
            self._opened = storage.Store(
                url, lock_ttl=getattr(self.args, "lock_ttl", DEFAULT_LOCK_TTL)
            )
            if self.args.log_database:
                self.logs.attach_database(self._opened)
        return self._opened

    def close(self) -> None:
        """Flush the log handlers, then close the database's connections."""
        self.logs.close()
        if self._opened is not None:
            self._opened.dispose()


def import_storage() -> Any:
    """Import :mod:`workflow.storage`, turning a missing extra into a user error."""
    try:
        return importlib.import_module("workflow.storage")
    except ImportError as exc:
        raise CLIError(str(exc), ExitCode.ERROR) from exc


def check_schema(store: Store, *, create: bool) -> None:
    """Make sure the tables of ``store`` are there and current.

    :param create: create the tables when the database has none.
    :raises CLIError: when the schema is missing (and not ``create``) or out of date.
    """
    import sqlalchemy as sa

    from workflow.storage.schema import current_revision, head_revision, upgrade

    revision = current_revision(store)
    head = head_revision()
    if revision == head:
        return
    if revision is None:
        tables = sa.inspect(store.sql_engine).get_table_names()
        if "wf_workflow" in tables:
            return  # made by Store.create_all(): as current as the models
        if create:
            log.info("creating the workflow tables in %s", store)
            upgrade(store)
            return
        raise CLIError(
            f"the database {_shown(store)} has no workflow tables: run `workflow db upgrade`",
            ExitCode.ERROR,
        )
    raise CLIError(
        f"the database {_shown(store)} is at schema revision {revision}, this version of "
        f"workflow needs {head}: run `workflow db upgrade`",
        ExitCode.ERROR,
    )


def _shown(store: Store) -> str:
    return store.sql_engine.url.render_as_string(hide_password=True)


class ModuleImportError(CLIError):
    """A module of ``--import`` (or of a run's record) cannot be imported.

    :param module: the module's name.
    :param missing: whether the module itself is not found (rather than failing as it runs).
    """

    def __init__(self, message: str, *, module: str, missing: bool) -> None:
        super().__init__(message)
        self.module = module
        self.missing = missing


def import_modules(names: list[str]) -> None:
    """Import the modules of ``--import`` (they register tasks, say), from the working directory.

    :raises CLIError: naming the module that cannot be imported, and the file
        and line of the problem when it is in the module's code (a syntax
        error, an exception raised on import).
    """
    if names and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except (Exception, SystemExit) as exc:
            raise ModuleImportError(
                f"cannot import module {name!r}: {_import_problem(name, exc)}",
                module=name,
                missing=_is_missing(name, exc),
            ) from exc


def _is_missing(name: str, exc: BaseException) -> bool:
    """Whether ``exc`` says that the module ``name`` itself (or its package) is not found."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    return missing is not None and (name == missing or name.startswith(f"{missing}."))


def _import_problem(name: str, exc: BaseException) -> str:
    """Say what went wrong importing ``name``, and where when it was in code of its own."""
    what = str(exc) if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
    if _is_missing(name, exc):
        return what  # the module itself (or its package) is missing: nothing of it ran
    if isinstance(exc, SyntaxError):
        what = f"{type(exc).__name__}: {exc.msg}"
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else None
    else:
        frames = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if not frame.filename.startswith("<frozen ")  # the import machinery
        ]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    return f"{what} (at {where})" if where else what
