"""The limits of the JSON the command reads, and the parser that holds input to them.

Token files, stdin and ``--data`` are read with :func:`decode` and each
value is checked with :func:`check` before anything touches the database, so
that input the database cannot hold (``NaN``, ``Infinity``, numbers out of a
float's range), integers too long to convert, and documents nested deep
enough to exhaust Python's stack are refused with the path of the culprit.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from workflow._text import has_lone_surrogate

__all__ = [
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "MAX_INT_DIGITS",
    "LimitError",
    "check",
    "decode",
    "format_path",
]

#: The deepest a token (or ``--data``) may nest lists and objects: ``[[1]]`` is 2 deep.
#: The store's codec takes no more (``workflow.storage.codec.MAX_DEPTH``, MariaDB's
#: limit); it is not imported from there, which would import SQLAlchemy.
MAX_DEPTH = 31
#: The most digits an integer of the input may have.
MAX_INT_DIGITS = 1000
#: The largest token file, stdin or ``--data`` the command reads, in bytes (64 MiB).
MAX_INPUT_BYTES = 64 * 1024 * 1024

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)
_LONGEST_PATH = 120

#: Where a value is: object keys and list indexes from the top of the document.
JSONPath = list[str | int]


class LimitError(ValueError):
    """A value of the input is beyond a limit, or is not a number JSON allows.

    :param path: where the value is: object keys and list indexes from the top.
    :param problem: what is wrong with it.
    """

    def __init__(self, path: JSONPath, problem: str) -> None:
        super().__init__(f"{format_path(path)}: {problem}")
        self.path = path
        self.problem = problem


class _Refused:
    """Stands for a value the parser met but must not accept, until :func:`check` finds it."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def __repr__(self) -> str:
        return f"<refused: {self.problem}>"


def format_path(path: JSONPath) -> str:
    """Return ``path`` as ``$.key[2]["odd key"]``; a long one keeps its ends and its length."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part, ensure_ascii=has_lone_surrogate(part))}]")
    text = "".join(parts)
    if len(text) > _LONGEST_PATH and len(parts) > 12:
        text = "".join([*parts[:8], "...", *parts[-4:]]) + f" (a path of {len(path)} steps)"
    return text


_SURROGATE = "a string with a lone surrogate (such as \\ud800), which no database stores"


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a number JSON allows (no NaN or Infinity)")


def _integer(text: str) -> int | _Refused:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        return _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are allowed)")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        return _Refused(f"the number {shown} is out of the range of a float")
    return value


def decode(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse the JSON ``text``; refused numbers stay in it for :func:`check` to find.

    :param max_depth: the depth reported when ``text`` nests too deep for the
        parser itself.
    :raises json.JSONDecodeError: for invalid JSON.
    :raises LimitError: when ``text`` nests deeper than the parser can go.
    """
    try:
        return json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except RecursionError:
        path = _too_deep(text, max_depth)
        raise LimitError(path, _deeper_than(max_depth)) from None


def _deeper_than(max_depth: int) -> str:
    return f"nested deeper than {max_depth} levels of lists and objects"


def _too_deep(text: str, max_depth: int) -> JSONPath:
    """Return the path of the first list or object of ``text`` deeper than ``max_depth``.

    A scan of brackets, commas and strings: it needs no stack of its own,
    so it works where the parser ran out of one.
    """
    path: JSONPath = []
    awaiting_key: list[bool] = []  # per open object: the next string is a key
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            if len(path) == max_depth:
                return path
            path.append(0 if token == "[" else "")
            awaiting_key.append(token == "{")
        elif token in "]}":
            if path:
                path.pop()
                awaiting_key.pop()
        elif token == ",":
            if path and isinstance(path[-1], int):
                path[-1] += 1
            elif path:
                awaiting_key[-1] = True
        elif path and awaiting_key[-1]:  # a string where an object's key goes
            path[-1] = str(json.loads(token))  # valid: the parser got past it
            awaiting_key[-1] = False
    return path


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Make sure ``value`` (from :func:`decode`) holds nothing refused and is not too deep.

    :raises LimitError: for the first problem, in document order.
    """
    stack: list[tuple[Any, JSONPath]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _Refused):
            raise LimitError(path, item.problem)
        if isinstance(item, str) and has_lone_surrogate(item):
            raise LimitError(path, _SURROGATE)
        if isinstance(item, (dict, list)):
            if len(path) >= max_depth:
                raise LimitError(path, _deeper_than(max_depth))
            if isinstance(item, dict):
                for key in item:
                    if has_lone_surrogate(key):
                        raise LimitError([*path, key], f"its key is {_SURROGATE}")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend(reversed([(child, [*path, key]) for key, child in pairs]))
