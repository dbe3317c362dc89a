"""``workflow serve --workers N``: N processes answer, and a session holds in all of them."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.web.test_serve import free_port, wait_for
from workflow.cli._serve_group import REUSE_PORT

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="finds the process of a connection in /proc"
)


def descendants(pid: int) -> set[int]:
    """The processes started by ``pid``, and theirs."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").iterdir():
            children = {int(n) for n in (task / "children").read_text().split()}
            todo += children - found
            found |= children
    return found


def server_process(connection: http.client.HTTPConnection, candidates: set[int]) -> int:
    """The process among ``candidates`` holding the server's end of ``connection``."""
    assert connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    server_port = connection.sock.getpeername()[1]
    wanted = f"0100007F:{server_port:04X} 0100007F:{client_port:04X} 01"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if " ".join(fields[1:4]) == wanted:
            inode = fields[9]
    assert inode is not None, "the server's end of the connection is not in /proc/net/tcp"
    for pid in candidates:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds the connection")


def listening(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4 loopback), from /proc/net/tcp."""
    wanted = f"0100007F:{port:04X}"
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for fields in rows if fields[1] == wanted and fields[3] == "0A")


def all_listening(port: int, workers: int = 2) -> None:
    """Wait until ``workers`` processes listen: the first answered, the others may be starting."""
    deadline = time.monotonic() + 60
    while REUSE_PORT and listening(port) < workers:
        assert time.monotonic() < deadline, "not every server process listened"
        time.sleep(0.05)


def test_two_workers_answer_and_a_session_of_one_holds_in_the_other(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "WORKFLOW_WEB_SECRET"}
    database = f"sqlite:///{tmp_path / 'w.sqlite'}"
    command = ["serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "workflow", "--database", database, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "WORKFLOW_WEB_USERS": ""},  # a token made for this server, in every worker
    )
    connections: dict[int, http.client.HTTPConnection] = {}
    try:
        assert process.stderr is not None
        found = re.search(r"with the token (\S+)", process.stderr.readline())
        assert found is not None
        token = found.group(1)
        wait_for(f"http://127.0.0.1:{port}/api/runs", process)
        all_listening(port)
        workers = descendants(process.pid)
        for _ in range(200):  # new connections until each worker holds one
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/api/runs", headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b'{"runs":[],"next_offset":null}')
            pid = server_process(connection, workers)
            if pid in connections:
                connection.close()
            else:
                connections[pid] = connection
            if len(connections) == 2:
                break
        assert len(connections) == 2, "one worker took every connection"
        first, second = connections.values()

        form = {"Content-Type": "application/x-www-form-urlencoded"}
        first.request("POST", "/login", urlencode({"token": token, "next": "/"}), form)
        response = first.getresponse()
        response.read()
        assert response.status == 303
        cookie = response.getheader("set-cookie", "").split(";")[0]
        first.request("GET", "/waiting", headers={"Cookie": cookie})
        page = first.getresponse().read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None, page

        second.request("GET", "/waiting", headers={"Cookie": cookie})
        response = second.getresponse()
        assert (response.status, "Waiting for approval" in response.read().decode()) == (200, True)
        body = urlencode({"csrf": csrf.group(1)})
        second.request("POST", "/logout", body, {**form, "Cookie": cookie})
        response = second.getresponse()
        response.read()
        assert (response.status, response.getheader("location")) == (303, "/login")
    finally:
        for connection in connections.values():
            connection.close()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"on http://127.0.0.1:{port}/ with 2 workers" in err


def serve_command(tmp_path: Path, port: int, workers: int = 2) -> list[str]:
    database = f"sqlite:///{tmp_path / 'w.sqlite'}"
    serve = ["serve", "--port", str(port), "--workers", str(workers)]
    return [sys.executable, "-m", "workflow", "--database", database, *serve]


def start_workers(tmp_path: Path, port: int, workers: int = 2) -> tuple[subprocess.Popen[str], str]:
    """``workflow serve --workers N`` on ``port``; return it, once it answers, and its token."""
    process = subprocess.Popen(
        serve_command(tmp_path, port, workers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WORKFLOW_WEB_USERS": ""},
    )
    assert process.stderr is not None
    found = re.search(r"with the token (\S+)", process.stderr.readline())
    assert found is not None
    wait_for(f"http://127.0.0.1:{port}/api/runs", process)
    return process, found.group(1)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


def ask_runs(connection: http.client.HTTPConnection, token: str) -> int:
    connection.request("GET", "/api/runs", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    response.read()
    return response.status


@pytest.mark.skipif(not REUSE_PORT, reason="each process listens itself on Linux only")
def test_connections_opened_at_once_are_spread_over_the_workers(tmp_path: Path) -> None:
    port = free_port()
    process, token = start_workers(tmp_path, port)
    opened: list[http.client.HTTPConnection] = []
    try:
        all_listening(port)
        workers = descendants(process.pid)
        # 32 connections at once, as a proxy's pool: one process took all of them
        # (or 22 to 10) when the processes shared one socket.
        opened = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(32)]
        for connection in opened:
            connection.connect()
        assert {ask_runs(connection, token) for connection in opened} == {200}
        held = Counter(server_process(connection, workers) for connection in opened)
    finally:
        for connection in opened:
            connection.close()
        stop(process)
    assert len(held) == 2, held
    assert min(held.values()) >= 4, held  # the kernel's hash: ~16 each; < 4 has odds of 1e-6


@pytest.mark.skipif(not REUSE_PORT, reason="each process listens itself on Linux only")
def test_a_killed_server_process_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    process, token = start_workers(tmp_path, port)
    try:
        first = descendants(process.pid)
        victim = max(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:  # the replacement is up when a new connection can reach it
            now = descendants(process.pid)
            if victim not in now and len(now - first) >= 1:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    if ask_runs(connection, token) == 200 and server_process(connection, now) in (
                        now - first
                    ):
                        break
                finally:
                    connection.close()
            assert time.monotonic() < deadline, "no process replaced the killed one"
            time.sleep(0.05)
    finally:
        err = stop(process)
    assert f"server process {victim} ended with exit code -9; starting another" in err


@pytest.mark.skipif(not REUSE_PORT, reason="each process listens itself on Linux only")
def test_a_port_in_use_is_refused_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            serve_command(tmp_path, port),
            capture_output=True,
            text=True,
            env={**os.environ, "WORKFLOW_WEB_USERS": ""},
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
