"""Eight processes fire one schedule over 10,000 ticks of a fake clock: one run per fire time.

Each process calls :meth:`Schedules.fire_due` with ``now`` advancing one to
five minutes a call, against an every-minute schedule that catches up every
late fire time; each process notes the fire times it started outside the
database, so a fire time started twice would show. On SQLite, PostgreSQL and
MariaDB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from workflow.runtime import Schedules
from workflow.runtime.schedules import fires_table
from workflow.storage import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "runtime" / "schedule_race_worker.py"
PROCESSES = 8
TICKS = 10_000


def test_eight_processes_start_exactly_one_run_per_fire_time(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    from tests.runtime.schedule_race_worker import T0

    Schedules(store).add(
        "every-minute",
        cron="* * * * *",
        flow="tick",
        overlap="allow",
        catch_up="all",
        catch_up_window=timedelta(days=30),
        now=T0 - timedelta(seconds=1),
    )
    gate = tmp_path / "gate"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                db_url,
                str(index),
                str(gate),
                str(TICKS),
                str(tmp_path / f"out-{index}"),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    try:
        gate.touch()
        for process in processes:
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    starts = Counter(
        fire
        for index in range(PROCESSES)
        for fire in json.loads((tmp_path / f"out-{index}").read_text())["started"]
    )
    with store.transaction("read the fires") as conn:
        fires = list(conn.execute(sa.select(fires_table.c.fire_time, fires_table.c.outcome)))
    expected = {(T0 + timedelta(minutes=tick)).isoformat() for tick in range(TICKS)}
    assert set(starts) == expected
    assert set(starts.values()) == {1}  # each fire time started once, by one process
    assert len(fires) == TICKS
    assert {outcome for _, outcome in fires} == {"started"}
