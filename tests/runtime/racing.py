"""What the race tests of the runtime share: starting processes, waiting, reading rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workflow.engine_db import WorkflowStatus
from workflow.runtime.waits import answers, waits
from workflow.storage import Store

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("race_worker.py")
#: Seconds a group of processes may take before the test calls it hung.
TIMEOUT = 300.0


def child_env(effects: Path | None = None) -> dict[str, str]:
    """The environment of a child process: ``tests`` importable, effects to ``effects``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if effects is not None:
        env["WORKFLOW_RACE_EFFECTS"] = str(effects)
    return env


def wait_until(done: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``done`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout:.0f} s")
        time.sleep(0.05)


class Crowd:
    """Processes forked at once by ``race_worker.py fork``, released together by a gate.

    :param roles: one dict per process (see ``race_worker.py``).
    """

    def __init__(
        self,
        where: Path,
        url: str,
        roles: list[dict[str, Any]],
        *,
        effects: Path | None = None,
        lock_ttl: float = 60.0,
    ) -> None:
        self.dir = where
        where.mkdir(parents=True, exist_ok=False)
        self.count = len(roles)
        self.gate = where / "gate"
        self.stop_file = where / "stop"
        plan = {
            "url": url,
            "out": str(where),
            "gate": str(self.gate),
            "stop": str(self.stop_file),
            "lock_ttl": lock_ttl,
            "processes": roles,
        }
        (where / "plan.json").write_text(json.dumps(plan))
        self.log = where / "stderr.txt"
        with self.log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), "fork", str(where / "plan.json")],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=child_env(effects),
            )

    def check(self) -> None:
        """Fail at once when a process failed (the others may loop until stopped)."""
        if any(self.dir.glob("failed-*")) or self.process.poll() not in (None, 0):
            self.stop()
            raise AssertionError(f"a process failed: {self.log.read_text()}")

    def ready(self) -> None:
        """Wait until every process is connected and waiting at the gate."""

        def ready() -> bool:
            self.check()
            if self.process.poll() is not None:
                raise AssertionError(f"the processes ended early: {self.log.read_text()}")
            return len(list(self.dir.glob("ready-*"))) == self.count

        wait_until(ready, f"{self.count} processes ready")

    def go(self) -> None:
        """Open the gate once every process is connected and waiting."""
        self.ready()
        self.gate.touch()

    def wait_for(self, indices: range) -> None:
        """Wait until the processes ``indices`` (those that end by themselves) ended."""

        def ended() -> bool:
            self.check()
            return all((self.dir / f"out-{index}.json").exists() for index in indices)

        wait_until(ended, f"processes {indices} ended")

    def stop(self) -> None:
        """Ask the processes that loop (fire, work) to end."""
        self.stop_file.touch()

    def results(self) -> list[Any]:
        """Wait for every process to end; return what each was told, in order."""
        try:
            returncode = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        assert returncode == 0, self.log.read_text()
        return [
            json.loads((self.dir / f"out-{index}.json").read_text()) for index in range(self.count)
        ]

    def close(self) -> None:
        """Stop and reap the processes, whatever happened (for ``finally``)."""
        self.stop()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_rows(store: Store) -> dict[str, Any]:
    """Every row of ``wf_wait``, by id."""
    with store.transaction("read the waits") as conn:
        return {row.id: row for row in conn.execute(sa.select(waits))}


def answer_rows(store: Store) -> list[Any]:
    """Every row of ``wf_answer``."""
    with store.transaction("read the answers") as conn:
        return list(conn.execute(sa.select(answers)))


def statuses(store: Store, name: str) -> Counter[str]:
    """How many runs called ``name`` have each status (by label)."""
    return Counter(WorkflowStatus(row["status"]).name for row in store.workflows(name=name))


def all_completed(store: Store, name: str, count: int) -> Callable[[], bool]:
    """A test for :func:`wait_until`: the ``count`` runs called ``name`` completed."""
    return lambda: statuses(store, name) == Counter({"COMPLETED": count})


def effect_lines(path: Path) -> Counter[tuple[str, int, str]]:
    """How often each ``(run, token, step)`` task ran, from the effects file."""
    found: Counter[tuple[str, int, str]] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            run, token, step, _ = line.split()
            found[(run, int(token), step)] += 1
    return found
