"""A worker for the crash tests: take one stored workflow to its end.

Run as a program::

    python tests/storage/crash_worker.py URL NAME --policy token --tokens 8

it looks in the database at URL for the workflow called NAME and goes on
with it: it stores a new one with N tokens when there is none yet, stores its
tokens when a kill came between the two, and resumes it otherwise. It prints
nothing and exits 0 once the run completed. ``test_crash.py`` kills it with
SIGKILL at random moments and starts it again until one exits 0. The run is
found by name because the first kill may come before it has a uuid.

Each task records its effect in its token (it appends its name to
``obj.data["trace"]``) after a short pause, so that kills land inside tasks.
With ``--effects FILE`` each call also appends ``"<position> <task>"`` to FILE
before the pause: that record survives the kill, so the tests can count how
often each task really ran.

``python tests/storage/crash_worker.py --serve`` is a fork server: it imports
everything once, then for each job it reads on stdin (a JSON line) it forks a
worker and kills it with SIGKILL at the moment the job names (see
:func:`_wait`) unless it ended first, and answers on stdout with a JSON line:
``returncode`` and ``seconds``. Importing SQLAlchemy takes most of a second;
without the server, that import would be most of each trial.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

import sqlalchemy as sa
import sqlalchemy.orm

from workflow.patterns import IF_ELSE
from workflow.storage import CheckpointPolicy, PersistentWorkflowEngine, Store, WorkflowRecord

#: Seconds a worker's lock holds without renewal. Far shorter than in production, so
#: that a resuming worker waits little for the lock of the worker killed before it;
#: the workers of a run never overlap, so nobody takes over a live worker's lock.
LOCK_TTL = 0.2
#: Seconds beyond the TTL that a resuming worker waits for that lock before giving up.
LOCK_MARGIN = 5.0
#: Seconds each task sleeps, so that kills land inside tasks.
PAUSE = 0.002
#: Modules the fork server imports once for all its workers.
PRELOAD = (
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.mysql.pymysql",
    "psycopg",
    "pymysql",
)

Record = Callable[[int, str], None]


def clean_pass(n: int) -> list[str]:
    """Return the trace that one uninterrupted pass leaves on token ``n``."""
    branch = ["index"] if n % 2 == 0 else ["review", "correct", "index"]
    return ["load", "parse", "validate", "enrich", *branch, "publish"]


def is_even(obj: Any, eng: Any) -> bool:
    return bool(obj.data["n"] % 2 == 0)


def definition(record: Record, pause: float) -> list[Any]:
    """Return the tasks: lists nested three deep, and an IF_ELSE on the token's parity."""

    def task(name: str) -> Callable[[Any, Any], None]:
        def run(obj: Any, eng: Any) -> None:
            record(obj.position, name)
            time.sleep(pause)
            obj.data["trace"].append(name)

        run.__name__ = name
        return run

    return [
        task("load"),
        [task("parse"), [task("validate"), task("enrich")]],
        IF_ELSE(is_even, [task("index")], [task("review"), [task("correct"), task("index")]]),
        task("publish"),
    ]


def find(store: Store, name: str) -> str | None:
    """Return the uuid of the workflow called ``name``, or None when there is none."""
    with store.session() as session:
        found = session.scalars(
            sa.select(WorkflowRecord.uuid).where(WorkflowRecord.name == name)
        ).all()
    if len(found) > 1:
        raise RuntimeError(f"{len(found)} workflows are called {name!r}: {list(found)}")
    return found[0] if found else None


def run(store: Store, name: str, *, policy: str, tokens: int, tasks: list[Any]) -> None:
    """Create, start or resume the workflow ``name`` and run it to its end."""
    uid = find(store, name)
    lock_wait = store.lock_ttl + LOCK_MARGIN
    if uid is None:
        engine = PersistentWorkflowEngine.with_name(
            name, store=store, definition=tasks, checkpoint=policy, lock_wait=lock_wait
        )
    else:
        engine = PersistentWorkflowEngine.from_uuid(
            uid, store=store, definition=tasks, checkpoint=policy, lock_wait=lock_wait
        )
        if engine.load_tokens():
            engine.resume()
            return
    engine.process([{"n": n, "trace": []} for n in range(tokens)])


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(description="Run or resume one workflow of the crash tests.")
    cli.add_argument("url", help="SQLAlchemy URL of the database (its tables must exist)")
    cli.add_argument("name", help="name of the workflow; it is created when missing")
    cli.add_argument("--policy", choices=[p.value for p in CheckpointPolicy], default="token")
    cli.add_argument("--tokens", type=int, default=8, help="tokens of a new run")
    cli.add_argument("--effects", help="file where each task call appends a line")
    cli.add_argument("--pause", type=float, default=PAUSE, help="seconds each task sleeps")
    cli.add_argument("--lock-ttl", type=float, default=LOCK_TTL, help="the store's lock_ttl")
    return cli


def main(argv: list[str] | None = None) -> int:
    """Run the worker with the command line ``argv``; return its exit status."""
    args = parser().parse_args(argv)
    warnings.simplefilter("error")  # as the test suite does
    effects = None
    if args.effects is not None:
        effects = os.open(args.effects, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(position: int, task: str) -> None:
        if effects is not None:
            os.write(effects, f"{position} {task}\n".encode())

    store = Store(args.url, lock_ttl=args.lock_ttl)
    try:
        tasks = definition(record, args.pause)
        run(store, args.name, policy=args.policy, tokens=args.tokens, tasks=tasks)
    finally:
        store.dispose()
        if effects is not None:
            os.close(effects)
    return 0


def serve() -> int:
    """Fork a worker for each job read on stdin; answer how each ended on stdout."""
    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    sa.orm.configure_mappers()
    for line in sys.stdin:
        job = json.loads(line)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _worker(job["argv"], job["log"])
        returncode = _wait(pid, job)
        seconds = time.monotonic() - started
        print(json.dumps({"returncode": returncode, "seconds": seconds}), flush=True)
    return 0


def _worker(argv: list[str], log: str) -> NoReturn:
    """Run :func:`main` in a forked child, its output going to ``log``, and exit."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, job: dict[str, Any]) -> int:
    """Wait for the child ``pid``, SIGKILL it when ``job`` says; return its exit status.

    The kill comes ``kill_after`` seconds after the fork or, when the job gives
    ``after_calls``, after the file ``effects`` has that many lines; in any case
    after ``timeout`` seconds. The child is reaped only here, after any kill, so
    its pid cannot have been reused by then.
    """
    start = time.monotonic()
    after_calls = job.get("after_calls")
    deadline = None if after_calls else start + job["kill_after"]
    give_up = start + job["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        now = time.monotonic()
        if deadline is None and _lines(job["effects"]) >= after_calls:
            deadline = now + job["kill_after"]
        if now >= min(give_up, deadline or give_up):
            os.kill(pid, signal.SIGKILL)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        time.sleep(0.001)


def _lines(path: str) -> int:
    try:
        with open(path, "rb") as file:
            return file.read().count(b"\n")
    except FileNotFoundError:
        return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
