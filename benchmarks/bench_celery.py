"""Measure what Celery costs per token next to the database work queue, same tasks, same machine.

Run it from the repository root (it needs the ``celery`` and ``postgresql``
extras, and the brokers)::

    python benchmarks/bench_celery.py --postgresql-url postgresql+psycopg://postgres@127.0.0.1/bench
    python benchmarks/bench_celery.py --tokens 2000 --repeat 3 --concurrency 2 --json

For each carrier — the database queue (a ``workflow worker``-like process:
a :class:`~workflow.runtime.Worker` with ``queue``), Celery over Redis, and
Celery over RabbitMQ — one worker process is started and warmed up (a run
of 20 tokens), then ``--repeat`` runs of ``--tokens`` tokens, each of
``--tasks`` trivial tasks (``--pause`` seconds of sleep each, 0 by default,
so that the carrier's own cost shows), are queued one after the other. The
clock starts before the run is stored and queued and stops when its row
says COMPLETED (read every 5 ms). The table gives the median time per token
in milliseconds and the ratio to the database queue. ``--concurrency``: the
worker's threads (database queue) or pool processes (Celery).

The database is PostgreSQL (``--postgresql-url``): its ``wf_`` tables are
dropped and created for each carrier, so give it a database no test uses.
A broker that cannot be reached is reported and skipped. Times depend on
the machine and on what else runs there: on a busy machine rerun before
trusting a number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUEUE = "bench"
TASKS = int(os.environ.get("WORKFLOW_BENCH_TASKS", "1"))
PAUSE = float(os.environ.get("WORKFLOW_BENCH_PAUSE", "0"))


def task(obj: Any, eng: Any) -> None:
    """A task of the benchmark's runs: a little arithmetic, and ``--pause`` of sleep."""
    if PAUSE:
        time.sleep(PAUSE)
    obj.data = obj.data + 1


#: The benchmark's run, by name.
DEFINITIONS = {"bench": [task] * TASKS}


def celery_queue_of(broker: str, database: str) -> Any:
    """The :class:`~workflow.integrations.celery.CeleryQueue` of the benchmark."""
    from workflow.integrations.celery import CeleryQueue

    celery_queue = os.environ.get("WORKFLOW_BENCH_CELERY_QUEUE", "workflow_bench")
    return CeleryQueue(broker, database, DEFINITIONS, queue=QUEUE, celery_queue=celery_queue)


# What ``celery -A bench_celery worker`` finds, when the environment names a broker.
if os.environ.get("WORKFLOW_BENCH_BROKER"):
    queue = celery_queue_of(os.environ["WORKFLOW_BENCH_BROKER"], os.environ["WORKFLOW_BENCH_DB"])
    app = queue.app


def child_env(broker: str | None, database: str, pause: float, tasks: int) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")])
        ),
        "WORKFLOW_BENCH_DB": database,
        "WORKFLOW_BENCH_PAUSE": str(pause),
        "WORKFLOW_BENCH_TASKS": str(tasks),
    }
    env.pop("WORKFLOW_BENCH_BROKER", None)
    if broker is not None:
        env["WORKFLOW_BENCH_BROKER"] = broker
    return env


def start_worker(
    broker: str | None, database: str, args: argparse.Namespace, log: Path
) -> subprocess.Popen[bytes]:
    """Start a worker process of the carrier; return when it is ready."""
    env = child_env(broker, database, args.pause, args.tasks)
    if broker is None:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-db-worker",
            str(log) + ".stop",
        ]
        ready = b"ready"
    else:
        command = [
            sys.executable, "-m", "celery", "-A", "bench_celery", "worker",
            "--queues", args.celery_queue, "--concurrency", str(args.concurrency),
            "--pool", "prefork", "--without-mingle", "--without-gossip", "--loglevel", "INFO",
        ]  # fmt: skip
        ready = b" ready."
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while ready not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the worker did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return process


def serve_db_worker(stop: str, concurrency: int) -> int:
    """The database queue's worker process: run until the file ``stop`` exists."""
    from workflow.runtime import Worker
    from workflow.storage import Store

    store = Store(os.environ["WORKFLOW_BENCH_DB"])
    worker = Worker(store, DEFINITIONS, queue=QUEUE, concurrency=concurrency, poll=0.01)
    print("ready", flush=True)
    worker.run(until=Path(stop).exists)
    return 0


def one_run(store: Any, carrier: Any, tokens: int, tasks: int) -> float:
    """Queue a run of ``tokens`` tokens and wait until it completed; return the seconds."""
    from workflow.storage import PersistentWorkflowEngine

    started = time.perf_counter()
    engine = PersistentWorkflowEngine.with_name("bench", store=store)
    if carrier is None:
        engine.enqueue(list(range(tokens)), QUEUE)
    else:
        carrier.enqueue(engine, list(range(tokens)))
    while store.workflow(engine.uuid)["status"] != 4:  # COMPLETED
        if time.perf_counter() - started > 600:
            raise SystemExit(f"run {engine.uuid} did not complete in 10 minutes")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    assert [row["data"] for row in store.token_rows(engine.uuid)] == [
        n + tasks for n in range(tokens)
    ]
    return elapsed


def measure(name: str, broker: str | None, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    from workflow.storage import Store

    store = Store(args.postgresql_url)
    store.drop_all()
    store.create_all()
    carrier = None
    if broker is not None:
        carrier = celery_queue_of(broker, args.postgresql_url)
        carrier.app.control.purge()
    log = logs / f"{name}.log"
    process = start_worker(broker, args.postgresql_url, args, log)
    try:
        one_run(store, carrier, 20, args.tasks)  # warm-up: imports, connections, the broker's queue
        times = [one_run(store, carrier, args.tokens, args.tasks) for _ in range(args.repeat)]
    finally:
        Path(str(log) + ".stop").touch()
        process.terminate()
        process.wait(timeout=30)
        store.dispose()
    median = statistics.median(times)
    return {"carrier": name, "seconds": times, "ms_per_token": 1000 * median / args.tokens}


def reachable(broker: str) -> str | None:
    from kombu import Connection

    try:
        with Connection(broker, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any failure to connect means "not here"
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve-db-worker"]:
        return serve_db_worker(argv[1], int(os.environ.get("WORKFLOW_BENCH_CONCURRENCY", "1")))
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--postgresql-url", default=os.environ.get("WORKFLOW_BENCH_POSTGRESQL_URL"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--celery-queue", default="workflow_bench", help="the broker's queue")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not args.postgresql_url:
        parser.error(
            "give --postgresql-url (or WORKFLOW_BENCH_POSTGRESQL_URL): a database no test uses"
        )
    os.environ["WORKFLOW_BENCH_CONCURRENCY"] = str(args.concurrency)
    os.environ["WORKFLOW_BENCH_CELERY_QUEUE"] = args.celery_queue
    results, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_celery-") as where:
        logs = Path(where)
        results.append(measure("database queue", None, args, logs))
        for name, broker in (
            ("celery redis", args.redis_url),
            ("celery rabbitmq", args.rabbitmq_url),
        ):
            problem = reachable(broker)
            if problem is not None:
                skipped[name] = problem
                continue
            results.append(measure(name, broker, args, logs))
    base = results[0]["ms_per_token"]
    for result in results:
        result["ratio"] = result["ms_per_token"] / base
    if args.json:
        print(
            json.dumps({"settings": vars(args), "results": results, "skipped": skipped}, indent=2)
        )
        return 0
    print(
        f"{args.tokens} tokens x {args.tasks} task(s), pause {args.pause} s, "
        f"concurrency {args.concurrency}, median of {args.repeat}"
    )
    print(f"{'carrier':<18}{'ms/token':>10}{'ratio':>8}")
    for result in results:
        print(f"{result['carrier']:<18}{result['ms_per_token']:>10.2f}{result['ratio']:>8.2f}")
    for name, problem in skipped.items():
        print(f"{name}: skipped ({problem})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
