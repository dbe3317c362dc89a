"""``workflow show`` of a run whose rows were damaged: what can be read, the rest marked.

The rows are damaged with raw SQL on SQLite, as a hand edit or a broken
migration would leave them.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path
from typing import Any

UUID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
DEFINITION = "tests.cli.cli_tasks:definition"


def damage(workdir: Path, *statements: str) -> None:
    with contextlib.closing(sqlite3.connect(workdir / "workflow.sqlite")) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def test_show_marks_what_it_cannot_read_and_shows_the_rest(real: Any, workdir: Path) -> None:
    ran = real("--json", "run", DEFINITION, "--tokens", "tokens.json")  # completed, halted, error
    uuid = ran.json()["uuid"]
    damage(
        workdir,
        "UPDATE wf_token SET data = '{garbage' WHERE position = 0",
        "UPDATE wf_token SET callback_pos = '7' WHERE position = 1",
        "UPDATE wf_token SET status = 99, extra_data = '[1]' WHERE position = 2",
        "UPDATE wf_transition SET to_status = 42 WHERE message = 'started'",
        "UPDATE wf_transition SET created = 'yesterday' WHERE message = 'created'",
    )

    shown = real("show", uuid)
    assert shown.code == 1
    assert "Traceback" not in shown.err
    assert f"name      {DEFINITION}" in shown.out
    rows = [line.split() for line in shown.out.splitlines()]
    assert ["0", "COMPLETED"] in rows
    assert [
        "1",
        "HALTED",
        "<unreadable:",
        "not",
        "a",
        "JSON",
        "list>",
        "needs",
        "a",
        "person",
    ] in rows
    assert ["2", "UNKNOWN(99)", "[0]", "KeyError:", "'boom'"] in rows
    assert [
        "<unreadable:",
        "not",
        "a",
        "timestamp>",
        "workflow",
        "-",
        "->",
        "NEW",
        "created",
    ] in rows
    assert any(row[-3:] == ["->", "UNKNOWN(42)", "started"] for row in rows)
    assert shown.err.splitlines() == [
        f"workflow {uuid} has values that cannot be read:",
        "  status change 1 time: not a timestamp",
        "  status change 2 to: 42 is no WorkflowStatus",
        "  token 0 data: invalid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        "  token 1 callback_pos: not a JSON list",
        "  token 2 status: 99 is no ObjectStatus",
        "  token 2 extra_data: not a JSON object",
    ]

    as_json = real("--json", "show", uuid)
    assert as_json.code == 1
    result = as_json.json()
    tokens = result["tokens"]
    assert tokens[0]["data"] == {
        "unreadable": "invalid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        "stored": "{garbage",
    }
    assert tokens[1]["callback_pos"] == {"unreadable": "not a JSON list", "stored": "7"}
    assert tokens[1]["data"]["halt"] is True  # the rest of the row is read
    assert tokens[2]["status"] == "UNKNOWN(99)"
    assert result["counts"] == {"total": 3, "completed": 1, "halted": 1, "unknown(99)": 1}
    assert len(result["unreadable"]) == 6


def test_damaged_run_row_and_positions(real: Any, workdir: Path) -> None:
    ran = real("--json", "run", "review.json", "--tokens", "in.jsonl")
    uuid = ran.json()["uuid"]
    long_garbage = "x" * 500
    damage(
        workdir,
        f"UPDATE wf_workflow SET extra_data = '{long_garbage}', status = 'odd'",
        "UPDATE wf_token SET callback_pos = '[\"a\"]' WHERE position = 0",
        "UPDATE wf_token SET data = '[1, 2]' WHERE position = 1",
    )
    result = real("--json", "show", uuid)
    assert result.code == 1
    shown = result.json()
    assert shown["status"] == "UNKNOWN('odd')"
    assert shown["extra_data"]["stored"] == "x" * 200 + "..."
    assert shown["target"] is None
    assert shown["tokens"][0]["callback_pos"]["unreadable"] == "not a list of whole numbers"
    assert shown["tokens"][0]["halted"]["step"] == "approve"
    assert shown["tokens"][1]["halted"] == {"step": None, "message": "approve the paper?",
                                            "action": None}  # fmt: skip
    text = real("show", uuid)
    assert "status    UNKNOWN('odd')" in text.out
    assert "Traceback" not in text.err
    listed = real("list")
    assert listed.code == 1
    assert f"{uuid}  UNKNOWN('odd')" in listed.out
    assert listed.err.splitlines() == [
        "the database has values that cannot be read:",
        f"  workflow {uuid} status: 'odd' is no WorkflowStatus",
    ]
    damage(workdir, "UPDATE wf_workflow SET modified = '2024-01-02 03:04:05.5'")
    assert real("--json", "list").json()[0]["modified"] == "2024-01-02T03:04:05.500000"
    damage(workdir, "UPDATE wf_workflow SET modified = 'soon'")
    assert real("--json", "list").json()[0]["modified"]["unreadable"] == "not a timestamp"


def test_show_of_a_sound_run_exits_0_and_names_no_problem(real: Any) -> None:
    uuid = real("--json", "run", DEFINITION).json()["uuid"]
    shown = real("--json", "show", uuid)
    assert (shown.code, shown.err) == (0, "")
    assert "unreadable" not in shown.json()


def test_show_and_list_in_process(cli: Any, workdir: Path) -> None:
    uuid = cli("--json", "run", "review.json", "--tokens", "in.jsonl").json()["uuid"]
    damage(
        workdir,
        "UPDATE wf_token SET data = 'nope', extra_data = '{}' WHERE position = 0",
        "UPDATE wf_token SET callback_pos = '[true]', status = 'x' WHERE position = 1",
        "UPDATE wf_transition SET callback_pos = '{' WHERE message = 'started'",
        "UPDATE wf_workflow SET status = 42, modified = 'later'",
    )
    shown = cli("show", uuid)
    assert shown.code == 1
    assert "flow      review version 1" in shown.out
    assert "  token 0 data: invalid JSON (Expecting value: line 1 column 1 (char 0))" in shown.err
    assert "  token 1 callback_pos: not a list of whole numbers" in shown.err
    assert "  token 1 status: 'x' is no ObjectStatus" in shown.err
    listed = cli("--json", "list")
    assert listed.code == 1
    assert listed.json()[0]["status"] == "UNKNOWN(42)"
    assert listed.json()[0]["modified"] == {"unreadable": "not a timestamp", "stored": "later"}
    listed = cli("list").out
    shown = "UNKNOWN(42)  2: 1 halted, 1 unknown('x')  <unreadable: not a timestamp>  review"
    assert shown in listed


def test_show_in_process_reads_a_flow_run_beside_a_damaged_row(cli: Any, workdir: Path) -> None:
    uuid = cli("--json", "run", "review.json", "--tokens", "in.jsonl").json()["uuid"]
    damage(workdir, f"UPDATE wf_workflow SET extra_data = '[{'1, ' * 100}1]'")
    shown = cli("--json", "show", uuid)
    assert shown.code == 1
    result = shown.json()
    assert result["extra_data"]["unreadable"] == "not a JSON object"
    assert result["extra_data"]["stored"] == "[" + "1, " * 66 + "1..."
    assert [t["halted"]["step"] for t in result["tokens"]] == ["approve", "approve"]
    assert cli("show", "no-such-run").code == 2
