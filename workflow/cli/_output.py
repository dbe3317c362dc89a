"""Rendering results: text for people, one JSON document for scripts (``--json``)."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TextIO

__all__ = ["Output", "dumps", "table"]


def _default(value: Any) -> Any:
    """Render what :mod:`json` cannot: timestamps as ISO 8601, enumerations by name."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Return ``value`` as JSON, with timestamps and enumerations made readable."""
    return json.dumps(value, indent=indent, default=_default, ensure_ascii=False)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Return ``rows`` as a plain text table with left-aligned columns under ``headers``."""
    cells = [[str(header) for header in headers]]
    cells += [["" if value is None else str(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


class Output:
    """Where a command's results go: text lines, or one JSON document on stdout.

    Messages for people (:meth:`note`, :meth:`error`) go to stderr in both
    modes, so that stdout holds nothing but the result.

    :param json_mode: print results as JSON.
    :param stdout: the stream for results (default: ``sys.stdout`` at call time).
    :param stderr: the stream for messages (default: ``sys.stderr`` at call time).
    """

    def __init__(
        self, *, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json_mode = json_mode
        self._stdout = stdout
        self._stderr = stderr

    def __repr__(self) -> str:
        return f"<Output {'json' if self.json_mode else 'text'}>"

    @property
    def stdout(self) -> TextIO:
        """The stream results are written to."""
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        """The stream messages and the progress bar are written to."""
        return self._stderr or sys.stderr

    def result(self, data: Any, text: str | Callable[[], str]) -> None:
        """Print a command's result: ``data`` as JSON, or ``text`` (a string or a callable)."""
        if self.json_mode:
            print(dumps(data), file=self.stdout)
            return
        rendered = text() if callable(text) else text
        if rendered:
            print(rendered, file=self.stdout)

    def note(self, message: str) -> None:
        """Tell the user something on stderr that is not the result (text mode only)."""
        if not self.json_mode:
            print(message, file=self.stderr)

    def error(self, message: str, code: int) -> None:
        """Report a failed command: on stderr, and as ``{"error", "exit_code"}`` with ``--json``."""
        print(f"workflow: error: {message}", file=self.stderr)
        if self.json_mode:
            print(dumps({"error": message, "exit_code": code}), file=self.stdout)
