"""Reading the user's JSON: token files, JSON Lines, stdin and ``--data``.

Every value is held to the limits of :mod:`workflow.cli._limits` here, before
a command touches the database: what cannot be stored is refused with the
path of the culprit, and nothing is stored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from ._context import CLIError
from ._limits import MAX_DEPTH, MAX_INPUT_BYTES, LimitError, check, decode, format_path

__all__ = [
    "JSON_LINES_SUFFIXES",
    "check_flow_records",
    "parse_json",
    "read_data",
    "read_tokens",
]

#: Token files with these suffixes hold one JSON value per line.
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def _invalid(source: str, line: int, exc: json.JSONDecodeError) -> CLIError:
    return CLIError(f"{source}: invalid JSON at line {line}, column {exc.colno}: {exc.msg}")


def _refused(where: str, exc: LimitError) -> CLIError:
    return CLIError(f"{where}: {format_path(exc.path)}: {exc.problem}")


def _check_size(text: str, source: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_INPUT_BYTES:
        raise CLIError(f"{source}: {size} bytes is more than the {MAX_INPUT_BYTES} bytes allowed")


def parse_json(text: str, source: str) -> Any:
    """Parse one JSON document (``--data``), naming ``source`` and where it is invalid.

    :raises CLIError: for invalid JSON, or a value beyond the limits (with its path).
    """
    _check_size(text, source)
    try:
        value = decode(text)
        check(value)
    except json.JSONDecodeError as exc:
        raise _invalid(source, exc.lineno, exc) from exc
    except LimitError as exc:
        raise _refused(source, exc) from exc
    return value


def parse_json_lines(text: str, source: str) -> list[Any]:
    """Parse one JSON value per non-blank line, naming the line of an invalid one.

    :raises CLIError: for an invalid line, or a value beyond the limits.
    """
    values: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = decode(line)
            check(value)
        except json.JSONDecodeError as exc:
            raise _invalid(source, number, exc) from exc
        except LimitError as exc:
            raise _refused(f"{source}: line {number} (token {len(values)})", exc) from exc
        values.append(value)
    return values


def _document_tokens(text: str, source: str) -> list[Any]:
    """Parse a JSON document: a list is many tokens, any other value one.

    The limits hold for each token: a list's items may nest :data:`MAX_DEPTH` deep.

    :raises CLIError: for invalid JSON, or a value beyond the limits.
    """
    listed = text.lstrip().startswith("[")
    try:
        document = decode(text, max_depth=MAX_DEPTH + int(listed))
    except json.JSONDecodeError as exc:
        raise _invalid(source, exc.lineno, exc) from exc
    except LimitError as exc:  # found by a scan of the whole document
        if listed and exc.path:
            index, *path = exc.path
            raise _refused(f"{source}: token {index}", LimitError(path, exc.problem)) from exc
        raise _refused(f"{source}: token 0", exc) from exc
    records = document if isinstance(document, list) else [document]
    for index, record in enumerate(records):
        try:
            check(record)
        except LimitError as exc:
            raise _refused(f"{source}: token {index}", exc) from exc
    return records


def _read(stream: IO[bytes] | IO[str], source: str) -> str:
    """Read at most :data:`MAX_INPUT_BYTES` from ``stream``, as UTF-8 when it gives bytes.

    :raises UnicodeDecodeError: for bytes that are not UTF-8.
    """
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise CLIError(f"{source}: more than the {MAX_INPUT_BYTES} bytes allowed")
    return data.decode("utf-8") if isinstance(data, bytes) else data


def _read_stdin() -> str:
    stream = getattr(sys.stdin, "buffer", sys.stdin)  # no buffer: a text stream put in its place
    try:
        return _read(stream, "<stdin>")
    except UnicodeDecodeError as exc:
        raise CLIError(f"<stdin>: not UTF-8 text at byte {exc.start}") from exc


def read_tokens(source: str | None) -> list[Any]:
    """Return the input records of a run.

    :param source: a JSON file (a list is many records, any other value one),
        a JSON Lines file (``.jsonl``, ``.ndjson``: one record a line), ``-``
        for stdin (JSON, or JSON Lines when it holds more than one value; empty
        input is no record), or ``None`` for a single empty record ``{}``.
    :raises CLIError: when the input cannot be read, holds invalid JSON, or
        goes beyond a limit of :mod:`workflow.cli._limits`.
    """
    if source is None:
        return [{}]
    if source == "-":
        text = _read_stdin()
        if not text.strip():
            return []  # no lines: no tokens
        try:
            return _document_tokens(text, "<stdin>")
        except CLIError as error:
            cause = error.__cause__
            if not isinstance(cause, json.JSONDecodeError) or cause.msg != "Extra data":
                raise
        return parse_json_lines(text, "<stdin>")
    path = Path(source)
    try:
        with path.open("rb") as stream:
            text = _read(stream, source)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else None
        raise CLIError(f"cannot read the tokens file {source}: {reason or exc}") from exc
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return parse_json_lines(text, source)
    return _document_tokens(text, source)


def check_flow_records(records: list[Any], source: str | None) -> None:
    """Refuse records a flow cannot store: its context holds each one a level down.

    A flow keeps the record under ``_input`` in the token's data, so a record
    nests at most ``MAX_DEPTH - 1`` levels.
    """
    for index, record in enumerate(records):
        try:
            check(record, max_depth=MAX_DEPTH - 1)
        except LimitError as exc:
            where = f"{source or '<stdin>'}: token {index}"
            raise CLIError(
                f"{where}: {format_path(exc.path)}: {exc.problem} (a flow keeps each record "
                f"under _input in its context: records of a flow nest at most {MAX_DEPTH - 1})"
            ) from exc


def read_data(args: Any) -> Any:
    """The JSON of ``--data`` or ``--data-file`` (``None`` when neither is given)."""
    if args.data is not None:
        return parse_json(args.data, "--data")
    if args.data_file is None:
        return None
    path = Path(args.data_file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CLIError(f"cannot read --data-file {path}: {reason}") from exc
    return parse_json(text, str(path))
