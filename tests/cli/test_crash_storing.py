"""SIGKILL ``workflow run`` while it stores its tokens: the input is stored whole or not at all.

Each trial starts a real ``workflow run`` over a file of many tokens, waits
until the run's row appears in the database, and kills the process with
SIGKILL a random moment later — most kills land while the tokens are being
stored. Whatever the moment, the database holds either the run without
input (``token_count`` NULL, no token) or every token with their number.
A run without input is refused by ``workflow resume``, which names it and
says what to do, instead of finishing it with no tokens.

On SQLite, PostgreSQL and MariaDB (the servers of the storage suite; in CI a
missing server fails). ``WORKFLOW_CRASH_SEED`` replays a plan of delays.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cli.conftest import TASKS, subprocess_env
from tests.storage.conftest import BACKENDS, empty_database
from workflow.storage import Store

TOKENS = 20_000
TRIALS = {"sqlite": 5, "postgresql": 3, "mariadb": 3}
SEED = int(os.environ.get("WORKFLOW_CRASH_SEED") or random.SystemRandom().randrange(2**32))

pytestmark = pytest.mark.crash


def command(url: str, *argv: str) -> list[str]:
    return [sys.executable, "-m", "workflow", "--import", TASKS, "--database", url, *argv]


def start_run(url: str, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command(url, "run", "simple.json", "--tokens", "big.jsonl"),
        cwd=workdir,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_new_run(engine: sa.Engine, known: set[str], process: subprocess.Popen[bytes]) -> str:
    """Return the uuid of the run ``process`` stored, as soon as its row is visible."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            uuids = set(conn.execute(sa.text("SELECT uuid FROM wf_workflow")).scalars())
        new = uuids - known
        if new:
            [uuid] = new
            return uuid
        assert process.poll() is None, f"workflow run exited with {process.returncode} early"
        time.sleep(0.002)
    raise AssertionError("workflow run stored no run within 60 s")


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_while_storing_tokens_leaves_the_input_whole_or_absent(
    backend: str, workdir: Path, tmp_path: Path
) -> None:
    url = empty_database(backend, tmp_path)
    (workdir / "big.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(TOKENS)))
    plan = random.Random(SEED)
    store = Store(url)
    store.create_all()
    engine = store.sql_engine
    seen: set[str] = set()
    outcomes = {"no input": 0, "whole input": 0}
    try:
        for trial in range(TRIALS[backend]):
            where = f"{backend} trial {trial} (WORKFLOW_CRASH_SEED={SEED})"
            process = start_run(url, workdir)
            try:
                uuid = wait_for_new_run(engine, seen, process)
                time.sleep(0 if trial == 0 else plan.uniform(0, 0.25))
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
            seen.add(uuid)
            row = store.workflow(uuid)
            stored = len(store.token_rows(uuid))
            if row["token_count"] is None:
                outcomes["no input"] += 1
                assert stored == 0, f"{where}: {stored} tokens stored without their count"
                done = subprocess.run(
                    command(url, "--json", "resume", uuid),
                    cwd=workdir,
                    env=subprocess_env(),
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert done.returncode == 1, f"{where}: resume exited {done.returncode}"
                reported = json.loads(done.stdout)
                assert reported["exit_code"] == 1
                assert "no input to resume" in reported["error"], f"{where}: {done.stdout}"
                assert f"workflow {uuid} " in reported["error"]
                assert store.workflow(uuid)["status"] == 0, f"{where}: resume changed the run"
                assert store.token_rows(uuid) == []
            else:
                outcomes["whole input"] += 1
                assert row["token_count"] == TOKENS, f"{where}: count {row['token_count']}"
                assert stored == TOKENS, f"{where}: {stored} of {TOKENS} tokens stored"
    finally:
        store.dispose()
    # The first kill comes as soon as the run's row shows: the tokens are being stored.
    assert outcomes["no input"] >= 1, f"no kill landed while storing: {outcomes}"
