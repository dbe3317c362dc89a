"""Each command imports only what it uses: checked in a fresh interpreter, from ``sys.modules``.

SQLAlchemy and Alembic take most of the time a command spends starting: the
commands that read no database must not import SQLAlchemy, and those that
only read one must not import Alembic while its schema is current.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import TASKS, subprocess_env

HEAVY = ("sqlalchemy", "alembic", "mako")

#: Run the command in this interpreter, then print the heavy modules it imported.
PROBE = f"""
import sys
from workflow.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # argparse, for --help
    code = exc.code
print(code, *[name for name in {HEAVY!r} if name in sys.modules])
"""


def imported(workdir: Path, *argv: str) -> tuple[int, set[str]]:
    """Run ``workflow ARGV`` in a fresh interpreter; its exit code and the heavy modules."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.stdout, done.stderr
    code, *names = done.stdout.split("\n")[-2].split()
    return int(code), set(names)


def test_help_imports_no_database_library(workdir: Path) -> None:
    assert imported(workdir, "--help") == (0, set())


@pytest.mark.parametrize("command", ["validate", "graph"])
def test_commands_on_flow_files_import_no_database_library(workdir: Path, command: str) -> None:
    assert imported(workdir, "--import", TASKS, command, "review.json") == (0, set())


def test_reading_commands_do_not_import_alembic(workdir: Path, real: Any) -> None:
    ran = real("--json", "run", "simple.json")
    assert ran.code == 0, ran.err
    uuid = ran.json()["uuid"]
    assert imported(workdir, "list") == (0, {"sqlalchemy"})
    assert imported(workdir, "show", uuid) == (0, {"sqlalchemy"})


def test_an_empty_database_is_created_with_alembic(workdir: Path) -> None:
    code, names = imported(workdir, "--import", TASKS, "run", "simple.json")
    assert code == 0
    assert {"sqlalchemy", "alembic"} <= names


def test_head_revision_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from workflow.storage.schema import _config, head_revision

    assert [head_revision()] == ScriptDirectory.from_config(_config()).get_heads()
