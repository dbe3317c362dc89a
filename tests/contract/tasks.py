"""Conditions and task helpers shared by the contract tests (all mode-independent)."""

from __future__ import annotations

from typing import Any

from workflow.errors import WorkflowError

from .modes import Task, data, token_name

#: The tokens of a run of :func:`~.modes.items`.
TOKENS = ["t0", "t1", "t2"]


def token_is(*names: str) -> Task:
    """A condition: the token is one of ``names``."""

    def cond(obj: Any, eng: Any) -> bool:
        return token_name(obj) in names

    return cond


def recorded_fewer(label: str, count: int | None = None) -> Task:
    """A condition: ``label`` was recorded fewer than ``count`` times.

    ``count`` defaults to the token's index: no round for ``t0``, one for ``t1``...
    """

    def cond(obj: Any, eng: Any) -> bool:
        limit = int(token_name(obj)[1:]) if count is None else count
        return bool(data(obj).count(label) < limit)

    return cond


def always(obj: Any, eng: Any) -> bool:
    return True


def halt_once(*names: str, when: Task | None = None) -> Task:
    """A step halting each token of ``names`` (default: all) once, when ``when`` holds."""
    halted: set[str] = set()

    def halt(obj: Any, eng: Any) -> None:
        name = token_name(obj)
        if name in halted or (names and name not in names):
            return
        if when is None or when(obj, eng):
            halted.add(name)
            eng.halt(f"{name} waits")

    return halt


def fail(*names: str, error: type[Exception] = WorkflowError) -> Task:
    """A step raising ``error`` for each token of ``names`` (default: all)."""

    def boom(obj: Any, eng: Any) -> None:
        name = token_name(obj)
        if not names or name in names:
            raise error(f"{name} failed")

    return boom
