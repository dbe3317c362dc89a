"""``workflow resume`` in another directory: it says where the run found its modules.

It never adds that directory to ``sys.path`` itself: the record is data the
run's tasks can write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import Result, subprocess_env

PIPELINE = '''
def step(obj, eng):
    """Halt until approved."""
    if not obj.data.get("approved"):
        eng.halt("needs a person")


definition = [step]
'''


def workflow(cwd: Path, *argv: str, **env: str) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "workflow", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=subprocess_env(**env),
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def started(workdir: Path) -> tuple[Path, Path, str]:
    """Start a run of ``pipeline:definition`` in ``proj``; return proj, another directory, uuid."""
    proj, other = workdir / "proj", workdir / "other"
    proj.mkdir()
    other.mkdir()
    (proj / "pipeline.py").write_text(PIPELINE)
    database = f"sqlite:///{workdir / 'runs.db'}"
    ran = workflow(proj, "--json", "--database", database, "--import", "pipeline", "run",
                   "pipeline:definition")  # fmt: skip
    assert ran.code == 3, ran.err
    return proj, other, ran.json()["uuid"]


def test_resume_elsewhere_says_where_the_module_was_found(workdir: Path) -> None:
    proj, other, uuid = started(workdir)
    database = f"sqlite:///{workdir / 'runs.db'}"
    argv = ["--database", database, "--import", "pipeline", "resume", uuid]
    refused = workflow(other, *argv, "--data", '{"approved": true}')
    assert refused.code == 2
    assert refused.err == (
        f"workflow: error: cannot import module 'pipeline' (no such module here); the run was "
        f"started in {proj.resolve()}, where pipeline was found: run the command there, or add "
        f"that directory to PYTHONPATH: PYTHONPATH={proj.resolve()} workflow resume {uuid} ...\n"
    )

    pythonpath = f"{subprocess_env()['PYTHONPATH']}{os.pathsep}{proj}"
    followed = workflow(other, *argv, "--data", '{"approved": true}', PYTHONPATH=pythonpath)
    assert followed.code == 0, followed.err


def test_resume_elsewhere_under_json_is_the_error_object(workdir: Path) -> None:
    _, other, uuid = started(workdir)
    database = f"sqlite:///{workdir / 'runs.db'}"
    refused = workflow(other, "--json", "--database", database, "--import", "pipeline", "resume",
                       uuid)  # fmt: skip
    assert refused.code == 2
    assert "where pipeline was found" in refused.json()["error"]


def test_a_recorded_directory_is_escaped_and_never_searched(open_store: Any, cli: Any) -> None:
    from workflow.storage import PersistentWorkflowEngine
    from workflow.storage.schema import upgrade

    store = open_store()
    upgrade(store)
    meta = {
        "imports": ["elsewhere_mod"],
        "target": "elsewhere_mod:definition",
        "checkpoint": "token",
        "import_paths": {"elsewhere_mod": "/tmp\n\x1b[31mred; rm -rf ~"},
        "cwd": "/somewhere",
    }
    run = PersistentWorkflowEngine.with_name("x", store=store, extra_data={"cli": meta})
    refused = cli("--import", "elsewhere_mod", "resume", run.uuid)
    assert refused.code == 2
    assert "\x1b" not in refused.err
    assert refused.err.count("\n") == 1
    assert (
        "when the run started, elsewhere_mod was found in /tmp\\n\\x1b[31mred; rm -rf ~: add "
        "that directory to PYTHONPATH: PYTHONPATH='/tmp\\n\\x1b[31mred; rm -rf ~' workflow "
        f"resume {run.uuid} ..." in refused.err
    )


def test_a_record_without_directories_gives_the_plain_error(open_store: Any, cli: Any) -> None:
    from workflow.storage import PersistentWorkflowEngine
    from workflow.storage.schema import upgrade

    store = open_store()
    upgrade(store)
    meta = {"imports": ["elsewhere_mod"], "target": "elsewhere_mod:definition", "import_paths": 3}
    run = PersistentWorkflowEngine.with_name("x", store=store, extra_data={"cli": meta})
    refused = cli("--import", "elsewhere_mod", "resume", run.uuid)
    assert refused.err == (
        "workflow: error: cannot import module 'elsewhere_mod': No module named 'elsewhere_mod'\n"
    )
