"""The vocabulary of flow definitions: step kinds, names, nested blocks and ``needs`` order.

Shared by the validator, the compiler and the diagrams. Everything here
tolerates invalid data, since the validator uses it before it knows better.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "COMMON_KEYS",
    "FLOW_KEYS",
    "KINDS",
    "NAME_PATTERN",
    "SYSTEM_NAMES",
    "blocks",
    "cycles",
    "execution_order",
    "kind_of",
    "names_in",
    "needs_of",
    "step_name",
]

#: Step and loop-variable names: they appear in ``@name.key`` references.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")

#: The keys that make a step one kind or another, and the keys each kind allows.
KINDS: dict[str, frozenset[str]] = {
    "task": frozenset({"task", "params"}),
    "if": frozenset({"if", "then", "else"}),
    "while": frozenset({"while", "do", "max_iterations"}),
    "for_each": frozenset({"for_each", "as", "do"}),
    "parallel": frozenset({"parallel"}),
    "halt": frozenset({"halt"}),
    "flow": frozenset({"flow", "version", "params"}),
}
COMMON_KEYS = frozenset({"name", "description", "needs"})
FLOW_KEYS = frozenset({"name", "version", "description", "steps", "$schema"})
SYSTEM_NAMES = frozenset({"_input", "_runtime"})


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
    names = [step_name(step) for step in steps]
    known = {name for name in names if name is not None}
    waiting = {i: set(needs_of(step)) & known for i, step in enumerate(steps)}
    done: set[str | None] = set()
    order: list[Any] = []
    while waiting:
        ready = next((i for i in sorted(waiting) if waiting[i] <= done), None)
        if ready is None:  # a cycle: the validator reports it; keep the written order
            order.extend(steps[i] for i in sorted(waiting))
            break
        del waiting[ready]
        done.add(names[ready])
        order.append(steps[ready])
    return order


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


def names_in(steps: list[Any]) -> list[str]:
    """Return the names of ``steps`` and of the steps inside them."""
    names = []
    for step in steps:
        name = step_name(step)
        if name is not None:
            names.append(name)
        if isinstance(step, dict):
            for _, block in blocks(step, ""):
                names.extend(names_in(block))
    return names


def cycles(graph: dict[str, list[str]], order: list[str]) -> list[list[str]]:
    """Return each cycle of ``graph`` once, as ``[a, b, ..., a]``, in a stable order."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in order:
        if node not in state:
            visit(node, [])
    return cycles
