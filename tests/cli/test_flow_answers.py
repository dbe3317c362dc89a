"""``workflow resume --data`` checks a halt step's schema; errors in flows name step and round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflow.cli import ExitCode

ANSWERS = "tests.cli.flowsx_tasks"

#: A flow whose halt step expects an object with a boolean ``approved``.
SHAPED = {
    "name": "shaped",
    "steps": [
        {
            "name": "approve",
            "halt": {
                "message": "approve?",
                "schema": {
                    "type": "object",
                    "properties": {"approved": {"type": "boolean"}},
                    "required": ["approved"],
                },
                "default": {"approved": False},
            },
        },
        {
            "name": "note",
            "task": "flowsx_check",
            "params": {"n": {"ref": "@approve.note", "default": 0}},
        },
    ],
}

#: A flow whose task fails on the second item of its loop.
LOOPING = {
    "name": "looping",
    "steps": [
        {
            "name": "lines",
            "for_each": [1, 3, 5],
            "as": "n",
            "do": [{"name": "check", "task": "flowsx_check", "params": {"n": "@n"}}],
        }
    ],
}


def _start(cli: Any, workdir: Path, body: dict[str, Any]) -> dict[str, Any]:
    path = workdir / f"{body['name']}.json"
    path.write_text(json.dumps(body))
    result = cli("--import", ANSWERS, "--json", "run", path.name, "--tokens", "in.jsonl")
    return dict(result.json())


def test_resume_refuses_an_answer_that_does_not_match_and_stores_nothing(
    cli: Any, workdir: Path
) -> None:
    uuid = _start(cli, workdir, SHAPED)["uuid"]
    before = cli("--json", "show", uuid).json()["tokens"]
    wrong = cli("--import", ANSWERS, "resume", uuid, "--data", '{"approved": "yes"}')
    assert wrong.code == ExitCode.USAGE
    assert (
        wrong.err.strip()
        .splitlines()[-1]
        .endswith(
            "token 0: the answer for step 'approve' does not match its schema: "
            "at $.approved: 'yes' is not of type 'boolean'"
        )
    )
    assert "Traceback" not in wrong.err
    assert cli("--json", "show", uuid).json()["tokens"] == before  # neither token took it


def test_resume_with_null_takes_the_default_and_a_matching_answer_goes_on(
    cli: Any, workdir: Path
) -> None:
    uuid = _start(cli, workdir, SHAPED)["uuid"]
    first = cli("--import", ANSWERS, "resume", uuid, "--token", "1", "--data", "null")
    assert first.code == ExitCode.HALTED
    last = cli("--import", ANSWERS, "--json", "resume", uuid, "--data", '{"approved": true}')
    assert last.code == ExitCode.OK
    tokens = cli("--json", "show", uuid).json()["tokens"]
    assert [token["data"]["approve"] for token in tokens] == [
        {"approved": True},
        {"approved": False},
    ]
    assert [token["data"]["note"] for token in tokens] == [{"n": 0}, {"n": 0}]


def test_a_task_error_in_a_loop_names_the_step_and_item_in_the_report(
    cli: Any, workdir: Path
) -> None:
    result = _start(cli, workdir, LOOPING)
    assert result["exit_code"] == ExitCode.ERROR
    errors = {token["error"] for token in result["tokens"]}
    assert errors == {
        "workflow.errors.FlowRuntimeError: flow 'looping', step 'check', item 1 of 'lines': "
        "ValueError: 3 is odd here (task 'check')"
    }
    text = cli("show", result["uuid"]).out
    assert "step 'check', item 1 of 'lines': ValueError: 3 is odd here" in text


def test_resume_without_data_answers_with_each_steps_default(cli: Any, workdir: Path) -> None:
    uuid = _start(cli, workdir, SHAPED)["uuid"]
    shown = cli("--json", "show", uuid).json()["tokens"]
    assert [token["halted"]["default"] for token in shown] == [{"approved": False}] * 2
    resumed = cli("--import", ANSWERS, "--json", "resume", uuid)
    assert resumed.code == ExitCode.OK, resumed.err
    tokens = cli("--json", "show", uuid).json()["tokens"]
    assert [token["data"]["approve"] for token in tokens] == [{"approved": False}] * 2


def test_resume_without_data_still_asks_for_an_answer_without_a_default(
    cli: Any, workdir: Path
) -> None:
    plain = {"name": "plain", "steps": [{"name": "approve", "halt": {"message": "ok?"}}]}
    uuid = _start(cli, workdir, plain)["uuid"]
    refused = cli("--import", ANSWERS, "resume", uuid)
    assert refused.code == ExitCode.USAGE
    assert "wait at a halt step for an answer: give it with --data JSON" in refused.err
