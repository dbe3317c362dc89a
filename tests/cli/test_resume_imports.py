"""What ``workflow resume`` imports is decided by the person running it, never by a run's data.

A run records the modules it was started with in its ``extra_data``, which
its tasks can write: a task that copies an input record there must not
choose the code a later resume imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workflow.cli._context import import_modules
from workflow.cli._targets import load_python

from .conftest import TASKS, Result, subprocess_env

COPYING = '''
def copy(obj, eng):
    """Keep the record's settings with the run: what a careless task might do."""
    eng.extra_data.update(obj.data.get("settings", {}))
    if not obj.data.get("approved"):
        eng.halt("needs a person")


definition = [copy]
'''

EVIL = """
open("owned", "w").close()
definition = []
"""


def workflow(workdir: Path, *argv: str, **env: str) -> Result:
    """Run the command without the ``--import`` the ``real`` fixture always adds."""
    done = subprocess.run(
        [sys.executable, "-m", "workflow", *argv],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=subprocess_env(**env),
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def test_a_run_cannot_choose_what_its_resume_imports(workdir: Path) -> None:
    (workdir / "copying.py").write_text(COPYING)
    (workdir / "evil.py").write_text(EVIL)
    record = '{"settings": {"cli": {"imports": ["evil"], "target": "evil:definition"}}}'
    (workdir / "record.json").write_text(record)
    ran = workflow(workdir, "--json", "--import", "copying", "run", "copying:definition",
                   "--tokens", "record.json")  # fmt: skip
    assert ran.code == 3, ran.err
    uuid = ran.json()["uuid"]

    refused = workflow(workdir, "--import", "copying", "resume", uuid, "--data", "{}")
    assert refused.code == 2
    assert refused.err == (
        f"workflow: error: workflow {uuid} was started with --import evil to run "
        "evil:definition; a resume imports only the modules you allow: pass --import evil "
        "(or list them in $WORKFLOW_IMPORT_ALLOW)\n"
    )
    assert not (workdir / "owned").exists()
    assert workflow(workdir, "--import", "copying", "show", uuid).code == 0  # still halted


def test_resume_imports_what_the_command_line_allows(workdir: Path) -> None:
    ran = workflow(workdir, "--json", "--import", TASKS, "run", f"{TASKS}:definition",
                   "--tokens", "tokens.json")  # fmt: skip
    uuid = ran.json()["uuid"]
    (workdir / "halt.json").write_text('{"halt": true}')
    halted = workflow(workdir, "--import", TASKS, "run", f"{TASKS}:definition",
                      "--tokens", "halt.json")  # fmt: skip
    hint = f"resume with: workflow resume {halted.out.split()[1]} --import {TASKS}\n"
    assert hint in halted.out

    bare = workflow(workdir, "resume", uuid)
    assert bare.code == 2
    assert f"was started with --import {TASKS} to run {TASKS}:definition" in bare.err
    assert f"pass --import {TASKS} (or list them" in bare.err

    allowed = workflow(workdir, "resume", uuid, WORKFLOW_IMPORT_ALLOW=f"other, {TASKS}")
    assert allowed.code == 1, allowed.err  # it ran: its failing token fails again
    assert "token 2 failed at task 'mark' (position [0]): KeyError: 'boom'" in allowed.out
    assert workflow(workdir, "--import", TASKS, "resume", uuid).code == 1
    submodule_only = workflow(workdir, "resume", uuid, WORKFLOW_IMPORT_ALLOW="tests.cli")
    assert submodule_only.code == 2  # a package does not allow its modules


def test_a_flow_run_needs_its_task_modules_allowed(real: Any, workdir: Path) -> None:
    halted = real("--json", "run", "review.json")
    uuid = halted.json()["uuid"]
    refused = workflow(workdir, "resume", uuid, "--data", "{}")
    assert refused.code == 2
    assert f"was started with --import {TASKS}; a resume imports only" in refused.err
    assert real("resume", uuid, "--data", '{"approved": true}').code == 0


def test_a_run_started_without_imports_says_so(workdir: Path) -> None:
    (workdir / "copying.py").write_text(COPYING)
    ran = workflow(workdir, "--json", "run", "copying:definition")
    refused = workflow(workdir, "resume", ran.json()["uuid"])
    assert "was started with no --import to run copying:definition" in refused.err
    assert "pass --import copying (or" in refused.err


@pytest.mark.parametrize(
    "settings",
    [
        '{"cli": {"imports": "evil"}}',
        '{"cli": {"imports": [1]}}',
        '{"cli": {"target": ["evil:x"]}}',
        '{"cli": {"checkpoint": "never", "imports": ["copying"]}}',
    ],
    ids=["imports-not-a-list", "import-not-a-name", "target-not-a-name", "bad-checkpoint"],
)
def test_a_damaged_record_is_refused(workdir: Path, settings: str) -> None:
    (workdir / "copying.py").write_text(COPYING)
    (workdir / "record.json").write_text(f'{{"settings": {settings}}}')
    ran = workflow(workdir, "--json", "--import", "copying", "run", "copying:definition",
                   "--tokens", "record.json")  # fmt: skip
    uuid = ran.json()["uuid"]
    refused = workflow(workdir, "--import", "copying", "resume", uuid, "--data", "{}")
    assert refused.code == 2
    assert refused.err.startswith(f"workflow: error: workflow {uuid} ")
    assert "Traceback" not in refused.err


def test_a_target_cannot_reach_into_another_module(workdir: Path) -> None:
    from workflow.cli._context import CLIError

    import_modules([TASKS])
    with pytest.raises(CLIError, match=r"time is a module; name it before the colon \(time:"):
        load_python(f"{TASKS}:time.sleep")


def test_resume_in_process_refuses_and_explains(open_store: Any, cli: Any) -> None:
    from workflow.storage import PersistentWorkflowEngine
    from workflow.storage.schema import upgrade

    store = open_store()
    upgrade(store)
    meta = {"imports": ["evil"], "target": "evil:definition", "checkpoint": "token"}
    chosen = PersistentWorkflowEngine.with_name("x", store=store, extra_data={"cli": meta})
    refused = cli("resume", chosen.uuid)
    assert refused.code == 2
    assert "was started with --import evil to run evil:definition" in refused.err
    assert "pass --import evil (or list them in $WORKFLOW_IMPORT_ALLOW)" in refused.err

    odd = {"imports": [TASKS], "target": f"{TASKS}:definition", "checkpoint": "never"}
    damaged = PersistentWorkflowEngine.with_name("y", store=store, extra_data={"cli": odd})
    result = cli("resume", damaged.uuid)
    assert result.code == 2
    assert "records the checkpoint policy 'never', which is none of token, task, halt" in result.err
