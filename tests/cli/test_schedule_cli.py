"""``workflow schedule``: add, list, pause, resume, remove, trigger, backfill, --from-flow.

In this process (``main()``), on the working directory's SQLite database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflow.runtime import Schedules, Worker
from workflow.storage import Store


def test_add_list_pause_resume_remove(cli: Any, open_store: Any) -> None:
    added = cli(
        "schedule", "add", "mornings", "--cron", "0 6 * * 1-5", "--timezone", "Europe/Berlin",
        "--flow", "def:simple", "--data", '{"n": 2}', "--overlap", "queue",
        "--catch-up", "latest", "--catch-up-window", "PT6H", "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    (shown,) = added.json()
    assert shown["name"] == "mornings"
    assert shown["tokens"] == [{"n": 2}]
    assert (shown["overlap"], shown["catch_up"], shown["catch_up_window"]) == (
        "queue",
        "latest",
        21600,
    )
    listed = cli("schedule", "list")
    assert "mornings" in listed.out
    assert "0 6 * * 1-5" in listed.out
    assert cli("schedule", "pause", "mornings", "--json").json()[0]["paused"] is True
    assert "paused" in cli("schedule", "list").out
    assert cli("schedule", "resume", "mornings", "--json").json()[0]["paused"] is False
    assert cli("schedule", "remove", "mornings", "--json").json() == {"removed": "mornings"}
    assert cli("schedule", "list", "--json").json() == []
    missing = cli("schedule", "pause", "mornings")
    assert missing.code == 2
    assert "no schedule is called 'mornings'" in missing.err


def test_a_bad_cron_or_timezone_exits_2_naming_the_option(cli: Any) -> None:
    bad_cron = cli("schedule", "add", "x", "--cron", "0 6 * *", "--flow", "def:simple")
    assert bad_cron.code == 2
    assert "--cron '0 6 * *' is not a cron expression" in bad_cron.err
    bad_zone = cli(
        "schedule", "add", "x", "--cron", "0 6 * * *", "--timezone", "Europe/Atlantis",
        "--flow", "def:simple",
    )  # fmt: skip
    assert bad_zone.code == 2
    assert "--timezone 'Europe/Atlantis' is not a known time zone" in bad_zone.err
    bad_window = cli(
        "schedule", "add", "x", "--cron", "0 6 * * *", "--flow", "def:simple",
        "--catch-up-window", "P1M",
    )  # fmt: skip
    assert bad_window.code == 2
    assert "--catch-up-window 'P1M'" in bad_window.err


def test_trigger_and_backfill_run_the_stored_flow(cli: Any, open_store: Any) -> None:
    assert cli("definitions", "put", "simple.json").code == 0
    cli("schedule", "add", "s", "--cron", "0 6 * * *", "--flow", "def:simple", "--data", '{"n": 4}')
    triggered = cli("schedule", "trigger", "s", "--json")
    assert triggered.code == 0, triggered.err
    (fire,) = triggered.json()
    assert fire["outcome"] == "started"
    store = open_store()
    token = store.token_rows(fire["run"])[0]
    assert token["data"]["calc"] == {"value": 8}
    filled = cli("schedule", "backfill", "s", "--from", "2026-11-01", "--to", "2026-11-02T23:00Z")
    assert filled.code == 0, filled.err
    assert filled.out.count("started") == 2
    again = cli("schedule", "backfill", "s", "--from", "2026-11-01", "--to", "2026-11-02T23:00Z")
    assert "no fire time to start" in again.out


def test_a_flow_file_declares_its_schedules(cli: Any, open_store: Any, workdir: Path) -> None:
    flow = {
        "name": "nightly",
        "steps": [{"name": "calc", "task": "cli_double"}],
        "schedules": [
            {"name": "nightly-berlin", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
             "data": {"n": 1}, "catch_up": "all", "catch_up_window": "PT12H"},
        ],
    }  # fmt: skip
    (workdir / "nightly.json").write_text(json.dumps(flow))
    added = cli("schedule", "add", "--from-flow", "nightly.json", "--json")
    assert added.code == 0, added.err
    (shown,) = added.json()
    assert (shown["flow"], shown["timezone"], shown["catch_up_window"]) == (
        "def:nightly", "Europe/Berlin", 43200,
    )  # fmt: skip
    assert cli("schedule", "add", "--from-flow", "nightly.json").code == 0  # replaces them
    store: Store = open_store()
    assert [schedule.name for schedule in Schedules(store).list()] == ["nightly-berlin"]


def test_a_flow_file_with_a_bad_schedule_is_refused_naming_the_flow_and_key(
    cli: Any, workdir: Path
) -> None:
    flow = {
        "name": "broken",
        "steps": [{"name": "calc", "task": "cli_double"}],
        "schedules": [{"name": "b", "cron": "61 * * * *", "overlap": "sometimes"}],
    }
    (workdir / "broken.json").write_text(json.dumps(flow))
    result = cli("schedule", "add", "--from-flow", "broken.json")
    assert result.code == 2
    assert "$.schedules[0].cron" in result.err
    assert "$.schedules[0].overlap" in result.err
    assert "broken" in result.err


def test_a_worker_pass_fires_a_due_schedule(cli: Any, open_store: Any) -> None:
    from datetime import timedelta

    from workflow.runtime.schedules import schedules_table

    assert cli("definitions", "put", "simple.json").code == 0
    # Yearly: once its stored fire time is made due, no other time can fall due in the
    # pass (an every-minute schedule fires twice when the pass crosses a minute).
    cli("schedule", "add", "s", "--cron", "0 0 1 1 *", "--flow", "def:simple")
    store = open_store()
    with store.transaction("make it due") as conn:
        conn.execute(
            schedules_table.update().values(next_fire_at=store.now() - timedelta(seconds=1))
        )
    result = cli("worker", "--once", "--json")
    assert result.code == 0, result.err
    assert [fire["outcome"] for fire in result.json()["scheduled"]] == ["started"]
    assert isinstance(Worker(store, {}).schedules, Schedules)
