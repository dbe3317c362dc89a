"""Fixtures of the CLI tests: a working directory with flows, in-process and real runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workflow.cli import main
from workflow.storage import Store

ROOT = Path(__file__).resolve().parents[2]
TASKS = "tests.cli.cli_tasks"

#: A flow with a halt step between two tasks.
REVIEW = {
    "name": "review",
    "steps": [
        {"name": "calc", "task": "cli_double"},
        {"name": "approve", "halt": {"message": "approve the paper?", "action": "approve"}},
        {"name": "publish", "task": "cli_publish"},
    ],
}
#: A flow without halts.
SIMPLE = {"name": "simple", "steps": [{"name": "calc", "task": "cli_double"}]}
#: A flow with three errors.
BAD = {
    "name": "bad",
    "steps": [
        {"name": "calc", "task": "no_such_task"},
        {"name": "calc", "task": "cli_double"},
        {"name": "use", "task": "cli_double", "params": {"x": "@missing.value"}},
    ],
}


@dataclass
class Result:
    """What a run of the command gave."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory holding the flow files and two token files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKFLOW_DATABASE_URL", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # --import adds the working directory
    (tmp_path / "review.json").write_text(json.dumps(REVIEW))
    (tmp_path / "simple.json").write_text(json.dumps(SIMPLE))
    (tmp_path / "bad.json").write_text(json.dumps(BAD))
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n\n{"n": 2}\n')
    (tmp_path / "tokens.json").write_text('[{"a": 1}, {"halt": true}, {"fail": true}]')
    return tmp_path


@pytest.fixture
def open_store(workdir: Path) -> Iterator[Callable[[], Store]]:
    """Open the working directory's default database; every store is disposed of after."""
    stores: list[Store] = []

    def open_() -> Store:
        stores.append(Store())
        return stores[-1]

    yield open_
    for store in stores:
        store.dispose()


@pytest.fixture
def cli(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """Call ``main()`` in this process; return its exit code and what it printed."""

    def run(*argv: str) -> Result:
        code = main(["--import", TASKS, *argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def workflow_script() -> str:
    """The installed ``workflow`` script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("workflow")
    found = str(script) if script.exists() else shutil.which("workflow")
    assert found, "the workflow script is not installed: pip install -e '.[dev]'"
    return found


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a real run: this checkout importable, no database variable."""
    env = {k: v for k, v in os.environ.items() if k != "WORKFLOW_DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture
def real(workdir: Path) -> Any:
    """Run ``python -m workflow`` (or, with ``script=True``, the ``workflow`` script)."""

    def run(*argv: str, script: bool = False, stdin: str | None = None, **env: str) -> Result:
        command = [workflow_script()] if script else [sys.executable, "-m", "workflow"]
        done = subprocess.run(
            [*command, "--import", TASKS, *argv],
            capture_output=True,
            text=True,
            cwd=workdir,
            env=subprocess_env(**env),
            input=stdin,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run
