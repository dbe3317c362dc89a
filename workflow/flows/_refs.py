"""Parameter references (``@step.key``, ``@@literal``) and conditions written as data.

A reference may give a default, for a value that may be missing: the object
``{"ref": "@step.key", "default": value}`` (exactly these two keys, ``ref``
a reference) is replaced by the reference's value, or by ``value`` when the
reference has none.

Both are compiled once, when the flow is compiled, into small functions of a
:class:`Lookup`; the validator checks them beforehand, so compiling assumes a
valid definition.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import WorkflowValueError

__all__ = [
    "COMPARISONS",
    "LOGICAL",
    "Lookup",
    "Reference",
    "ResolveError",
    "compile_condition",
    "compile_value",
    "has_default",
    "parse_reference",
    "reference_with_default",
    "references_in",
]

#: Comparison operators of conditions, each over a list of two values.
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
}

#: Logical operators of conditions.
LOGICAL = ("not", "and", "or")


class ResolveError(Exception):
    """A reference has no value in the context; the compiler names the step."""


@dataclass(frozen=True)
class Reference:
    """A parsed ``@name.key.key`` reference."""

    text: str
    name: str
    keys: tuple[str, ...]


def parse_reference(value: object) -> Reference | None:
    """Return the reference ``value`` spells, or ``None`` for a literal.

    ``"@@x"`` is the literal ``"@x"``, so it is not a reference.

    :raises ValueError: for ``"@"`` alone or an empty key (``"@a..b"``).
    """
    if not isinstance(value, str) or not value.startswith("@") or value.startswith("@@"):
        return None
    parts = value[1:].split(".")
    if not all(parts):
        raise WorkflowValueError(f"{value!r} is not a reference: names and keys cannot be empty")
    return Reference(value, parts[0], tuple(parts[1:]))


def reference_with_default(value: object) -> Reference | None:
    """Return the reference of ``{"ref": "@step.key", "default": value}``, else ``None``.

    Any other object is a plain value: one with other keys too, or whose
    ``ref`` is not a reference (``"@@x"`` writes such an object literally).

    :raises ValueError: for a ``ref`` such as ``"@"`` or ``"@a..b"``.
    """
    if isinstance(value, dict) and len(value) == 2 and "ref" in value and "default" in value:
        return parse_reference(value["ref"])
    return None


def has_default(value: object) -> bool:
    """Whether ``value`` has the form of a reference with a default (even with a bad ``ref``)."""
    try:
        return reference_with_default(value) is not None
    except ValueError:  # the validator reports the bad reference at its own path
        return True


def references_in(value: Any, path: str) -> list[tuple[str, Any]]:
    """Return ``(json_path, text)`` for every string starting with ``@`` in ``value``."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, str):
        if value.startswith("@") and not value.startswith("@@"):
            found.append((path, value))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(references_in(item, f"{path}[{index}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(references_in(item, f"{path}.{key}"))
    return found


class Lookup:
    """Where the names of a step's references are found at run time.

    ``scope`` is the dict the step's list stores results in (the token's
    context, or a called flow's part of it); ``root`` is the whole context,
    where ``_runtime`` lives.
    """

    __slots__ = ("root", "scope")

    def __init__(self, root: dict[str, Any], scope: dict[str, Any]) -> None:
        self.root = root
        self.scope = scope

    def value(self, ref: Reference, default: Resolver | None = None) -> Any:
        """Return the value ``ref`` points at.

        A step that has not run (in a branch not taken, or in a loop that has
        not gone round yet) reads as ``None``, and so do its keys.

        :param default: builds the value when ``ref`` has none: a step that
            has not run, a missing key, an index past the end, a key of a
            value that has none. A key present with ``None`` is ``None``.
        :raises ResolveError: naming the missing key of a result that exists,
            without a default.
        """
        scope = self.scope
        if ref.name in scope:
            current = scope[ref.name]
        elif ref.name == "_runtime" and "_runtime" in self.root:
            current = self.root["_runtime"]
        else:  # a known step (the validator saw to it) that has not run: a branch not taken
            return None if default is None else default(self)
        walked = ref.name
        for key in ref.keys:
            try:
                current = _child(current, key, ref.text, walked)
            except ResolveError:
                if default is None:
                    raise
                return default(self)
            walked += f".{key}"
        return current


def _child(value: Any, key: str, text: str, walked: str) -> Any:
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        keys = ", ".join(repr(k) for k in sorted(value, key=str)[:10]) or "none"
        raise ResolveError(f"{text}: {walked} has no key {key!r} (its keys: {keys})")
    if isinstance(value, list | tuple):
        try:
            return value[int(key)]
        except (ValueError, IndexError):
            raise ResolveError(
                f"{text}: {walked} is a list of {len(value)} items; {key!r} is not an index in it"
            ) from None
    raise ResolveError(f"{text}: {walked} is {type(value).__name__}, which has no key {key!r}")


Resolver = Callable[[Lookup], Any]


def compile_value(spec: Any) -> Resolver:
    """Return a function building ``spec``'s value, references resolved, afresh on each call.

    Every call returns new lists and dicts, so a task that changes its
    parameters cannot change the next iteration's.
    """
    if isinstance(spec, str):
        if spec.startswith("@@"):
            literal = spec[1:]
            return lambda lookup: literal
        ref = parse_reference(spec)
        if ref is not None:
            return lambda lookup: lookup.value(ref)
        return lambda lookup: spec
    if isinstance(spec, list):
        items = [compile_value(item) for item in spec]
        return lambda lookup: [item(lookup) for item in items]
    if isinstance(spec, dict):
        with_default = reference_with_default(spec)
        if with_default is not None:
            default = compile_value(spec["default"])
            return lambda lookup: lookup.value(with_default, default)
        fields = [(key, compile_value(item)) for key, item in spec.items()]
        return lambda lookup: {key: item(lookup) for key, item in fields}
    return lambda lookup: spec


def compile_condition(spec: Any) -> Callable[[Lookup], bool]:
    """Return a function deciding the condition ``spec``.

    A condition is a value (true when truthy: a literal or a reference), or a
    one-key object: ``{"==": [a, b]}`` (and ``!=``, ``<``, ``<=``, ``>``,
    ``>=``, ``in``), ``{"not": cond}``, ``{"and": [cond, ...]}``,
    ``{"or": [cond, ...]}``.
    """
    if isinstance(spec, dict) and len(spec) == 1:
        ((op, args),) = spec.items()
        if op == "not":
            inner = compile_condition(args)
            return lambda lookup: not inner(lookup)
        if op == "and":
            parts = [compile_condition(item) for item in args]
            return lambda lookup: all(part(lookup) for part in parts)
        if op == "or":
            parts = [compile_condition(item) for item in args]
            return lambda lookup: any(part(lookup) for part in parts)
        compare = COMPARISONS[op]
        left, right = (compile_value(item) for item in args)

        def decide(lookup: Lookup) -> bool:
            a, b = left(lookup), right(lookup)
            try:
                return bool(compare(a, b))
            except TypeError:
                raise ResolveError(
                    f"cannot evaluate {op!r} between {type(a).__name__} {a!r} "
                    f"and {type(b).__name__} {b!r}"
                ) from None

        return decide
    value = compile_value(spec)
    return lambda lookup: bool(value(lookup))
