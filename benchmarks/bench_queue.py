"""Measure the work queue: how workers scale, and what claiming a token costs.

Run it from the repository root::

    python benchmarks/bench_queue.py                  # the table, on PostgreSQL and SQLite
    python benchmarks/bench_queue.py --json           # the same results as JSON
    python benchmarks/bench_queue.py --check          # exit 1 when a target fails
    python benchmarks/bench_queue.py --postgresql-url postgresql+psycopg://user@host/db

What it measures:

(a) tasks that wait on I/O (targets: 4 workers >= 3.2x faster than 1, 16 >= 10x)
    ``--io-tokens`` tokens of one task that sleeps 50 ms, put on a queue and
    run by 1, 4 and 16 worker *processes* (this script with
    ``--serve-worker``, concurrency 1, poll 0.05 s), started and idle before
    the clock starts: the clock runs from ``enqueue()`` to the run's row
    saying COMPLETED. Speed-up = the time of 1 worker / the time of N.
(b) tasks that compute (target: 2 workers >= 1.7x faster than 1 on 2 cores)
    ``--cpu-tokens`` tokens of a task that computes for about 20 ms, by 1 and
    by 2 worker processes.
(c) claiming (target: <= 2 ms a token on PostgreSQL)
    ``--claims`` ready items claimed one at a time by :meth:`WorkQueue.claim`
    in this process: the median and p95 of one claim. Then the whole cost of
    the queue around a task that does nothing: ``--claims`` tokens run by one
    :class:`~workflow.runtime.Worker` (claim, start, store, join), per token.

(a) and (b) run on PostgreSQL (SQLite has one writer: its numbers are
reported with ``--sqlite-scaling``, not judged). The tables are created
afresh for each scenario: on PostgreSQL in the schema ``--postgresql-schema``
(default ``workflow_bench``, created when missing). Times depend on the
machine and on what else runs there: on a busy machine rerun before trusting
a number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from workflow.engine_db import WorkflowStatus  # noqa: E402
from workflow.runtime import Worker  # noqa: E402
from workflow.storage import PersistentWorkflowEngine, Store  # noqa: E402
from workflow.storage.queue import WorkQueue  # noqa: E402

DEFAULT_POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def wait_io(obj: Any, eng: Any) -> None:
    """A task that waits 50 ms, as on a network call."""
    time.sleep(0.05)
    obj.data["done"] = True


def compute(obj: Any, eng: Any) -> None:
    """A task that computes for about 20 ms."""
    total = 0
    for i in range(obj.data["work"]):
        total += i * i % 7
    obj.data["done"] = total


def nothing(obj: Any, eng: Any) -> None:
    """A task that does nothing: what is left is the queue's own cost."""


DEFINITIONS = {"io": [wait_io], "cpu": [compute], "noop": [nothing]}


# -- stores --------------------------------------------------------------------------


def fresh_store(url: str, schema: str | None) -> Store:
    """A store on ``url`` with empty tables (in ``schema`` on PostgreSQL)."""
    if schema is not None:
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        admin.dispose()
        engine = Store.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        store = Store(engine)
    else:
        store = Store(url)
    store.drop_all()
    store.create_all()
    return store


def worker_url(url: str, schema: str | None) -> str:
    return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"


# -- worker processes -----------------------------------------------------------------


def serve_worker(url: str, queue: str, stop: Path) -> int:
    """The ``--serve-worker`` mode: one worker process until ``stop`` exists."""
    store = Store(url)
    worker = Worker(store, DEFINITIONS, queue=queue, poll=0.05)
    worker.run_once()
    stop.with_name(f"ready-{os.getpid()}").touch()
    worker.run(until=stop.exists)
    store.dispose()
    return 0


class Workers:
    """``count`` worker processes of this script on ``queue``, idle until work comes."""

    def __init__(self, url: str, queue: str, count: int, where: Path) -> None:
        self.stop = where / f"stop-{queue}-{count}"
        self.processes = [
            subprocess.Popen(
                [sys.executable, __file__, "--serve-worker", url, queue, str(self.stop)],
                stdout=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        ready = [where / f"ready-{process.pid}" for process in self.processes]
        deadline = time.monotonic() + 120
        while not all(path.exists() for path in ready):  # imports and a first idle pass
            if time.monotonic() > deadline:
                raise RuntimeError("the worker processes did not start within 2 minutes")
            time.sleep(0.05)
        time.sleep(0.5)

    def close(self) -> None:
        self.stop.touch()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def timed_run(store: Store, kind: str, items: list[Any], queue: str) -> float:
    """Enqueue ``items`` on ``queue`` and return the seconds until the run completed."""
    engine = PersistentWorkflowEngine.with_name(kind, store=store, definition=DEFINITIONS[kind])
    started = time.perf_counter()
    engine.enqueue(items, queue)
    while store.workflow(engine.uuid)["status"] != WorkflowStatus.COMPLETED.value:
        time.sleep(0.01)
    return time.perf_counter() - started


def scaling(
    url: str, schema: str | None, kind: str, counts: list[int], items: list[Any], where: Path
) -> dict[int, float]:
    """Seconds to finish ``items`` with each number of worker processes."""
    seconds = {}
    for count in counts:
        store = fresh_store(url, schema)
        queue = f"{kind}-{count}"
        workers = Workers(worker_url(url, schema), queue, count, where)
        try:
            seconds[count] = timed_run(store, kind, items, queue)
        finally:
            workers.close()
            store.dispose()
    return seconds


# -- claiming ------------------------------------------------------------------------------


def claiming(url: str, schema: str | None, claims: int) -> dict[str, float]:
    """Milliseconds of one claim, and of the queue's whole cost around a no-op task."""
    store = fresh_store(url, schema)
    engine = PersistentWorkflowEngine.with_name("noop", store=store, definition=[nothing])
    engine.enqueue([{} for _ in range(claims)], "claims")
    queue = WorkQueue(store, "claims")
    times = []
    for _ in range(claims // 2):
        started = time.perf_counter()
        queue.claim("bench")
        times.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    batches = 0
    while queue.claim("bench", limit=8):
        batches += 1
    batched = (time.perf_counter() - started) * 1000 / max(1, claims - claims // 2)
    store.dispose()
    store = fresh_store(url, schema)
    engine = PersistentWorkflowEngine.with_name("noop", store=store, definition=[nothing])
    engine.enqueue([{} for _ in range(claims)], "whole")
    worker = Worker(store, DEFINITIONS, queue="whole")
    started = time.perf_counter()
    while worker.run_once().ran:
        pass
    whole = (time.perf_counter() - started) * 1000 / claims
    store.dispose()
    times.sort()
    return {
        "claim_median_ms": statistics.median(times),
        "claim_p95_ms": times[int(len(times) * 0.95) - 1],
        "claim_of_8_per_token_ms": batched,
        "token_whole_ms": whole,
    }


# -- the report ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-worker", nargs=3, metavar=("URL", "QUEUE", "STOP"))
    parser.add_argument("--postgresql-url", default=DEFAULT_POSTGRESQL)
    parser.add_argument("--postgresql-schema", default="workflow_bench")
    parser.add_argument("--io-tokens", type=int, default=240)
    parser.add_argument("--cpu-tokens", type=int, default=120)
    parser.add_argument("--cpu-work", type=int, default=250_000)
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--sqlite-scaling", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.serve_worker:
        url, queue, stop = args.serve_worker
        return serve_worker(url, queue, Path(stop))

    results: dict[str, Any] = {"machine": f"{platform.node()} {os.cpu_count()} cores"}
    failures = []
    pg, schema = args.postgresql_url, args.postgresql_schema
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        io = scaling(pg, schema, "io", [1, 4, 16], [{} for _ in range(args.io_tokens)], where)
        cpu_items = [{"work": args.cpu_work} for _ in range(args.cpu_tokens)]
        cpu = scaling(pg, schema, "cpu", [1, 2], cpu_items, where)
        results["io_seconds"] = io
        results["io_speedup"] = {n: io[1] / io[n] for n in io}
        results["cpu_seconds"] = cpu
        results["cpu_speedup"] = {n: cpu[1] / cpu[n] for n in cpu}
        results["postgresql_claiming"] = claiming(pg, schema, args.claims)
        sqlite_url = f"sqlite:///{where / 'bench.sqlite'}"
        results["sqlite_claiming"] = claiming(sqlite_url, None, args.claims)
        if args.sqlite_scaling:
            sqlite_io = scaling(sqlite_url, None, "io", [1, 4], [{}] * args.io_tokens, where)
            results["sqlite_io_seconds"] = sqlite_io
    checks = [
        ("io: 4 workers >= 3.2x", results["io_speedup"][4] >= 3.2),
        ("io: 16 workers >= 10x", results["io_speedup"][16] >= 10),
        ("cpu: 2 workers >= 1.7x", results["cpu_speedup"][2] >= 1.7),
        ("claim on PostgreSQL <= 2 ms", results["postgresql_claiming"]["claim_median_ms"] <= 2),
    ]
    failures = [name for name, ok in checks if not ok]
    results["checks"] = dict(checks)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"machine: {results['machine']}")
        print(f"(a) I/O tasks, {args.io_tokens} tokens of 50 ms, PostgreSQL")
        for n, seconds in io.items():
            print(
                f"    {n:>2} workers: {seconds:7.2f} s  speed-up {results['io_speedup'][n]:5.2f}x"
            )
        print(f"(b) CPU tasks, {args.cpu_tokens} tokens, PostgreSQL")
        for n, seconds in cpu.items():
            print(
                f"    {n:>2} workers: {seconds:7.2f} s  speed-up {results['cpu_speedup'][n]:5.2f}x"
            )
        for name in ("postgresql", "sqlite"):
            c = results[f"{name}_claiming"]
            print(
                f"(c) {name}: one claim median {c['claim_median_ms']:.2f} ms, "
                f"p95 {c['claim_p95_ms']:.2f} ms, in claims of 8 "
                f"{c['claim_of_8_per_token_ms']:.2f} ms a token; the queue around a no-op task "
                f"{c['token_whole_ms']:.2f} ms a token"
            )
        if "sqlite_io_seconds" in results:
            print(f"    SQLite I/O scaling (not judged): {results['sqlite_io_seconds']}")
        for name, ok in checks:
            print(f"    {'ok  ' if ok else 'FAIL'} {name}")
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
