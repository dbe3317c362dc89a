"""``workflow serve --workers N``: N processes answer, and a session holds in all of them."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.web.test_serve import free_port, wait_for

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
