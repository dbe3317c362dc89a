"""Measure the waits: how soon a decision moves a run, idle sweeps, firing rate, down time.

Run it from the repository root::

    python benchmarks/bench_waits.py                 # the table, on every database that answers
    python benchmarks/bench_waits.py --json          # the same results as JSON
    python benchmarks/bench_waits.py --check         # exit 1 when a target fails
    python benchmarks/bench_waits.py --postgresql-url postgresql+psycopg://user@host/db \\
        --mariadb-url mysql+pymysql://user@host/db

What it measures, on SQLite (a file in a temporary directory), PostgreSQL and
MariaDB:

(a) decision -> run going on, with a worker running (target: p95 <= 1 s)
    A :class:`~workflow.runtime.Worker` runs in a process of its own (this
    script with ``--serve-worker``, default ``poll`` and ``batch``). Runs
    wait at an ``ASK`` whose quorum is one approval; for each in turn, after
    a random pause of up to 0.25 s (so that decisions come at any moment of
    the worker's 0.2 s poll), the clock starts, :meth:`Waits.answer`
    approves (deciding), and the clock stops when the run's row says
    COMPLETED (read every 2 ms). p50, p95 and the worst of ``--decisions``
    runs.
(b) an idle sweep over 100,000 timers not yet due (target: median <= 10 ms)
    100,000 waiting ``sleep`` rows due tomorrow and later, then
    :meth:`Waits.fire_due` called ``--sweeps`` times (it fires nothing); the
    median and p95 of one call, and of a whole idle :meth:`Worker.run_once`.
    The statement ``fire_due`` sends is caught and explained (``EXPLAIN``,
    ``EXPLAIN QUERY PLAN`` on SQLite) after ``ANALYZE``: the plan must use
    the index ``ix_wf_wait_phase_due``, not a scan of the table.
(c) firing rate (target: >= 1,000 timers/s on SQLite and PostgreSQL)
    ``--timers`` waiting rows already due, fired by ``fire_due`` with the
    worker's batch (500) until none is left: timers per second. Then the
    whole job of a worker: ``--runs`` stored runs of ``SLEEP`` + one task
    whose timers passed, continued by :meth:`Worker.run_once` in this
    process until every run completed: runs per second (report only).
(d) down time (target: <= 2 s)
    ``--runs`` runs whose timers passed while no process ran; the clock
    starts when a worker process is started (interpreter and imports
    included) and stops when no timer waits any more (all fired); then when
    the first run, and every run, completed (report only: continuing is
    (c)'s rate). Medians of ``--repeat`` tries.

The tables are created afresh for each scenario: on PostgreSQL in the schema
``--postgresql-schema`` (default ``workflow_bench``, created when missing), on
MariaDB in the database of the URL, whose ``wf_`` tables are dropped, so give
it a database no test uses. A backend that cannot be reached is reported and
skipped. Times depend on the machine and on what else runs there: on a busy
machine rerun before trusting a number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as _uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from workflow.engine_db import WorkflowStatus
from workflow.runtime import ASK, SLEEP, Waits, Worker
from workflow.runtime.waits import waits as wait_table
from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.run_rows import workflows

DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/workflow_bench"
#: The index a sweep must use.
INDEX = "ix_wf_wait_phase_due"
COMPLETED = WorkflowStatus.COMPLETED.value


def went_on(obj: Any, eng: Any) -> None:
    obj.data["went_on"] = True


#: The runs of the benchmark, for this process and for the worker processes.
DEFINITIONS: dict[str, list[Any]] = {
    "approve": [*ASK("approve", "Ship it?", approvers=["ann"]), went_on],
    "nap": [*SLEEP("nap", "PT0.2S"), went_on],
}


# -- databases -------------------------------------------------------------------------


@dataclass
class Database:
    """One database under test: how to reach it, and a store on fresh tables."""

    name: str
    url: str
    directory: Path | None = None

    def fresh_store(self) -> Store:
        """Return a store on empty tables (the old ones dropped)."""
        if self.name == "sqlite":
            assert self.directory is not None
            path = self.directory / f"{_uuid.uuid4().hex}.sqlite"
            self.url = f"sqlite:///{path}"
        store = Store(self.url)
        store.drop_all()
        store.create_all()
        return store


def problem_of(url: str) -> str | None:
    """Return why the server at ``url`` cannot be used, or ``None``."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or connection failure means "not here"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        engine.dispose()
    return None


def in_schema(url: str, schema: str) -> str:
    """Return ``url`` with its search path set to ``schema`` (created when missing)."""
    setup = sa.create_engine(url)
    try:
        with setup.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        setup.dispose()
    changed = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return changed.render_as_string(hide_password=False)


# -- helpers -----------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Return the value below which ``share`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def start_runs(store: Store, name: str, count: int) -> list[str]:
    """Start ``count`` runs called ``name``, each with one token that halts at its wait."""
    uuids = []
    for _ in range(count):
        engine = PersistentWorkflowEngine.with_name(name, store=store, definition=DEFINITIONS[name])
        engine.process([{}], stop_on_halt=False)
        uuids.append(engine.uuid)
    return uuids


def completed(store: Store, uuids: Sequence[str]) -> int:
    """How many of the runs ``uuids`` completed."""
    with store.transaction("count completed runs") as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(workflows)
                .where(workflows.c.uuid.in_(list(uuids)), workflows.c.status == COMPLETED)
            ).scalar_one()
        )


def insert_timers(store: Store, count: int, due_in: timedelta) -> None:
    """Store ``count`` waiting sleep rows (on 100 runs) due ``due_in`` from now and later."""
    runs = [store.create_workflow("timers") for _ in range(100)]
    now = store.now()
    rows = [
        {
            "id": str(_uuid.uuid4()),
            "workflow_uuid": runs[index % len(runs)],
            "token_position": 0,
            "step": "nap",
            "kind": "sleep",
            "phase": "waiting",
            "due": now + due_in + timedelta(milliseconds=index),
            "spec": {},
            "approvals": 0,
            "rejections": 0,
            "version": 0,
            "created": now,
        }
        for index in range(count)
    ]
    with store.transaction("store timers") as conn:
        for start in range(0, count, 5000):
            conn.execute(wait_table.insert(), rows[start : start + 5000])


class WorkerProcess:
    """This script with ``--serve-worker``: a Worker in a process of its own."""

    def __init__(self, url: str, where: Path) -> None:
        self.ready = where / f"ready-{_uuid.uuid4().hex}"
        self.stop = where / f"stop-{_uuid.uuid4().hex}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-worker", url, str(self.ready), str(self.stop)]
        )

    def wait_ready(self) -> None:
        while not self.ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError("the worker process ended before it was ready")
            time.sleep(0.01)

    def close(self) -> None:
        self.stop.touch()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve_worker(url: str, ready: Path, stop: Path) -> int:
    worker = Worker(Store(url), DEFINITIONS)
    ready.touch()
    worker.run(until=stop.exists)
    return 0


# -- the scenarios -----------------------------------------------------------------------


@dataclass
class Result:
    """One measured figure of one scenario on one database."""

    scenario: str
    backend: str
    figure: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    note: str = ""
    plan: list[str] = field(default_factory=list)


def latency(db: Database, decisions: int, where: Path) -> list[Result]:
    """(a) From an answer that decides to the run's row saying COMPLETED, a worker running."""
    store = db.fresh_store()
    uuids = start_runs(store, "approve", decisions)
    answers = Waits(store)
    asks = {uuid: answers.of_run(uuid)[0].id for uuid in uuids}
    worker = WorkerProcess(db.url, where)
    seconds = []
    try:
        worker.wait_ready()
        pauses = random.Random(7)
        for uuid in uuids:
            time.sleep(pauses.uniform(0.0, 0.25))  # decisions come at any moment of a pass
            started = time.perf_counter()
            answers.answer(asks[uuid], by="ann", decision="approve")
            while store.workflow(uuid)["status"] != COMPLETED:
                time.sleep(0.002)
            seconds.append(time.perf_counter() - started)
    finally:
        worker.close()
        store.dispose()
    p95 = percentile(seconds, 0.95)
    return [
        Result("a", db.name, "decision -> completed p50", percentile(seconds, 0.5), "s"),
        Result("a", db.name, "decision -> completed p95", p95, "s", "<= 1 s", p95 <= 1.0),
        Result("a", db.name, f"decision -> completed max ({decisions})", max(seconds), "s"),
    ]


def explain(store: Store, statement: str, parameters: Any) -> list[str]:
    """Return the plan of ``statement`` as its database explains it."""
    dialect = store.sql_engine.dialect.name
    with store.sql_engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if dialect == "sqlite":
                cursor.execute("ANALYZE")
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                lines = [str(row[-1]) for row in cursor.fetchall()]
            elif dialect == "postgresql":
                cursor.execute("ANALYZE wf_wait")
                cursor.execute("EXPLAIN " + statement, parameters)
                lines = [str(row[0]) for row in cursor.fetchall()]
            else:
                cursor.execute("ANALYZE TABLE wf_wait")
                cursor.fetchall()
                cursor.execute("EXPLAIN " + statement, parameters)
                names = [column[0] for column in cursor.description]
                lines = [
                    ", ".join(f"{name}={value}" for name, value in zip(names, row, strict=True))
                    for row in cursor.fetchall()
                ]
        finally:
            cursor.close()
        conn.rollback()
    return lines


def sweep(db: Database, timers: int, sweeps: int) -> list[Result]:
    """(b) ``fire_due`` (and a whole idle worker pass) over ``timers`` rows not yet due."""
    store = db.fresh_store()
    try:
        insert_timers(store, timers, timedelta(days=1))
        waits = Waits(store)
        caught: list[tuple[str, Any]] = []

        def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
            if "wf_wait" in statement and "due" in statement:
                caught.append((statement, parameters))

        event.listen(store.sql_engine, "before_cursor_execute", catch)
        try:
            assert waits.fire_due(limit=500) == 0
        finally:
            event.remove(store.sql_engine, "before_cursor_execute", catch)
        plan = [
            line
            for statement, parameters in caught
            for line in explain(store, statement, parameters)
        ]
        worker = Worker(store, DEFINITIONS)
        for _ in range(5):  # warm up
            waits.fire_due(limit=500)
            worker.run_once()
        fire_times, pass_times = [], []
        for _ in range(sweeps):
            started = time.perf_counter()
            waits.fire_due(limit=500)
            fire_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            worker.run_once()
            pass_times.append(time.perf_counter() - started)
    finally:
        store.dispose()
    median = statistics.median(fire_times)
    uses_index = any(INDEX in line for line in plan)
    return [
        Result(
            "b",
            db.name,
            f"idle fire_due over {timers:,} timers, median",
            median,
            "s",
            "<= 10 ms",
            median <= 0.010 and uses_index,
            "" if uses_index else f"the plan does not use {INDEX}",
            plan,
        ),
        Result("b", db.name, "idle fire_due p95", percentile(fire_times, 0.95), "s"),
        Result("b", db.name, "idle Worker.run_once, median", statistics.median(pass_times), "s"),
    ]


def firing(db: Database, timers: int, runs: int) -> list[Result]:
    """(c) Timers fired per second, and runs fired and continued per second."""
    store = db.fresh_store()
    try:
        insert_timers(store, timers, timedelta(seconds=-3600))
        waits = Waits(store)
        fired = 0
        started = time.perf_counter()
        while True:
            done = waits.fire_due(limit=500)
            fired += done
            if done == 0:
                break
        fire_seconds = time.perf_counter() - started
        assert fired == timers, (fired, timers)
    finally:
        store.dispose()
    store = db.fresh_store()
    try:
        uuids = start_runs(store, "nap", runs)
        time.sleep(0.3)  # every timer is due
        worker = Worker(store, DEFINITIONS)
        started = time.perf_counter()
        while completed(store, uuids) < runs:
            worker.run_once()
        run_seconds = time.perf_counter() - started
    finally:
        store.dispose()
    rate = timers / fire_seconds
    wanted = db.name in ("sqlite", "postgresql")
    return [
        Result(
            "c",
            db.name,
            f"fire_due, {timers:,} due timers",
            rate,
            "timers/s",
            ">= 1,000/s" if wanted else "",
            rate >= 1000 if wanted else None,
        ),
        Result("c", db.name, f"fire + continue, {runs} runs", runs / run_seconds, "runs/s"),
    ]


def waiting(store: Store) -> int:
    """How many waits still wait."""
    with store.transaction("count waiting waits") as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(wait_table)
                .where(wait_table.c.phase == "waiting")
            ).scalar_one()
        )


def down_time(db: Database, runs: int, repeat: int, where: Path) -> list[Result]:
    """(d) From starting a worker process to the timers that passed meanwhile fired, runs done."""
    fired, first, finished = [], [], []
    for _ in range(repeat):
        store = db.fresh_store()
        try:
            uuids = start_runs(store, "nap", runs)
            time.sleep(0.5)  # every process down while the timers pass
            started = time.perf_counter()
            worker = WorkerProcess(db.url, where)
            try:
                moments: dict[str, float] = {}
                while "all" not in moments:
                    if "fired" not in moments and waiting(store) == 0:
                        moments["fired"] = time.perf_counter() - started
                    count = completed(store, uuids)
                    if count and "first" not in moments:
                        moments["first"] = time.perf_counter() - started
                    if count == runs:
                        moments["all"] = time.perf_counter() - started
                    time.sleep(0.005)
            finally:
                worker.close()
        finally:
            store.dispose()
        fired.append(moments.get("fired", moments["all"]))
        first.append(moments["first"])
        finished.append(moments["all"])
    median = statistics.median(fired)
    return [
        Result(
            "d",
            db.name,
            f"worker start -> {runs} passed timers fired ({repeat})",
            median,
            "s",
            "<= 2 s",
            median <= 2.0,
        ),
        Result("d", db.name, "worker start -> first run completed", statistics.median(first), "s"),
        Result(
            "d",
            db.name,
            f"worker start -> all {runs} runs completed",
            statistics.median(finished),
            "s",
        ),
    ]


# -- the report ----------------------------------------------------------------------------


@dataclass
class Report:
    results: list[Result]
    skipped: dict[str, str]
    python: str = f"{platform.python_implementation()} {platform.python_version()}"
    sqlalchemy: str = sa.__version__
    cpus: int = os.cpu_count() or 0

    def failed(self) -> bool:
        return any(result.passed is False for result in self.results)


def format_value(result: Result) -> str:
    if result.value is None:
        return "-"
    if result.unit == "s":
        return f"{result.value * 1000:,.1f} ms"
    return f"{result.value:,.0f} {result.unit}"


def format_report(report: Report) -> Iterator[str]:
    yield (
        f"waits: decisions, sweeps, firing, down time ({report.python}, "
        f"SQLAlchemy {report.sqlalchemy}, {report.cpus} CPUs)"
    )
    yield ""
    yield f"{'':<2} {'backend':<11} {'figure':<52} {'value':>16}  {'target':<10} result"
    for result in report.results:
        verdict = {True: "PASS", False: "FAIL", None: ""}[result.passed]
        yield (
            f"{result.scenario:<2} {result.backend:<11} {result.figure:<52} "
            f"{format_value(result):>16}  {result.target:<10} {verdict} {result.note}".rstrip()
        )
    for name, why in report.skipped.items():
        yield f"   {name:<11} skipped: {why}"
    plans = [result for result in report.results if result.plan]
    for result in plans:
        yield ""
        yield f"(b) {result.backend}: the plan of fire_due's statement"
        for line in result.plan:
            yield f"    {line}"


def run_all(args: argparse.Namespace) -> Report:
    databases = []
    skipped = {}
    temporary = tempfile.TemporaryDirectory(prefix="bench_waits-")
    where = Path(temporary.name)
    databases.append(Database("sqlite", "", where))
    for name, url in (("postgresql", args.postgresql_url), ("mariadb", args.mariadb_url)):
        if not url:
            continue
        problem = problem_of(url)
        if problem is not None:
            shown = sa.make_url(url).render_as_string(hide_password=True)
            skipped[name] = f"not reachable at {shown} ({problem})"
            continue
        if name == "postgresql" and args.postgresql_schema:
            url = in_schema(url, args.postgresql_schema)
        databases.append(Database(name, url))
    scenarios: dict[str, Callable[[Database], list[Result]]] = {
        "a": lambda db: latency(db, args.decisions, where),
        "b": lambda db: sweep(db, args.sweep_timers, args.sweeps),
        "c": lambda db: firing(db, args.timers, args.runs),
        "d": lambda db: down_time(db, args.runs, args.repeat, where),
    }
    results = []
    try:
        for key in args.scenarios:
            for db in databases:
                results.extend(scenarios[key](db))
                print(f"... ({key}) {db.name} done", file=sys.stderr, flush=True)
    finally:
        for db in databases:
            if db.name != "sqlite":
                store = Store(db.url)
                store.drop_all()
                store.dispose()
        temporary.cleanup()
    return Report(results, skipped)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--serve-worker"]:
        url, ready, stop = arguments[1:4]
        return serve_worker(url, Path(ready), Path(stop))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--scenarios", default="abcd", help="which of a, b, c, d (default: all)")
    parser.add_argument("--decisions", type=int, default=100, help="(a) runs decided one by one")
    parser.add_argument("--sweep-timers", type=int, default=100_000, help="(b) timers not due")
    parser.add_argument("--sweeps", type=int, default=200, help="(b) sweeps timed")
    parser.add_argument("--timers", type=int, default=20_000, help="(c) due timers fired")
    parser.add_argument("--runs", type=int, default=200, help="(c, d) runs continued")
    parser.add_argument("--repeat", type=int, default=3, help="(d) tries; the median counts")
    parser.add_argument("--postgresql-url", default=DEFAULT_POSTGRESQL_URL, help="'' skips it")
    parser.add_argument(
        "--postgresql-schema",
        default="workflow_bench",
        help="schema for the tables, created when missing (default: %(default)s)",
    )
    parser.add_argument(
        "--mariadb-url", default=DEFAULT_MARIADB_URL, help="its wf_ tables are dropped; '' skips it"
    )
    args = parser.parse_args(arguments)
    report = run_all(args)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print("\n".join(format_report(report)))
    return 1 if args.check and report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
