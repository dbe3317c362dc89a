"""``workflow check``: the database, the stored flows and the extras, before running anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import empty_database
from workflow.cli import ExitCode
from workflow.storage import Definitions, Store
from workflow.storage.schema import upgrade

from .conftest import ROOT, subprocess_env

CHECKED = "tests.cli.flowsx_tasks"

#: A flow whose task lives in a module the command imports only when told to.
NEEDS_IMPORT = {
    "name": "needs",
    "steps": [{"name": "c", "task": "flowsx_check", "params": {"n": 1}}],
}
#: A flow whose halt step declares the schema of its answer.
SHAPED = {"name": "shaped", "steps": [{"name": "a", "halt": {"schema": {"type": "integer"}}}]}


def test_check_reports_a_missing_database_without_creating_it(cli: Any, workdir: Path) -> None:
    result = cli("check")
    assert result.code == ExitCode.ERROR
    assert "database: no workflow database at workflow.sqlite (run `workflow db upgrade`)" in (
        result.out
    )
    assert not (workdir / "workflow.sqlite").exists()
    report = cli("--json", "check").json()
    assert report["ok"] is False
    assert report["database"]["current"] is False


def test_check_of_a_current_empty_database_is_well(cli: Any) -> None:
    assert cli("db", "upgrade").code == ExitCode.OK
    result = cli("check")
    assert result.code == ExitCode.OK, result.out
    assert result.out.splitlines()[-1] == "all is well"
    report = cli("--json", "check").json()
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["database"]["revision"] == report["database"]["head"]


def test_check_names_an_old_schema_revision(open_store: Any, cli: Any) -> None:
    upgrade(open_store(), "0001")
    result = cli("check")
    assert result.code == ExitCode.ERROR
    assert "is at schema revision 0001" in result.out
    assert "run `workflow db upgrade`" in result.out


def test_check_validates_enabled_stored_flows_with_the_tasks_imported(
    open_store: Any, real: Any
) -> None:
    store = open_store()
    upgrade(store)
    definitions = Definitions(store)
    definitions.put("needs", NEEDS_IMPORT)
    definitions.put("review", json.loads(Path("review.json").read_text()))
    definitions.put("old", {"name": "old", "steps": [{"name": "x", "task": "gone"}]})
    definitions.disable("old")  # no new run can use it: not checked

    missing = real("check")
    assert missing.code == ExitCode.ERROR
    assert missing.out.splitlines()[-2:] == [
        "1 problem(s):",
        "  definition 'needs' version 1: flow 'needs', step 'c', at $.steps[0].task: "
        "unknown task 'flowsx_check'",
    ]
    fine = real("--import", CHECKED, "--json", "check")
    assert fine.code == ExitCode.OK, fine.out
    assert [(d["name"], d["version"], d["valid"]) for d in fine.json()["definitions"]] == [
        ("needs", 1, True),
        ("review", 1, True),
    ]


def test_check_says_which_stored_flows_need_jsonschema(
    open_store: Any, workdir: Path, cli: Any
) -> None:
    store = open_store()
    upgrade(store)
    Definitions(store).put("shaped", SHAPED)
    report = cli("--json", "check").json()
    assert report["extras"]["schema"]["needed_by"] == ["shaped v1"]
    assert report["ok"] is True
    code = (
        "import sys\n"
        "sys.modules['jsonschema'] = None  # as if it were not installed\n"
        "from workflow.cli import main\n"
        "sys.exit(main(['check']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == ExitCode.ERROR
    assert (
        "  extra 'schema': not installed, and needed by shaped v1 for halt steps that declare "
        "the schema of their answer: pip install 'workflow-ng[schema]'"
    ) in done.stdout.splitlines()


def test_check_names_a_database_that_does_not_answer(cli: Any) -> None:
    result = cli("--database", "postgresql+psycopg://who:secret@127.0.0.1:1/none", "check")
    assert result.code == ExitCode.ERROR
    assert "database: postgresql+psycopg://who:***@127.0.0.1:1/none does not answer" in result.out
    assert "secret" not in result.out
    unusable = cli("--database", "nonsense://x", "check")  # a usage error, as for every command
    assert unusable.code == ExitCode.USAGE
    assert "--database 'nonsense://x': unknown database 'nonsense'" in unusable.err


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_check_on_a_server_database(backend: str, tmp_path: Path, real: Any) -> None:
    url = empty_database(backend, tmp_path)
    empty = real("--database", url, "check")
    assert empty.code == ExitCode.ERROR
    assert "has no workflow tables: run `workflow db upgrade`" in empty.out
    assert real("--database", url, "db", "upgrade").code == ExitCode.OK
    store = Store(url)
    try:
        Definitions(store).put("needs", NEEDS_IMPORT)
    finally:
        store.dispose()
    assert real("--database", url, "check").code == ExitCode.ERROR
    fine = real("--database", url, "--import", CHECKED, "--json", "check")
    assert fine.code == ExitCode.OK, fine.out
    assert fine.json()["definitions"][0]["valid"] is True


def test_check_accepts_tables_made_by_create_all(open_store: Any, cli: Any) -> None:
    open_store().create_all()
    result = cli("check")
    assert result.code == ExitCode.OK, result.out
    assert "tables made by Store.create_all()" in result.out


def test_check_reports_a_broken_entry_point_of_an_installed_package(
    open_store: Any, real: Any, workdir: Path
) -> None:
    upgrade(open_store())
    site = workdir / "site"
    info = site / "broken_tasks-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[workflow.tasks]\nbroken = no_such_module:task\n")
    path = os.pathsep.join([str(ROOT), str(site)])
    result = real("check", PYTHONPATH=path)
    assert result.code == ExitCode.ERROR, result.out
    assert "tasks: task 'broken': entry point 'no_such_module:task'" in result.out
    assert "Traceback" not in result.out + result.err
