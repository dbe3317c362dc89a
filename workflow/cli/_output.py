"""Rendering results: text for people, one JSON document for scripts (``--json``)."""

from __future__ import annotations

import enum
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TextIO

__all__ = ["Output", "dumps", "printable", "table"]

#: What a terminal may act on instead of showing: C0 and C1 controls, DEL, the
#: bidirectional overrides and isolates, line and paragraph separators, and
#: lone surrogates (which no terminal encoding can write).
_OTHERS = r"\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(rf"[\x00-\x1f{_OTHERS}]")
_UNSAFE_BUT_NEWLINE = re.compile(rf"[\x00-\x09\x0b-\x1f{_OTHERS}]")
#: What :func:`json.dumps` leaves as it is (it escapes ``\x00-\x1f`` itself).
_UNSAFE_IN_JSON = re.compile(rf"[{_OTHERS}]")


_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """Return ``text`` safe for a terminal: each control character shown as its escape.

    ESC becomes the four characters ``\\x1b``, a right-to-left override
    ``\\u202e``, and so on, so that names, messages and errors stored by a run
    can neither move the cursor nor reorder what the user reads. Everything
    the command prints for people goes through here.

    :param newlines: keep line breaks (for text of several lines we built).
    """
    pattern = _UNSAFE_BUT_NEWLINE if newlines else _UNSAFE
    return pattern.sub(_escape, text)


def _escape_in_json(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


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
    """Return ``value`` as JSON, with timestamps and enumerations made readable.

    Non-ASCII text stays as it is, but for the characters :func:`printable`
    escapes: they are written as ``\\uXXXX`` escapes, so that the document
    means the same and is still safe on a terminal.
    """
    text = json.dumps(value, indent=indent, default=_default, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(_escape_in_json, text)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Return ``rows`` as a plain text table with left-aligned columns under ``headers``.

    Each cell is :func:`printable` (one line, without control characters).
    """
    cells = [[str(header) for header in headers]]
    cells += [["" if value is None else printable(str(value)) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


class Output:
    """Where a command's results go: text lines, or one JSON document on stdout.

    Messages for people (:meth:`note`, :meth:`error`) go to stderr in both
    modes, so that stdout holds nothing but the result. Text goes through
    :func:`printable` and JSON through :func:`dumps`: neither lets a control
    character of a run's data reach the terminal.

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
            print(printable(rendered, newlines=True), file=self.stdout)

    def note(self, message: str) -> None:
        """Tell the user something on stderr that is not the result (text mode only)."""
        if not self.json_mode:
            print(printable(message, newlines=True), file=self.stderr)

    def error(self, message: str, code: int, *, extra: dict[str, Any] | None = None) -> None:
        """Report a failed command: on stderr, and as ``{"error", "exit_code"}`` with ``--json``.

        :param extra: more keys of the JSON error (``"uuid"``, ``"resume"``, ...).
        """
        print(f"workflow: error: {printable(message, newlines=True)}", file=self.stderr)
        if self.json_mode:
            print(dumps({"error": message, "exit_code": code, **(extra or {})}), file=self.stdout)
