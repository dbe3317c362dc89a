"""``workflow trace`` and the trace summary of ``workflow show``, in this process (``main()``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workflow.storage import Store
from workflow.storage.models import TraceRecord


def started(cli: Any, *argv: str) -> str:
    ran = cli("--json", "run", *argv)
    uuid: str = ran.json()["uuid"]
    return uuid


def test_trace_prints_a_timeline_of_the_steps_with_a_summary(cli: Any) -> None:
    uuid = started(cli, "review.json", "--tokens", "in.jsonl")
    shown = cli("trace", uuid[:8])
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == f"run {uuid}"
    assert lines[2].split() == [
        "STARTED",
        "(UTC)",
        "TOKEN",
        "STEP",
        "TRY",
        "OUTCOME",
        "TOOK",
        "BY",
        "NOTE",
    ]
    steps = [line.split()[2:5] for line in lines[3:7]]
    assert steps == [
        ["0", "calc", "1"],
        ["0", "approve", "1"],
        ["1", "calc", "1"],
        ["1", "approve", "1"],
    ]
    assert lines[4].split()[5] == "halted"
    assert lines[4].endswith("approve the paper?")
    assert lines[-1].startswith("4 steps (0 failed), ")


def test_trace_of_one_token_as_json(cli: Any) -> None:
    uuid = started(cli, "review.json", "--tokens", "in.jsonl")
    shown = cli("--json", "trace", uuid, "--token", "1")
    assert shown.code == 0, shown.err
    found = shown.json()
    assert (found["uuid"], found["token"], found["summary"]["steps"]) == (uuid, 1, 2)
    assert [(row["token"], row["step"], row["outcome"]) for row in found["trace"]] == [
        (1, "calc", "completed"),
        (1, "approve", "halted"),
    ]
    assert found["trace"][0]["started"].endswith("Z")


def test_show_gives_the_summary_of_the_trace(cli: Any) -> None:
    uuid = started(cli, "review.json")
    shown = cli("show", uuid)
    [line] = [line for line in shown.out.splitlines() if line.startswith("trace ")]
    assert line.startswith("trace     2 steps (0 failed), ")
    assert line.endswith(f"in tasks (workflow trace {uuid[:8]})")
    summary = cli("--json", "show", uuid).json()["trace"]
    assert (summary["steps"], summary["failures"], summary["answers"]) == (2, 0, 0)


def test_trace_escapes_what_a_task_stored(cli: Any, open_store: Callable[[], Store]) -> None:
    uuid = started(cli, "simple.json")
    store = open_store()
    with store.transaction("poison") as conn:
        conn.execute(sa.update(TraceRecord).values(step="calc\x1b[2J", error_message="\u202eevil"))
    shown = cli("trace", uuid)
    assert "\x1b" not in shown.out
    assert "\u202e" not in shown.out
    assert "calc\\x1b[2J" in shown.out


def test_prune_deletes_the_rows_that_ended_before_a_time_or_a_duration_ago(
    cli: Any, open_store: Callable[[], Store]
) -> None:
    uuid = started(cli, "simple.json")
    kept = cli("trace", "--prune", "P1D")
    assert (kept.code, kept.out.split()[:2]) == (0, ["deleted", "0"])
    gone = cli("--json", "trace", "--prune", f"{datetime.now(timezone.utc).year + 1}-01-01")
    assert gone.json()["deleted"] == 1
    assert "has no trace" in cli("trace", uuid).out


def test_trace_refuses_what_it_cannot_do(cli: Any) -> None:
    uuid = started(cli, "simple.json")
    both = cli("trace", uuid, "--prune", "P1D")
    assert (both.code, "give no UUID" in both.err) == (2, True)
    neither = cli("trace")
    assert (neither.code, "give the UUID" in neither.err) == (2, True)


def test_a_named_worker_is_named_in_the_trace(cli: Any, workdir: Path) -> None:
    (workdir / "waitdefs.py").write_text(
        "from workflow.runtime import ASK\n\n"
        "def done(obj, eng):\n    obj.data['done'] = True\n\n"
        "approve = [*ASK('ok', 'go on?'), done]\n"
    )
    uuid = cli("--import", "waitdefs", "--json", "run", "waitdefs:approve").json()["uuid"]
    [wait] = cli("--json", "waiting").json()
    answered = cli("answer", wait["id"], "--as", "ann", "--approve", "--no-continue")
    assert answered.code == 0, answered.err
    done = cli("--import", "waitdefs", "worker", "--once", "--name", "night-shift")
    assert done.code == 0, done.err
    rows = cli("--json", "trace", uuid).json()["trace"]
    assert [(row["kind"], row["step"], row["worker"]) for row in rows][-3:] == [
        ("answer", "ok", "ann"),
        ("task", "ok", "night-shift"),
        ("task", "done", "night-shift"),
    ]
