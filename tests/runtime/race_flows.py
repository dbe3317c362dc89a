"""The definitions the race and crash tests of the runtime run, in the tests and in workers.

Each task that matters writes one line to the file named by the
``WORKFLOW_RACE_EFFECTS`` environment variable (when set) *before* it changes
its token: ``"<run> <token> <step> <process id>"``. That line survives a SIGKILL, so the
tests count how often a task really ran, outside the database. A token's data
is a dict; the steps append their names to ``data["trace"]`` and read their
due times from it (``data["until"]``, an ISO 8601 time with ``Z``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from workflow.runtime import ASK, SLEEP
from workflow.storage.models import utcnow

EFFECTS = "WORKFLOW_RACE_EFFECTS"
#: Seconds each task pauses after writing its line, so that kills land inside tasks.
PAUSE = 0.005


def effect(step: str) -> Callable[[Any, Any], None]:
    """A task that records ``step`` outside the database, then in its token."""

    def task(obj: Any, eng: Any) -> None:
        path = os.environ.get(EFFECTS)
        if path:
            line = f"{eng.uuid} {obj.position} {step} {os.getpid()}\n".encode()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)  # one write of a short line: appended whole
            finally:
                os.close(fd)
        time.sleep(PAUSE)
        obj.data.setdefault("trace", []).append(step)

    task.__name__ = step
    return task


def until(key: str = "until") -> Callable[[Any, Any], str]:
    """Read a due time from the token's data."""
    return lambda obj, eng: str(obj.data[key])


def iso(moment: datetime) -> str:
    """Write a naive UTC time as the ``...Z`` text the patterns read."""
    return moment.isoformat(timespec="microseconds") + "Z"


def in_(seconds: float) -> str:
    """The ISO 8601 text of ``seconds`` from now (UTC)."""
    return iso(utcnow() + timedelta(seconds=seconds))


#: ``{run name: callbacks}`` for :class:`workflow.runtime.Worker`.
DEFINITIONS: dict[str, list[Any]] = {
    # a timer, then a task: "continued once" is one "woke" line per token
    "nap": [*SLEEP("nap", until=until()), effect("woke")],
    # a question nobody answers: its deadline decides (on_timeout approves)
    "deadline": [
        *ASK(
            "approve",
            "Ship it?",
            approvers=["ann", "bob"],
            deadline=until(),
            on_timeout="approve",
        ),
        effect("shipped"),
    ],
    # two timers between three tasks, for the SIGKILL chaos
    "chain": [
        effect("a"),
        *SLEEP("first", until=until()),
        effect("b"),
        *SLEEP("second", "PT0.3S"),
        effect("c"),
    ],
}
