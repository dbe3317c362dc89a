"""Measure what the persistent engine costs next to committing the same rows by hand.

Run it from the repository root::

    python benchmarks/bench_storage.py            # the table
    python benchmarks/bench_storage.py --json     # the same results as JSON
    python benchmarks/bench_storage.py --check    # exit 1 when a target fails

Each run puts N tokens (dicts) through 5 trivial tasks with
:class:`~workflow.storage.PersistentWorkflowEngine` and its default
:attr:`~workflow.storage.CheckpointPolicy.TOKEN` policy: one commit per
completed token. The clock measures the whole ``process()`` call, which stores
the tokens in one insert, then runs them.

The *bare* side does the same writes with the same :class:`~workflow.storage.Store`'s
SQLAlchemy engine and tables, in a plain loop of SQLAlchemy Core statements
built once: the check that the workflow has no tokens, the bulk insert of the
token rows, the lock, reading the run's status, storing it as started, then
per token the same 5 tasks and one transaction that updates the token row,
logs its transition and updates the workflow row (position, lock expiry);
finally the end of the run.
Before timing, both sides run a few tokens while the database's commits and
statements are counted: they must store the same rows with the same number of
commits and statements, or the script stops.

Every run gets a fresh workflow in fresh tables: a new SQLite file (WAL, as
:class:`~workflow.storage.Store` sets it) in a temporary directory, or the
PostgreSQL tables dropped and created again. On PostgreSQL the tables live in
their own schema (``--postgresql-schema``, default ``workflow_bench``), so the
benchmark never drops the tables of a test run sharing the database. A
backend that cannot be reached is reported and skipped.

How to read the output: *engine* and *bare* are the best (smallest) wall-clock
time of ``--repeat`` runs, after a short warm-up, with the garbage collector
off while the clock runs; the two sides take turns. *ratio* is engine / bare:
1.0 means the engine adds nothing to the commits themselves. The target is a
ratio of at most 1.5. *tokens/s* is N divided by each time. Absolute numbers
depend on the machine and its disk; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.storage import PersistentWorkflowEngine, Store, Token
from workflow.storage.models import utcnow
from workflow.storage.run_rows import status_changes as transitions
from workflow.storage.run_rows import tokens, workflows

Item: TypeAlias = dict[str, int]
Task: TypeAlias = Callable[[Token, Any], None]
#: Stores and runs a list of tokens; the clock measures only this.
Run: TypeAlias = Callable[[list[Item]], None]
#: Prepares a run on a store (untimed): creates the workflow, returns the run.
Side: TypeAlias = Callable[[Store], Run]

#: Largest engine / bare ratio that passes.
TARGET = 1.5
DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Tokens of the warm-up run of each side.
WARM_UP_TOKENS = 200


# -- tokens and tasks ------------------------------------------------------------------

KEYS = ["a", "b", "c", "d", "e"]


def new_items(n: int) -> list[Item]:
    """Return ``n`` fresh token data dicts, numbered by their ``id`` key."""
    return [{"id": ident, **dict.fromkeys(KEYS, 0)} for ident in range(n)]


def increment(key: str) -> Task:
    """Return a task that adds one to ``obj.data[key]``."""

    def task(obj: Token, eng: Any) -> None:
        obj.data[key] += 1

    task.__name__ = task.__qualname__ = f"increment_{key}"
    return task


TASKS = [increment(key) for key in KEYS]


# -- the engine's side -----------------------------------------------------------------


def engine_side(store: Store) -> Run:
    """Store a new workflow; return its engine's ``process``, which the clock measures."""
    eng = PersistentWorkflowEngine.with_name("bench", store=store, definition=TASKS)
    return eng.process


# -- the bare side: the same statements, built once ------------------------------------

SELECT_TOKENS = (
    sa.select(tokens)
    .where(tokens.c.workflow_uuid == sa.bindparam("b_uuid"))
    .order_by(tokens.c.position)
)
SELECT_WORKFLOW = sa.select(workflows).where(workflows.c.uuid == sa.bindparam("b_uuid"))
ACQUIRE = (
    workflows.update()
    .where(workflows.c.uuid == sa.bindparam("b_uuid"))
    .where(
        sa.or_(
            workflows.c.lock_owner.is_(None),
            workflows.c.lock_owner == sa.bindparam("b_owner"),
            workflows.c.lock_expires < sa.bindparam("b_now"),
        )
    )
)
#: The SET clause comes from the keys of each execution's parameters.
UPDATE_WORKFLOW = workflows.update().where(
    workflows.c.uuid == sa.bindparam("b_uuid"),
    workflows.c.lock_owner == sa.bindparam("b_owner"),
)
UPDATE_TOKEN = tokens.update().where(
    tokens.c.workflow_uuid == sa.bindparam("b_uuid"),
    tokens.c.position == sa.bindparam("b_position"),
)
INSERT_TRANSITION = transitions.insert()


def bare_side(store: Store) -> Run:
    """Store a new workflow; return the hand-written loop that stores and runs its tokens."""
    uid = store.create_workflow("bench")
    return partial(bare_process, store, uid, store.new_owner())


def bare_process(store: Store, uid: str, owner: str, items: list[Item]) -> None:
    """Store ``items`` as the tokens of workflow ``uid`` and run them, one commit per token."""
    engine = store.engine
    ttl = timedelta(seconds=store.lock_ttl)
    where = {"b_uuid": uid, "b_owner": owner}
    with engine.begin() as conn:
        if conn.execute(SELECT_TOKENS, {"b_uuid": uid}).mappings().all():
            raise RuntimeError(f"workflow {uid} already has tokens")
    objects = [Token(item, position=index) for index, item in enumerate(items)]
    now = utcnow()
    rows = [
        {
            "workflow_uuid": uid,
            "position": obj.position,
            "data": obj.data,
            "extra_data": obj.extra_data,
            "status": ObjectStatus.INITIAL.value,
            "callback_pos": None,
            "created": now,
            "modified": now,
        }
        for obj in objects
    ]
    with engine.begin() as conn:
        conn.execute(tokens.insert(), rows)

    now = utcnow()
    with engine.begin() as conn:
        lock = {"lock_owner": owner, "lock_expires": now + ttl}
        taken = conn.execute(ACQUIRE, {**where, "b_now": now, **lock})
        if taken.rowcount != 1:
            raise RuntimeError(f"workflow {uid} is locked")
    with engine.begin() as conn:  # the engine reads the status again once it holds the lock
        conn.execute(SELECT_WORKFLOW, {"b_uuid": uid}).mappings().one()
    set_status(engine, where, WorkflowStatus.RUNNING, ttl=ttl)

    completed = ObjectStatus.COMPLETED.value
    initial = ObjectStatus.INITIAL.value
    for obj in objects:
        for task in TASKS:
            task(obj, None)
        now = utcnow()
        with engine.begin() as conn:
            conn.execute(
                UPDATE_TOKEN,
                {
                    "b_uuid": uid,
                    "b_position": obj.position,
                    "data": obj.data,
                    "extra_data": obj.extra_data,
                    "status": completed,
                    "callback_pos": None,
                    "last_error": None,
                    "modified": now,
                },
            )
            conn.execute(
                INSERT_TRANSITION,
                {
                    "workflow_uuid": uid,
                    "token_position": obj.position,
                    "from_status": initial,
                    "to_status": completed,
                    "callback_pos": None,
                    "message": "",
                    "created": now,
                },
            )
            updated = conn.execute(
                UPDATE_WORKFLOW,
                {
                    **where,
                    "token_pos": obj.position,
                    "callback_pos": [0],
                    "extra_data": {},
                    "modified": now,
                    "lock_expires": now + ttl,
                },
            )
            if updated.rowcount != 1:
                raise RuntimeError(f"lost the lock of workflow {uid}")
        obj.status = ObjectStatus.COMPLETED
    set_status(engine, where, WorkflowStatus.COMPLETED, token_pos=len(objects) - 1)


def set_status(
    engine: sa.Engine,
    where: dict[str, str],
    status: WorkflowStatus,
    *,
    token_pos: int = -1,
    ttl: timedelta | None = None,
) -> None:
    """Store the run RUNNING (renewing the lock) or COMPLETED (releasing it), and log it."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": status.value,
        "token_pos": token_pos,
        "callback_pos": [0],
        "extra_data": {},
        "modified": now,
    }
    if ttl is None:
        values.update(lock_owner=None, lock_expires=None)
    else:
        values["lock_expires"] = now + ttl
    running = status is WorkflowStatus.RUNNING
    with engine.begin() as conn:
        conn.execute(UPDATE_WORKFLOW, {**where, **values})
        conn.execute(
            INSERT_TRANSITION,
            {
                "workflow_uuid": where["b_uuid"],
                "token_position": None,
                "from_status": (WorkflowStatus.NEW if running else WorkflowStatus.RUNNING).value,
                "to_status": status.value,
                "callback_pos": [0],
                "message": "started" if running else "finished",
                "created": now,
            },
        )


# -- databases -------------------------------------------------------------------------


class Backend:
    """Hands out stores with empty tables on one database."""

    name: str

    def fresh_store(self) -> Store:
        """Return a store whose tables exist and are empty."""
        raise NotImplementedError

    def done(self, store: Store) -> None:
        """Let go of a store handed out by :meth:`fresh_store`."""
        store.dispose()

    def close(self) -> None:
        """Release what the backend holds."""


class SQLite(Backend):
    """A new SQLite file in a temporary directory for every store."""

    name = "sqlite"

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="bench_storage-")
        self._count = 0

    def fresh_store(self) -> Store:
        self._count += 1
        path = Path(self._directory.name) / f"run-{self._count}.sqlite"
        store = Store(f"sqlite:///{path}")
        store.create_all()
        return store

    def done(self, store: Store) -> None:
        store.dispose()
        database = store.engine.url.database
        assert database is not None
        for suffix in ("", "-wal", "-shm"):
            Path(database + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        self._directory.cleanup()


class PostgreSQL(Backend):
    """One store whose tables are dropped and created again for every run."""

    name = "postgresql"

    def __init__(self, url: str, schema: str) -> None:
        if schema:
            setup = sa.create_engine(url)
            try:
                with setup.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            finally:
                setup.dispose()
            in_schema = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
            url = in_schema.render_as_string(hide_password=False)
        self._store = Store(url)

    def fresh_store(self) -> Store:
        self._store.drop_all()
        self._store.create_all()
        return self._store

    def done(self, store: Store) -> None:
        """Keep the store (and its pooled connection) for the next run."""

    def close(self) -> None:
        self._store.drop_all()
        self._store.dispose()


def postgresql_problem(url: str) -> str | None:
    """Return why the PostgreSQL server at ``url`` cannot be used, or None."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or connection failure means "not here"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        engine.dispose()
    return None


# -- measuring -------------------------------------------------------------------------


def time_once(backend: Backend, side: Side, n: int) -> float:
    """Return the seconds one run of ``n`` fresh tokens takes, with the garbage collector off."""
    store = backend.fresh_store()
    try:
        run = side(store)
        items = new_items(n)
        gc.collect()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            run(items)
            return time.perf_counter() - start
        finally:
            if was_enabled:
                gc.enable()
    finally:
        backend.done(store)


@dataclass
class Counts:
    """What one side did to the database while it ran a few tokens."""

    commits: int = 0
    statements: int = 0
    stored: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def count_work(backend: Backend, side: Side, n: int) -> Counts:
    """Run ``side`` on ``n`` tokens, counting commits and statements; keep what it stored."""
    counts = Counts()
    store = backend.fresh_store()

    def on_commit(conn: Any) -> None:
        counts.commits += 1

    def on_execute(*args: Any) -> None:
        counts.statements += 1

    try:
        run = side(store)
        sa.event.listen(store.engine, "commit", on_commit)
        sa.event.listen(store.engine, "before_cursor_execute", on_execute)
        try:
            run(new_items(n))
        finally:
            sa.event.remove(store.engine, "commit", on_commit)
            sa.event.remove(store.engine, "before_cursor_execute", on_execute)
        counts.stored = stored_rows(store)
        return counts
    finally:
        backend.done(store)


#: What both sides must store alike: every column but ids, uuids, owners and times.
STORED = {
    "workflow": "SELECT status, token_pos, callback_pos, extra_data, definition_name, "
    "definition_version, lock_owner IS NULL, lock_expires IS NULL FROM wf_workflow",
    "tokens": "SELECT position, data, extra_data, status, callback_pos, last_error "
    "FROM wf_token ORDER BY position",
    "transitions": "SELECT token_position, from_status, to_status, callback_pos, message "
    "FROM wf_transition ORDER BY id",
}


def stored_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Return what the store holds, as the driver reads it (JSON as stored, NULL as None)."""
    with store.engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.exec_driver_sql(query)]
            for table, query in STORED.items()
        }


def check_same_work(backend: Backend) -> None:
    """Exit when both sides do not store the same rows with the same commits and statements."""
    engine = count_work(backend, engine_side, 7)
    bare = count_work(backend, bare_side, 7)
    if engine != bare:
        sys.exit(
            f"bench_storage: {backend.name}: the engine and the bare loop do not do the same "
            f"work:\n  engine: {engine}\n  bare:   {bare}"
        )


@dataclass
class Row:
    """One backend's result; ``skipped`` says why a backend was not measured."""

    backend: str
    engine_s: float | None = None
    bare_s: float | None = None
    tokens: int = 0
    target: float = TARGET
    skipped: str | None = None
    ratio: float | None = field(init=False)
    engine_tokens_per_s: float | None = field(init=False)
    bare_tokens_per_s: float | None = field(init=False)
    passed: bool | None = field(init=False)

    def __post_init__(self) -> None:
        if self.engine_s is None or self.bare_s is None:
            self.ratio = self.engine_tokens_per_s = self.bare_tokens_per_s = self.passed = None
            return
        self.ratio = self.engine_s / self.bare_s
        self.engine_tokens_per_s = self.tokens / self.engine_s
        self.bare_tokens_per_s = self.tokens / self.bare_s
        self.passed = self.ratio <= self.target


def measure(backend: Backend, n: int, repeat: int) -> Row:
    """Return the best time of each side on ``backend``; the sides take turns."""
    check_same_work(backend)
    sides: dict[str, Side] = {"engine": engine_side, "bare": bare_side}
    for side in sides.values():
        time_once(backend, side, min(n, WARM_UP_TOKENS))
    times: dict[str, list[float]] = {label: [] for label in sides}
    for _ in range(repeat):
        for label, side in sides.items():
            times[label].append(time_once(backend, side, n))
    return Row(backend.name, min(times["engine"]), min(times["bare"]), n)


# -- report ----------------------------------------------------------------------------


@dataclass
class Report:
    tokens: int
    repeat: int
    rows: list[Row]
    tasks: int = len(TASKS)
    python: str = f"{platform.python_implementation()} {platform.python_version()}"
    sqlalchemy: str = sa.__version__

    def failed(self) -> bool:
        return any(row.passed is False for row in self.rows)


def run_all(n: int, repeat: int, postgresql_url: str, schema: str) -> Report:
    rows = []
    backends: list[Callable[[], Backend]] = [SQLite]
    problem = postgresql_problem(postgresql_url)
    if problem is None:
        backends.append(lambda: PostgreSQL(postgresql_url, schema))
    for make in backends:
        backend = make()
        try:
            rows.append(measure(backend, n, repeat))
        finally:
            backend.close()
    if problem is not None:
        shown = sa.make_url(postgresql_url).render_as_string(hide_password=True)
        rows.append(Row("postgresql", skipped=f"not reachable at {shown} ({problem})"))
    return Report(n, repeat, rows)


def format_report(report: Report) -> Iterator[str]:
    yield (
        f"persistent engine vs the same commits by hand: {report.tokens:,} tokens x "
        f"{report.tasks} tasks, a checkpoint per token, best of {report.repeat} runs "
        f"({report.python}, SQLAlchemy {report.sqlalchemy})"
    )
    yield ""
    yield (
        f"{'backend':<12} {'engine':>11} {'bare':>11} {'ratio':>6}  {'target':<7} "
        f"{'engine tokens/s':>15} {'bare tokens/s':>13}  result"
    )
    for row in report.rows:
        if row.skipped is not None:
            yield f"{row.backend:<12} skipped: {row.skipped}"
            continue
        engine, bare = row.engine_s or 0.0, row.bare_s or 0.0
        yield (
            f"{row.backend:<12} {_ms(engine):>11} {_ms(bare):>11} {engine / bare:>6.2f}  "
            f"{f'<= {row.target:g}':<7} {row.tokens / engine:>15,.0f} "
            f"{row.tokens / bare:>13,.0f}  {'PASS' if row.passed else 'FAIL'}"
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000, help="tokens per run (N)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--postgresql-url",
        default=DEFAULT_POSTGRESQL_URL,
        help="the PostgreSQL server to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--postgresql-schema",
        default="workflow_bench",
        help="schema for the tables, created when missing; '' uses the URL's search path "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.tokens < 1 or args.repeat < 1:
        parser.error("--tokens and --repeat must be at least 1")

    report = run_all(args.tokens, args.repeat, args.postgresql_url, args.postgresql_schema)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print("\n".join(format_report(report)))
    return 1 if args.check and report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
