"""``workflow run --key K``, a flow's ``key``, ``--on-conflict`` and ``--id``: runs that start once.

In this process for the messages; eight real processes at once for the race,
on SQLite, PostgreSQL and MariaDB (as the storage suite finds them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import BACKENDS, empty_database

from .conftest import REVIEW, TASKS, Result, subprocess_env

UUID = "0f0f0f0f-0000-4000-8000-000000000001"
#: The review flow, one run per order.
ORDER = {**REVIEW, "name": "order", "key": "@_input.order_id"}
PROCESSES = 8


@pytest.fixture
def order(workdir: Path) -> Path:
    (workdir / "order.json").write_text(json.dumps(ORDER))
    (workdir / "17.json").write_text('{"order_id": 17, "x": 2}')
    return workdir / "order.json"


def test_a_second_run_of_the_same_order_is_refused_naming_the_run(cli: Any, order: Path) -> None:
    first = cli("--json", "run", "order.json", "--tokens", "17.json")
    assert first.code == 3
    assert first.json()["started"] is True
    uuid = first.json()["uuid"]
    again = cli("run", "order.json", "--tokens", "17.json")
    assert again.code == 1
    assert f"run {uuid} (HALTED) holds the key '17' of 'order': nothing was started" in again.err
    assert "Traceback" not in again.err
    refused = cli("--json", "run", "order.json", "--tokens", "17.json").json()
    assert refused["exit_code"] == 1
    assert (refused["started"], refused["key"]) == (False, "17")
    assert refused["holder"] == {"uuid": uuid, "status": "HALTED"}
    listed = cli("--json", "list").json()
    assert [run["uuid"] for run in listed] == [uuid]


def test_on_conflict_existing_reports_the_run_without_starting_it(cli: Any, order: Path) -> None:
    uuid = cli("--json", "run", "order.json", "--tokens", "17.json").json()["uuid"]
    again = cli("run", "order.json", "--tokens", "17.json", "--on-conflict", "existing")
    assert again.code == 3  # the run's own state: it waits at its halt step
    assert f"run {uuid} (HALTED) holds the key '17': it was not started again" in again.err
    assert f"workflow {uuid} (order v1) halted" in again.out
    shown = cli("--json", "run", "order.json", "--tokens", "17.json", "--on-conflict", "existing")
    assert (shown.json()["uuid"], shown.json()["started"]) == (uuid, False)
    assert shown.json()["counts"] == {"total": 1, "halted": 1}  # no token was added


def test_a_flow_may_say_existing_and_the_option_overrides_it(cli: Any, workdir: Path) -> None:
    (workdir / "existing.json").write_text(json.dumps({**ORDER, "on_conflict": "existing"}))
    (workdir / "17.json").write_text('{"order_id": 17}')
    uuid = cli("--json", "run", "existing.json", "--tokens", "17.json").json()["uuid"]
    assert cli("--json", "run", "existing.json", "--tokens", "17.json").json()["uuid"] == uuid
    refused = cli("run", "existing.json", "--tokens", "17.json", "--on-conflict", "refuse")
    assert refused.code == 1


def test_a_key_given_with_the_option_wins_over_the_flows(cli: Any, order: Path) -> None:
    assert cli("run", "order.json", "--tokens", "17.json", "--key", "A").code == 3
    assert cli("run", "order.json", "--tokens", "17.json", "--key", "A").code == 1
    assert cli("run", "order.json", "--tokens", "17.json").code == 3  # key '17' is free


def test_a_run_that_completed_lets_its_key_go(cli: Any, workdir: Path) -> None:
    first = cli("--json", "run", f"{TASKS}:definition", "--key", "nightly")
    second = cli("--json", "run", f"{TASKS}:definition", "--key", "nightly")
    assert (first.code, second.code) == (0, 0)
    assert second.json()["started"] is True
    assert first.json()["uuid"] != second.json()["uuid"]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ('[{"order_id": 1}, {"order_id": 2}]', "and 2 records were given: one run has one key"),
        ('{"x": 1}', "in.json: token 0: flow 'order': the run key @_input.order_id: _input "),
        ('{"order_id": [1]}', "@_input.order_id is [1], not a string or an integer"),
        ('{"order_id": true}', "@_input.order_id is True, not a string or an integer"),
    ],
    ids=["two-records", "missing", "a-list", "a-boolean"],
)
def test_a_flow_key_must_come_from_one_record_that_has_it(
    cli: Any, order: Path, records: str, message: str
) -> None:
    (order.parent / "in.json").write_text(records)
    result = cli("run", "order.json", "--tokens", "in.json")
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_a_flow_key_must_refer_to_the_input(cli: Any, workdir: Path) -> None:
    (workdir / "bad.json").write_text(json.dumps({**REVIEW, "key": "@calc.value"}))
    result = cli("run", "bad.json")
    assert result.code == 2
    assert "$.key: the key '@calc.value' refers to 'calc'" in result.err


def test_id_runs_once_and_a_second_run_reports_the_first(cli: Any, workdir: Path) -> None:
    first = cli("--json", "run", f"{TASKS}:definition", "--id", UUID.upper())
    assert (first.code, first.json()["uuid"]) == (0, UUID)
    again = cli("run", f"{TASKS}:definition", "--id", UUID)
    assert again.code == 0
    assert f"run {UUID} (COMPLETED) exists: it was not started again" in again.err
    assert len(cli("--json", "list").json()) == 1


def test_id_of_a_run_of_another_definition_is_refused(cli: Any, workdir: Path) -> None:
    assert cli("run", f"{TASKS}:definition", "--id", UUID).code == 0
    other = cli("run", f"{TASKS}:slow", "--id", UUID)
    assert other.code == 2
    assert f"--id: the uuid {UUID} is taken by a run of name '{TASKS}:definition'" in other.err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--id", "not-a-uuid"], "--id: a run's uuid is written like"),
        (["--key", ""], "--key: a run key has 1 to 255 characters"),
        (["--key", "k" * 300], "--key: a run key has 1 to 255 characters"),
        (["--on-conflict", "existing"], "--on-conflict says what a start with a key does"),
    ],
)
def test_malformed_options_are_usage_errors(
    cli: Any, workdir: Path, options: list[str], message: str
) -> None:
    result = cli("run", f"{TASKS}:definition", *options)
    assert result.code == 2
    assert message in result.err
    assert not (workdir / "workflow.sqlite").exists()  # checked before the database is opened


# -- eight processes at once ---------------------------------------------------------


def command(url: str, *argv: str) -> list[str]:
    return [sys.executable, "-m", "workflow", "--database", url, "--import", TASKS, *argv]


def race(workdir: Path, url: str, *argv: str) -> list[Result]:
    processes = [
        subprocess.Popen(
            command(url, *argv),
            cwd=workdir,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        results.append(Result(process.returncode, out, err))
    return results


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("on_conflict", ["refuse", "existing"])
def test_eight_runs_of_one_order_at_once_start_one(
    backend: str, on_conflict: str, tmp_path: Path, order: Path
) -> None:
    url = empty_database(backend, tmp_path)
    workdir = order.parent
    (workdir / "1.json").write_text('{"order_id": 1}')
    setup = subprocess.run(  # creates the tables and stores the flow
        command(url, "run", "order.json", "--tokens", "1.json"),
        cwd=workdir,
        env=subprocess_env(),
        capture_output=True,
        timeout=120,
    )
    assert setup.returncode == 3, setup.stderr
    argv = ["--json", "run", "order.json", "--tokens", "17.json", "--on-conflict", on_conflict]
    results = race(workdir, url, *argv)
    for result in results:
        assert "Traceback" not in result.err, result.err
    reports = [result.json() for result in results]
    started = [report for report in reports if report.get("started")]
    assert len(started) == 1, results
    winner = started[0]["uuid"]
    others = [report for report in reports if not report.get("started")]
    if on_conflict == "refuse":
        assert {result.code for result in results} == {1, 3}
        assert {report["holder"]["uuid"] for report in others} == {winner}
    else:
        assert {result.code for result in results} == {3}, results
        assert {report["uuid"] for report in others} == {winner}
    listed = subprocess.run(
        command(url, "--json", "list"), cwd=workdir, env=subprocess_env(), capture_output=True
    )
    runs = json.loads(listed.stdout)
    assert len(runs) == 2  # the order 1 run, and one run of order 17
    assert winner in {run["uuid"] for run in runs}
