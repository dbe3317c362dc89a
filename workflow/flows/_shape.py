"""The vocabulary of flow definitions: step kinds, names, nested blocks and ``needs`` order.

Shared by the validator, the compiler and the diagrams. Everything here
tolerates invalid data, since the validator uses it before it knows better.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "COMMON_KEYS",
    "FLOW_KEYS",
    "KINDS",
    "NAME_PATTERN",
    "SYSTEM_NAMES",
    "WAIT_KINDS",
    "blocks",
    "cycles",
    "execution_order",
    "kind_of",
    "kinds_in",
    "names_in",
    "needs_of",
    "step_name",
    "waits_in_branches",
]

#: Step and loop-variable names: they appear in ``@name.key`` references.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")

#: The keys that make a step one kind or another, and the keys each kind allows.
KINDS: dict[str, frozenset[str]] = {
    "task": frozenset({"task", "params", "retry", "time_limit"}),
    "if": frozenset({"if", "then", "else"}),
    "while": frozenset({"while", "do", "max_iterations"}),
    "for_each": frozenset({"for_each", "as", "do", "parallel", "max_concurrency"}),
    "parallel": frozenset({"parallel"}),
    "halt": frozenset({"halt"}),
    "flow": frozenset({"flow", "version", "params"}),
    "ask": frozenset({"ask"}),
    "sleep": frozenset({"sleep"}),
    "receive": frozenset({"receive", "timeout", "on_timeout"}),
}
#: The kinds of steps that wait in a row of the database (only a stored run can).
WAIT_KINDS = frozenset({"ask", "sleep", "receive"})
COMMON_KEYS = frozenset({"name", "description", "needs"})
FLOW_KEYS = frozenset(
    {"name", "version", "description", "steps", "$schema", "key", "on_conflict", "schedules"}
)
SYSTEM_NAMES = frozenset({"_input", "_runtime"})


def kinds_in(step: Mapping[str, Any]) -> list[str]:
    """Return the kind keys ``step`` has (a valid step has one).

    ``"parallel": true`` on a ``for_each`` says how the loop runs: it is no
    second kind.
    """
    kinds = [kind for kind in KINDS if kind in step]
    if "for_each" in kinds and "parallel" in kinds and not isinstance(step["parallel"], list):
        kinds.remove("parallel")
    return kinds


def kind_of(step: Mapping[str, Any]) -> str | None:
    """Return the kind of a step (the first kind key it has), or ``None``."""
    for kind in KINDS:
        if kind in step:
            return kind
    return None


def execution_order(steps: list[Any]) -> list[Any]:
    """Return the steps of one list in the order they run.

    Without ``needs`` that is the written order. With it, a topological
    order: a step runs when everything it needs has run, ties going to the
    step written first, so the order is the same on every run. Assumes a
    validated list (no cycle, no unknown name); leftovers keep their order.
    """
    if not any(isinstance(step, dict) and step.get("needs") for step in steps):
        return list(steps)
    first: dict[str, int] = {}
    for index, step in enumerate(steps):
        name = step_name(step)
        if name is not None:
            first.setdefault(name, index)
    waiting: list[int] = []  # how many needed steps each step still waits for
    unblocks: dict[int, list[int]] = {}  # step -> the steps that need it
    for index, step in enumerate(steps):
        needed = {first[name] for name in needs_of(step) if name in first}
        waiting.append(len(needed))
        for other in needed:
            unblocks.setdefault(other, []).append(index)
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for later in unblocks.get(index, []):
            waiting[later] -= 1
            if waiting[later] == 0:
                heapq.heappush(ready, later)
    placed = set(order)  # a cycle leaves steps out: the validator reports it
    order.extend(index for index in range(len(steps)) if index not in placed)
    return [steps[index] for index in order]


def step_name(step: object) -> str | None:
    name = step.get("name") if isinstance(step, dict) else None
    return name if isinstance(name, str) else None


def needs_of(step: object) -> list[str]:
    needs = step.get("needs") if isinstance(step, dict) else None
    if not isinstance(needs, list):
        return []
    return [name for name in needs if isinstance(name, str)]


def blocks(step: dict[str, Any], path: str) -> list[tuple[str, list[Any]]]:
    found = []
    for key in ("then", "else", "do"):
        if isinstance(step.get(key), list):
            found.append((f"{path}.{key}", step[key]))
    branches = step.get("parallel")
    if isinstance(branches, list):
        for index, branch in enumerate(branches):
            if isinstance(branch, list):
                found.append((f"{path}.parallel[{index}]", branch))
    return found


def waits_in_branches(steps: list[Any]) -> list[str]:
    """Return the names of the steps that wait inside a parallel step's branches.

    A ``halt``, ``ask``, ``sleep`` or ``receive`` (or a ``retry``, which
    waits between attempts) in a ``parallel`` branch or a parallel
    ``for_each``: such a step waits only in a run on a work queue.
    """
    found: list[str] = []

    def walk(block: list[Any], inside: bool) -> None:
        for step in block:
            if not isinstance(step, dict):
                continue
            kinds = kinds_in(step)
            waits = bool(WAIT_KINDS & set(kinds)) or "halt" in kinds or "retry" in step
            if inside and waits and step_name(step) is not None:
                found.append(str(step_name(step)))
            forks = "parallel" in kinds or ("for_each" in kinds and step.get("parallel") is True)
            for _, inner in blocks(step, ""):
                walk(inner, inside or forks)

    walk(steps, False)
    return found


def names_in(steps: list[Any]) -> list[str]:
    """Return the names of ``steps`` and of the steps inside them, in document order."""
    names = []
    stack: list[Any] = list(reversed(steps))
    while stack:
        step = stack.pop()
        name = step_name(step)
        if name is not None:
            names.append(name)
        if isinstance(step, dict):
            for _, block in reversed(blocks(step, "")):
                stack.extend(reversed(block))
    return names


def cycles(graph: dict[str, list[str]], order: list[str]) -> list[list[str]]:
    """Return each cycle of ``graph`` once, as ``[a, b, ..., a]``, in a stable order.

    A depth-first search with a stack of its own, so a long chain of
    ``needs`` cannot reach Python's recursion limit.
    """
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in order:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        pending = [iter(graph.get(root, []))]  # the successors left to visit, per node
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                pending.pop()
                state[path.pop()] = 2
            elif state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                pending.append(iter(graph.get(nxt, [])))
    return found
