"""JSON for token data: what is stored, and a hook for your own types."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ..errors import TokenEncodingError, WorkflowValueError

__all__ = ["JSONCodec"]

TYPE_KEY = "__workflow_type__"


class JSONCodec:
    """Turn token data into JSON text and back.

    Plain JSON values (``dict``, ``list``, ``tuple`` — stored as a list —,
    ``str``, ``int``, finite ``float``, ``bool``, ``None``) need nothing. As in
    JSON, dict keys are strings: ``int``, ``float``, ``bool`` and ``None`` keys
    are stored as their JSON text (``1`` becomes ``"1"``). Register any other
    type with :meth:`register`; it is stored as
    ``{"__workflow_type__": tag, "value": encode(obj)}`` and decoded back on
    load (so ``__workflow_type__`` is a reserved key; an envelope whose tag no
    decoder knows is loaded as the plain dict it is). Anything else fails at
    save time with :class:`~workflow.errors.TokenEncodingError` naming where
    it is. Nothing is pickled.

    .. versionadded:: 3.0
    """

    def __init__(self) -> None:
        self._encoders: dict[type, tuple[str, Callable[[Any], Any]]] = {}
        self._decoders: dict[str, Callable[[Any], Any]] = {}

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

    def _default(self, obj: Any) -> Any:
        entry = self._encoders.get(type(obj))
        if entry is None:
            raise TokenEncodingError(f"{type(obj).__qualname__} is not JSON serialisable")
        tag, encode = entry
        return {TYPE_KEY: tag, "value": encode(obj)}

    def _object_hook(self, value: dict[str, Any]) -> Any:
        tag = value.get(TYPE_KEY)
        if tag is None or len(value) != 2 or "value" not in value:
            return value
        decode = self._decoders.get(tag)
        if decode is None:
            return value  # not ours, or a type this process does not know: keep it as it is
        return decode(value["value"])

    def dumps(self, value: Any) -> str:
        """Return ``value`` as JSON text.

        :raises TokenEncodingError: for a value JSON cannot hold; the message
            names the path inside ``value`` and the type.
        """
        try:
            return json.dumps(value, default=self._default, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            path, culprit = self.find_problem(value)
            raise TokenEncodingError(
                f"cannot store {path} as JSON: {culprit}; register the type with "
                "JSONCodec.register() or convert it in a task"
            ) from exc

    def loads(self, text: str) -> Any:
        """Return the value stored as ``text``, decoding registered types."""
        return json.loads(text, object_hook=self._object_hook)

    def find_problem(self, value: Any, path: str = "$") -> tuple[str, str]:
        """Return the path of the first part of ``value`` JSON cannot hold, and why."""
        if value is None or isinstance(value, (str, bool, int)):
            return path, ""
        if isinstance(value, float):
            return (path, "") if math.isfinite(value) else (path, f"the float {value!r}")
        if isinstance(value, dict):
            for key, item in value.items():
                if not (key is None or isinstance(key, (str, int, float))):
                    return path, f"a dict key of type {type(key).__qualname__} ({key!r})"
                found, why = self.find_problem(item, f"{path}.{key}")
                if why:
                    return found, why
            return path, ""
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                found, why = self.find_problem(item, f"{path}[{index}]")
                if why:
                    return found, why
            return path, ""
        if type(value) in self._encoders:
            return path, ""
        return path, f"a {type(value).__module__}.{type(value).__qualname__}"
