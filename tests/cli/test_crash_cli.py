"""SIGKILL ``workflow run`` and ``workflow resume`` at random moments: resuming loses nothing.

Each trial starts a real ``workflow run`` of a four-step flow over a few
tokens and kills it with SIGKILL at a random moment — while it starts, while
it stores its tokens, inside a task — then resumes the run with real
``workflow resume`` commands, killing up to :data:`MAX_KILLS` of them too,
until one is left to finish. The run's lock lasts one second (``--lock-ttl
1``), so each resume waits (``--lock-wait``) for the lock of the process that
died to lapse.

Whatever the moments, the run ends in one of three ways, each checked:

- nothing was stored (the kill came before the run's row);
- the run holds no input (the kill came while its tokens were stored):
  ``resume`` refuses it with exit code 1 and leaves it as it is;
- the run completes: every token COMPLETED with the data of a clean pass, the
  status changes agree with the rows, and no step ran more than once per
  kill (``calls.log``, written by the task outside the database).

On SQLite, PostgreSQL and MariaDB; in CI (``CI`` set) at least 50 trials on
SQLite and 20 on each server, as the crash suite of the Python API.
``WORKFLOW_CRASH_SEED`` replays a plan of kills, ``WORKFLOW_CRASH_TRIALS``
sets the number of trials per backend.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.cli.conftest import TASKS, subprocess_env
from tests.storage.conftest import BACKENDS, empty_database
from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.storage import Store

COMPLETED = ObjectStatus.COMPLETED.value

pytestmark = [
    pytest.mark.crash,
    pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL"),
]

STEPS = ["s1", "s2", "s3", "s4"]
#: Four steps, each adding one to the last one's value.
FLOW = {
    "name": "crashing",
    "steps": [
        {
            "name": step,
            "task": "cli_slow_step",
            "params": {"step": step, **({"of": f"@{STEPS[i - 1]}.value"} if i else {})},
        }
        for i, step in enumerate(STEPS)
    ],
}
TOKENS = 6
#: At most this many processes of a trial are killed; the next one must finish the run.
MAX_KILLS = 3
#: Trials running at once: most of a trial's time is spent waiting for a lock to lapse.
PARALLEL = 4
SEED = int(os.environ.get("WORKFLOW_CRASH_SEED") or random.SystemRandom().randrange(2**32))
#: Trials per backend: (the least CI runs, the default elsewhere).
TRIALS = {"sqlite": (50, 10), "postgresql": (20, 4), "mariadb": (20, 4)}


def trials(backend: str) -> int:
    required, default = TRIALS[backend]
    wanted = int(os.environ.get("WORKFLOW_CRASH_TRIALS") or default)
    return max(wanted, required) if os.environ.get("CI") else wanted


@dataclass
class Trial:
    """One run killed and resumed: where it runs and what happened to it."""

    number: int
    url: str
    workdir: Path
    plan: random.Random
    uuid: str | None = None
    kills: int = 0
    outcome: str = ""

    @property
    def where(self) -> str:
        return f"trial {self.number} (WORKFLOW_CRASH_SEED={SEED}, workflow {self.uuid})"

    def command(self, *argv: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "workflow",
            "--json",
            "--import",
            TASKS,
            "--database",
            self.url,
            *argv,
        ]

    def start(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*argv, "--lock-ttl", "1"),
            cwd=self.workdir,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def finished(process: subprocess.Popen[str], where: str) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert out, f"{where}: no output (exit {process.returncode}): {err}"
    result: dict[str, Any] = json.loads(out)
    result["returncode"] = process.returncode
    return result


def kill_sometime(process: subprocess.Popen[str], delay: float) -> bool:
    """Kill ``process`` ``delay`` seconds from now; whether it was still running."""
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.communicate()  # waits, and closes the pipes
        return True
    return False


def new_run(engine: sa.Engine, workdir: Path) -> str | None:
    """The uuid of the run the trial's ``workflow run`` stored, if it stored one."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT uuid, extra_data FROM wf_workflow WHERE name = :name"),
            {"name": workdir.name},
        ).all()
    assert len(rows) <= 1, f"{workdir.name}: {len(rows)} runs"
    return rows[0][0] if rows else None


def play(trial: Trial, engine: sa.Engine) -> None:
    """Run, kill and resume the trial's workflow until it ends."""
    plan = trial.plan
    process = trial.start("run", "flow.json", "--tokens", "in.json", "--name", trial.workdir.name)
    if plan.random() < 0.25:  # any moment of the process's life, even before the run's row
        killed = kill_sometime(process, plan.uniform(0, 1.5))
    else:  # a moment after the run's row appears: storing the tokens or running them
        deadline = time.monotonic() + 60
        while new_run(engine, trial.workdir) is None and process.poll() is None:
            assert time.monotonic() < deadline, f"{trial.where}: no run stored within 60 s"
            time.sleep(0.005)
        # a quarter at once (the tokens are being stored), the others a little later
        killed = kill_sometime(process, 0.0 if plan.random() < 0.25 else plan.uniform(0, 0.4))
    trial.kills += killed
    if not killed:
        assert finished(process, trial.where)["status"] == "COMPLETED"
    trial.uuid = new_run(engine, trial.workdir)
    if trial.uuid is None:
        trial.outcome = "nothing stored"
        return
    while True:
        process = trial.start("resume", trial.uuid, "--lock-wait", "30")
        killing = trial.kills < MAX_KILLS and plan.random() < 0.5
        if killing and kill_sometime(process, plan.uniform(0.1, 0.9)):
            trial.kills += 1
            continue
        result = finished(process, trial.where)
        if "no input to resume" in result.get("error", ""):
            assert result["returncode"] == 1, f"{trial.where}: {result}"
            trial.outcome = "no input"
            return
        assert result["returncode"] == 0, f"{trial.where}: {result}"
        assert result["status"] == "COMPLETED", f"{trial.where}: {result}"
        trial.outcome = "completed"
        return


def check_completed(trial: Trial, store: Store, clean: dict[int, Any]) -> None:
    """A completed trial's run holds the data of a clean pass, and ran each step few times."""
    assert trial.uuid is not None
    where = trial.where
    row = store.workflow(trial.uuid)
    assert row["status"] == WorkflowStatus.COMPLETED.value, f"{where}: status {row['status']}"
    assert row["lock_owner"] is None, f"{where}: the lock is still held"
    rows = store.token_rows(trial.uuid)
    assert row["token_count"] == TOKENS == len(rows), f"{where}: {len(rows)} tokens"
    for token in rows:
        assert token["status"] == COMPLETED, f"{where}: token {token['position']} {token['status']}"
        data = dict(token["data"])
        assert data.pop("_runtime")["run_id"] == trial.uuid, f"{where}: token {token['position']}"
        assert data == clean[token["position"]], f"{where}: token {token['position']}"
    last: dict[int, int] = {}
    for change in store.status_change_rows(trial.uuid):
        if change["token_position"] is not None:
            last[change["token_position"]] = change["to_status"]
    assert last == dict.fromkeys(range(TOKENS), COMPLETED), f"{where}: status changes {last}"
    calls = collections.Counter((trial.workdir / "calls.log").read_text().splitlines())
    for n in range(TOKENS):
        for step in STEPS:
            made = calls[f"{n} {step}"]
            # token checkpoints: a kill repeats at most the steps of the token it lands in
            assert 1 <= made <= 1 + trial.kills, f"{where}: token {n} ran {step} {made} times"


def check_without_input(trial: Trial, store: Store) -> None:
    assert trial.uuid is not None
    row = store.workflow(trial.uuid)
    assert row["token_count"] is None, f"{trial.where}: refused a run with input"
    assert store.token_rows(trial.uuid) == [], f"{trial.where}: tokens without their count"
    assert row["status"] == WorkflowStatus.NEW.value, f"{trial.where}: resume changed the run"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_at_random_moments_then_resume_completes_the_run(
    backend: str, tmp_path: Path
) -> None:
    url = empty_database(backend, tmp_path)
    store = Store(url)
    store.create_all()
    workdirs = []
    for number in range(trials(backend) + 1):  # the first one is the clean pass
        workdir = tmp_path / f"crash-{os.getpid()}-{number}"
        workdir.mkdir()
        (workdir / "flow.json").write_text(json.dumps(FLOW))
        (workdir / "in.json").write_text(json.dumps([{"n": n} for n in range(TOKENS)]))
        workdirs.append(workdir)
    try:
        baseline = Trial(0, url, workdirs[0], random.Random(SEED))
        clean_run = finished(
            baseline.start("run", "flow.json", "--tokens", "in.json", "--name", "clean"),
            "the clean pass",
        )
        assert clean_run["status"] == "COMPLETED", clean_run
        clean = {
            row["position"]: {k: v for k, v in row["data"].items() if k != "_runtime"}
            for row in store.token_rows(clean_run["uuid"])
        }
        plan = random.Random(SEED)
        played = [
            Trial(number, url, workdir, random.Random(plan.randrange(2**32)))
            for number, workdir in enumerate(workdirs[1:], start=1)
        ]
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            for done in pool.map(lambda trial: play(trial, store.sql_engine), played):
                assert done is None
        outcomes = collections.Counter(trial.outcome for trial in played)
        for trial in played:
            if trial.outcome == "completed":
                check_completed(trial, store, clean)
            elif trial.outcome == "no input":
                check_without_input(trial, store)
        kills = sum(trial.kills for trial in played)
        print(f"{backend}: {len(played)} trials, {kills} kills, {dict(outcomes)}")
        # most kills land after the input is stored (a slow machine stores slowly: not all)
        assert outcomes["completed"] >= len(played) // 4, f"too few runs got going: {outcomes}"
        assert kills >= len(played) // 2, f"too few kills landed: {kills} in {len(played)} trials"
    finally:
        store.dispose()
