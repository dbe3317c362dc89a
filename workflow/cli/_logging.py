"""The command's logging: console, an optional rotating file, an optional database table.

The library only creates loggers; the command line is the one place that
installs handlers, on the root logger, for the time of one invocation.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._output import printable

if TYPE_CHECKING:
    from workflow.storage import Store

__all__ = ["FORMAT", "LEVELS", "LogSetup", "TerminalFormatter"]

#: The format of every log line (that of the JSON flow framework).
FORMAT = "%(asctime)s %(levelname)s %(module)s %(funcName)s %(message)s"

#: The names ``--log-level`` accepts.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Libraries whose INFO lines say nothing about the user's runs: shown from DEBUG on.
QUIET = ("alembic",)


class TerminalFormatter(logging.Formatter):
    """Format records with every control character escaped (see :func:`printable`).

    Log lines name workflows, steps and errors that a run's data may have
    chosen; the files and the console they go to are read on terminals.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the formatted record, tracebacks keeping their lines."""
        return printable(super().format(record), newlines=True)


class LogSetup:
    """Install the handlers of one invocation on the root logger; :meth:`close` removes them.

    :param level: the level name (one of :data:`LEVELS`) for every handler.
    :param log_file: a file to log to as well, rotated by size.
    :param max_bytes: the size at which the file is rotated (0: never).
    :param backups: how many rotated files are kept.
    """

    def __init__(
        self,
        level: str = "WARNING",
        *,
        log_file: Path | None = None,
        max_bytes: int = 10_000_000,
        backups: int = 5,
    ) -> None:
        self.level = logging.getLevelName(level.upper())
        self.root = logging.getLogger()
        self._previous_level = self.root.level
        self.handlers: list[logging.Handler] = []
        formatter = TerminalFormatter(FORMAT)
        # Open the file first: when it cannot be opened, nothing is installed yet.
        rotating = None
        if log_file is not None:
            rotating = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        self._add(logging.StreamHandler(sys.stderr), formatter)
        if rotating is not None:
            self._add(rotating, formatter)
        self.root.setLevel(self.level)
        self._quieted = {name: logging.getLogger(name).level for name in QUIET}
        if self.level > logging.DEBUG:
            for name in QUIET:
                logging.getLogger(name).setLevel(max(self.level, logging.WARNING))

    def __repr__(self) -> str:
        names = ", ".join(type(handler).__name__ for handler in self.handlers)
        return f"<LogSetup {logging.getLevelName(self.level)} [{names}]>"

    def _add(self, handler: logging.Handler, formatter: logging.Formatter) -> None:
        handler.setLevel(self.level)
        handler.setFormatter(formatter)
        self.root.addHandler(handler)
        self.handlers.append(handler)

    def attach_database(self, store: Store) -> None:
        """Log to the ``wf_syslog`` table of ``store`` too (``--log-database``)."""
        from workflow.storage import DatabaseLogHandler

        self._add(DatabaseLogHandler(store), logging.Formatter(FORMAT))

    def close(self) -> None:
        """Flush and remove the handlers, and restore the root logger's level."""
        for handler in self.handlers:
            self.root.removeHandler(handler)
            handler.close()
        self.handlers.clear()
        self.root.setLevel(self._previous_level)
        for name, level in self._quieted.items():
            logging.getLogger(name).setLevel(level)
