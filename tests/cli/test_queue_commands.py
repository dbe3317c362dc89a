"""``workflow run --queue`` and ``workflow worker --queue``, in this process, on SQLite.

The queue itself is tested on every database in ``tests/storage/test_queue.py``
and under SIGKILL in ``tests/runtime/test_queue_chaos.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from workflow.cli._context import ExitCode

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_run_queue_stores_the_run_and_prints_its_uuid(cli: Any) -> None:
    queued = cli("run", "simple.json", "--tokens", "in.jsonl", "--queue")
    assert queued.code == ExitCode.OK, queued.err
    uid = queued.out.strip()
    assert UUID.match(uid)
    shown = cli("--json", "show", uid).json()
    assert shown["status"] == "RUNNING"
    worker = cli("worker", "--queue", "default", "--concurrency", "2", "--once")
    assert worker.code == ExitCode.OK
    assert worker.out.strip() == "ran 2 queued token(s)"
    shown = cli("--json", "show", uid).json()
    assert shown["status"] == "COMPLETED"
    assert [token["data"]["calc"]["value"] for token in shown["tokens"]] == [2, 4]
    idle = cli("--json", "worker", "--queue", "default", "--once").json()
    assert idle == {"fired": 0, "ran": 0, "scheduled": [], "continued": [], "skipped": {}}


def test_run_queue_json_names_the_queue(cli: Any) -> None:
    queued = cli("--json", "run", "simple.json", "--queue", "orders").json()
    assert set(queued) == {"uuid", "name", "queue", "queued"}
    assert (queued["name"], queued["queue"], queued["queued"]) == ("simple", "orders", 1)
    assert cli("worker", "--queue", "default", "--once").out.strip() == "nothing to do"
    assert cli("worker", "--queue", "orders", "--once").out.strip() == "ran 1 queued token(s)"


def test_a_python_run_on_a_queue_ends_with_its_tokens_outcomes(cli: Any) -> None:
    uid = cli("run", "tests.cli.cli_tasks:definition", "--tokens", "tokens.json", "--queue").out
    uid = uid.strip()
    assert cli("worker", "--queue", "default", "--concurrency", "3", "--once").code == 0
    shown = cli("--json", "show", uid).json()
    assert shown["status"] == "ERROR"
    assert [token["status"] for token in shown["tokens"]] == ["COMPLETED", "HALTED", "ERROR"]
    # Finished by its workers, the run is like any other: resume goes on in this process.
    resumed = cli("resume", uid, "--token", "1", "--data", '{"approved": true}')
    assert resumed.code == ExitCode.ERROR  # token 2 fails again
    statuses = [token["status"] for token in cli("--json", "show", uid).json()["tokens"]]
    assert statuses == ["COMPLETED", "COMPLETED", "ERROR"]


def test_queue_names_are_checked_before_anything_is_stored(cli: Any) -> None:
    bad = cli("run", "simple.json", "--queue", "no spaces")
    assert bad.code == ExitCode.USAGE
    assert "--queue: a queue's name is 1 to 100 letters" in bad.err
    assert cli("--json", "list").json() == []
    worker = cli("worker", "--queue", "a/b", "--once")
    assert worker.code == ExitCode.USAGE
    assert "--queue: a queue's name" in worker.err


def test_a_parallel_for_each_fans_out_and_show_names_each_branch(cli: Any, workdir: Any) -> None:
    flow = {
        "name": "fan",
        "steps": [
            {
                "name": "each",
                "for_each": "@_input.ns",
                "as": "n",
                "parallel": True,
                "do": [{"name": "calc", "task": "cli_double", "params": {"n": "@n"}}],
            }
        ],
    }
    (workdir / "fan.json").write_text(json.dumps(flow))
    (workdir / "ns.json").write_text('{"n": 5, "ns": [1, 2, 3]}')
    uid = cli("run", "fan.json", "--tokens", "ns.json", "--queue").out.strip()
    worker = cli("worker", "--queue", "default", "--concurrency", "2", "--once")
    assert worker.code == ExitCode.OK, worker.err
    shown = cli("--json", "show", uid).json()
    assert shown["status"] == "COMPLETED"
    [token, *branches] = shown["tokens"]
    assert token["data"]["each"] == [{"calc": {"value": 10}}] * 3
    assert [b["branch_of"] for b in branches] == [{"token": 0, "index": i} for i in range(3)]
    text = cli("show", uid).out
    assert "(branch 2 of token 0)" in text
    assert "step 'each' waits for its 3 items" in text


def test_options_are_taken_only_as_written_in_full(
    cli: Any, workdir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse would read --data as --database and store the run in a file called '{}'
    with pytest.raises(SystemExit) as exited:
        cli("run", "simple.json", "--data", "{}")
    assert exited.value.code == ExitCode.USAGE
    assert "unrecognized arguments: --data {}" in capsys.readouterr().err
    assert not (workdir / "{}").exists()


def test_a_flow_whose_branches_wait_runs_only_on_a_queue(cli: Any, workdir: Any) -> None:
    flow = {
        "name": "branchy",
        "steps": [
            {
                "name": "p",
                "parallel": [
                    [{"name": "ok", "ask": {"message": "fine?"}}],
                    [
                        {
                            "name": "calc",
                            "task": "cli_double",
                            "retry": {"attempts": 2, "backoff": "PT1S"},
                        }
                    ],
                ],
            }
        ],
    }
    (workdir / "branchy.json").write_text(json.dumps(flow))
    refused = cli("run", "branchy.json")
    assert refused.code == ExitCode.USAGE
    assert (
        "flow 'branchy': steps 'ok', 'calc' wait inside a parallel step's branches" in refused.err
    )
    assert "--queue" in refused.err
    assert cli("--json", "list").json() == []
    assert cli("run", "branchy.json", "--queue").code == ExitCode.OK
