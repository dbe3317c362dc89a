"""Eight ``workflow resume`` processes of one run at once: exactly one runs it.

The others fail naming the process that holds the run's lock (exit 1), or,
once the run completed, say that there is nothing left to resume (exit 0).
SQLite always; PostgreSQL and MariaDB as the storage suite finds them
(skipped when not reachable, a failure in CI).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.storage.conftest import BACKENDS, empty_database

from .conftest import TASKS, Result, subprocess_env

PROCESSES = 8


def workflow(workdir: Path, url: str, *argv: str) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "workflow", "--database", url, "--import", TASKS, *argv],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=subprocess_env(),
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def race(workdir: Path, url: str, *argv: str) -> list[Result]:
    """Start :data:`PROCESSES` commands at once; return what each gave."""
    command = [sys.executable, "-m", "workflow", "--database", url, "--import", TASKS, *argv]
    processes = [
        subprocess.Popen(
            command,
            cwd=workdir,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        results.append(Result(process.returncode, out, err))
    return results


def check_exactly_one_ran(results: list[Result], uuid: str) -> None:
    ran = [r for r in results if r.code == 0 and "nothing to resume" not in r.err]
    assert len(ran) == 1, results
    assert f"workflow {uuid} ({TASKS}:slow) completed: 1 token: 1 completed" in ran[0].out
    for result in results:
        if result is ran[0]:
            continue
        locked = result.code == 1 and f"workflow {uuid} is being run by " in result.err
        nothing = result.code == 0 and (
            f"run {uuid} is already completed: nothing to resume" in result.err
        )
        assert locked or nothing, result
        assert "Traceback" not in result.err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_data", [True, False], ids=["answer", "retry"])
def test_eight_resumes_of_one_run_run_it_once(
    backend: str, with_data: bool, tmp_path: Path, workdir: Path
) -> None:
    url = empty_database(backend, tmp_path)
    if with_data:
        (workdir / "one.json").write_text('{"halt": true}')
    else:
        (workdir / "one.json").write_text("{}")
        (workdir / "broken").touch()
    started = workflow(workdir, url, "--json", "run", f"{TASKS}:slow", "--tokens", "one.json")
    assert started.code == (3 if with_data else 1), started.err
    uuid = started.json()["uuid"]
    (workdir / "broken").unlink(missing_ok=True)

    answer = ["--data", '{"approved": true}'] if with_data else []
    check_exactly_one_ran(race(workdir, url, "resume", uuid, "--lock-wait", "0", *answer), uuid)

    shown = json.loads(workflow(workdir, url, "--json", "show", uuid).out)
    assert shown["status"] == "COMPLETED"
    [token] = shown["tokens"]
    assert token["data"]["tries"] == (1 if with_data else 2)  # the resumed tasks ran once
    assert token["data"]["done"] is True
