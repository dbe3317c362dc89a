"""Measure how soon a schedule's run starts after its fire time, with a real worker.

Run it from the repository root::

    python benchmarks/bench_schedules.py              # the table, on every database that answers
    python benchmarks/bench_schedules.py --json       # the same results as JSON
    python benchmarks/bench_schedules.py --check      # exit 1 when the target fails
    python benchmarks/bench_schedules.py --postgresql-url postgresql+psycopg://user@host/db \\
        --mariadb-url mysql+pymysql://user@host/db

A :class:`~workflow.runtime.Worker` runs in a process of its own (this
script with ``--serve-worker``, default ``poll``). One every-minute schedule
starts a one-task run. For each of ``--fires`` samples, the schedule's
``next_fire_at`` is set to the database's now plus 0.3 to 0.8 s (so that
fire times fall at any moment of the worker's poll), and the latency is the
run's ``created`` time (stored by the worker that starts it) minus the fire
time: due -> run started. Target: p95 <= 1 s. The first two fires, which
wait for the worker process to start, are not counted.

The tables are dropped and created afresh: give a database no test uses
(default ``workflow_bench``). A backend that cannot be reached is reported
and skipped. Times depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow.runtime import Schedules, Worker  # noqa: E402
from workflow.runtime.schedules import fires_table, schedules_table  # noqa: E402
from workflow.storage import Store  # noqa: E402
from workflow.storage.run_rows import workflows  # noqa: E402

TARGET_P95 = 1.0
#: Fires not counted: the worker process starts (interpreter, imports) during the first.
WARMUP = 2


def work(obj: Any, eng: Any) -> None:
    obj.data["done"] = True


def serve_worker(url: str) -> None:
    """Run a worker until killed (the ``--serve-worker`` process)."""
    Worker(Store(url), {"tick": [work]}).run()


def measure(url: str, fires: int) -> dict[str, Any]:
    store = Store(url)
    store.drop_all()
    store.create_all()
    schedules = Schedules(store)
    schedules.add("tick", cron="* * * * *", flow="tick", overlap="allow")
    worker = subprocess.Popen([sys.executable, __file__, "--serve-worker", url])
    latencies = []
    try:
        for sample in range(fires + WARMUP):  # the first fires wait for the worker's imports
            due = store.now() + timedelta(seconds=random.uniform(0.3, 0.8))
            with store.transaction("set the fire time") as conn:
                conn.execute(schedules_table.update().values(next_fire_at=due))
            deadline = time.monotonic() + 30
            while True:
                with store.transaction("read the fire") as conn:
                    run = conn.execute(
                        sa.select(fires_table.c.run_uuid).where(fires_table.c.fire_time == due)
                    ).scalar()
                    created = (
                        conn.execute(
                            sa.select(workflows.c.created).where(workflows.c.uuid == run)
                        ).scalar()
                        if run
                        else None
                    )
                if created is not None:
                    if sample >= WARMUP:
                        latencies.append((created - due).total_seconds())
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the fire at {due} did not start a run within 30 s")
                time.sleep(0.005)
    finally:
        worker.kill()
        worker.wait()
        store.dispose()
    ordered = sorted(latencies)
    return {
        "fires": len(ordered),
        "p50": statistics.median(ordered),
        "p95": ordered[max(0, int(len(ordered) * 0.95) - 1)],
        "max": ordered[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--fires", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument(
        "--postgresql-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/workflow_bench"
    )
    parser.add_argument(
        "--mariadb-url", default="mysql+pymysql://root@127.0.0.1:3306/workflow_bench"
    )
    args = parser.parse_args()
    if args.serve_worker:
        serve_worker(args.serve_worker)
        return 0
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as where:
        urls = {
            "sqlite": f"sqlite:///{Path(where) / 'bench.sqlite'}",
            "postgresql": args.postgresql_url,
            "mariadb": args.mariadb_url,
        }
        for backend, url in urls.items():
            if not url:
                continue
            try:
                results[backend] = measure(url, args.fires)
            except Exception as exc:  # a server that does not answer is reported
                results[backend] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"due -> run started, a real worker (target: p95 <= {TARGET_P95:g} s)")
        for backend, result in results.items():
            if "error" in result:
                print(f"  {backend:<11} skipped: {result['error']}")
            else:
                print(
                    f"  {backend:<11} {result['fires']} fires: p50 {result['p50']:.3f} s, "
                    f"p95 {result['p95']:.3f} s, max {result['max']:.3f} s"
                )
    failed = any("p95" in result and result["p95"] > TARGET_P95 for result in results.values())
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
