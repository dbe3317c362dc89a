"""One of the processes of the schedule race: fire a schedule over many ticks of a fake clock.

``python schedule_race_worker.py URL INDEX GATE TICKS OUT``: waits for the
file GATE (leaves after 120 s without it), then calls
:meth:`Schedules.fire_due` at ticks one minute apart from ``T0``, one to five ticks at a
time (a process that skips ticks finds their fire times late, and catches them
up); the
start of each fire it won is noted outside the database, so that two starts
of one fire time would show. Writes the fire times it started to OUT (JSON).
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from workflow.runtime import Schedules
from workflow.storage import Store

T0 = datetime(2026, 12, 7, 5, 0)


def main(url: str, index: int, gate: Path, ticks: int, out: Path) -> None:
    store = Store(url)
    schedules = Schedules(store)
    started: list[str] = []

    def start(schedule: Any, run: str, fire_time: datetime) -> None:
        started.append(fire_time.isoformat())  # outside the database: counts every start

    deadline = time.monotonic() + 120
    while not gate.exists():
        if time.monotonic() > deadline:
            sys.exit(f"process {index}: the gate never opened")
        time.sleep(0.01)
    steps = random.Random(index)
    tick = 0
    while tick < ticks - 1:  # 1 to 3 ticks at a time: late fire times are caught up too
        schedules.fire_due(now=T0 + timedelta(minutes=tick), start=start)
        tick += steps.randint(1, 5)
    schedules.fire_due(now=T0 + timedelta(minutes=ticks - 1), start=start)
    out.write_text(json.dumps({"started": started}))
    store.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
