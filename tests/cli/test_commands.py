"""Every command and its branches, through ``main()`` in this process (measured by coverage)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from workflow.cli import ExitCode, main
from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.schema import upgrade

from .conftest import REVIEW, TASKS

DEFINITION = f"{TASKS}:definition"


def run_uuid(cli: Any, *argv: str) -> tuple[int, str]:
    result = cli("--json", "run", *argv)
    return result.code, result.json()["uuid"]


# -- run -------------------------------------------------------------------------------


def test_run_python_list_completes(cli: Any) -> None:
    result = cli("run", DEFINITION, "--name", "mine", "--checkpoint", "task")
    assert result.code == ExitCode.OK
    assert "completed: 1 token: 1 completed" in result.out
    listed = cli("--json", "list").json()
    assert [(w["name"], w["status"]) for w in listed] == [("mine", "COMPLETED")]


@pytest.mark.parametrize(
    "target", [f"{TASKS}:InvenioStyle", f"{TASKS}:finish"], ids=["class", "single-task"]
)
def test_run_python_forms(cli: Any, target: str) -> None:
    assert cli("run", target).code == ExitCode.OK


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([f"{TASKS}:not_a_list"], "is not a callback list: it is int 42"),
        ([f"{TASKS}:empty"], "is not a callback list: it is list []"),
        ([f"{TASKS}:nothing"], "module 'tests.cli.cli_tasks' has no attribute 'nothing'"),
        (["no_such_module:x"], "cannot import module 'no_such_module'"),
        ([":x"], "':x' is not a flow file"),
        (["tokens"], "'tokens' is not a flow file (.json, .yaml, .yml)"),
        (["missing.json"], "no such flow file: missing.json"),
        ([], "give what to run"),
        (["simple.json", "--definition", "simple"], "give either TARGET or --definition"),
        ([DEFINITION, "--version", "2"], "--version goes with --definition NAME"),
        (["def:simple@two"], "def:simple@two is not def:NAME or def:NAME@VERSION"),
        (["bad.json"], "bad.json is not a valid flow:\nflow 'bad', step 'calc', at $.steps[0]"),
        ([DEFINITION, "--tokens", "none.json"], "cannot read the tokens file none.json"),
    ],
)
def test_run_refuses_bad_targets(cli: Any, argv: list[str], message: str) -> None:
    result = cli("run", *argv)
    assert result.code == ExitCode.USAGE
    assert result.err.startswith("workflow: error: ")
    assert message in result.err


def test_run_flow_file_stores_the_definition_and_halts(cli: Any) -> None:
    result = cli("run", "review.json", "--tokens", "in.jsonl")
    assert result.code == ExitCode.HALTED
    assert "flow 'review' is stored as version 1" in result.err
    assert "resume with: workflow resume " in result.out
    assert "--data JSON" in result.out
    again = cli("--json", "run", "def:review@1", "--tokens", "in.jsonl")
    assert again.json()["definition"] == {"name": "review", "version": 1}


def test_run_with_tokens_from_stdin(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('[{"a": 1}, {"b": 2}]'))
    result = cli("--json", "run", DEFINITION, "--tokens", "-")
    assert result.json()["counts"] == {"total": 2, "completed": 2}


def test_progress_bar_on_a_terminal(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    tokens: list[dict[str, bool]] = [{}] * 20 + [{"halt": True}, {"fail": True}]
    Path("many.json").write_text(json.dumps(tokens))
    assert cli("run", DEFINITION, "--tokens", "many.json").code == ExitCode.ERROR
    last = terminal.getvalue().rstrip("\n").split("\r")[-1]
    assert last == f"[{'#' * 30}] 22/22 tokens, 1 halted, 1 failed"


# -- resume ------------------------------------------------------------------------------


def test_resume_python_run_merges_data(cli: Any) -> None:
    code, uuid = run_uuid(cli, DEFINITION, "--tokens", "tokens.json")
    assert code == ExitCode.ERROR
    # Token 2 fails again (its data still says so); token 1 goes on approved.
    again = cli("--json", "resume", uuid, "--data", '{"approved": true}', "--token", "1")
    result = again.json()
    assert again.code == ExitCode.ERROR
    assert [t["status"] for t in result["tokens"]] == ["COMPLETED", "COMPLETED", "ERROR"]
    assert result["tokens"][2]["error"] == "KeyError: 'boom'"
    shown = cli("--json", "show", uuid).json()
    assert shown["tokens"][1]["data"] == {"halt": True, "seen": 1, "approved": True, "done": True}
    text = cli("show", uuid)
    assert "KeyError: 'boom'" in text.out
    assert f"target    {DEFINITION}" in text.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token", "1"], "--token N says which token gets --data; give --data too"),
        (["--data", "{}", "--token", "0"], "token 0 of workflow {uuid} is COMPLETED, not halted"),
        (["--data", "{}", "--token", "9"], "workflow {uuid} has no token 9 (it has 3)"),
        (["--data", "[1]"], "--data for a Python run must be a JSON object"),
    ],
)
def test_resume_refuses_bad_data(cli: Any, argv: list[str], message: str) -> None:
    _, uuid = run_uuid(cli, DEFINITION, "--tokens", "tokens.json")
    result = cli("resume", uuid, *argv)
    assert result.code == ExitCode.USAGE
    assert result.err.startswith("workflow: error: " + message.format(uuid=uuid)), result.err


def test_resume_refuses_data_for_non_dict_tokens(open_store: Any, cli: Any) -> None:
    Path("words.json").write_text('["halt"]')
    store = open_store()
    upgrade(store)

    def halt(obj: Any, eng: Any) -> None:
        eng.halt("wait")

    eng = PersistentWorkflowEngine.with_name(
        "x", store=store, definition=[halt], extra_data={"cli": {"target": DEFINITION}}
    )
    eng.process(["word"], stop_on_halt=False)
    result = cli("resume", eng.uuid, "--data", "{}")
    assert result.code == ExitCode.USAGE
    assert "token 0 holds str data" in result.err


def test_resume_without_halted_tokens_and_of_a_completed_run(cli: Any, workdir: Path) -> None:
    (workdir / "failing.json").write_text('{"fail": true}')
    _, failed = run_uuid(cli, DEFINITION, "--tokens", "failing.json")
    no_halt = cli("resume", failed, "--data", "{}")
    assert no_halt.code == ExitCode.USAGE
    assert "has no halted token to give --data to" in no_halt.err
    _, uuid = run_uuid(cli, DEFINITION)
    done = cli("resume", uuid)
    assert done.code == ExitCode.OK
    assert done.err.strip() == f"run {uuid} is already completed: nothing to resume"
    with_data = cli("resume", uuid, "--data", "{}")
    assert with_data.code == ExitCode.OK
    assert "nothing to resume (--data is not used)" in with_data.err
    as_json = cli("--json", "resume", uuid).json()
    assert (as_json["resumed"], as_json["status"]) == (False, "COMPLETED")


def test_resume_of_a_run_not_started_here(open_store: Any, cli: Any) -> None:
    store = open_store()
    upgrade(store)
    eng = PersistentWorkflowEngine.with_name("elsewhere", store=store)
    result = cli("resume", eng.uuid)
    assert result.code == ExitCode.USAGE
    assert "has no stored definition and was not started by the workflow command" in result.err


def test_resume_flow_token_by_token(cli: Any) -> None:
    _, uuid = run_uuid(cli, "review.json", "--tokens", "in.jsonl")
    bare = cli("resume", uuid)
    assert bare.code == ExitCode.USAGE
    assert "token(s) 0, 1 of workflow" in bare.err
    assert "wait at a halt step for an answer" in bare.err

    first = cli("resume", uuid, "--token", "1", "--data", '{"approved": false}')
    assert first.code == ExitCode.HALTED
    assert "token(s) 0 still wait for theirs" in first.err
    assert "token 1 halted: approve the paper? (answered)" in first.out
    assert "token 0 halted at step 'approve': approve the paper?" in first.out

    wrong = cli("resume", uuid, "--token", "1", "--data", "{}")
    assert wrong.code == ExitCode.USAGE
    assert "token 1: this token does not wait at a halt step" in wrong.err

    last = cli("--json", "resume", uuid, "--data", '{"approved": true}')  # token 0 only
    assert last.code == ExitCode.OK
    shown = cli("--json", "show", uuid).json()
    assert [t["data"]["publish"]["published"] for t in shown["tokens"]] == [True, False]
    text = cli("show", uuid).out
    assert "flow      review version 1" in text
    assert "HALTED -> COMPLETED" in text


def test_resume_locked_run_is_an_error(open_store: Any, cli: Any) -> None:
    _, uuid = run_uuid(cli, DEFINITION, "--tokens", "tokens.json")
    open_store().acquire(uuid, "another process")
    result = cli("resume", uuid)
    assert result.code == ExitCode.ERROR
    assert f"workflow {uuid} is being run by another process" in result.err
    assert "`workflow resume --lock-wait SECONDS` waits for it" in result.err


def test_lock_ttl_sets_how_long_a_dead_process_holds_the_run(open_store: Any, cli: Any) -> None:
    ran = cli("--json", "run", f"{TASKS}:lease_probe", "--lock-ttl", "7")
    assert ran.code == ExitCode.OK, ran.err
    uuid = ran.json()["uuid"]
    [token] = open_store().token_rows(uuid)
    assert 5 < token["data"]["lease"] <= 7  # the lock the run held while it ran
    assert open_store().workflow(uuid)["lock_owner"] is None


@pytest.mark.parametrize("value", ["0", "0.5", "-1", "nan", "inf", "x"])
def test_lock_ttl_must_be_a_second_or_more(
    cli: Any, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("resume", "0" * 32, "--lock-ttl", value)
    assert exited.value.code == ExitCode.USAGE
    assert "argument --lock-ttl: " in capsys.readouterr().err


def test_resume_with_lock_wait_goes_on_once_the_other_lock_lapses(cli: Any) -> None:
    _, uuid = run_uuid(cli, DEFINITION, "--tokens", "tokens.json")
    other = Store(lock_ttl=1.5)  # a process that stops renewing its lock
    try:
        other.acquire(uuid, "another process")
    finally:
        other.dispose()
    refused = cli("resume", uuid)
    assert "is being run by another process" in refused.err
    waited = cli("resume", uuid, "--lock-wait", "60")
    assert "is being run by another process" not in waited.err
    assert waited.code == ExitCode.ERROR  # the run went on: its failing token fails again
    assert "token 2 failed" in waited.out


# -- list, show, db ----------------------------------------------------------------------


def test_list_filters_and_renders(cli: Any) -> None:
    cli("run", DEFINITION)
    cli("run", DEFINITION, "--tokens", "tokens.json", "--name", "mixed")
    cli("run", "review.json")
    text = cli("list", "--status", "HALTED").out.splitlines()
    assert text[0].split() == ["UUID", "STATUS", "TOKENS", "MODIFIED", "(UTC)", "NAME"]
    assert [line.split()[-1] for line in text[1:]] == ["review"]
    limited = cli("--json", "list", "--limit", "1").json()
    assert [w["name"] for w in limited] == ["review"]
    assert limited[0]["definition"] == {"name": "review", "version": 1}
    # A run whose token failed is stored ERROR, even though another token halted.
    failed = cli("--json", "list", "--status", "error").json()
    assert [w["name"] for w in failed] == ["mixed"]
    assert failed[0]["counts"] == {"total": 3, "completed": 1, "error": 1, "halted": 1}


def test_list_refuses_a_bad_limit(cli: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("list", "--limit", "0")
    assert exit_info.value.code == 2


def test_read_commands_never_create_a_database(cli: Any, workdir: Path) -> None:
    result = cli("list")
    assert result.code == ExitCode.ERROR
    assert "no workflow database at workflow.sqlite" in result.err
    assert not (workdir / "workflow.sqlite").exists()
    Store().dispose()  # connecting makes an empty file
    (workdir / "workflow.sqlite").touch()
    empty = cli("show", "x")
    assert empty.code == ExitCode.ERROR
    assert "has no workflow tables: run `workflow db upgrade`" in empty.err


def test_old_schema_asks_for_db_upgrade(open_store: Any, cli: Any) -> None:
    upgrade(open_store(), "0001")
    result = cli("run", DEFINITION)
    assert result.code == ExitCode.ERROR
    assert "is at schema revision 0001" in result.err
    assert "run `workflow db upgrade`" in result.err
    upgraded = cli("db", "upgrade")
    assert "from revision 0001 to" in upgraded.out
    assert cli("run", DEFINITION).code == ExitCode.OK


def test_tables_made_by_create_all_are_used(open_store: Any, cli: Any) -> None:
    open_store().create_all()
    assert cli("run", DEFINITION).code == ExitCode.OK


def test_database_from_the_environment(
    cli: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_DATABASE_URL", f"sqlite:///{workdir / 'env.sqlite'}")
    assert cli("run", DEFINITION).code == ExitCode.OK
    assert (workdir / "env.sqlite").exists()
    assert not (workdir / "workflow.sqlite").exists()
    upgraded = cli("--json", "db", "upgrade").json()
    assert upgraded["database"].endswith("env.sqlite")


# -- validate, graph, definitions ------------------------------------------------------------


def test_validate_text_and_json(cli: Any) -> None:
    valid = cli("validate", "review.json")
    assert (valid.code, valid.out.strip()) == (0, "review.json: flow 'review' is valid (3 steps)")
    invalid = cli("--json", "validate", "bad.json")
    assert invalid.code == ExitCode.USAGE
    errors = invalid.json()["errors"]
    assert [(e["step"], e["path"]) for e in errors] == [
        ("calc", "$.steps[0].task"),
        ("calc", "$.steps[1].name"),
        ("use", "$.steps[2].params.x"),
    ]
    unreadable = cli("validate", "in.jsonl")
    assert unreadable.code == ExitCode.USAGE


def test_validate_looks_called_flows_up_in_the_database(cli: Any) -> None:
    caller = {"name": "caller", "steps": [{"name": "sub", "flow": "simple"}]}
    Path("caller.json").write_text(json.dumps(caller))
    missing = cli("validate", "caller.json")
    assert missing.code == ExitCode.USAGE
    assert "unknown flow 'simple': flow 'simple' is not stored: no workflow database" in missing.out
    cli("definitions", "put", "simple.json")
    assert cli("validate", "caller.json").code == ExitCode.OK
    cli("definitions", "disable", "simple")
    disabled = cli("validate", "caller.json")
    assert "every version of the stored definition 'simple' is disabled" in disabled.out
    cli("definitions", "enable", "simple")
    assert cli("run", "caller.json").code == ExitCode.OK


def test_graph_json(cli: Any) -> None:
    result = cli("--json", "graph", "review.json", "--format", "dot").json()
    assert (result["flow"], result["format"]) == ("review", "dot")
    assert result["graph"].startswith('digraph "review"')


def test_definitions_commands(cli: Any) -> None:
    assert cli("definitions", "list").code == ExitCode.ERROR  # no database yet
    assert cli("db", "upgrade").code == ExitCode.OK
    assert cli("definitions", "list").out.strip() == "no stored flows"
    assert cli("definitions", "put", "review.json").out.strip() == "stored flow 'review' version 1"
    changed = dict(REVIEW, description="second")
    Path("review.json").write_text(json.dumps(changed))
    assert "version 2" in cli("definitions", "put", "review.json").out
    assert "is unchanged: version 2" in cli("definitions", "put", "review.json").out

    show = cli("definitions", "show", "review")
    assert show.out.startswith("flow 'review' version 2 (enabled; versions: 1, 2)\n{")
    assert json.loads(show.out.split("\n", 1)[1]) == changed
    first = cli("--json", "definitions", "show", "review", "--version", "1").json()
    assert (first["version"], first["body"], len(first["versions"])) == (1, REVIEW, 2)

    assert (
        "disabled flow 'review' (version 2)"
        in cli("definitions", "disable", "review", "--version", "2").out
    )
    listing = cli("definitions", "list").out.splitlines()
    assert listing[1].split()[:3] == ["review", "2", "disabled"]
    assert "disabled; versions: 1, 2" in cli("definitions", "show", "review").out
    assert cli("definitions", "delete", "review", "--version", "2").code == ExitCode.OK
    assert cli("--json", "definitions", "list", "--all").json()[0]["deleted"] is True
    assert cli("definitions", "delete", "review").code == ExitCode.OK
    for argv in (["show", "review"], ["enable", "review"], ["show", "x", "--version", "1"]):
        result = cli("definitions", *argv)
        assert result.code == ExitCode.USAGE
        assert "no stored definition is called" in result.err or "has no version" in result.err


# -- the command itself ------------------------------------------------------------------------


def test_global_options_after_the_command(cli: Any, workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'late.sqlite'}"
    result = cli("run", DEFINITION, "--json", "--database", url, "--import", "json")
    assert result.json()["status"] == "COMPLETED"
    assert (workdir / "late.sqlite").exists()


def test_bad_log_options(cli: Any) -> None:
    handlers = list(logging.getLogger().handlers)
    result = cli("--log-file", "no/such/dir/x.log", "list")
    assert logging.getLogger().handlers == handlers  # nothing left installed
    assert result.code == ExitCode.USAGE
    assert "cannot open the log file no/such/dir/x.log" in result.err
    with pytest.raises(SystemExit):
        cli("--log-level", "loud", "list")


def test_interrupt_and_bugs(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import workflow.cli._commands_inspect as inspect_commands

    def interrupted(ctx: Any) -> int:
        raise KeyboardInterrupt

    def buggy(ctx: Any) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(inspect_commands, "cmd_list", interrupted)
    result = cli("list")
    assert result.code == 130
    assert "interrupted" in result.err
    monkeypatch.setattr(inspect_commands, "cmd_list", buggy)
    with pytest.raises(RuntimeError, match="a bug"):
        cli("list")


def test_main_reads_sys_argv(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["workflow", "validate", "simple.json", "--import", TASKS])
    assert main() == ExitCode.OK


def test_run_stored_definition_by_option_and_json_errors(cli: Any) -> None:
    cli("definitions", "put", "simple.json")
    result = cli("--json", "run", "--definition", "simple", "--version", "1")
    assert result.json()["definition"] == {"name": "simple", "version": 1}
    missing = cli("--json", "run", "--definition", "other")
    assert missing.code == ExitCode.USAGE
    assert missing.json()["exit_code"] == 2
    assert "no stored definition is called 'other'" in missing.json()["error"]


def test_yaml_flow_files(cli: Any) -> None:
    yaml = pytest.importorskip("yaml")
    Path("review.yaml").write_text(yaml.safe_dump(REVIEW))
    assert cli("validate", "review.yaml").code == ExitCode.OK
    result = cli("--json", "run", "review.yaml", "--tokens", "in.jsonl")
    assert (result.code, result.json()["definition"]) == (3, {"name": "review", "version": 1})
