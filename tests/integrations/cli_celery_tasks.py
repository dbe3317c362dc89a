"""The callbacks of the runs that the CLI's Celery tests queue with ``workflow run``.

``workflow run tests.integrations.cli_celery_tasks:steps`` records them; a
``workflow worker --celery`` imports this module again (``--import``) to
run the tokens.
"""

from __future__ import annotations

import os
from typing import Any

STEPS = 3


def step(index: int) -> Any:
    """Task ``index``: record itself, and the process that ran it, in the token."""

    def task(obj: Any, eng: Any) -> None:
        obj.data["done"].append(index)
        obj.data["value"] = obj.data["value"] * 3 + index
        obj.data.setdefault("pids", []).append(os.getpid())

    task.__name__ = f"step_{index}"
    return task


steps = [step(index) for index in range(STEPS)]


def expected(value: int) -> tuple[int, list[int]]:
    """The ``value`` and ``done`` a run leaves in the token that started as ``value``."""
    for index in range(STEPS):
        value = value * 3 + index
    return value, list(range(STEPS))
