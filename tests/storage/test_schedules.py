"""Schedules through the Python API: fire times decided once, overlap, catch-up, the worker.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture),
with the clock passed explicitly (``now=``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import WorkflowStatus
from workflow.errors import HaltProcessing, WorkflowNotFoundError, WorkflowValueError
from workflow.runtime import Schedules, Worker
from workflow.runtime.schedules import fire_run_uuid, schedules_table
from workflow.storage import Definitions, Store

T0 = datetime(2026, 12, 7, 5, 0)  # a Monday, 06:00 in Berlin


def append_ran(obj: Any, eng: Any) -> None:
    obj.data.append("ran")


def halt_once(obj: Any, eng: Any) -> None:
    if "halted" not in obj.data:
        obj.data.append("halted")
        raise HaltProcessing("waits for a person")


def started_runs(store: Store) -> list[dict[str, Any]]:
    from workflow.storage.run_rows import workflows

    with store.transaction("read") as conn:
        rows = conn.execute(sa.select(workflows).order_by(workflows.c.created))
        return [dict(row._mapping) for row in rows]


def test_a_worker_starts_one_run_per_fire_time(store: Store) -> None:
    schedules = Schedules(store)
    schedules.add("tick", cron="*/5 * * * *", flow="tick", tokens=[[]], now=T0)
    worker = Worker(store, {"tick": [append_ran]})
    first = schedules.fire_due(now=T0 + timedelta(minutes=5), start=worker.start_scheduled)
    again = schedules.fire_due(now=T0 + timedelta(minutes=5), start=worker.start_scheduled)
    assert [fire.outcome for fire in first] == ["started"]
    assert again == []
    run = first[0].run
    assert run == fire_run_uuid("tick", T0 + timedelta(minutes=5))
    assert store.token_rows(run)[0]["data"] == ["ran"]
    assert store.workflow(run)["extra_data"]["schedule"] == "tick"
    assert schedules.get("tick").next_fire_at == T0 + timedelta(minutes=10)


def test_a_worker_pass_fires_what_is_due_by_the_database_clock(store: Store) -> None:
    now = store.now()
    Schedules(store).add("each-minute", cron="* * * * *", flow="tick", tokens=[[]], now=now)
    store_schedules = Schedules(store)
    due = store_schedules.get("each-minute").next_fire_at
    with store.transaction("make it due") as conn:  # as if the minute had passed
        conn.execute(schedules_table.update().values(next_fire_at=due - timedelta(minutes=1)))
    done = Worker(store, {"tick": [append_ran]}).run_once()
    assert [fire.outcome for fire in done.scheduled] == ["started"]
    assert not done.idle


def test_add_refuses_a_bad_cron_a_bad_timezone_and_a_second_schedule_of_a_name(
    store: Store,
) -> None:
    schedules = Schedules(store)
    with pytest.raises(WorkflowValueError, match=r"schedule 'x': cron '61 \* \* \* \*'"):
        schedules.add("x", cron="61 * * * *", flow="f")
    with pytest.raises(WorkflowValueError, match="schedule 'x': timezone 'Mars/Olympus'"):
        schedules.add("x", cron="* * * * *", timezone="Mars/Olympus", flow="f")
    with pytest.raises(WorkflowValueError, match="schedule 'x': overlap is one of"):
        schedules.add("x", cron="* * * * *", flow="f", overlap="never")  # type: ignore[arg-type]
    schedules.add("x", cron="* * * * *", flow="f", now=T0)
    with pytest.raises(WorkflowValueError, match="a schedule called 'x' exists"):
        schedules.add("x", cron="* * * * *", flow="f", now=T0)
    replaced = schedules.add("x", cron="0 * * * *", flow="g", replace=True, now=T0)
    assert (replaced.cron, replaced.flow) == ("0 * * * *", "g")
    assert [schedule.name for schedule in schedules.list()] == ["x"]


def test_pause_resume_and_remove(store: Store) -> None:
    schedules = Schedules(store)
    schedules.add("daily", cron="0 6 * * *", timezone="Europe/Berlin", flow="f", now=T0)
    assert schedules.pause("daily").paused
    assert schedules.fire_due(now=T0 + timedelta(days=3)) == []
    resumed = schedules.resume("daily", now=T0 + timedelta(days=3, hours=1))
    assert not resumed.paused
    assert resumed.next_fire_at == T0 + timedelta(days=4)
    assert schedules.next_due() == T0 + timedelta(days=4)
    schedules.remove("daily")
    with pytest.raises(WorkflowNotFoundError, match="no schedule is called 'daily'"):
        schedules.get("daily")
    assert schedules.next_due() is None


def test_overlap_skip_records_the_fire_while_the_previous_run_waits(store: Store) -> None:
    schedules = Schedules(store)
    schedules.add("s", cron="* * * * *", flow="s", tokens=[[]], overlap="skip", now=T0)
    worker = Worker(store, {"s": [halt_once, append_ran]})
    first = schedules.fire_due(now=T0 + timedelta(minutes=1), start=worker.start_scheduled)
    assert store.workflow(first[0].run)["status"] == WorkflowStatus.HALTED.value
    second = schedules.fire_due(now=T0 + timedelta(minutes=2), start=worker.start_scheduled)
    assert [(fire.outcome, fire.run) for fire in second] == [("skipped_overlap", None)]
    assert second[0].detail == f"run {first[0].run} is still active"
    assert len(started_runs(store)) == 1


def test_overlap_queue_starts_the_fire_once_the_previous_run_is_over(store: Store) -> None:
    schedules = Schedules(store)
    schedules.add("q", cron="* * * * *", flow="q", tokens=[[]], overlap="queue", now=T0)
    worker = Worker(store, {"q": [halt_once, append_ran]})
    first = schedules.fire_due(now=T0 + timedelta(minutes=1), start=worker.start_scheduled)
    queued = schedules.fire_due(now=T0 + timedelta(minutes=2), start=worker.start_scheduled)
    assert [fire.outcome for fire in queued] == ["queued"]
    assert len(started_runs(store)) == 1
    from workflow.storage import PersistentWorkflowEngine

    engine = PersistentWorkflowEngine.from_uuid(first[0].run, store=store)
    engine.callbacks.replace([halt_once, append_ran])
    engine.resume()
    assert store.workflow(first[0].run)["status"] == WorkflowStatus.COMPLETED.value
    later = schedules.fire_due(
        now=T0 + timedelta(minutes=2, seconds=10), start=worker.start_scheduled
    )
    assert [(fire.outcome, fire.run) for fire in later] == [("started", queued[0].run)]
    assert [fire.outcome for fire in schedules.fires("q")] == ["started", "started"]


def test_overlap_allow_starts_while_the_previous_run_waits(store: Store) -> None:
    schedules = Schedules(store)
    schedules.add("a", cron="* * * * *", flow="a", tokens=[[]], overlap="allow", now=T0)
    worker = Worker(store, {"a": [halt_once]})
    for minute in (1, 2):
        schedules.fire_due(now=T0 + timedelta(minutes=minute), start=worker.start_scheduled)
    assert len(started_runs(store)) == 2


@pytest.mark.parametrize(
    ("catch_up", "outcomes"),
    [
        ("none", ["missed", "missed", "missed", "missed", "started"]),
        ("latest", ["missed", "skipped_catchup", "skipped_catchup", "started", "started"]),
        ("all", ["missed", "started", "started", "started", "started"]),
    ],
)
def test_catch_up_after_downtime_leaves_a_row_for_every_fire_time(
    store: Store, catch_up: str, outcomes: list[str]
) -> None:
    """Hourly; every worker was down from 06:00 to 10:00; the window is 3.5 hours."""
    schedules = Schedules(store)
    schedules.add(
        "h",
        cron="0 * * * *",
        flow="h",
        tokens=[[]],
        overlap="allow",
        catch_up=catch_up,  # type: ignore[arg-type]
        catch_up_window=timedelta(hours=3, minutes=30),
        now=T0 - timedelta(minutes=1),
    )
    worker = Worker(store, {"h": [append_ran]})
    fired = schedules.fire_due(now=T0 + timedelta(hours=4, seconds=2), start=worker.start_scheduled)
    assert [fire.fire_time for fire in fired] == [T0 + timedelta(hours=h) for h in range(5)]
    assert [fire.outcome for fire in fired] == outcomes
    assert len(started_runs(store)) == outcomes.count("started")
    assert [fire.outcome for fire in schedules.fires("h")] == outcomes


def test_trigger_and_backfill_start_runs_and_never_twice(store: Store) -> None:
    schedules = Schedules(store)
    schedules.add("b", cron="0 6 * * *", timezone="Europe/Berlin", flow="b", tokens=[[]], now=T0)
    worker = Worker(store, {"b": [append_ran]})
    triggered = schedules.trigger("b", start=worker.start_scheduled, now=T0 + timedelta(minutes=3))
    assert triggered.outcome == "started"
    assert store.token_rows(triggered.run)[0]["data"] == ["ran"]
    since, until = datetime(2026, 11, 1), datetime(2026, 11, 4)
    filled = schedules.backfill("b", since, until, start=worker.start_scheduled)
    assert [fire.fire_time for fire in filled] == [
        datetime(2026, 11, 1, 5),
        datetime(2026, 11, 2, 5),
        datetime(2026, 11, 3, 5),
    ]
    assert schedules.backfill("b", since, until, start=worker.start_scheduled) == []
    assert len(started_runs(store)) == 4
    with pytest.raises(WorkflowValueError, match="at most 1000 runs"):
        schedules.backfill("b", datetime(2020, 1, 1), datetime(2026, 1, 1))


def test_a_fire_that_cannot_start_its_run_is_recorded_failed(store: Store) -> None:
    schedules = Schedules(store)
    schedules.add("nodef", cron="* * * * *", flow="def:absent", now=T0)
    fired = schedules.fire_due(
        now=T0 + timedelta(minutes=1), start=Worker(store, {}).start_scheduled
    )
    assert [fire.outcome for fire in fired] == ["failed"]
    assert "absent" in (fired[0].detail or "")
    assert schedules.fires("nodef")[0].outcome == "failed"


def test_a_stored_definition_runs_over_input_records(store: Store) -> None:
    from workflow.flows import TaskRegistry, load_flow, task

    registry = TaskRegistry()

    @task("echo", registry=registry)
    def echo(context: dict[str, Any], params: dict[str, Any]) -> Any:
        return {"got": context["_input"]}

    body = {"name": "orders", "steps": [{"name": "e", "task": "echo"}]}
    Definitions(store).put("orders", body)
    schedules = Schedules(store)
    schedules.add("o", cron="* * * * *", flow="def:orders", tokens=[{"n": 1}], now=T0)

    def definitions(engine: Any) -> Any:
        definition = Definitions(store).get(engine.definition_name, engine.definition_version)
        return load_flow(definition.body, registry=registry).callbacks()

    fired = schedules.fire_due(
        now=T0 + timedelta(minutes=1), start=Worker(store, definitions).start_scheduled
    )
    assert [fire.outcome for fire in fired] == ["started"]
    row = store.workflow(fired[0].run)
    assert (row["name"], row["definition_name"], row["definition_version"]) == (
        "orders",
        "orders",
        1,
    )
    assert row["status"] == WorkflowStatus.COMPLETED.value
    assert store.token_rows(fired[0].run)[0]["data"]["_input"] == {"n": 1}


def test_an_idle_worker_wakes_in_time_for_the_next_fire(store: Store) -> None:
    worker = Worker(store, {}, poll=30.0)
    assert worker._pause() == 30.0  # no schedule: the poll
    Schedules(store).add("soon", cron="* * * * *", flow="f")
    assert worker._pause() <= 60.0  # at the latest at the next minute
    with store.transaction("make it due") as conn:
        conn.execute(schedules_table.update().values(next_fire_at=store.now()))
    assert worker._pause() == 0.0
    assert Worker(store, {}, poll=30.0, schedules=False)._pause() == 30.0
