"""One real run against PostgreSQL through ``--database``: halted, then resumed.

The server is that of the storage suite (``WORKFLOW_TEST_POSTGRESQL_URL``):
skipped with a hint when it does not answer, a failure in CI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.storage.conftest import empty_database

UUID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")


def test_halted_flow_resumes_on_postgresql(real: Any, tmp_path: Path, workdir: Path) -> None:
    url = empty_database("postgresql", tmp_path)
    halted = real("--database", url, "run", "review.json", "--tokens", "in.jsonl")
    assert halted.code == 3, halted.err
    [uuid] = set(UUID.findall(halted.out))
    done = real("--database", url, "--json", "resume", uuid, "--data", '{"approved": true}')
    assert done.code == 0, done.err
    assert done.json()["counts"] == {"total": 2, "completed": 2}
    listed = real("--database", url, "--json", "list").json()
    assert [(w["uuid"], w["status"]) for w in listed] == [(uuid, "COMPLETED")]
    assert not (workdir / "workflow.sqlite").exists()
