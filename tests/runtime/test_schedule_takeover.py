"""A worker killed (SIGKILL) while it starts a fire's run: a later worker finishes the fire.

The fire's run uuid is derived from the schedule and the fire time, and the
fire's row is claimed until the run is stored. A worker that died after the
claim leaves a claim and no run: once the claim is older than the lease, the
next worker takes it over (one conditional write) and stores the run under
the same uuid. One that died after it stored the run leaves a run: the claim
is only cleared. Either way the fire ends with exactly one run. On SQLite,
PostgreSQL and MariaDB, with real processes. The fire times follow a fake
clock (``now``); claims follow the database's, and a short lease lapses
while the test waits for it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.runtime.racing import child_env, wait_until
from workflow.engine_db import WorkflowStatus
from workflow.runtime import Schedules, Worker
from workflow.runtime._fire_claims import MAX_ATTEMPTS
from workflow.runtime.schedules import fire_run_uuid, fires_table
from workflow.storage import Store
from workflow.storage.run_rows import workflows

pytestmark = pytest.mark.crash

KILLER = Path(__file__).with_name("schedule_kill_worker.py")
T0 = datetime(2026, 12, 7, 5, 0)  # a Monday, 06:00 in Berlin
#: A lease that lapses while the test waits; and one that never does within a test.
LEASE = timedelta(milliseconds=200)
LONG = timedelta(hours=1)


def build(obj: Any, eng: Any) -> None:
    obj.data["built"] = obj.data.get("built", 0) + 1


def add_schedule(store: Store) -> None:
    Schedules(store).add(
        "report",
        cron="0 6 * * 1-5",
        timezone="Europe/Berlin",
        flow="report",
        tokens=[{"team": "sales"}],
        now=T0 - timedelta(hours=1),
    )


def killed(db_url: str, when: str, now: datetime) -> None:
    """Run the killer at ``now``; it must end by SIGKILL."""
    lease = str(LEASE.total_seconds())
    done = subprocess.run(
        [sys.executable, str(KILLER), db_url, when, now.isoformat(), lease],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def fire_row(store: Store) -> Any:
    with store.transaction("read the fire") as conn:
        [row] = conn.execute(sa.select(fires_table)).all()
    return row


def lapsed(store: Store) -> None:
    """Wait until the fire's claim is older than :data:`LEASE` by the database's clock."""
    claimed = fire_row(store).claimed
    wait_until(lambda: store.now() - claimed > LEASE, "the claim's lease lapsed", 30)


def runs(store: Store) -> list[Any]:
    with store.transaction("read the runs") as conn:
        return conn.execute(sa.select(workflows.c.uuid, workflows.c.status)).all()


def test_a_fire_whose_worker_died_before_storing_the_run_is_finished_once(
    store: Store, db_url: str
) -> None:
    add_schedule(store)
    killed(db_url, "claim", T0)
    row = fire_row(store)
    run = fire_run_uuid("report", T0)
    assert (row.outcome, row.run_uuid, row.attempts) == ("started", run, 1)
    assert row.claimed is not None
    assert runs(store) == []  # the worker died between the claim and the run
    worker = Worker(store, {"report": [build]}, schedules=False)
    # Within the lease the claim is the dead worker's still: nothing happens.
    assert Schedules(store, lease=LONG).fire_due(now=T0, start=worker.start_scheduled) == []
    assert runs(store) == []
    # After it, one worker takes the claim over and stores the run under the fire's uuid.
    lapsed(store)
    after = T0 + timedelta(seconds=1)
    first = Schedules(store, lease=LEASE)
    second = Schedules(store, lease=LEASE)
    taken = first.fire_due(now=after, start=worker.start_scheduled)
    assert [(fire.outcome, fire.run) for fire in taken] == [("started", run)]
    assert taken[0].detail == "taken over from a worker that died (attempt 2)"
    assert second.fire_due(now=after, start=worker.start_scheduled) == []
    assert runs(store) == [(run, WorkflowStatus.COMPLETED.value)]
    assert store.token_rows(run)[0]["data"] == {"team": "sales", "built": 1}
    row = fire_row(store)
    assert (row.outcome, row.attempts, row.claimed) == ("started", 2, None)
    later = Schedules(store, lease=LEASE).fire_due(now=after, start=worker.start_scheduled)
    assert later == []
    assert len(runs(store)) == 1


def test_a_fire_whose_worker_died_after_storing_the_run_is_not_started_again(
    store: Store, db_url: str
) -> None:
    add_schedule(store)
    killed(db_url, "stored", T0)
    run = fire_run_uuid("report", T0)
    assert [uuid for uuid, _ in runs(store)] == [run]  # stored, then the worker died
    started: list[str] = []
    lapsed(store)
    taken = Schedules(store, lease=LEASE).fire_due(
        now=T0, start=lambda schedule, uid, at: started.append(uid)
    )
    assert (taken, started) == ([], [])  # the run goes on as any stored run: it is not re-made
    row = fire_row(store)
    assert (row.outcome, row.attempts, row.claimed) == ("started", 1, None)
    assert [uuid for uuid, _ in runs(store)] == [run]


def test_a_fire_whose_workers_keep_dying_is_recorded_as_failed(
    store: Store, db_url: str, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the claim's arithmetic is the same on every database: SQLite shows it")
    add_schedule(store)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        killed(db_url, "claim", T0)  # the first wins the fire time, the others take it over
        assert fire_row(store).attempts == attempt
        lapsed(store)
    worker = Worker(store, {"report": [build]}, schedules=False)
    [fire] = Schedules(store, lease=LEASE).fire_due(now=T0, start=worker.start_scheduled)
    assert (fire.outcome, fire.detail) == (
        "failed",
        f"{MAX_ATTEMPTS} workers died starting its run",
    )
    row = fire_row(store)
    assert (row.outcome, row.claimed) == ("failed", None)
    assert runs(store) == []
