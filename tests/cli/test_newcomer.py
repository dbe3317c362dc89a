"""The mistakes of a first hour: no ``--import``, drawing without the tasks, several files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workflow.cli import ExitCode, main
from workflow.errors import FlowValidationError
from workflow.flows import TaskRegistry, load_flow

from .conftest import REVIEW, Result

HINT = (
    "no task module was imported: name the module that registers the tasks with "
    "--import MODULE (e.g. workflow --import mytasks ...)"
)
#: A flow calling a stored flow, with a task no module registers.
CALLER = {
    "name": "caller",
    "steps": [
        {"name": "first", "task": "nowhere.registered"},
        {"name": "call", "flow": "not_stored"},
    ],
}

#: A flow whose task no module registers (the tests' modules register the others).
LONELY = {
    "name": "lonely",
    "steps": [{"name": "a", "task": "nowhere.first"}, {"name": "b", "task": "nowhere.second"}],
}


@pytest.fixture
def bare(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """Call ``main()`` without the ``--import`` the ``cli`` fixture adds."""

    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    (workdir / "lonely.json").write_text(json.dumps(LONELY))
    return run


# -- forgetting --import ----------------------------------------------------------------


def test_validate_without_import_says_how_to_import_the_tasks(bare: Any) -> None:
    result = bare("validate", "lonely.json")
    assert result.code == ExitCode.USAGE
    assert result.out.splitlines()[-1] == HINT
    assert result.out.count("unknown task") == 2


def test_the_hint_is_in_the_json_result(bare: Any) -> None:
    result = bare("--json", "validate", "lonely.json")
    assert result.json()["hint"] == HINT


def test_no_hint_when_a_module_was_imported(cli: Any) -> None:
    result = cli("--json", "validate", "bad.json")
    assert result.code == ExitCode.USAGE
    assert "hint" not in result.json()
    assert "--import MODULE" not in cli("validate", "bad.json").out


def test_no_hint_for_errors_that_are_not_unknown_tasks(bare: Any, workdir: Path) -> None:
    (workdir / "nameless.json").write_text('{"steps": [{"name": "a", "halt": {}}]}')
    result = bare("validate", "nameless.json")
    assert result.code == ExitCode.USAGE
    assert "--import" not in result.out


def test_run_without_import_says_how_to_import_the_tasks(bare: Any) -> None:
    result = bare("run", "lonely.json")
    assert result.code == ExitCode.USAGE
    assert result.err.rstrip("\n").endswith(HINT)


# -- graph needs neither the tasks nor the database ------------------------------------


def test_graph_draws_a_flow_whose_tasks_are_not_importable(bare: Any, workdir: Path) -> None:
    (workdir / "caller.json").write_text(json.dumps(CALLER))
    result = bare("graph", "caller.json")
    assert result.code == ExitCode.OK, result.err
    assert "nowhere.registered" in result.out
    assert "not_stored" in result.out
    assert not (workdir / "workflow.sqlite").exists()


def test_graph_still_reports_errors_of_structure(bare: Any, workdir: Path) -> None:
    broken = {"name": "broken", "steps": [{"name": "a", "task": "x"}, {"name": "a", "task": "y"}]}
    (workdir / "broken.json").write_text(json.dumps(broken))
    result = bare("graph", "broken.json")
    assert result.code == ExitCode.USAGE
    assert "duplicate step name 'a'" in result.err
    assert "unknown task" not in result.err


def test_a_flow_loaded_for_its_structure_checks_its_tasks_before_compiling() -> None:
    registry = TaskRegistry()
    flow = load_flow(REVIEW, registry=registry, structure_only=True)
    assert "cli_double" in flow.graph()
    with pytest.raises(FlowValidationError, match="unknown task 'cli_double'"):
        flow.callbacks()
    registry.register("cli_double", lambda context, params: None)
    registry.register("cli_publish", lambda context, params: None)
    assert len(flow.callbacks()) == 4  # the runtime entry, then the three steps


def test_structure_only_does_not_look_up_called_flows() -> None:
    flow = load_flow(CALLER, registry=TaskRegistry(), structure_only=True)
    assert flow.body["steps"][1] == {"name": "call", "flow": "not_stored"}
    with pytest.raises(FlowValidationError, match="no stored definitions"):
        flow.callbacks()


# -- validate takes several files --------------------------------------------------------


def test_validate_reports_each_file_and_exits_with_the_worst(cli: Any) -> None:
    result = cli("validate", "review.json", "bad.json", "simple.json")
    assert result.code == ExitCode.USAGE
    lines = result.out.splitlines()
    assert lines[0] == "review.json: flow 'review' is valid (3 steps)"
    assert lines[1] == "bad.json: invalid, 3 errors:"
    assert lines[2].startswith("  flow 'bad', step 'calc', at $.steps[0].task: unknown task")
    assert lines[-1] == "simple.json: flow 'simple' is valid (1 step)"
    assert cli("validate", "review.json", "simple.json").code == ExitCode.OK


def test_validate_several_files_as_json_is_a_list(cli: Any) -> None:
    result = cli("--json", "validate", "review.json", "missing.json")
    assert result.code == ExitCode.USAGE
    first, second = result.json()
    assert (first["file"], first["valid"]) == ("review.json", True)
    assert (second["file"], second["valid"]) == ("missing.json", False)
    assert "cannot read missing.json" in second["errors"][0]["message"]


# -- help ------------------------------------------------------------------------------


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for code in ("0 completed", "1 a task failed", "2 invalid", "3 halted", "130 interrupted"):
        assert code in out
