"""The limits of a flow definition, and the first check of a document against them.

A flow comes from people and programs we do not control, so every limit here
is checked before anything recursive sees the document: the validator, the
compiler, the diagrams and :func:`copy.deepcopy` then stay far from Python's
recursion limit (about 1,000 frames) for any document that passes.
"""

from __future__ import annotations

import datetime
import math

from ..errors import FlowError
from ._shape import NAME_PATTERN, blocks

__all__ = [
    "MAX_APPROVERS",
    "MAX_ATTEMPTS",
    "MAX_DOCUMENT_DEPTH",
    "MAX_DOCUMENT_VALUES",
    "MAX_FILE_BYTES",
    "MAX_HINTS",
    "MAX_MESSAGE_LENGTH",
    "MAX_NESTING",
    "MAX_SCHEMA_VALUES",
    "MAX_STEPS",
    "MAX_TOPIC_LENGTH",
    "MAX_VALUE_DEPTH",
    "Budget",
    "check_document",
    "count_steps",
    "key_path",
    "value_depth",
]

#: The most bytes a flow file may have (1 MiB).
MAX_FILE_BYTES = 1024 * 1024

#: How deep steps may nest inside other steps (``then``, ``else``, ``do``,
#: ``parallel``); the top-level steps are level 1, and the steps of a called
#: flow are one level below the step that calls it.
MAX_NESTING = 6

#: The most steps a flow may have, counting the steps inside other steps and,
#: once per call, the steps of the flows it calls.
MAX_STEPS = 1000

#: How deep a step's values (``params``, a condition, a ``for_each`` list)
#: may nest: ``1`` and ``"@a"`` have depth 0, ``{"a": [1]}`` has depth 2.
MAX_VALUE_DEPTH = 10

#: How deep the whole document may nest, whatever its shape: 31, what every
#: supported database stores (a run stores its flow; MariaDB's JSON columns
#: refuse 32 levels, see ``workflow.storage.codec.MAX_DEPTH``). It leaves
#: room for steps at :data:`MAX_NESTING` holding values at :data:`MAX_VALUE_DEPTH`.
MAX_DOCUMENT_DEPTH = 31

#: The most values (objects, lists, strings, numbers, ...) a document may hold,
#: counting a value each time it is used.
MAX_DOCUMENT_VALUES = 100_000

#: The most values the ``schema`` of a halt step may hold (its depth is bound by
#: :data:`MAX_VALUE_DEPTH`, as every value of a step): answers are checked
#: against it each time somebody answers.
MAX_SCHEMA_VALUES = 1000

#: How many errors of one validation get a "did you mean" hint: finding a
#: close name costs about a millisecond among a thousand names.
MAX_HINTS = 100

#: The most approvers an ``ask`` step may name (and its largest quorum when it names none).
MAX_APPROVERS = 1000

#: The most tries a task step's ``retry`` may make.
MAX_ATTEMPTS = 100

#: The longest question an ``ask`` step may put.
MAX_MESSAGE_LENGTH = 4000

#: The longest topic of a ``receive`` step, and the longest approver's name:
#: what the database's columns hold.
MAX_TOPIC_LENGTH = 255

#: What a flow is made of: JSON's types (a tuple is written as a list).
_SCALARS = (str, int, float, bool, type(None))
#: Python writes no integer of more than 4300 digits (see sys.set_int_max_str_digits).
_MAX_INT_BITS = 14_000
_STEP_BLOCKS = ("then", "else", "do")


def key_path(path: str, key: object) -> str:
    """Return the JSON path of ``key`` under ``path``: ``$.a.b``, or ``$.a['odd key']``."""
    if isinstance(key, str) and NAME_PATTERN.match(key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


class Budget:
    """What one validation may still spend, shared with the flows it calls.

    :ivar left: the steps the flow may still have, of :data:`MAX_STEPS`.
    :ivar hints: the "did you mean" hints it may still give, of :data:`MAX_HINTS`.
    """

    def __init__(self) -> None:
        self.left = MAX_STEPS
        self.hints = MAX_HINTS


def count_steps(steps: object) -> int:
    """Return how many steps the list ``steps`` holds, the steps inside steps included."""
    count = 0
    stack: list[object] = [steps]
    while stack:
        block = stack.pop()
        if not isinstance(block, list):
            continue
        for step in block:
            if isinstance(step, dict):
                count += 1
                stack.extend(child for _, child in blocks(step, ""))
    return count


def value_depth(value: object, limit: int) -> int:
    """Return how deep ``value`` nests, counting no further than ``limit + 1``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list | tuple):
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth > limit:
            break
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth) for child in children)
    return deepest


def check_document(data: object, flow: str) -> FlowError | None:
    """Return the first way ``data`` breaks the document limits, or ``None``.

    Walks the document without recursion, in document order, counting every
    use of a value (a Python object may share one value many times over), and
    stops at the first problem: a document nested deeper than
    :data:`MAX_DOCUMENT_DEPTH`, one with more than :data:`MAX_DOCUMENT_VALUES`
    values, or a value that JSON cannot hold (a date, a set, an object, NaN,
    infinity, an integer of thousands of digits). The
    error names the step the problem is in, when it is inside one.

    :param flow: the flow's name, for the error.
    """
    count = 0
    # (value, path, depth, the enclosing step's name, what the value is: "flow",
    # "steps" (a list of steps), "branches", "step" or "value")
    stack: list[tuple[object, str, int, str | None, str]] = [(data, "$", 1, None, "flow")]
    while stack:
        value, path, depth, step, role = stack.pop()
        count += 1
        if count > MAX_DOCUMENT_VALUES:
            message = f"the document has more than {MAX_DOCUMENT_VALUES} values"
            return FlowError(flow, None, "$", message)
        if isinstance(value, float) and not math.isfinite(value):
            return FlowError(flow, step, path, f"{value!r} is not a JSON value")
        if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            message = "an integer this large cannot be written as JSON"
            return FlowError(flow, step, path, message)
        if isinstance(value, _SCALARS):
            continue
        if not isinstance(value, dict | list | tuple):
            return FlowError(flow, step, path, f"{_article(value)} is not a JSON value")
        if depth > MAX_DOCUMENT_DEPTH:
            message = f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"
            return FlowError(flow, step, path, message)
        children: list[tuple[object, str, int, str | None, str]] = []
        if isinstance(value, dict):
            if role == "step" and isinstance(value.get("name"), str):
                step = value["name"]
            for key, child in value.items():
                children.append((child, key_path(path, key), depth + 1, step, _role(role, key)))
        else:
            inner = {"steps": "step", "branches": "steps"}.get(role, "value")
            for index, child in enumerate(value):
                children.append((child, f"{path}[{index}]", depth + 1, step, inner))
        stack.extend(reversed(children))
    return None


def _role(parent: str, key: object) -> str:
    """Return what the value under ``key`` of a ``parent`` object is."""
    if parent == "flow" and key in ("steps", "procedures"):
        return "steps"
    if parent == "step" and key in _STEP_BLOCKS:
        return "steps"
    if parent == "step" and key == "parallel":
        return "branches"
    return "value"


def _article(value: object) -> str:
    if isinstance(value, datetime.date):
        return "a date"  # and a datetime: YAML reads both from unquoted text
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"
