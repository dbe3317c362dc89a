"""Ctrl-C and SIGTERM: the command stores the run, releases its lock and says how to go on.

Real ``workflow`` processes get real signals while a task runs: the first
SIGINT or SIGTERM lets the task return and stops after it, a second one
abandons the task; either way the command exits with 130 printing the
``workflow resume`` command, which goes on at once (no lock to wait for).
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import TASKS, subprocess_env
from workflow.storage import Store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def start(workdir: Path, *argv: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workflow", "--json", "--import", TASKS, *argv],
        cwd=workdir,
        env=subprocess_env(),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a handler for SIGTERM (its SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, json.loads(out), err


def resume_as_printed(workdir: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run the printed ``workflow resume ...`` command as a user would paste it."""
    words = shlex.split(command)
    assert words[:2] == ["workflow", "resume"]
    return subprocess.run(
        [sys.executable, "-m", "workflow", "--json", *words[1:]],
        cwd=workdir,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_after_its_task_and_resume_goes_on_at_once(
    workdir: Path, signum: signal.Signals
) -> None:
    (workdir / "three.json").write_text("[{}, {}, {}]")
    process = start(workdir, "run", f"{TASKS}:signal_run", "--tokens", "three.json")
    wait_for(workdir / "started", process)
    process.send_signal(signum)
    time.sleep(0.2)  # the task goes on after the first signal
    assert process.poll() is None
    (workdir / "go").touch()
    code, error, err = finish(process)

    assert code == 130
    uuid = error["uuid"]
    assert error["exit_code"] == 130
    assert error["token"] == 0
    assert error["resume"] == f"workflow resume {uuid} --import {TASKS}"
    assert f"workflow {uuid} stopped after a task of token 0 ({signum.name})" in error["error"]
    assert f"{signum.name}: stopping after the current task" in err
    assert f"go on with `workflow resume {uuid} --import {TASKS}`" in err
    assert "Traceback" not in err

    store = Store(f"sqlite:///{workdir / 'workflow.sqlite'}")
    try:
        row = store.workflow(uuid)
        assert (row["status"], row["lock_owner"]) == (1, None)  # RUNNING, unlocked
        resumed = resume_as_printed(workdir, error["resume"])  # no --lock-wait needed
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout
        assert json.loads(resumed.stdout)["status"] == "COMPLETED"
        data = [token["data"] for token in store.token_rows(uuid)]
    finally:
        store.dispose()
    assert data == [{"calls": 1, "done": True}] * 3  # the stopped task did not run again


def test_a_second_signal_abandons_the_task(workdir: Path) -> None:
    (workdir / "three.json").write_text("[{}, {}, {}]")
    process = start(workdir, "run", f"{TASKS}:signal_run", "--tokens", "three.json")
    wait_for(workdir / "started", process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # the task still waits for "go": abandon it
    code, error, err = finish(process)

    assert code == 130, err
    uuid = error["uuid"]
    assert f"workflow {uuid} interrupted in token 0 (SIGINT)" in error["error"]
    resumed = resume_as_printed(workdir, error["resume"])
    assert resumed.returncode == 0, resumed.stderr
    store = Store(f"sqlite:///{workdir / 'workflow.sqlite'}")
    try:
        assert [t["data"]["done"] for t in store.token_rows(uuid)] == [True] * 3
    finally:
        store.dispose()


def test_sigterm_before_a_run_is_stored_says_nothing_was_run(workdir: Path) -> None:
    process = start(workdir, "run", f"{TASKS}:definition", "--tokens", "-", stdin=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not catches_sigterm(process.pid):  # the command is up, reading its stdin
        assert time.monotonic() < deadline
        assert process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    code, error, err = finish(process)
    assert code == 130
    assert error == {"error": "interrupted (SIGTERM); nothing was run", "exit_code": 130}
    assert "Traceback" not in err
    assert not (workdir / "workflow.sqlite").exists()
