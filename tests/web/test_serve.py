"""``workflow serve`` as a real process, the users file, and what importing costs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import TOKENS
from workflow.errors import WorkflowValueError
from workflow.storage import Definitions, Store
from workflow.web import Sessions, Users, load_users


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    database = f"sqlite:///{tmp_path / 'workflow.sqlite'}"
    return subprocess.Popen(
        [sys.executable, "-m", "workflow", "--database", database, "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WORKFLOW_WEB_USERS": ""},
    )


def get(url: str, token: str | None, body: object = None) -> tuple[int, dict[str, Any]]:
    """GET ``url`` (POST ``body`` as JSON when given); return the status and the JSON."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(url: str, process: subprocess.Popen[str]) -> None:
    give_up = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.communicate()
        try:
            get(url, None)
            return
        except OSError:
            assert time.monotonic() < give_up, "the server did not answer"
            time.sleep(0.05)


def test_serve_answers_with_the_users_of_its_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'workflow.sqlite'}")
    store.create_all()
    ask = {"message": "Ship?", "approvers": ["alice"]}
    Definitions(store).put("ship", {"name": "ship", "steps": [{"name": "ok", "ask": ask}]})
    store.dispose()
    users = tmp_path / "users.json"
    users.write_text(json.dumps({TOKENS["alice"]: "alice"}))
    users.chmod(0o600)
    port = free_port()
    process = serve(tmp_path, "--port", str(port), "--users", str(users))
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(f"{url}/runs", process)
        assert get(f"{url}/runs", None)[0] == 401
        assert get(f"{url}/runs", TOKENS["alice"]) == (200, {"runs": [], "next_offset": None})
        status, started = get(f"{url}/runs", TOKENS["alice"], {"flow": "ship"})
        assert (status, started["status"]) == (201, "HALTED")
        [waiting] = get(f"{url}/interactions", TOKENS["alice"])[1]["interactions"]
        answer = f"{url}/interactions/{waiting['id']}/answer"
        status, answered = get(answer, TOKENS["alice"], {"decision": "approve"})
        assert (status, answered["continued"], answered["run_status"]) == (200, True, "COMPLETED")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"on http://127.0.0.1:{port}/" in err


def test_serve_without_users_listens_locally_and_prints_a_token(tmp_path: Path) -> None:
    refused = serve(tmp_path, "--host", "0.0.0.0")
    _, err = refused.communicate(timeout=30)
    assert refused.returncode == 2
    assert "no users are configured: refusing to listen on 0.0.0.0" in err

    port = free_port()
    process = serve(tmp_path, "--port", str(port))
    url = f"http://127.0.0.1:{port}/api/runs"
    try:
        wait_for(url, process)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert "no users configured: listening on 127.0.0.1 only; sign in as" in err


def test_a_users_file_others_may_read_is_refused(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text(json.dumps({TOKENS["bob"]: "bob"}))
    users.chmod(0o644)
    with pytest.raises(WorkflowValueError, match=r"may be read by others \(mode -rw-r--r--\)"):
        load_users(users)
    users.chmod(0o600)
    assert load_users(users).user(TOKENS["bob"]) == "bob"
    users.write_text("{not json")
    with pytest.raises(WorkflowValueError, match=r"users\.json is not valid JSON"):
        load_users(users)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib (Python 3.11)")
def test_a_users_file_may_be_toml(tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    users.write_text(f'"{TOKENS["bob"]}" = "bob"\n')
    users.chmod(0o600)
    assert load_users(users).user(TOKENS["bob"]) == "bob"
    users.write_text("not = [toml")
    with pytest.raises(WorkflowValueError, match=r"users\.toml is not valid TOML"):
        load_users(users)


def test_users_come_from_the_environment_and_short_tokens_are_refused() -> None:
    found = load_users(None, {"WORKFLOW_WEB_USERS": json.dumps({TOKENS["carol"]: "carol"})})
    assert (found.user(TOKENS["carol"]), found.user("x" * 22), found.user(None)) == (
        "carol",
        None,
        None,
    )
    assert not load_users(None, {})
    with pytest.raises(WorkflowValueError, match="at least 16 characters"):
        load_users(None, {"WORKFLOW_WEB_USERS": '{"short": "eve"}'})
    with pytest.raises(WorkflowValueError, match=r"WORKFLOW_WEB_USERS must be an object"):
        load_users(None, {"WORKFLOW_WEB_USERS": '["a"]'})


def test_a_session_cookie_is_signed_and_ends_when_its_user_is_removed() -> None:
    users = Users({TOKENS["alice"]: "alice"})
    sessions = Sessions("secret")
    cookie = sessions.issue("alice")
    session = sessions.read(cookie, users)
    assert session is not None
    assert session.user == "alice"
    assert sessions.check_csrf(session, sessions.csrf(session))
    assert not sessions.check_csrf(session, "forged")
    payload, mac = cookie.split(".")
    assert sessions.read(f"{payload}x.{mac}", users) is None
    assert Sessions("another secret").read(cookie, users) is None
    assert sessions.read(cookie, Users({TOKENS["bob"]: "bob"})) is None


def test_importing_workflow_and_its_storage_does_not_import_the_web_libraries() -> None:
    code = (
        "import sys, workflow, workflow.storage, workflow.runtime, workflow.cli\n"
        "print(sorted(m for m in ('fastapi', 'starlette', 'jinja2', 'uvicorn', 'pydantic') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
