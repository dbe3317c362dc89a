"""Failed runs a person sees and fixes from the command line: ``list``, ``show``,
``cancel``, ``retry`` and ``set-data``."""

from __future__ import annotations

import getpass
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.cli import ExitCode
from workflow.storage import Store
from workflow.storage.run_rows import workflows

FRAGILE = "tests.cli.cli_tasks:fragile"
DEFINITION = "tests.cli.cli_tasks:definition"
#: A flow whose second step fails while a file called ``broken`` exists.
RISKY = {
    "name": "risky",
    "steps": [
        {"name": "calc", "task": "cli_double"},
        {"name": "risk", "task": "cli_flaky"},
    ],
}

StoreOpener = Callable[[], Store]


def uuid_of(result: Any) -> str:
    return str(result.out.split()[1])


def broken_run(cli: Any, workdir: Path, *tokens: str) -> str:
    """Run the fragile list over ``tokens`` (JSON objects) while ``broken`` exists."""
    (workdir / "broken").touch()
    (workdir / "fragile.json").write_text("[" + ", ".join(tokens or ("{}",)) + "]")
    result = cli("run", FRAGILE, "--tokens", "fragile.json")
    assert result.code == ExitCode.ERROR
    return uuid_of(result)


def set_lock(store: Store, uid: str, owner: str | None, delta: timedelta) -> None:
    with store.transaction("test") as conn:
        conn.execute(
            workflows.update()
            .where(workflows.c.uuid == uid)
            .values(
                status=1,  # RUNNING
                lock_owner=owner,
                lock_expires=None if owner is None else store.now() + delta,
            )
        )


# -- list ------------------------------------------------------------------------------


def test_list_finds_failed_runs_by_error_or_failed(cli: Any, workdir: Path) -> None:
    cli("run", DEFINITION)
    failed = broken_run(cli, workdir, "{}", '{"halt": true}')
    for name in ("error", "failed", "FAILED"):
        listed = cli("--json", "list", "--status", name).json()
        assert [row["uuid"] for row in listed] == [failed]
    [row] = cli("--json", "list", "--status", "error").json()
    assert row["status"] == "ERROR"
    assert row["counts"] == {"total": 2, "error": 1, "halted": 1}
    text = cli("list", "--status", "failed").out.splitlines()
    assert text[0].split() == ["UUID", "STATUS", "TOKENS", "MODIFIED", "(UTC)", "NAME"]
    assert "ERROR   2: 1 error, 1 halted" in text[1]


def test_list_filters_cancelled_runs_flows_and_times(cli: Any, workdir: Path) -> None:
    (workdir / "risky.json").write_text(json.dumps(RISKY))
    flow = cli("run", "risky.json")
    assert flow.code == ExitCode.OK
    python = broken_run(cli, workdir)
    assert cli("cancel", python).code == ExitCode.OK
    assert [r["uuid"] for r in cli("--json", "list", "--status", "cancelled").json()] == [python]
    assert [r["name"] for r in cli("--json", "list", "--flow", "risky").json()] == ["risky"]
    assert [r["uuid"] for r in cli("--json", "list", "--flow", FRAGILE).json()] == [python]
    assert cli("--json", "list", "--flow", "nothing").json() == []
    today = datetime.now(timezone.utc).date()
    assert len(cli("--json", "list", "--since", today.isoformat()).json()) == 2
    assert len(cli("--json", "list", "--until", today.isoformat()).json()) == 2
    yesterday = (today - timedelta(days=1)).isoformat()
    assert cli("--json", "list", "--until", yesterday).json() == []
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert cli("--json", "list", "--since", f"{tomorrow}T00:00:00Z").json() == []
    # An offset other than UTC: an hour ago, written as New York's winter clock shows it.
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    eastern = an_hour_ago.astimezone(timezone(timedelta(hours=-5))).replace(microsecond=0)
    assert len(cli("--json", "list", "--since", eastern.isoformat()).json()) == 2


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-12-05T25:00", ""])
def test_list_refuses_times_that_are_not_iso_8601(
    cli: Any, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("list", option, value)
    assert exit_info.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"argument {option}: {value!r} is not an ISO 8601 date or time" in err


def test_list_refuses_since_after_until(cli: Any) -> None:
    cli("run", DEFINITION)
    result = cli("list", "--since", "2026-12-05", "--until", "2026-12-01")
    assert result.code == ExitCode.USAGE
    assert "--since (2026-12-05 00:00:00 UTC) must come before --until" in result.err


def test_list_is_bounded_and_says_so(cli: Any) -> None:
    for _ in range(3):
        cli("run", DEFINITION)
    result = cli("list", "--limit", "2")
    assert len(result.out.splitlines()) == 3  # the header and two runs
    assert "showing the newest 2 workflows: --limit N shows more" in result.err
    assert "showing" not in cli("list", "--limit", "3").err


# -- run, resume and show name the step that failed ---------------------------------


def test_reports_name_the_task_that_failed_and_its_position(cli: Any, workdir: Path) -> None:
    uid = broken_run(cli, workdir, "{}")
    shown = cli("--json", "show", uid).json()
    [token] = shown["tokens"]
    assert (token["task"], token["callback_pos"], token["error"]) == (
        "flaky",
        [1],
        "RuntimeError: broken",
    )
    assert (shown["outcome"], shown["exit_code"]) == ("failed", ExitCode.ERROR)
    assert shown["next"] == f"workflow retry {uid} --import tests.cli.cli_tasks"
    text = cli("show", uid).out
    assert "0  ERROR   [1]       [flaky] RuntimeError: broken" in text
    resumed = cli("resume", uid)
    assert resumed.code == ExitCode.ERROR
    assert "token 0 failed at task 'flaky' (position [1]): RuntimeError: broken" in resumed.out


def test_a_flow_report_names_the_step_that_failed(cli: Any, workdir: Path) -> None:
    (workdir / "risky.json").write_text(json.dumps(RISKY))
    (workdir / "broken").touch()
    result = cli("run", "risky.json")
    assert result.code == ExitCode.ERROR
    assert "token 0 failed at step 'risk': RuntimeError: broken" in result.out
    [token] = cli("--json", "show", uuid_of(result)).json()["tokens"]
    assert token["step"] == "risk"
    assert "task" not in token


# -- show tells a running, an interrupted, a new and a cancelled run apart -------------


def test_show_of_a_run_a_process_holds_says_running(
    cli: Any, workdir: Path, open_store: StoreOpener
) -> None:
    uid = uuid_of(cli("run", DEFINITION))
    set_lock(open_store(), uid, "host:42:abc", timedelta(minutes=5))
    shown = cli("--json", "show", uid).json()
    assert (shown["status"], shown["outcome"], shown["exit_code"]) == ("RUNNING", "running", 3)
    assert shown["lock"]["owner"] == "host:42:abc"
    assert shown["lock"]["live"] is True
    assert shown["next"] is None
    text = cli("show", uid).out
    assert "outcome   running (exit code 3)" in text
    assert "lock      host:42:abc until " in text
    assert "(live)" in text
    assert "it is being run by host:42:abc: that process reports how it ends" in text


@pytest.mark.parametrize("lock", ["lapsed", "none"])
def test_show_of_a_run_whose_process_died_says_interrupted(
    cli: Any, open_store: StoreOpener, lock: str
) -> None:
    uid = uuid_of(cli("run", DEFINITION))
    owner = "host:42:abc" if lock == "lapsed" else None
    set_lock(open_store(), uid, owner, timedelta(minutes=-5))
    shown = cli("--json", "show", uid).json()
    assert (shown["outcome"], shown["exit_code"]) == ("interrupted", ExitCode.ERROR)
    command = f"workflow resume {uid} --import tests.cli.cli_tasks"
    assert shown["next"] == command
    text = cli("show", uid).out
    assert "outcome   interrupted (exit code 1)" in text
    assert f"its process stopped before the run ended; resume with: {command}" in text


def test_show_of_a_new_run_and_of_a_cancelled_run(
    cli: Any, workdir: Path, open_store: StoreOpener
) -> None:
    cli("db", "upgrade")
    uid = open_store().create_workflow("never started")
    shown = cli("--json", "show", uid).json()
    assert (shown["outcome"], shown["exit_code"]) == ("new", ExitCode.HALTED)
    failed = broken_run(cli, workdir)
    cli("cancel", failed)
    shown = cli("--json", "show", failed).json()
    assert (shown["status"], shown["outcome"], shown["exit_code"]) == (
        "CANCELLED",
        "cancelled",
        ExitCode.ERROR,
    )
    assert shown["next"] is None


# -- cancel ------------------------------------------------------------------------------


def test_cancel_stops_a_run_for_good(cli: Any, workdir: Path, open_store: StoreOpener) -> None:
    uid = broken_run(cli, workdir, '{"halt": true}', "{}")
    result = cli("--json", "cancel", uid, "--reason", "wrong input")
    assert result.code == ExitCode.OK
    assert result.json() == {
        "uuid": uid,
        "status": "CANCELLED",
        "cancelled": True,
        "reason": "wrong input",
    }
    store = open_store()
    row = store.workflow(uid)
    assert (row["status"], row["lock_owner"]) == (6, None)
    logged = store.status_change_rows(uid)
    assert logged[-1]["message"] == f"cancelled by {getpass.getuser()}: wrong input"
    again = cli("cancel", uid)
    assert again.code == ExitCode.OK
    assert f"workflow {uid} was already cancelled: nothing to do" in again.out
    assert len(store.status_change_rows(uid)) == len(logged)
    for command in (("resume", uid), ("retry", uid), ("set-data", uid, "--token", "0")):
        refused = cli(*command, "--data", "{}") if command[0] == "set-data" else cli(*command)
        assert refused.code == ExitCode.ERROR, command
        assert f"workflow {uid} was cancelled" in refused.err
    assert store.workflow(uid)["status"] == 6
    assert store.token_rows(uid)[0]["data"] == {"halt": True, "seen": 1}


def test_cancel_refuses_a_run_another_process_holds(cli: Any, open_store: StoreOpener) -> None:
    uid = uuid_of(cli("run", DEFINITION, "--tokens", "tokens.json"))
    store = open_store()
    store.acquire(uid, "host:7:busy")
    result = cli("cancel", uid)
    assert result.code == ExitCode.ERROR
    assert f"workflow {uid} is being run by host:7:busy" in result.err
    assert "`workflow cancel --lock-wait SECONDS` waits" in result.err
    assert store.workflow(uid)["status"] == 3  # still ERROR


def test_cancel_refuses_a_completed_run(cli: Any) -> None:
    uid = uuid_of(cli("run", DEFINITION))
    result = cli("cancel", uid)
    assert result.code == ExitCode.ERROR
    assert f"workflow {uid} is completed: there is nothing left to cancel" in result.err


def test_cancel_of_an_unknown_run_is_a_usage_error(cli: Any) -> None:
    cli("run", DEFINITION)
    result = cli("cancel", "00000000-0000-0000-0000-000000000000")
    assert result.code == ExitCode.USAGE
    assert "no stored workflow has the uuid" in result.err


# -- set-data -----------------------------------------------------------------------------


def test_set_data_replaces_a_failed_token_and_logs_who(
    cli: Any, workdir: Path, open_store: StoreOpener
) -> None:
    uid = broken_run(cli, workdir, '{"a": 1}', "{}")
    result = cli("--json", "set-data", uid, "--token", "1", "--data", '{"b": 2}')
    assert result.code == ExitCode.OK
    assert result.json() == {"uuid": uid, "token": 1, "data": {"b": 2}, "by": getpass.getuser()}
    store = open_store()
    token = store.token_rows(uid)[1]
    assert (token["data"], token["status"], token["callback_pos"]) == ({"b": 2}, 4, [1])
    last = store.status_change_rows(uid)[-1]
    assert (last["token_position"], last["message"]) == (1, f"data updated by {getpass.getuser()}")
    assert last["created"] is not None
    assert store.workflow(uid)["lock_owner"] is None
    assert store.workflow(uid)["status"] == 3  # nothing ran


def test_set_data_reads_a_file_held_to_the_input_limits(cli: Any, workdir: Path) -> None:
    uid = broken_run(cli, workdir)
    (workdir / "new.json").write_text('{"from": "file"}')
    assert cli("set-data", uid, "--token", "0", "--data-file", "new.json").code == ExitCode.OK
    (workdir / "nan.json").write_text('{"x": NaN}')
    refused = cli("set-data", uid, "--token", "0", "--data-file", "nan.json")
    assert refused.code == ExitCode.USAGE
    assert "nan.json: $.x: NaN is not a number JSON allows" in refused.err
    deep = cli("set-data", uid, "--token", "0", "--data", "[" * 40 + "]" * 40)
    assert deep.code == ExitCode.USAGE
    missing = cli("set-data", uid, "--token", "0", "--data-file", "nowhere.json")
    assert missing.code == ExitCode.USAGE
    assert "cannot read --data-file nowhere.json" in missing.err
    invalid = cli("set-data", uid, "--token", "0", "--data", "{oops")
    assert invalid.code == ExitCode.USAGE
    assert "--data: invalid JSON at line 1" in invalid.err


def test_set_data_refuses_completed_and_missing_tokens(cli: Any, workdir: Path) -> None:
    uid = broken_run(cli, workdir, '{"a": 1}', "{}")
    (workdir / "broken").unlink()
    completed = cli("set-data", uid, "--token", "5", "--data", "{}")
    assert completed.code == ExitCode.USAGE
    assert f"workflow {uid} has no token at position 5 (it has 2 tokens)" in completed.err
    assert cli("retry", uid).code == ExitCode.OK
    done = cli("set-data", uid, "--token", "0", "--data", "{}")
    assert done.code == ExitCode.USAGE
    assert "cannot update the data of a COMPLETED token" in done.err


def test_set_data_of_a_flow_token_must_be_its_context_object(cli: Any, workdir: Path) -> None:
    (workdir / "risky.json").write_text(json.dumps(RISKY))
    (workdir / "broken").touch()
    uid = uuid_of(cli("run", "risky.json"))
    refused = cli("set-data", uid, "--token", "0", "--data", "[1]")
    assert refused.code == ExitCode.USAGE
    assert "a flow's token holds its context, a JSON object" in refused.err


def test_set_data_needs_the_data_once(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("set-data", "x", "--token", "0"), ("set-data", "x", "--data", "{}")):
        with pytest.raises(SystemExit) as exit_info:
            cli(*argv)
        assert exit_info.value.code == ExitCode.USAGE
    with pytest.raises(SystemExit):
        cli("set-data", "x", "--token", "0", "--data", "{}", "--data-file", "f")
    assert "not allowed with argument" in capsys.readouterr().err


# -- retry --------------------------------------------------------------------------------


def test_retry_runs_the_failed_tokens_from_the_task_that_failed(
    cli: Any, workdir: Path, open_store: StoreOpener
) -> None:
    uid = broken_run(cli, workdir, '{"a": 1}', '{"b": 2}')
    (workdir / "broken").unlink()
    result = cli("--json", "retry", uid)
    assert result.code == ExitCode.OK
    report = result.json()
    assert (report["outcome"], report["resumed"]) == ("completed", True)
    store = open_store()
    datas = [row["data"] for row in store.token_rows(uid)]
    # ``mark`` ran once, ``flaky`` twice: from the task that failed.
    assert [(d["seen"], d["tries"], d["done"]) for d in datas] == [(1, 2, True), (1, 2, True)]
    messages = [row["message"] for row in store.status_change_rows(uid)]
    who = getpass.getuser()
    assert messages.count(f"retry from the task that failed (by {who})") == 2


def test_retry_from_a_task_by_name_or_position_and_one_token_only(
    cli: Any, workdir: Path, open_store: StoreOpener
) -> None:
    uid = broken_run(cli, workdir, "{}", "{}")
    (workdir / "broken").unlink()
    # Token 0 from its first task (by name); token 1 from the failed task.
    assert cli("retry", uid, "--token", "0", "--from", "mark").code == ExitCode.OK
    seen = [row["data"]["seen"] for row in open_store().token_rows(uid)]
    assert seen == [2, 1]

    other = broken_run(cli, workdir, "{}")
    (workdir / "broken").unlink()
    assert cli("retry", other, "--from", "2").code == ExitCode.OK  # finish only
    [data] = [row["data"] for row in open_store().token_rows(other)]
    assert (data["tries"], data["done"]) == (1, True)


def test_retry_of_a_flow_from_a_step(cli: Any, workdir: Path) -> None:
    (workdir / "risky.json").write_text(json.dumps(RISKY))
    (workdir / "broken").touch()
    uid = uuid_of(cli("run", "risky.json"))
    (workdir / "broken").unlink()
    unknown = cli("retry", uid, "--from", "nope")
    assert unknown.code == ExitCode.USAGE
    assert "the definition has no step of that name (its steps: " in unknown.err
    result = cli("retry", uid, "--from", "risk")
    assert result.code == ExitCode.OK
    assert "completed: 1 token: 1 completed" in result.out
    assert (workdir / "tries.log").read_text().count("try") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--token", "1"), "token 1 of workflow {uid} is HALTED, not ERROR"),
        (("--token", "9"), "workflow {uid} has no token 9 (it has 2)"),
        (("--from", "nowhere"), "the definition has no task of that name (its tasks: mark, "),
        (("--from", "7"), "--from 7: no task is at position [7] of the definition"),
    ],
)
def test_retry_refuses_what_it_cannot_do(
    cli: Any, workdir: Path, open_store: StoreOpener, argv: tuple[str, ...], message: str
) -> None:
    uid = broken_run(cli, workdir, "{}", '{"halt": true}')
    result = cli("retry", uid, *argv)
    assert result.code == ExitCode.USAGE
    assert message.format(uid=uid) in result.err
    assert open_store().workflow(uid)["lock_owner"] is None
    assert open_store().workflow(uid)["status"] == 3


def test_retry_refuses_runs_without_failures_and_completed_runs(cli: Any) -> None:
    halted = uuid_of(cli("run", DEFINITION, "--tokens", "tokens.json", "--name", "x"))
    assert cli("retry", halted, "--token", "0").code == ExitCode.USAGE
    done = uuid_of(cli("run", DEFINITION))
    result = cli("retry", done)
    assert result.code == ExitCode.ERROR
    assert f"workflow {done} is completed: nothing to retry" in result.err


def test_retry_refuses_a_run_another_process_holds(
    cli: Any, workdir: Path, open_store: StoreOpener
) -> None:
    uid = broken_run(cli, workdir)
    open_store().acquire(uid, "host:9:busy")
    result = cli("retry", uid)
    assert result.code == ExitCode.ERROR
    assert "being run by host:9:busy" in result.err
    assert "`workflow retry --lock-wait SECONDS` waits" in result.err


def test_a_failed_task_reaches_the_database_log(cli: Any, workdir: Path) -> None:
    (workdir / "broken").touch()
    result = cli("--log-database", "run", FRAGILE)
    assert result.code == ExitCode.ERROR
    store = Store()
    try:
        with store.transaction("test") as conn:
            rows = conn.execute(
                sa.text("SELECT level, message, workflow_uuid FROM wf_syslog WHERE level >= 40")
            ).all()
    finally:
        store.dispose()
    uid = uuid_of(result)
    [(level, message, workflow_uuid)] = rows
    assert (level, workflow_uuid) == (logging.ERROR, uid)
    logged = f"ERROR persistent on_token_failed workflow {uid}: token 0 failed in task flaky"
    assert message.endswith(f"{logged} at [1]: RuntimeError: broken")
    assert logged in result.err
