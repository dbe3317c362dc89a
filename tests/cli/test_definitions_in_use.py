"""A stored definition's version cannot be deleted while unfinished runs are pinned to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.storage.conftest import BACKENDS, empty_database
from workflow.cli import ExitCode
from workflow.engine_db import WorkflowStatus
from workflow.errors import DefinitionInUseError, DefinitionNotFoundError, StorageError
from workflow.storage import Definitions, Store

BODY = {"name": "paper", "steps": [{"name": "ask", "halt": True}]}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = Store(empty_database(str(request.param), tmp_path))
    store.create_all()
    yield store
    store.dispose()


def _set_status(store: Store, uuid: str, status: int) -> None:
    with store.transaction("test") as conn:
        conn.execute(
            sa.text("UPDATE wf_workflow SET status = :s WHERE uuid = :u"), {"s": status, "u": uuid}
        )


def test_delete_is_refused_while_an_unfinished_run_is_pinned_to_the_version(
    store: Store,
) -> None:
    definitions = Definitions(store)
    definitions.put("paper", BODY)
    definitions.put("paper", dict(BODY, description="two"))
    uuid = store.create_workflow("paper", definition_name="paper", definition_version=1)
    _set_status(store, uuid, WorkflowStatus.HALTED.value)

    with pytest.raises(DefinitionInUseError) as info:
        definitions.delete("paper", 1)
    assert isinstance(info.value, StorageError)
    assert (info.value.runs, info.value.uuids) == (1, (uuid,))
    assert info.value.message == (
        f"cannot delete version 1 of the stored definition 'paper': 1 unfinished run is "
        f"pinned to it ({uuid}); finish or cancel them first"
    )
    with pytest.raises(DefinitionInUseError, match="cannot delete any version of it"):
        definitions.delete("paper")
    assert [d.version for d in definitions.versions("paper")] == [1, 2]

    assert [d.version for d in definitions.delete("paper", 2)] == [2]  # no run uses it
    _set_status(store, uuid, WorkflowStatus.COMPLETED.value)
    [deleted] = definitions.delete("paper", 1)
    assert (deleted.version, deleted.deleted) == (1, True)
    with pytest.raises(DefinitionNotFoundError):
        definitions.delete("paper", 1)


def test_cancelled_runs_do_not_keep_a_version_and_only_the_first_runs_are_named(
    store: Store,
) -> None:
    definitions = Definitions(store)
    definitions.put("paper", BODY)
    uuids = [
        store.create_workflow("paper", definition_name="paper", definition_version=1)
        for _ in range(7)
    ]
    _set_status(store, uuids[0], 6)  # CANCELLED
    _set_status(store, uuids[1], WorkflowStatus.ERROR.value)
    with pytest.raises(DefinitionInUseError) as info:
        definitions.delete("paper")
    assert info.value.runs == 6
    assert len(info.value.uuids) == 5
    assert uuids[0] not in info.value.uuids
    assert "6 unfinished runs are pinned to it" in info.value.message
    assert ", and 1 more); finish or cancel them first" in info.value.message


def test_cli_delete_refuses_with_exit_2_and_the_run_still_resumes(cli: Any) -> None:
    halted = cli("--json", "run", "review.json")
    assert halted.code == ExitCode.HALTED
    uuid = halted.json()["uuid"]
    refused = cli("definitions", "delete", "review", "--version", "1")
    assert refused.code == ExitCode.USAGE
    assert refused.err.strip().endswith(
        f"cannot delete version 1 of the stored definition 'review': 1 unfinished run is "
        f"pinned to it ({uuid}); finish or cancel them first"
    )
    assert "Traceback" not in refused.err
    done = cli("resume", uuid, "--data", '{"approved": true}')
    assert done.code == ExitCode.OK
    assert cli("definitions", "delete", "review").code == ExitCode.OK
