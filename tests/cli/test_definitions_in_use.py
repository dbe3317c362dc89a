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


def test_a_run_of_a_deleted_version_is_refused(store: Store) -> None:
    definitions = Definitions(store)
    definitions.put("paper", BODY)
    definitions.delete("paper", 1)
    with pytest.raises(DefinitionNotFoundError, match="version 1 of the stored definition 'paper'"):
        store.create_workflow("paper", definition_name="paper", definition_version=1)
    with store.sql_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM wf_workflow")).scalar() == 0
    # a definition that was never stored is the caller's business, as before
    assert store.create_workflow("x", definition_name="elsewhere", definition_version=3)


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_a_delete_racing_a_new_run_waits_for_it_and_is_refused(server: str, tmp_path: Path) -> None:
    """A run being stored holds its version's row: the delete waits, then sees the run.

    (SQLite lets one transaction write at a time: the second of the two fails
    on the database's lock instead, and nothing is stranded either.)
    """
    import threading

    from workflow.storage.pins import pin_definition

    store = Store(empty_database(server, tmp_path))
    store.create_all()
    try:
        definitions = Definitions(store)
        definitions.put("paper", BODY)
        outcome: list[BaseException | None] = []
        with store.transaction("a run starts") as conn:
            pin_definition(conn, "paper", 1)  # the run's transaction holds the row now

            def delete() -> None:
                try:
                    definitions.delete("paper", 1)
                    outcome.append(None)
                except BaseException as exc:  # reported to the test's thread
                    outcome.append(exc)

            deleter = threading.Thread(target=delete)
            deleter.start()
            deleter.join(1.0)
            assert deleter.is_alive(), f"the delete did not wait for the run: {outcome}"
            conn.execute(
                sa.text(
                    "INSERT INTO wf_workflow (uuid, name, status, token_pos, callback_pos, "
                    "extra_data, definition_name, definition_version, created, modified) "
                    "VALUES ('race', 'paper', 0, -1, '[0]', '{}', 'paper', 1, :t, :t)"
                ),
                {"t": store.now()},
            )
        deleter.join(30)
        [error] = outcome
        assert isinstance(error, DefinitionInUseError), error
        assert error.uuids == ("race",)
        assert [d.version for d in definitions.versions("paper")] == [1]
    finally:
        store.dispose()
