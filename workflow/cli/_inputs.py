"""Reading the user's JSON: token files, JSON Lines, stdin and ``--data``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ._context import CLIError

__all__ = ["JSON_LINES_SUFFIXES", "parse_json", "read_tokens"]

#: Token files with these suffixes hold one JSON value per line.
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def _invalid(source: str, line: int, exc: json.JSONDecodeError) -> CLIError:
    return CLIError(f"{source}: invalid JSON at line {line}, column {exc.colno}: {exc.msg}")


def parse_json(text: str, source: str) -> Any:
    """Parse one JSON document, naming ``source``, line and column when it is invalid.

    :raises CLIError: for invalid JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(source, exc.lineno, exc) from exc


def parse_json_lines(text: str, source: str) -> list[Any]:
    """Parse one JSON value per non-blank line, naming the line of an invalid one.

    :raises CLIError: for an invalid line.
    """
    values = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise _invalid(source, number, exc) from exc
    return values


def _records(document: Any) -> list[Any]:
    """A JSON list is many tokens; any other value is one."""
    return document if isinstance(document, list) else [document]


def read_tokens(source: str | None) -> list[Any]:
    """Return the input records of a run.

    :param source: a JSON file (a list is many records, any other value one),
        a JSON Lines file (``.jsonl``, ``.ndjson``: one record a line), ``-``
        for stdin (JSON, or JSON Lines when it holds more than one value; empty
        input is no record), or ``None`` for a single empty record ``{}``.
    :raises CLIError: when the file cannot be read or holds invalid JSON.
    """
    if source is None:
        return [{}]
    if source == "-":
        text = sys.stdin.read()
        if not text.strip():
            return []  # no lines: no tokens
        try:
            return _records(json.loads(text))
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise _invalid("<stdin>", exc.lineno, exc) from exc
        return parse_json_lines(text, "<stdin>")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read the tokens file {source}: {_reason(exc)}") from exc
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return parse_json_lines(text, source)
    return _records(parse_json(text, source))


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
