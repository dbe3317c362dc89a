"""Processes for the race tests of the runtime: answerers, timer firers and workers.

Run as a program, from the repository root (``tests`` importable)::

    python tests/runtime/race_worker.py fork PLAN.json
    python tests/runtime/race_worker.py worker URL --stop FILE [--lock-ttl S] [--poll S]

``fork`` imports everything once, then forks one process per entry of the
plan's ``processes`` (importing SQLAlchemy takes most of a second; 32 fresh
interpreters would spend half a minute of a two-core machine on it). Each
process opens its own :class:`~workflow.storage.Store` (nothing is connected
before the fork), writes ``ready-<i>`` in the plan's ``out`` directory, waits
for the ``gate`` file, plays its role and writes what it was told to
``out-<i>.json``. The launcher exits 0 when every process did. Roles:

``answer``
    :meth:`Waits.answer` each of its ``jobs`` (``{"job", "wait", "by",
    "decision", "data", "key"}``, and ``"at"``: not before this naive UTC
    time) in order, or those of the file ``jobs_from`` (read once the gate
    opened); the result of each is
    ``{"job", "recorded", "decided", "answer": {...}}`` or ``{"job",
    "refused": reason, "decision", "by"}``.
``fire``
    :meth:`Waits.fire_due` until the ``stop`` file exists: ``{"fired": n}``.
``work``
    :meth:`Worker.run_once` (the definitions of ``race_flows``) until the
    ``stop`` file exists: ``{"fired": n, "continued": [runs]}``.

``worker`` runs one :class:`~workflow.runtime.Worker` until the ``--stop``
file exists: the tests kill it with SIGKILL, or time how soon it continues
runs whose timers passed while no process ran.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a program: make ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.runtime.race_flows import DEFINITIONS
from workflow.errors import AnswerRefusedError
from workflow.runtime import Waits, Worker
from workflow.storage import Store
from workflow.storage.models import utcnow


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat(timespec="microseconds")


def answer(store: Store, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    waits = Waits(store)
    told = []
    for job in jobs:
        if job.get("at"):  # answer at that moment (naive UTC), not before
            pause = (datetime.fromisoformat(job["at"]) - utcnow()).total_seconds()
            if pause > 0:
                time.sleep(pause)
        try:
            outcome = waits.answer(
                job["wait"],
                by=job["by"],
                decision=job["decision"],
                data=job["data"],
                key=job["key"],
            )
        except AnswerRefusedError as refused:
            told.append(
                {
                    "job": job["job"],
                    "refused": refused.reason,
                    "decision": refused.decision,
                    "by": list(refused.by),
                }
            )
            continue
        given = outcome.answer
        told.append(
            {
                "job": job["job"],
                "recorded": outcome.recorded,
                "decided": outcome.decided,
                "answer": {
                    "by": given.by,
                    "decision": given.decision,
                    "data": given.data,
                    "key": given.key,
                    "at": _iso(given.at),
                },
            }
        )
    return told


def fire(store: Store, stop: Path, limit: int, launcher: int) -> dict[str, Any]:
    waits = Waits(store)
    fired = 0
    while not stop.exists() and not orphaned(launcher):
        done = waits.fire_due(limit=limit)
        fired += done
        if not done:
            time.sleep(0.002)
    return {"fired": fired}


def work(store: Store, stop: Path, batch: int, launcher: int) -> dict[str, Any]:
    worker = Worker(store, DEFINITIONS, batch=batch)
    fired = 0
    continued: list[str] = []
    while not stop.exists() and not orphaned(launcher):
        done = worker.run_once()
        fired += done.fired
        continued.extend(done.continued)
        if done.idle:
            time.sleep(0.005)
    return {"fired": fired, "continued": continued}


def orphaned(parent: int) -> bool:
    """Whether the process that started this one is gone (its test died): stop then."""
    return os.getppid() != parent


def play(plan: dict[str, Any], index: int, launcher: int) -> None:
    role: dict[str, Any] = plan["processes"][index]
    out = Path(plan["out"])
    stop = Path(plan.get("stop") or out / "stop")
    store = Store(plan["url"], lock_ttl=float(plan.get("lock_ttl", 60.0)))
    store.now()
    store.workflows(limit=1)  # connected before the gate opens
    (out / f"ready-{index}").touch()
    gate = Path(plan["gate"])
    while not gate.exists():
        if stop.exists() or orphaned(launcher):
            raise SystemExit(f"process {index}: stopped before the gate opened")
        time.sleep(0.001)
    if role["role"] == "answer":
        jobs = role.get("jobs")
        if jobs is None:  # written while the process waited at the gate
            jobs = json.loads(Path(role["jobs_from"]).read_text())
        result: Any = answer(store, jobs)
    elif role["role"] == "fire":
        result = fire(store, stop, int(role.get("limit", 100)), launcher)
    elif role["role"] == "work":
        result = work(store, stop, int(role.get("batch", 100)), launcher)
    else:
        raise ValueError(f"no role {role['role']!r}")
    store.dispose()
    partial = out / f"out-{index}.part"
    partial.write_text(json.dumps(result))
    partial.rename(out / f"out-{index}.json")


def fork_all(plan_path: Path) -> int:
    plan = json.loads(plan_path.read_text())
    launcher = os.getpid()
    children = []
    for index in range(len(plan["processes"])):
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                play(plan, index, launcher)
            except BaseException:
                traceback.print_exc()
                status = 1
                (Path(plan["out"]) / f"failed-{index}").touch()  # seen by the test at once
            finally:
                sys.stderr.flush()
                os._exit(status)
        children.append(pid)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            failed += 1
    return 1 if failed else 0


def run_worker(url: str, stop: Path, lock_ttl: float, poll: float, batch: int) -> int:
    worker = Worker(Store(url, lock_ttl=lock_ttl), DEFINITIONS, poll=poll, batch=batch)
    parent = os.getppid()
    worker.run(until=lambda: stop.exists() or orphaned(parent))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    forking = commands.add_parser("fork")
    forking.add_argument("plan", type=Path)
    single = commands.add_parser("worker")
    single.add_argument("url")
    single.add_argument("--stop", type=Path, required=True)
    single.add_argument("--lock-ttl", type=float, default=60.0)
    single.add_argument("--poll", type=float, default=0.05)
    single.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    if args.command == "fork":
        return fork_all(args.plan)
    return run_worker(args.url, args.stop, args.lock_ttl, args.poll, args.batch)


if __name__ == "__main__":
    sys.exit(main())
