"""Measure the web app: the waiting page over 10,000 open interactions, answers under load.

Run it from the repository root (needs the ``web`` extra)::

    python benchmarks/bench_web.py                       # SQLite and PostgreSQL
    python benchmarks/bench_web.py --check               # exit 1 when a target fails
    python benchmarks/bench_web.py --postgresql-url postgresql+psycopg://user@host/db
    python benchmarks/bench_web.py --only postgresql --skip-page --workers 2

(a) the waiting page with ``--interactions`` (10,000) open interactions
    (target: median <= 300 ms). ``GET /waiting`` for a signed-in person,
    from ``workflow serve`` on 127.0.0.1 and a real HTTP client, ``--repeat`` times:
    the page shows the oldest 50, and links to the next.
(b) what one answer costs the database: the SQL statements and transactions
    of ``POST /api/interactions/ID/answer`` (the service the route calls,
    counted in this process; report only).
(c) answering under 32 clients, saturated (target: p95 <= 50 ms on
    PostgreSQL with one server process per core, ``--workers`` = the
    machine's cores; other counts are reported only). ``workflow serve
    --workers N`` runs in processes of its own; 32 clients, each with one
    HTTP connection, answer interactions of their own (quorum 2, so each
    answer is recorded and decides nothing) back to back, with no pause,
    ``--answers`` times each: the server is never idle. Throughput
    (answers/s) and the latency of every request, p50, p95 and the worst.
    Before it, one client alone answers a few: the latency of an idle server.
(d) answering under 32 concurrent clients, paced (target: p95 <= 50 ms on
    PostgreSQL), as people or integrations answer: each client sends its
    next answer 100 to 200 ms (uniformly at random, a fixed seed) after the
    time its previous one was *due* to be sent, for ``--seconds``. The
    schedule is fixed in advance (an open loop): a slow server does not slow
    the arrivals, and a request is timed from the moment it was due, so a
    request that had to wait for its connection counts that wait too. On
    average 32 / 0.15 s = 213 answers/s arrive.

(c) and (d) run with ``--workers`` 1 and 2. The clients run in a process of
their own (asyncio, one plain HTTP/1.1 keep-alive connection each, a few
lines of code on the client side per request): the server's processes do
not share an interpreter lock with them. Every latency is client side: from
sending (c) or from the due time (d) to the end of the response, which must
be 200. ``server CPU`` is the processor time the ``serve`` processes used,
per answer (Linux; the database's own time is not in it).

PostgreSQL gets a schema of its own (``workflow_bench_web``), whose tables
are made afresh. Times depend on the machine and what else runs there: the
clients, the server and the database share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as _uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import sqlalchemy as sa

from workflow.flows import TaskRegistry
from workflow.runtime import WaitSpec
from workflow.storage import Store
from workflow.storage.models import WaitRecord
from workflow.web import RunService

DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "workflow_bench_web"
CLIENTS = 32
TOKENS = {f"user-{n:02d}-token-0123456789": f"user{n:02d}" for n in range(CLIENTS)}
#: The pause of a paced client between two answers' due times, in seconds.
PACE = (0.100, 0.200)
#: The target of (d) on PostgreSQL, in milliseconds.
TARGET_P95_MS = 50.0


def in_schema(url: str) -> str:
    """``url`` with its search path set to :data:`SCHEMA`, made afresh."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{SCHEMA}"'))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{SCHEMA}"


class Served:
    """``workflow serve --workers N`` in processes of their own."""

    def __init__(self, store: Store, workers: int = 1) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = store.sql_engine.url.render_as_string(hide_password=False)
        self.workers = workers
        self.folder = tempfile.TemporaryDirectory()
        self.users = Path(self.folder.name) / "users.json"
        self.users.write_text(json.dumps(TOKENS))
        self.users.chmod(0o600)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Served:
        command = [sys.executable, "-m", "workflow", "--database", self.database, "serve"]
        command += ["--port", str(self.port), "--users", str(self.users)]
        if self.workers != 1:
            command += ["--workers", str(self.workers)]
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        while True:
            try:
                httpx.get(self.url + "/login")
                return self
            except httpx.TransportError:
                assert self.process.poll() is None, "workflow serve stopped"
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait()
        self.folder.cleanup()

    def cpu_seconds(self) -> float | None:
        """The processor time of the server and its worker processes so far (Linux)."""
        assert self.process is not None
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        total = 0
        pids = [self.process.pid]
        try:
            while pids:
                pid = pids.pop()
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pids += [int(n) for n in (task / "children").read_text().split()]
        except OSError:
            return None
        return total / ticks


def open_interactions(store: Store, count: int, approvers: list[str] | None) -> list[str]:
    """Store ``count`` open interactions (one run, one token each); return their ids."""
    run = store.create_workflow("bench")
    now = store.now()
    rows = []
    for n in range(count):
        who = (approvers[n % len(approvers)], "nobody") if approvers else None
        spec = WaitSpec("ask", f"step{n}", message=f"Refund {n}?", approvers=who, quorum=2)
        rows.append(
            {
                "id": str(_uuid.uuid4()),
                "workflow_uuid": run,
                "token_position": n,
                "step": spec.step,
                "kind": "ask",
                "phase": "waiting",
                "due": None,
                "topic": None,
                "spec": spec.stored(),
                "approvals": 0,
                "rejections": 0,
                "version": 0,
                "created": now + timedelta(milliseconds=n),  # listed in this order
            }
        )
    table = cast(sa.Table, WaitRecord.__table__)
    with store.transaction("open the interactions of the benchmark") as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(table.insert(), rows[start : start + 1000])
    return [str(row["id"]) for row in rows]


def signed_in(client: httpx.Client, token: str) -> None:
    client.post("/login", data={"token": token, "next": "/waiting"})


def waiting_page(store: Store, count: int, repeat: int) -> dict[str, float]:
    open_interactions(store, count, None)
    with Served(store) as served, httpx.Client(base_url=served.url) as client:
        signed_in(client, next(iter(TOKENS)))
        assert "Refund 0?" in client.get("/waiting").text
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            response = client.get("/waiting")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
    return {"median_ms": statistics.median(times) * 1000, "worst_ms": max(times) * 1000}


def statements_per_answer(store: Store, answers: int = 20) -> dict[str, float]:
    """The statements and transactions of one recorded answer, through the API's service."""
    service = RunService(store, registry=TaskRegistry(entry_point_group=None))
    idents = open_interactions(store, answers + 1, ["user00"])
    statements = transactions = 0

    def statement(*_: Any) -> None:
        nonlocal statements
        statements += 1

    def commit(*_: Any) -> None:
        nonlocal transactions
        transactions += 1

    service.answer(idents[0], by="user00", decision="approve")  # the pool's first connection
    sa.event.listen(store.sql_engine, "before_cursor_execute", statement)
    sa.event.listen(store.sql_engine, "commit", commit)
    try:
        for ident in idents[1:]:
            assert service.answer(ident, by="user00", decision="approve")["recorded"]
    finally:
        sa.event.remove(store.sql_engine, "before_cursor_execute", statement)
        sa.event.remove(store.sql_engine, "commit", commit)
    return {"statements": statements / answers, "transactions": transactions / answers}


# -- the clients (a process of their own) ------------------------------------------------


def _request(ident: str, token: str) -> bytes:
    body = b'{"decision":"approve"}'
    head = (
        f"POST /api/interactions/{ident}/answer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; return the status and the body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(head[9:12]), await reader.readexactly(length)


async def _client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    token: str,
    idents: list[str],
    due: list[float] | None,
) -> list[float]:
    """Answer ``idents``: back to back, or each at its ``due`` time (``loop.time()``)."""
    loop = asyncio.get_running_loop()
    latencies = []
    for n, ident in enumerate(idents):
        if due is None:
            start = loop.time()
        else:
            start = due[n]
            if start > loop.time():
                await asyncio.sleep(start - loop.time())
        status, body = await _exchange(reader, writer, _request(ident, token))
        latencies.append(loop.time() - start)
        if status != 200:
            raise RuntimeError(f"answer {ident}: {status} {body[:200]!r}")
    return latencies


async def _connected(port: int, token: str, warm: list[str]) -> Any:
    """A connection of the client of ``token``, warmed by answering ``warm``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for ident in warm:
        status, body = await _exchange(reader, writer, _request(ident, token))
        if status != 200:
            raise RuntimeError(f"answer {ident}: {status} {body[:200]!r}")
    return reader, writer


async def _clients(
    port: int, plan: dict[str, tuple[list[str], list[str]]], paced: bool, seed: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    connections = await asyncio.gather(
        *(_connected(port, token, warm) for token, (warm, _) in plan.items())
    )
    rng = random.Random(seed)
    start = loop.time() + 0.1
    schedules: dict[str, list[float] | None] = {}
    for token, (_, idents) in plan.items():
        if not paced:
            schedules[token] = None
            continue
        moment = start + rng.uniform(*PACE)  # each client its own phase
        schedule = []
        for _ in idents:
            schedule.append(moment)
            moment += rng.uniform(*PACE)
        schedules[token] = schedule
    began = loop.time()
    found = await asyncio.gather(
        *(
            _client(reader, writer, token, idents, schedules[token])
            for (reader, writer), (token, (_, idents)) in zip(
                connections, plan.items(), strict=True
            )
        )
    )
    ended = loop.time()
    for _, writer in connections:
        writer.close()
    return {"latencies": [took for one in found for took in one], "seconds": ended - began}


def _clients_process(connection: Any, port: int, plan: Any, paced: Any, seed: int) -> None:
    try:
        connection.send(asyncio.run(_clients(port, plan, paced, seed)))
    except Exception as exc:  # reported by the parent
        connection.send({"error": repr(exc)})


def drive(
    served: Served, plan: dict[str, tuple[list[str], list[str]]], *, paced: bool
) -> dict[str, float]:
    """Run the clients of ``plan`` ({token: (warm-up ids, measured ids)}) in a process."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    cpu_before = served.cpu_seconds()
    process = context.Process(target=_clients_process, args=(theirs, served.port, plan, paced, 12))
    process.start()
    found = ours.recv()
    process.join()
    cpu_after = served.cpu_seconds()
    if "error" in found:
        raise RuntimeError(found["error"])
    latencies = sorted(found["latencies"])
    answers = len(latencies) + sum(len(warm) for warm, _ in plan.values())
    result = {
        "answers": len(latencies),
        "per_second": len(latencies) / found["seconds"],
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
        "worst_ms": latencies[-1] * 1000,
    }
    if cpu_before is not None and cpu_after is not None:
        result["cpu_ms"] = (cpu_after - cpu_before) / answers * 1000
    return result


def answering(store: Store, workers: int, answers: int, seconds: float) -> dict[str, Any]:
    """(c) and (d) against ``workflow serve --workers workers``."""
    users = list(TOKENS.values())
    paced = int(seconds / statistics.mean(PACE)) + 1
    each = 2 + answers + 2 + paced
    idents = open_interactions(store, CLIENTS * each, users)
    mine = {token: idents[n::CLIENTS] for n, token in enumerate(TOKENS)}
    alone_token = next(iter(TOKENS))
    alone = open_interactions(store, 22, [TOKENS[alone_token]])
    with Served(store, workers) as served:
        one = drive(served, {alone_token: (alone[:2], alone[2:])}, paced=False)
        plan = {token: (ids[:2], ids[2 : 2 + answers]) for token, ids in mine.items()}
        saturated = drive(served, plan, paced=False)
        time.sleep(1)
        rest = {token: ids[2 + answers :] for token, ids in mine.items()}
        steady = drive(
            served, {token: (ids[:2], ids[2:]) for token, ids in rest.items()}, paced=True
        )
    return {"alone": one, "saturated": saturated, "paced": steady}


def fresh(url: str) -> Store:
    store = Store(url)
    store.drop_all()
    store.create_all()
    return store


def _cpu(result: dict[str, float]) -> str:
    return f", server CPU {result['cpu_ms']:.2f} ms/answer" if "cpu_ms" in result else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql-url", default=DEFAULT_POSTGRESQL_URL)
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one database")
    parser.add_argument("--interactions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-page", action="store_true", help="skip (a)")
    parser.add_argument("--answers", type=int, default=100, help="(c): answers per client")
    parser.add_argument("--seconds", type=float, default=10.0, help="(d): how long")
    parser.add_argument(
        "--workers", type=int, action="append", help="(c), (d): serve --workers (default: 1, 2)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    failed = []
    with tempfile.TemporaryDirectory() as folder:
        urls = {"sqlite": f"sqlite:///{Path(folder) / 'bench.sqlite'}"}
        if args.only != "sqlite":
            try:
                urls["postgresql"] = in_schema(args.postgresql_url)
            except sa.exc.OperationalError as exc:
                print(f"postgresql: skipped ({str(exc).splitlines()[0]})")
        if args.only == "postgresql":
            urls.pop("sqlite")
        for name, url in urls.items():
            if not args.skip_page:
                store = fresh(url)
                page = waiting_page(store, args.interactions, args.repeat)
                print(
                    f"{name:10} (a) /waiting over {args.interactions} open interactions: "
                    f"median {page['median_ms']:.1f} ms, worst {page['worst_ms']:.1f} ms "
                    "(target: median <= 300 ms)"
                )
                if page["median_ms"] > 300:
                    failed.append(f"{name} (a)")
                store.dispose()
            store = fresh(url)
            cost = statements_per_answer(store)
            print(
                f"{name:10} (b) one answer: {cost['statements']:.1f} SQL statements in "
                f"{cost['transactions']:.1f} transaction(s)"
            )
            store.dispose()
            for workers in args.workers or [1, 2]:
                store = fresh(url)
                load = answering(store, workers, args.answers, args.seconds)
                store.dispose()
                one, full, paced = load["alone"], load["saturated"], load["paced"]
                judged = name == "postgresql" and workers == os.cpu_count()
                print(
                    f"{name:10} (c) --workers {workers}: {full['answers']} answers by {CLIENTS} "
                    f"clients back to back: {full['per_second']:.0f} answers/s, p50 "
                    f"{full['p50_ms']:.1f} ms, p95 {full['p95_ms']:.1f} ms, worst "
                    f"{full['worst_ms']:.1f} ms{_cpu(full)}; one client alone: p50 "
                    f"{one['p50_ms']:.1f} ms"
                    + (f" (target: p95 <= {TARGET_P95_MS:.0f} ms)" if judged else "")
                )
                if judged and full["p95_ms"] > TARGET_P95_MS:
                    failed.append(f"{name} (c) --workers {workers}")
                print(
                    f"{name:10} (d) --workers {workers}: {paced['answers']} answers by "
                    f"{CLIENTS} clients every 100-200 ms ({paced['per_second']:.0f} answers/s): "
                    f"p50 {paced['p50_ms']:.1f} ms, p95 {paced['p95_ms']:.1f} ms, worst "
                    f"{paced['worst_ms']:.1f} ms{_cpu(paced)} (target on PostgreSQL: "
                    f"p95 <= {TARGET_P95_MS:.0f} ms)"
                )
                if name == "postgresql" and paced["p95_ms"] > TARGET_P95_MS:
                    failed.append(f"{name} (d) --workers {workers}")
    if failed:
        print("targets missed: " + ", ".join(failed))
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
