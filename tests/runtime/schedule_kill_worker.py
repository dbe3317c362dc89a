"""A worker that dies with SIGKILL while it starts the run of a schedule's fire.

``python schedule_kill_worker.py URL WHEN NOW LEASE``: one
:meth:`Schedules.fire_due` at ``NOW`` (ISO 8601, naive UTC), taking over claims
older than ``LEASE`` seconds, whose start kills this process —

``claim``
    right after the fire's claim is committed, before its run is stored;
``stored``
    once the run is stored, in its first task.

Either way the process ends with SIGKILL: nothing of Python's shutdown runs.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime, timedelta
from typing import Any

from workflow.runtime import Schedules, Worker
from workflow.storage import Store


def die(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(url: str, when: str, now: datetime, lease: float) -> None:
    store = Store(url)
    if when == "claim":
        start: Any = die
    else:
        start = Worker(store, {"report": [die]}, schedules=False).start_scheduled
    Schedules(store, lease=timedelta(seconds=lease)).fire_due(now=now, start=start)
    sys.exit("the worker should have died")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3]), float(sys.argv[4]))
