"""A property-based run of the API against its own OpenAPI document (schemathesis).

Every operation of ``/openapi.json`` gets generated requests, as a known
user, on SQLite and PostgreSQL (which refuses more text, NUL for one) with
a waiting run stored: no response is a server error, and none contradicts
the document (status code, content type, headers, body schema). Kept
small (a few examples per operation) to stay fast.
Hypothesis drives each operation's strategy directly: schemathesis's pytest
plugin is not needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.storage.conftest import empty_database
from tests.web.conftest import REFUND, USERS, auth
from workflow.flows import TaskRegistry
from workflow.storage import Definitions, Store
from workflow.web import create_app

#: No 500, and nothing the document does not say.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_api_keeps_to_its_openapi_document(backend: str, tmp_path: Path) -> None:
    store = Store(empty_database(backend, tmp_path), lock_ttl=5.0)
    store.create_all()
    try:
        Definitions(store).put("refund", REFUND)
        tasks = TaskRegistry(entry_point_group=None)
        tasks.register("echo", lambda context, params: dict(params))
        app = create_app(store, users=USERS, registry=tasks, secret="test secret")
        app.state.service.start(flow="refund")
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 7

        for operation in operations:

            @given(operation.as_strategy())
            @settings(
                max_examples=15,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def keeps_to_the_document(case: Any) -> None:
                case.call_and_validate(headers=auth("alice"), checks=CHECKS)

            keeps_to_the_document()
    finally:
        store.dispose()
