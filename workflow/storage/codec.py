"""JSON for token data: what is stored, and a hook for your own types."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from .._text import has_lone_surrogate
from ..errors import TokenEncodingError, WorkflowValueError

__all__ = ["MAX_DEPTH", "JSONCodec", "UnreadableValue"]

TYPE_KEY = "__workflow_type__"
#: A key of the user's data that reads like :data:`TYPE_KEY` (``TYPE_KEY``
#: followed by any number of ``~``) is stored with one ``~`` more, so that
#: no stored user dict is ever taken for a type envelope.
_ESCAPE = "~"
_ESCAPED = TYPE_KEY + _ESCAPE
_ESCAPED_BYTES = _ESCAPED.encode()

#: How deep stored JSON may nest by default: 31 containers, the most MariaDB
#: accepts (its JSON columns refuse 32), so that a run stores alike on every
#: database. ``JSONCodec(max_depth=...)`` changes it, up to :data:`_DEEPEST`.
MAX_DEPTH = 31
#: The deepest nesting any codec accepts: far from Python's recursion limit.
_DEEPEST = 200
_REGISTER = "register the type with JSONCodec.register() or convert it in a task"
_CHANGE = "change it in a task before it is stored"
#: The digits of the largest int stored (Python refuses to print longer ones).
_MAX_DIGITS = 4300


class UnreadableValue:
    """What a stored JSON column holds when it cannot be read back (a corrupted row).

    Loading never raises for one bad value: the row is read with this in its
    place, and whoever uses the row (``resume()``, ``workflow show``) names
    the column instead of failing with a decoder's traceback.

    :ivar text: the start of the stored text.
    :ivar error: why it cannot be read.

    .. versionadded:: 3.0
    """

    __slots__ = ("error", "text")

    def __init__(self, text: str, error: str) -> None:
        self.text = text[:80]
        self.error = error

    def __repr__(self) -> str:
        return f"<unreadable JSON {self.text!r}: {self.error}>"


class JSONCodec:
    """Turn token data into JSON text and back.

    Plain JSON values (``dict``, ``list``, ``tuple`` — stored as a list —,
    ``str``, ``int``, finite ``float``, ``bool``, ``None``) need nothing. As in
    JSON, dict keys are strings: ``int``, ``float``, ``bool`` and ``None`` keys
    are stored as their JSON text (``1`` becomes ``"1"``). Register any other
    type with :meth:`register`; it is stored as
    ``{"__workflow_type__": tag, "value": encode(obj)}`` and decoded back on
    load (an envelope whose tag no decoder knows is loaded as the plain dict
    it is). A dict of your own with a ``__workflow_type__`` key is stored
    escaped and loaded as it was: data never turns into a type on load.

    Anything else fails at save time with
    :class:`~workflow.errors.TokenEncodingError` naming where it is and why:
    another type, a NaN or infinite float (also as a key), an int of more
    than 4,300 digits, a string with a lone surrogate (no database stores
    it), or nesting deeper than ``max_depth``. Nothing is pickled.

    :param max_depth: how many containers deep a value may nest
        (:data:`MAX_DEPTH`, 31, by default: what MariaDB stores; at most 200).

    .. versionadded:: 3.0
    """

    def __init__(self, *, max_depth: int = MAX_DEPTH) -> None:
        if type(max_depth) is not int or not 1 <= max_depth <= _DEEPEST:
            raise WorkflowValueError(
                f"JSONCodec(max_depth=...) must be an int from 1 to {_DEEPEST}; got {max_depth!r}"
            )
        self.max_depth = max_depth
        self._encoders: dict[type, tuple[str, Callable[[Any], Any]]] = {}
        self._decoders: dict[str, Callable[[Any], Any]] = {}

    def __repr__(self) -> str:
        return f"<JSONCodec max_depth={self.max_depth} types={sorted(self._decoders)}>"

    def register(
        self,
        cls: type,
        tag: str,
        encode: Callable[[Any], Any],
        decode: Callable[[Any], Any],
    ) -> None:
        """Store instances of ``cls`` as ``encode(obj)`` under ``tag``; load with ``decode``.

        ``encode`` must return JSON-able data (it may contain registered types).
        """
        if tag in self._decoders:
            raise WorkflowValueError(f"the codec tag {tag!r} is already registered")
        self._encoders[cls] = (tag, encode)
        self._decoders[tag] = decode

    # -- saving -----------------------------------------------------------------------

    def dumps(self, value: Any) -> str:
        """Return ``value`` as JSON text.

        :raises TokenEncodingError: for a value that cannot be stored; the
            message names the path inside ``value`` and the problem.
        """
        try:
            text = self._dump(value, self._default)
            if TYPE_KEY in text:  # a registered type, or a key of the data to escape
                text = self._dump(self._escaped(value), self._escaping_default)
        except (TypeError, ValueError, RecursionError) as exc:
            path, why = self.find_problem(value)
            raise TokenEncodingError(
                self._message(path, why or f"{type(exc).__name__}: {exc}")
            ) from exc
        # Cheap tests on the text first: most values need no second look.
        if "\\ud" in text or text.count("[") + text.count("{") > self.max_depth:
            path, why = self.find_problem(value)
            if why:
                raise TokenEncodingError(self._message(path, why))
        return text

    @staticmethod
    def _dump(value: Any, default: Callable[[Any], Any]) -> str:
        return json.dumps(value, default=default, allow_nan=False, separators=(",", ":"))

    @staticmethod
    def _message(path: str, why: str) -> str:
        if len(path) > 120:
            path = f"{path[:50]}…{path[-50:]}"
        return f"cannot store {path} as JSON: {why}"

    def _default(self, obj: Any) -> Any:
        entry = self._encoders.get(type(obj))
        if entry is None:
            raise TokenEncodingError(f"{type(obj).__qualname__} is not JSON serialisable")
        tag, encode = entry
        return {TYPE_KEY: tag, "value": encode(obj)}

    def _escaping_default(self, obj: Any) -> Any:
        envelope = self._default(obj)
        envelope["value"] = self._escaped(envelope["value"])
        return envelope

    def _escaped(self, value: Any) -> Any:
        """Return ``value`` with every key that reads like ``TYPE_KEY`` given one ``~`` more.

        Python's own recursion limit stops a value nested too deep (``dumps``
        then names the depth).
        """
        if isinstance(value, dict):
            return {_escape_key(key): self._escaped(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._escaped(item) for item in value]
        return value

    # -- loading ------------------------------------------------------------------------

    def loads(self, text: str | bytes) -> Any:
        """Return the value stored as ``text``, decoding registered types.

        Text that is no JSON (a corrupted row) loads as an
        :class:`UnreadableValue` rather than raising.
        """
        escaped = _ESCAPED in text if isinstance(text, str) else _ESCAPED_BYTES in text
        try:
            return json.loads(text, object_hook=self._unescaping_hook if escaped else self._hook)
        except (ValueError, RecursionError) as exc:
            shown = text if isinstance(text, str) else text.decode("utf-8", "replace")
            return UnreadableValue(shown, str(exc) or type(exc).__name__)

    def _hook(self, value: dict[str, Any]) -> Any:
        tag = value.get(TYPE_KEY)
        if tag is None or len(value) != 2 or "value" not in value:
            return value
        decode = self._decoders.get(tag)
        if decode is None:
            return value  # not ours, or a type this process does not know: keep it as it is
        return decode(value["value"])

    def _unescaping_hook(self, value: dict[str, Any]) -> Any:
        if TYPE_KEY in value:
            return self._hook(value)
        return {_unescape_key(key): item for key, item in value.items()}

    # -- finding what cannot be stored ------------------------------------------------------

    def find_problem(self, value: Any, path: str = "$") -> tuple[str, str]:
        """Return the path of the first part of ``value`` that cannot be stored, and why.

        ``("$", "")`` (no reason) when every part can be stored.
        """
        for where, depth, part in _parts(value, path):
            if depth > self.max_depth:
                return where, f"nested deeper than {self.max_depth} levels; {_CHANGE}"
            why = self._why_not(part)
            if why:
                return where, why
        return path, ""

    def _why_not(self, part: Any) -> str:
        """Why ``part`` itself (not what it holds) cannot be stored; ``""`` when it can."""
        if part is None or isinstance(part, bool):
            return ""
        if isinstance(part, (str, int, float)):
            return _scalar_problem(part, key=False)
        if isinstance(part, dict):
            for key in part:
                if key is None or isinstance(key, bool):
                    continue
                if not isinstance(key, (str, int, float)):
                    return f"a dict key of type {type(key).__qualname__} ({key!r:.40}); {_CHANGE}"
                why = _scalar_problem(key, key=True)
                if why:
                    return why
            return ""
        if isinstance(part, (list, tuple)) or type(part) in self._encoders:
            return ""
        return f"a {type(part).__module__}.{type(part).__qualname__}; {_REGISTER}"


def _parts(value: Any, path: str) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(path, depth, part)`` for ``value`` and everything it holds, depth first."""
    stack = [(path, 0, value)]
    while stack:
        where, depth, part = stack.pop()
        yield where, depth, part
        if depth > _DEEPEST:
            continue
        if isinstance(part, dict):
            items = [(f"{where}.{key}", depth + 1, item) for key, item in part.items()]
        elif isinstance(part, (list, tuple)):
            items = [(f"{where}[{i}]", depth + 1, item) for i, item in enumerate(part)]
        else:
            continue
        stack.extend(reversed(items))


#: How a problem names a string, an int and a float: as a value, or as a dict key.
_NAMES = {
    False: ("a string", "an int", "the float"),
    True: ("a dict key", "a dict key", "the dict key"),
}


def _scalar_problem(value: str | int | float, *, key: bool) -> str:
    """Why a string or number (a value, or a dict ``key``) cannot be stored; ``""`` if it can."""
    text, number, real = _NAMES[key]
    if isinstance(value, str):
        return "" if not has_lone_surrogate(value) else f"{text} with a lone surrogate; {_CHANGE}"
    if isinstance(value, int):
        return "" if _printable(value) else f"{number} of over {_MAX_DIGITS} digits; {_CHANGE}"
    return "" if math.isfinite(value) else f"{real} {value!r}; {_CHANGE}"


def _printable(number: int) -> bool:
    # 4300 decimal digits need about 14,284 bits: test the bits before printing.
    if number.bit_length() < 14_000:
        return True
    try:
        return len(str(abs(number))) <= _MAX_DIGITS
    except ValueError:  # Python itself refuses to print it
        return False


def _escape_key(key: Any) -> Any:
    if isinstance(key, str) and key.startswith(TYPE_KEY) and not key[len(TYPE_KEY) :].strip("~"):
        return key + _ESCAPE
    return key


def _unescape_key(key: str) -> str:
    if key.startswith(_ESCAPED) and not key[len(TYPE_KEY) :].strip("~"):
        return key[:-1]
    return key
