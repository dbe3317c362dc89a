"""The ``workflow`` command end to end, in real processes: ``python -m workflow``, the script."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workflow.cli._logging import FORMAT

from .conftest import subprocess_env

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_halted_flow_run_exits_3_and_resumes_to_completion(real: Any, workdir: Path) -> None:
    halted = real("run", "review.json", "--tokens", "in.jsonl", script=True)
    assert halted.code == 3, halted.err
    [uuid] = set(UUID.findall(halted.out))
    assert f"workflow {uuid} (review v1) halted: 2 tokens: 2 halted" in halted.out
    assert "token 0 halted at step 'approve': approve the paper?" in halted.out
    assert (workdir / "workflow.sqlite").exists()  # the default database

    done = real("--json", "resume", uuid, "--data", '{"approved": true}')
    assert done.code == 0, done.err
    result = done.json()
    assert (result["uuid"], result["status"], result["outcome"]) == (uuid, "COMPLETED", "completed")
    assert result["counts"] == {"total": 2, "completed": 2}

    shown = real("--json", "show", uuid).json()
    assert [t["data"]["publish"] for t in shown["tokens"]] == [{"published": True}] * 2
    assert [t["data"]["calc"] for t in shown["tokens"]] == [{"value": 2}, {"value": 4}]
    assert shown["definition"] == {"name": "review", "version": 1}
    assert {"from": "HALTED", "to": "COMPLETED"}.items() <= shown["status_changes"][-2].items()


def test_python_run_reports_each_outcome_with_its_exit_code(real: Any) -> None:
    completed = real("--json", "run", "tests.cli.cli_tasks:definition")
    assert completed.code == 0
    assert completed.json()["counts"] == {"total": 1, "completed": 1}

    mixed = real("run", "tests.cli.cli_tasks:definition", "--tokens", "tokens.json")
    assert mixed.code == 1
    assert "3 tokens: 1 completed, 1 error, 1 halted" in mixed.out
    assert "token 1 halted: needs a person" in mixed.out
    assert "token 2 failed at task 'mark' (position [0]): KeyError: 'boom'" in mixed.out


def test_tokens_from_stdin_as_json_lines(real: Any) -> None:
    result = real(
        "--json", "run", "tests.cli.cli_tasks:definition", "--tokens", "-", stdin='{"a": 1}\n{}\n'
    )
    assert result.code == 0
    assert result.json()["counts"]["completed"] == 2


def test_validate_lists_every_error_and_exits_2(real: Any) -> None:
    result = real("validate", "bad.json")
    assert result.code == 2
    assert result.out.splitlines() == [
        "flow 'bad', step 'calc', at $.steps[0].task: unknown task 'no_such_task'",
        "flow 'bad', step 'calc', at $.steps[1].name: duplicate step name 'calc' "
        "(first at $.steps[0].name)",
        "flow 'bad', step 'use', at $.steps[2].params.x: @missing.value refers to unknown "
        "step 'missing'",
    ]
    assert real("validate", "review.json").code == 0


def test_graph_prints_mermaid_and_dot(real: Any) -> None:
    mermaid = real("graph", "review.json")
    assert mermaid.code == 0
    assert mermaid.out.startswith("flowchart TD\n")
    assert "-->|resume|" in mermaid.out
    dot = real("graph", "review.json", "--format", "dot")
    assert dot.out.startswith('digraph "review" {')


def test_definitions_lifecycle(real: Any) -> None:
    put = real("--json", "definitions", "put", "simple.json")
    assert put.code == 0
    assert (put.json()["version"], put.json()["created_version"]) == (1, True)
    assert real("--json", "definitions", "put", "simple.json").json()["created_version"] is False

    assert real("definitions", "disable", "simple").code == 0
    disabled = real("run", "def:simple")
    assert disabled.code == 2
    assert "every version of the stored definition 'simple' is disabled" in disabled.err

    assert real("definitions", "enable", "simple").code == 0
    assert real("run", "--definition", "simple", "--version", "1").code == 0
    listed = real("--json", "definitions", "list").json()
    assert [(d["name"], d["version"], d["enabled"]) for d in listed] == [("simple", 1, True)]

    assert real("definitions", "delete", "simple").code == 0
    missing = real("definitions", "show", "simple")
    assert (missing.code, missing.err.strip()) == (
        2,
        "workflow: error: no stored definition is called 'simple'",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "no-such-uuid"], "no stored workflow has the uuid 'no-such-uuid'"),
        (["run", "def:nothing"], "no stored definition is called 'nothing'"),
        (["resume", "x", "--data", "{oops"], "--data: invalid JSON at line 1, column 2"),
        (
            ["run", "tests.cli.cli_tasks:definition", "--tokens", "broken.jsonl"],
            "broken.jsonl: invalid JSON at line 2, column 1: Expecting value",
        ),
    ],
    ids=["unknown-uuid", "unknown-definition", "bad-data", "bad-jsonl"],
)
def test_user_errors_are_one_line_without_traceback(
    real: Any, workdir: Path, argv: list[str], message: str
) -> None:
    (workdir / "broken.jsonl").write_text('{"a": 1}\nnope\n')
    real("run", "tests.cli.cli_tasks:definition")  # a database to look into
    result = real(*argv)
    assert result.code == 2
    assert result.err.startswith(f"workflow: error: {message}")
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_unreachable_database_is_one_line_and_exit_1(real: Any) -> None:
    result = real("--database", "postgresql+psycopg://nobody@127.0.0.1:1/none", "list")
    assert result.code == 1
    assert result.err.startswith("workflow: error: the database is unavailable")
    assert len(result.err.strip().splitlines()) == 1


def test_usage_error_exits_2(real: Any) -> None:
    result = real("run", "--checkpoint", "never")
    assert result.code == 2
    assert "invalid choice: 'never'" in result.err


def test_json_error_goes_to_stdout_too(real: Any) -> None:
    assert real("db", "upgrade").code == 0
    result = real("--json", "show", "nope")
    assert result.code == 2
    assert result.json() == {
        "error": "no stored workflow has the uuid 'nope'",
        "exit_code": 2,
    }


def test_log_file_rotates_with_the_documented_format(real: Any, workdir: Path) -> None:
    for _ in range(3):
        result = real(
            "--log-level", "debug", "--log-file", "run.log", "--log-max-bytes", "600",
            "--log-backups", "2", "run", "tests.cli.cli_tasks:definition",
        )  # fmt: skip
        assert result.code == 0
    assert (workdir / "run.log.1").exists()
    assert not (workdir / "run.log.3").exists()
    lines = [
        line
        for name in ("run.log", "run.log.1", "run.log.2")
        if (workdir / name).exists()
        for line in (workdir / name).read_text().splitlines()
    ]
    pattern = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) \w+ \w+ .*")
    assert FORMAT == "%(asctime)s %(levelname)s %(module)s %(funcName)s %(message)s"
    assert lines
    assert all(pattern.fullmatch(line) for line in lines), lines
    assert any(" INFO _commands_run _run workflow " in line for line in lines)


def test_log_database_writes_the_syslog_table(real: Any, workdir: Path) -> None:
    result = real("--log-level", "info", "--log-database", "run", "tests.cli.cli_tasks:definition")
    assert result.code == 0
    with contextlib.closing(sqlite3.connect(workdir / "workflow.sqlite")) as conn:
        rows = conn.execute("SELECT level, module, func_name FROM wf_syslog").fetchall()
    assert (20, "_commands_run", "cmd_run") in rows


def test_db_upgrade_then_list(real: Any) -> None:
    first = real("--json", "db", "upgrade")
    assert first.code == 0
    assert first.json()["from"] is None
    again = real("db", "upgrade")
    assert "is up to date" in again.out
    assert real("list").out.strip() == "no workflows"


def test_a_reader_that_stops_early_gets_no_traceback(real: Any, workdir: Path) -> None:
    run = real("--json", "run", "tests.cli.cli_tasks:definition")
    uuid = run.json()["uuid"]
    reader = subprocess.Popen(
        [sys.executable, "-m", "workflow", "show", uuid],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
        cwd=workdir,
    )
    assert reader.stdout is not None
    reader.stdout.close()  # like `workflow show UUID | head -0`
    _, err = reader.communicate(timeout=120)
    assert reader.returncode == 1
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
