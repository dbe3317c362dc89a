"""An app over a real database (SQLite, PostgreSQL, MariaDB) with a stored refund flow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.storage.conftest import BACKENDS, empty_database
from workflow.flows import TaskRegistry
from workflow.storage import Definitions, Store
from workflow.web import Users, create_app

#: Each person's token.
TOKENS = {
    "alice": "alice-token-0123456789",
    "bob": "bob-token-0123456789ab",
    "carol": "carol-token-0123456789",
    "mallory": "mallory-token-01234567",
}
USERS = Users({token: name for name, token in TOKENS.items()})
SCHEMA = {"type": "object", "properties": {"note": {"type": "string"}}}

REFUND = {
    "name": "refund",
    "steps": [
        {
            "name": "approve",
            "ask": {
                "message": "Refund order 17 (240 EUR)?",
                "approvers": ["alice", "bob", "carol"],
                "quorum": 2,
                "schema": SCHEMA,
            },
        },
        {"name": "after", "task": "echo", "params": {"decision": "@approve.decision"}},
    ],
}


def auth(name: str) -> dict[str, str]:
    """The header that makes a request ``name``'s."""
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture
def registry() -> TaskRegistry:
    tasks = TaskRegistry(entry_point_group=None)
    tasks.register("echo", lambda context, params: dict(params))
    return tasks


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    database = Store(empty_database(str(request.param), tmp_path), lock_ttl=5.0)
    database.create_all()
    Definitions(database).put("refund", REFUND)
    yield database
    database.dispose()


@pytest.fixture
def client(store: Store, registry: TaskRegistry) -> Iterator[TestClient]:
    # On PostgreSQL, answers go through the loop's own connections (as ``serve``'s do)
    app = create_app(
        store, users=USERS, registry=registry, secret="test secret", answer_connections=2
    )
    with TestClient(app) as test_client:
        yield test_client


def start(client: TestClient, **body: Any) -> dict[str, Any]:
    """Start a refund run as alice; return the run's state."""
    response = client.post("/api/runs", json={"flow": "refund", **body}, headers=auth("alice"))
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started
