"""Measure what the step trace and the OpenTelemetry hooks cost a persistent run.

Run it from the repository root::

    python benchmarks/bench_trace.py             # the table
    python benchmarks/bench_trace.py --json      # the same results as JSON
    python benchmarks/bench_trace.py --check     # exit 1 when a target fails

Each run puts N tokens (dicts) through 5 trivial tasks with
:class:`~workflow.storage.PersistentWorkflowEngine` and its default ``TOKEN``
checkpoint policy (one commit per token), on SQLite (a file in a temporary
directory), PostgreSQL (the tables in their own schema,
``--postgresql-schema``) and MariaDB (in a database of its own,
``--mariadb-database``, made on the server of ``--mariadb-url``). Three
sides take turns, one run each per repetition, so that a busy moment of the
machine hits them alike:

* *off* — ``Store(trace=False)``: no trace rows;
* *trace* — the default: a trace row per task, written with each checkpoint
  in one multi-row insert;
* *otel* — the trace and OpenTelemetry spans (SDK tracer provider, no
  exporter), when the ``opentelemetry-sdk`` package is installed.

*ratio* is the side's best wall-clock time divided by *off*'s; *cpu ratio*
the same with this process's CPU time (steadier on a busy machine; on
PostgreSQL it leaves the server's work out). The target for *trace* is a
wall-clock ratio of at most 1.2. With ``--no-otel-import`` the script also reports, for the
*off* side, whether ``opentelemetry`` was imported (it must not be: without
the extra enabled nothing of it loads).

Tasks are trivial on purpose, so the trace's own cost shows as clearly as it
can; real tasks take longer and the ratio comes nearer 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage import trace as step_trace

#: Largest trace / off ratio that passes.
TARGET = 1.2
DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
KEYS = ["a", "b", "c", "d", "e"]


def _task(key: str) -> Callable[[Any, Any], None]:
    def task(obj: Any, eng: Any) -> None:
        obj.data[key] = obj.data.get(key, 0) + 1

    task.__name__ = f"set_{key}"
    return task


TASKS = [_task(key) for key in KEYS]


def one_run(store: Store, tokens: int) -> tuple[float, float]:
    """Return the seconds one persistent run of ``tokens`` tokens takes: wall clock, and CPU.

    The CPU time of this process is less at the mercy of a busy machine; on
    PostgreSQL it leaves the server's work out.
    """
    engine = PersistentWorkflowEngine.with_name("bench", store=store, definition=TASKS)
    items = [{"n": index} for index in range(tokens)]
    gc.collect()
    gc.disable()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        engine.process(items)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        gc.enable()


def sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite:///{directory / name}.sqlite"


def postgresql_url(url: str, schema: str) -> str:
    """Return ``url`` with its tables in ``schema`` (created, emptied of ours)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    with_schema = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_schema.render_as_string(hide_password=False)


def mariadb_url(url: str, database: str) -> str:
    """Return ``url`` on the database ``database`` of its server (created, emptied of ours)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{database}`"))
            conn.execute(sa.text(f"CREATE DATABASE `{database}`"))
    finally:
        engine.dispose()
    return sa.make_url(url).set(database=database).render_as_string(hide_password=False)


def enable_otel() -> Callable[[], None] | None:
    """Install the OpenTelemetry hooks with an SDK provider; return how to remove them."""
    try:
        from opentelemetry.sdk.trace import TracerProvider

        from workflow.integrations.otel import disable_otel
        from workflow.integrations.otel import enable_otel as enable
    except ImportError:
        return None
    enable(tracer_provider=TracerProvider())
    return disable_otel


def measure(url: str, tokens: int, repeat: int, with_otel: bool) -> dict[str, float]:
    """Return the best wall-clock and CPU times of each side on the database at ``url``."""
    off = Store(url, trace=False)
    on = Store(url)
    off.create_all()
    names = ["off", "trace", *(["otel"] if with_otel else [])]
    best: dict[str, float] = {}
    for name in names:
        best[name] = best[f"{name}_cpu"] = float("inf")
    sides: list[tuple[str, Store, bool]] = [("off", off, False), ("trace", on, False)]
    if with_otel:
        sides.append(("otel", on, True))
    try:
        for store in (off, on):
            one_run(store, 20)  # warm-up
        for _ in range(repeat):
            for name, store, otel in sides:
                remove = enable_otel() if otel else None
                try:
                    wall, cpu = one_run(store, tokens)
                    best[name] = min(best[name], wall)
                    best[f"{name}_cpu"] = min(best[f"{name}_cpu"], cpu)
                finally:
                    if remove is not None:
                        remove()
        assert step_trace.observer is None
    finally:
        off.dispose()
        on.dispose()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--postgresql-url", default=DEFAULT_POSTGRESQL_URL)
    parser.add_argument("--postgresql-schema", default="workflow_bench_trace")
    parser.add_argument("--mariadb-url", default=DEFAULT_MARIADB_URL)
    parser.add_argument("--mariadb-database", default="workflow_bench_trace")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    otel_before = any(name.startswith("opentelemetry") for name in sys.modules)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        results["sqlite"] = measure(
            sqlite_url(Path(directory), "bench"), args.tokens, args.repeat, False
        )
        otel_after_off = any(name.startswith("opentelemetry") for name in sys.modules)
        try:
            url = postgresql_url(args.postgresql_url, args.postgresql_schema)
        except Exception as exc:  # a server that does not answer is reported, not fatal
            print(f"postgresql skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            results["postgresql"] = measure(url, args.tokens, args.repeat, False)
        try:
            url = mariadb_url(args.mariadb_url, args.mariadb_database)
        except Exception as exc:  # a server that does not answer is reported, not fatal
            print(f"mariadb skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            results["mariadb"] = measure(url, args.tokens, args.repeat, False)
        results["sqlite (otel)"] = measure(
            sqlite_url(Path(directory), "otel"), args.tokens, args.repeat, True
        )
    report = {
        "tokens": args.tokens,
        "tasks_per_token": len(TASKS),
        "repeat": args.repeat,
        "target": TARGET,
        "opentelemetry_imported_without_otel": otel_before or otel_after_off,
        "results": {
            backend: {
                **times,
                **{
                    f"{k}_ratio": v / times["off_cpu" if k.endswith("_cpu") else "off"]
                    for k, v in times.items()
                },
            }
            for backend, times in results.items()
        },
    }
    failed = [
        backend for backend, times in report["results"].items() if times["trace_ratio"] > TARGET
    ]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.tokens} tokens x {len(TASKS)} tasks, best of {args.repeat}")
        print(
            f"{'backend':<15} {'off':>9} {'trace':>9} {'ratio':>6} {'cpu ratio':>9} "
            f"{'otel':>9} {'ratio':>6}"
        )
        for backend, times in report["results"].items():
            otel = times.get("otel")
            otel_text = "" if otel is None else f"{otel:9.4f} {times['otel_ratio']:6.2f}"
            print(
                f"{backend:<15} {times['off']:9.4f} {times['trace']:9.4f} "
                f"{times['trace_ratio']:6.2f} {times['trace_cpu_ratio']:9.2f} {otel_text}"
            )
        print(f"target: trace ratio <= {TARGET}: {'FAIL ' + ', '.join(failed) if failed else 'ok'}")
        print(
            f"opentelemetry imported without otel: {report['opentelemetry_imported_without_otel']}"
        )
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
