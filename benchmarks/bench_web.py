"""Measure the web app: the waiting page over 10,000 open interactions, answers under load.

Run it from the repository root (needs the ``web`` extra)::

    python benchmarks/bench_web.py                       # SQLite and PostgreSQL
    python benchmarks/bench_web.py --check               # exit 1 when a target fails
    python benchmarks/bench_web.py --postgresql-url postgresql+psycopg://user@host/db

(a) the waiting page with ``--interactions`` (10,000) open interactions
    (target: median <= 300 ms). ``GET /waiting`` for a signed-in person,
    from ``workflow serve`` on 127.0.0.1 and a real HTTP client, ``--repeat`` times:
    the page shows the oldest 50, and links to the next.
(b) answering under 32 concurrent clients (target: p95 <= 50 ms on
    PostgreSQL). ``workflow serve`` runs in a process of its own; first one
    client alone answers a few, then 32 threads, each with its own HTTP connection, answer
    interactions of their own (quorum 2, so each answer is recorded and
    decides nothing) ``--answers`` times each; the latency of every
    request, client side. p50, p95 and the worst.

PostgreSQL gets a schema of its own (``workflow_bench_web``), whose tables
are made afresh. Times depend on the machine and what else runs there.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid as _uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from workflow.runtime import Waits, WaitSpec
from workflow.storage import Store

DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "workflow_bench_web"
CLIENTS = 32
TOKENS = {f"user-{n:02d}-token-0123456789": f"user{n:02d}" for n in range(CLIENTS)}


def in_schema(url: str) -> str:
    """``url`` with its search path set to :data:`SCHEMA`, made afresh."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{SCHEMA}"'))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{SCHEMA}"


class Served:
    """``workflow serve`` in a process of its own (its clients do not share its GIL)."""

    def __init__(self, store: Store) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = store.sql_engine.url.render_as_string(hide_password=False)
        self.folder = tempfile.TemporaryDirectory()
        self.users = Path(self.folder.name) / "users.json"
        self.users.write_text(json.dumps(TOKENS))
        self.users.chmod(0o600)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Served:
        command = [sys.executable, "-m", "workflow", "--database", self.database, "serve"]
        command += ["--port", str(self.port), "--users", str(self.users)]
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


def open_interactions(store: Store, count: int, approvers: list[str] | None) -> list[str]:
    """Store ``count`` open interactions (one run, one token each); return their ids."""
    run = store.create_workflow("bench")
    waits = Waits(store)
    made = []
    for n in range(count):
        ident = str(_uuid.uuid4())
        who = (approvers[n % len(approvers)], "nobody") if approvers else None
        spec = WaitSpec("ask", f"step{n}", message=f"Refund {n}?", approvers=who, quorum=2)
        waits.open(run, n, ident, spec)
        made.append(ident)
    return made


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


def answering(store: Store, answers: int) -> dict[str, float]:
    users = list(TOKENS.values())
    idents = open_interactions(store, CLIENTS * answers, users)
    mine = {user: idents[n::CLIENTS] for n, user in enumerate(users)}
    latencies: list[float] = []
    lock = threading.Lock()

    with Served(store) as served:
        alone = []
        token, user = next(iter(TOKENS.items()))
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}) as one:
            for ident in mine[user][: answers // 2]:
                start = time.perf_counter()
                one.post(f"/api/interactions/{ident}/answer", json={"decision": "approve"})
                alone.append(time.perf_counter() - start)
        mine[user] = mine[user][answers // 2 :]

        def client_of(token: str, user: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=served.url, headers=headers) as client:
                for ident in mine[user]:
                    start = time.perf_counter()
                    response = client.post(
                        f"/api/interactions/{ident}/answer", json={"decision": "approve"}
                    )
                    took = time.perf_counter() - start
                    assert response.status_code == 200, response.text
                    with lock:
                        latencies.append(took)

        threads = [
            threading.Thread(target=client_of, args=(token, user)) for token, user in TOKENS.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    latencies.sort()
    return {
        "alone_ms": statistics.median(alone) * 1000,
        "answers": len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
        "worst_ms": latencies[-1] * 1000,
    }


def fresh(url: str) -> Store:
    store = Store(url)
    store.drop_all()
    store.create_all()
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql-url", default=DEFAULT_POSTGRESQL_URL)
    parser.add_argument("--interactions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--answers", type=int, default=20, help="answers per client")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    failed = []
    with tempfile.TemporaryDirectory() as folder:
        urls = {"sqlite": f"sqlite:///{Path(folder) / 'bench.sqlite'}"}
        try:
            urls["postgresql"] = in_schema(args.postgresql_url)
        except sa.exc.OperationalError as exc:
            print(f"postgresql: skipped ({str(exc).splitlines()[0]})")
        for name, url in urls.items():
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
            load: dict[str, Any] = answering(store, args.answers)
            print(
                f"{name:10} (b) {load['answers']} answers by {CLIENTS} concurrent clients: "
                f"p50 {load['p50_ms']:.1f} ms, p95 {load['p95_ms']:.1f} ms, worst "
                f"{load['worst_ms']:.1f} ms (target on PostgreSQL: p95 <= 50 ms); one client "
                f"alone: median {load['alone_ms']:.1f} ms"
            )
            if name == "postgresql" and load["p95_ms"] > 50:
                failed.append(f"{name} (b)")
            store.dispose()
    if failed:
        print("targets missed: " + ", ".join(failed))
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
