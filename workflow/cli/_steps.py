"""Where ``workflow retry --from STEP`` runs a failed token from: a path into the callback tree.

A flow's step is named (its compiled task carries the step's name); a task
of a Python callback list is named by its ``__name__`` or given by its
position, ``2`` or ``1.0`` (the indexes of ``callback_pos``, dotted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._context import CLIError
from ._output import printable

__all__ = ["resolve_step", "tasks_in"]

_POSITION = re.compile(r"\d{1,6}(?:\.\d{1,6}){0,31}")
_SHOWN = 10


def tasks_in(tree: list[Any], prefix: tuple[int, ...] = ()) -> Iterator[tuple[list[int], Any]]:
    """Yield each task of the callback ``tree`` with its position, in order."""
    for index, item in enumerate(tree):
        path = (*prefix, index)
        if isinstance(item, list):
            yield from tasks_in(item, path)
        else:
            yield list(path), item


def _name(task: Any) -> str | None:
    name = getattr(task, "__name__", None)
    return name if isinstance(name, str) else None


def resolve_step(tree: Any, text: str, *, flow: bool) -> list[int]:
    """Return the position that ``text`` names in ``tree``.

    :raises CLIError: when nothing (or, for a task name, more than one task) has that name,
        or a position leads to no task.
    """
    if not isinstance(tree, list):
        raise CLIError("--from needs a definition that is a callback list")
    tasks = list(tasks_in(tree))
    if not flow and _POSITION.fullmatch(text):
        path = [int(index) for index in text.split(".")]
        if any(found == path for found, _ in tasks):
            return path
        raise CLIError(
            f"--from {text}: no task is at position {path} of the definition "
            f"(its tasks are at {_listed([str(found) for found, _ in tasks])})"
        )
    matches = [path for path, task in tasks if _name(task) == text]
    kind = "step" if flow else "task"
    if not matches:
        names = list(dict.fromkeys(name for _, task in tasks if (name := _name(task))))
        raise CLIError(
            f"--from {printable(repr(text))}: the definition has no {kind} of that name "
            f"(its {kind}s: {printable(_listed(names))})"
        )
    if len(matches) > 1 and not flow:
        raise CLIError(
            f"--from {printable(repr(text))}: {len(matches)} tasks have that name, at "
            f"{_listed([str(path) for path in matches])}; give the position instead "
            "(e.g. --from 1.0)"
        )
    return matches[0]


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")
