"""Real processes: ``show`` while a ``workflow run`` process runs and after it was killed,
and several ``cancel`` and ``retry`` processes of one run at once.

SQLite always; PostgreSQL and MariaDB as the storage suite finds them
(skipped when not reachable, a failure in CI).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import BACKENDS, empty_database

from .conftest import TASKS, Result, subprocess_env
from .test_resume_race import race, workflow

#: Seconds to wait at most for a state another process brings about.
PATIENCE = 60.0


def show(workdir: Path, url: str, uid: str) -> Any:
    result = workflow(workdir, url, "--json", "show", uid)
    assert result.code == 0, result
    return json.loads(result.out)


def wait_for(what: str, check: Callable[[], bool]) -> None:
    """Poll ``check()`` until it is true; fail after :data:`PATIENCE` seconds."""
    deadline = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < deadline, f"waited {PATIENCE}s for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_show_says_running_then_interrupted_once_the_process_is_killed(
    backend: str, tmp_path: Path, workdir: Path
) -> None:
    url = empty_database(backend, tmp_path)
    (workdir / "many.json").write_text(json.dumps([{} for _ in range(20)]))
    command = [sys.executable, "-m", "workflow", "--database", url, "--import", TASKS]
    running = subprocess.Popen(
        [*command, "--json", "run", f"{TASKS}:slow", "--tokens", "many.json", "--lock-ttl", "1"],
        cwd=workdir,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        uid: list[str] = []

        def started() -> bool:
            listed = workflow(workdir, url, "--json", "list", "--status", "running")
            rows = json.loads(listed.out) if listed.code == 0 else []
            uid.extend(row["uuid"] for row in rows[:1])
            return bool(uid)

        wait_for("the run to start", started)
        shown = show(workdir, url, uid[0])
        assert (shown["outcome"], shown["exit_code"], shown["next"]) == ("running", 3, None)
        lock = shown["lock"]
        assert lock["live"] is True
        cancel = workflow(workdir, url, "cancel", uid[0])
        assert cancel.code == 1
        assert f"workflow {uid[0]} is being run by {lock['owner']}" in cancel.err
    finally:
        running.send_signal(signal.SIGKILL)
        running.communicate(timeout=PATIENCE)

    wait_for(
        "the killed process's lock to lapse",
        lambda: show(workdir, url, uid[0])["outcome"] == "interrupted",
    )
    shown = show(workdir, url, uid[0])
    command_line = f"workflow resume {uid[0]} --import {TASKS}"
    assert (shown["status"], shown["exit_code"], shown["next"]) == ("RUNNING", 1, command_line)
    text = workflow(workdir, url, "show", uid[0]).out
    assert f"its process stopped before the run ended; resume with: {command_line}" in text
    # The command shown goes on with the run, as it says.
    resumed = workflow(workdir, url, *command_line.split()[1:])
    assert resumed.code == 0, resumed
    assert "completed: 20 tokens: 20 completed" in resumed.out


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_cancels_of_one_run_cancel_it_once(
    backend: str, tmp_path: Path, workdir: Path
) -> None:
    url = empty_database(backend, tmp_path)
    ran = workflow(workdir, url, "run", f"{TASKS}:definition", "--tokens", "tokens.json")
    uid = ran.out.split()[1]
    results = race(workdir, url, "cancel", uid, "--reason", "race")
    assert all(result.code == 0 for result in results), results
    cancelled = [r for r in results if f"cancelled workflow {uid}" in r.out]
    assert len(cancelled) == 1, results
    shown = show(workdir, url, uid)
    assert [change["to"] for change in shown["status_changes"]].count("CANCELLED") == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_retries_of_one_run_run_the_token_once(
    backend: str, tmp_path: Path, workdir: Path
) -> None:
    url = empty_database(backend, tmp_path)
    (workdir / "broken").touch()
    ran = workflow(workdir, url, "run", f"{TASKS}:fragile")
    assert ran.code == 1, ran
    uid = ran.out.split()[1]
    (workdir / "broken").unlink()
    results: list[Result] = race(workdir, url, "retry", uid, "--lock-wait", "30")
    ran_it = [r for r in results if r.code == 0 and "completed: 1 token" in r.out]
    assert len(ran_it) == 1, results
    for result in results:
        if result is not ran_it[0]:
            assert result.code == 1, result
            assert f"workflow {uid} is completed: nothing to retry" in result.err
    [token] = show(workdir, url, uid)["tokens"]
    assert token["data"]["tries"] == 2  # the failed task ran once more, by one process
