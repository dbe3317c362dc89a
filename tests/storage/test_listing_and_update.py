"""Listing stored workflows, the stored definition a run is made from, and fixing a
halted or failed token's data before it resumes.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import (
    HaltProcessing,
    StorageError,
    TokenEncodingError,
    WorkflowError,
    WorkflowLockedError,
    WorkflowObjectStatusError,
)
from workflow.storage import CheckpointPolicy, Definitions, PersistentWorkflowEngine, Store, Token


class Crash(BaseException):
    """Stands for the process dying inside a task: no handler of the engine sees it."""


@pytest.fixture
def other(db_url: str, store: Store) -> Iterator[Store]:
    """A second :class:`Store` on the same database: another process."""
    second = Store(db_url, lock_ttl=5.0)
    yield second
    second.dispose()


def approve(obj: Token, eng: PersistentWorkflowEngine) -> None:
    """Halt tokens that are not approved yet."""
    if not obj.data.get("approved"):
        eng.halt("needs approval")


def divide(obj: Token, eng: PersistentWorkflowEngine) -> None:
    obj.data["result"] = 100 // obj.data["by"]


def record(obj: Token, eng: PersistentWorkflowEngine) -> None:
    eng.extra_data.setdefault("seen", []).append(obj.data)


def halted_run(store: Store) -> PersistentWorkflowEngine:
    """A run whose token 1 halted: token 0 completed, token 2 did not start."""
    eng = PersistentWorkflowEngine.with_name(
        "review", store=store, definition=[approve, record], lock_wait=1
    )
    with pytest.raises(HaltProcessing):
        eng.process([{"id": 0, "approved": True}, {"id": 1}, {"id": 2, "approved": True}])
    return eng


# -- listing workflows --------------------------------------------------------------


def test_workflows_lists_the_rows_newest_first(store: Store) -> None:
    uids = []
    for name in ("a", "b", "c"):
        uids.append(store.create_workflow(name))
        time.sleep(0.002)  # distinct creation times, even on coarse clocks
    rows = store.workflows()
    assert [row["uuid"] for row in rows] == uids[::-1]
    assert [row["name"] for row in rows] == ["c", "b", "a"]
    assert set(rows[0]) >= {"uuid", "name", "status", "created", "definition_name"}


def test_workflows_filters_by_status_name_and_limit(store: Store) -> None:
    halted = halted_run(store)
    time.sleep(0.002)
    done = PersistentWorkflowEngine.with_name("review", store=store, definition=[record])
    done.process([{"id": 0}])
    time.sleep(0.002)
    new = store.create_workflow("other")

    by_status = store.workflows(status=WorkflowStatus.HALTED)
    assert [row["uuid"] for row in by_status] == [halted.uuid]
    by_value = store.workflows(status=WorkflowStatus.COMPLETED.value)
    assert [row["uuid"] for row in by_value] == [done.uuid]
    assert [row["uuid"] for row in store.workflows(name="review")] == [done.uuid, halted.uuid]
    assert [row["uuid"] for row in store.workflows(limit=2)] == [new, done.uuid]
    assert [row["uuid"] for row in store.workflows(name="review", limit=1)] == [done.uuid]
    assert store.workflows(name="review", status=WorkflowStatus.NEW) == []
    assert store.workflows(limit=0) == []


def test_workflows_of_an_empty_store_is_empty(store: Store) -> None:
    assert store.workflows() == []


def test_workflows_refuses_a_negative_limit(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be 0 or more, not -1"):
        store.workflows(limit=-1)


# -- the definition a run is made from -------------------------------------------


def test_with_name_stores_the_definition_name_and_version(store: Store) -> None:
    stored = Definitions(store).put("review-flow", {"steps": ["approve", "record"]})
    eng = PersistentWorkflowEngine.with_name(
        "review",
        store=store,
        definition=[record],
        definition_name=stored.name,
        definition_version=stored.version,
    )
    assert (eng.definition_name, eng.definition_version) == ("review-flow", 1)
    row = store.workflow(eng.uuid)
    assert (row["definition_name"], row["definition_version"]) == ("review-flow", 1)
    loaded = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store)
    assert (loaded.definition_name, loaded.definition_version) == ("review-flow", 1)
    assert [row["definition_name"] for row in store.workflows()] == ["review-flow"]


def test_a_run_without_a_stored_definition_has_none(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("plain", store=store)
    assert (eng.definition_name, eng.definition_version) == (None, None)
    uid = store.create_workflow("named only", definition_name="flow")
    loaded = PersistentWorkflowEngine.from_uuid(uid, store=store)
    assert (loaded.definition_name, loaded.definition_version) == ("flow", None)


def test_a_definition_version_needs_a_definition_name(store: Store) -> None:
    with pytest.raises(ValueError, match="definition_version=2 needs a definition_name"):
        store.create_workflow("orphan", definition_version=2)
    assert store.workflows() == []


# -- update_token ------------------------------------------------------------------


def test_update_token_then_resume_sees_the_new_data(store: Store, other: Store) -> None:
    eng = halted_run(store)
    eng.update_token(1, {"id": 1, "approved": True, "note": "fixed by hand"})
    assert eng.load_tokens()[1].data == {"id": 1, "approved": True, "note": "fixed by hand"}

    later = PersistentWorkflowEngine.from_uuid(eng.uuid, store=other, definition=[approve, record])
    later.resume()
    tokens = later.load_tokens()
    assert [t.status for t in tokens] == [ObjectStatus.COMPLETED] * 3
    # Token 1 resumed after the halting task, with the data put in by hand.
    assert tokens[1].data == {"id": 1, "approved": True, "note": "fixed by hand"}
    assert later.extra_data["seen"] == [
        {"id": 0, "approved": True},
        {"id": 1, "approved": True, "note": "fixed by hand"},
        {"id": 2, "approved": True},
    ]


def test_update_token_of_a_failed_token_runs_the_failed_task_on_the_new_data(
    store: Store,
) -> None:
    eng = PersistentWorkflowEngine.with_name("divide", store=store, definition=[divide])
    with pytest.raises(WorkflowError, match="ZeroDivisionError"):
        eng.process([{"by": 4}, {"by": 0}])
    eng.update_token(1, {"by": 5})
    eng.resume()
    assert [t.data for t in eng.load_tokens()] == [
        {"by": 4, "result": 25},
        {"by": 5, "result": 20},
    ]
    assert eng.status is WorkflowStatus.COMPLETED


def test_update_token_keeps_the_status_and_logs_data_updated(store: Store) -> None:
    eng = halted_run(store)
    before = eng.load_tokens()[1]
    logged = len(eng.transitions())
    eng.update_token(1, ["any", "json", None])

    after = eng.load_tokens()[1]
    assert (after.status, after.callback_pos) == (before.status, before.callback_pos)
    assert after.data == ["any", "json", None]
    [line] = eng.transitions()[logged:]
    assert line["message"] == "data updated"
    assert line["token_position"] == 1
    assert line["from_status"] == line["to_status"] == ObjectStatus.HALTED.value
    assert line["callback_pos"] == before.callback_pos
    row = store.workflow(eng.uuid)
    assert (row["status"], row["lock_owner"]) == (WorkflowStatus.HALTED.value, None)


@pytest.mark.parametrize("data", [None, 0, "text", [1, [2]]], ids=repr)
def test_update_token_stores_any_json_value(store: Store, data: Any) -> None:
    eng = halted_run(store)
    eng.update_token(2, data)  # a token that did not start yet
    assert eng.load_tokens()[2].data == data


def test_update_token_stores_registered_types_through_the_codec(store: Store) -> None:
    from decimal import Decimal

    store.codec.register(Decimal, "decimal", encode=str, decode=Decimal)
    eng = halted_run(store)
    eng.update_token(1, {"price": Decimal("9.99")})
    assert eng.load_tokens()[1].data == {"price": Decimal("9.99")}


def test_update_token_refuses_a_completed_token(store: Store) -> None:
    eng = halted_run(store)
    with pytest.raises(WorkflowObjectStatusError, match="COMPLETED token") as info:
        eng.update_token(0, {"id": 0, "changed": True})
    assert (info.value.id_object, info.value.obj_status) == (0, ObjectStatus.COMPLETED)
    assert eng.load_tokens()[0].data == {"id": 0, "approved": True}
    assert store.workflow(eng.uuid)["lock_owner"] is None  # released after the refusal


def test_update_token_refuses_a_running_token(db_url: str, store: Store) -> None:
    def crash(obj: Token, eng: PersistentWorkflowEngine) -> None:
        raise Crash

    short = Store(db_url, lock_ttl=0.2)
    try:
        eng = PersistentWorkflowEngine.with_name(
            "crash", store=short, definition=[record, crash], checkpoint="task"
        )
        with pytest.raises(Crash):
            eng.process([{"id": 0}])
    finally:
        short.dispose()
    # Another process takes the dead engine's lock over once it expired.
    survivor = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, lock_wait=10)
    with pytest.raises(WorkflowObjectStatusError, match="RUNNING token") as info:
        survivor.update_token(0, {"id": 0, "changed": True})
    assert info.value.obj_status is ObjectStatus.RUNNING
    assert survivor.load_tokens()[0].data == {"id": 0}
    assert store.workflow(eng.uuid)["lock_owner"] is None


def test_update_token_of_a_missing_position_raises_index_error(store: Store) -> None:
    eng = halted_run(store)
    with pytest.raises(IndexError, match=r"has no token at position 3 \(it has 3 tokens\)"):
        eng.update_token(3, {})
    assert store.workflow(eng.uuid)["lock_owner"] is None


def test_update_token_refuses_data_that_is_not_json_and_changes_nothing(store: Store) -> None:
    eng = halted_run(store)
    logged = len(eng.transitions())
    with pytest.raises(TokenEncodingError, match=r"builtins\.set") as info:
        eng.update_token(1, {"tags": {"a", "b"}})
    assert (info.value.workflow, info.value.token) == (eng.uuid, 1)
    assert info.value.operation == "update token"
    assert eng.load_tokens()[1].data == {"id": 1}
    assert len(eng.transitions()) == logged
    assert store.workflow(eng.uuid)["lock_owner"] is None


def test_update_token_waits_for_a_run_in_another_process(store: Store, other: Store) -> None:
    eng = halted_run(store)
    other.acquire(eng.uuid, "another process")
    eng.lock_wait = 0.1
    with pytest.raises(WorkflowLockedError, match="another process"):
        eng.update_token(1, {"id": 1, "approved": True})
    assert eng.load_tokens()[1].data == {"id": 1}
    assert store.workflow(eng.uuid)["lock_owner"] == "another process"


def test_update_token_by_the_engine_holding_the_lock_keeps_it(store: Store) -> None:
    eng = halted_run(store)
    store.acquire(eng.uuid, eng.owner)
    with pytest.raises(WorkflowObjectStatusError):
        eng.update_token(0, {})
    assert store.workflow(eng.uuid)["lock_owner"] == eng.owner
    eng.update_token(1, {"id": 1, "approved": True})
    row = store.workflow(eng.uuid)
    assert row["lock_owner"] == eng.owner
    assert row["lock_expires"] is not None
    eng.resume()  # still its own lock: no waiting
    assert store.workflow(eng.uuid)["lock_owner"] is None
    assert eng.status is WorkflowStatus.COMPLETED


def test_update_token_after_a_policy_halt_keeps_other_tokens(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name(
        "halt policy", store=store, definition=[approve], checkpoint=CheckpointPolicy.HALT
    )
    with pytest.raises(HaltProcessing):
        eng.process([{"approved": True}, {}, {}])
    eng.update_token(2, {"approved": True})
    eng.update_token(1, {"approved": True})
    eng.resume()
    assert [t.data for t in eng.load_tokens()] == [{"approved": True}] * 3


@pytest.mark.parametrize("backend", ["sqlite"])
def test_update_token_on_a_locked_file_fails_and_can_be_tried_again(
    db_url: str, store: Store
) -> None:
    """Another connection holds SQLite's write lock: the update and the lock's release fail."""
    eng = halted_run(store)
    impatient = Store(db_url)

    @event.listens_for(impatient.engine, "connect")
    def wait_briefly(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=100")  # after the store's 30 s

    other = sqlite3.connect(sa.engine.make_url(db_url).database or "", isolation_level=None)

    def lock_the_file(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("SELECT wf_token.status") and not other.in_transaction:
            other.execute("BEGIN EXCLUSIVE")

    event.listen(impatient.engine, "before_cursor_execute", lock_the_file)
    fixer = PersistentWorkflowEngine.from_uuid(eng.uuid, store=impatient)
    try:
        with pytest.raises(StorageError, match="database is locked") as info:
            fixer.update_token(1, {"id": 1, "approved": True})
        assert (info.value.operation, info.value.token) == ("update token", 1)
        other.execute("ROLLBACK")
        event.remove(impatient.engine, "before_cursor_execute", lock_the_file)
        # Its lock could not be released either: the same engine goes on at once.
        assert store.workflow(eng.uuid)["lock_owner"] == fixer.owner
        assert store.token_rows(eng.uuid)[1]["data"] == {"id": 1}
        fixer.update_token(1, {"id": 1, "approved": True})
        fixer.callbacks.replace([approve, record])
        fixer.resume()
    finally:
        other.close()
        impatient.dispose()
    assert [row["status"] for row in store.token_rows(eng.uuid)] == [1, 1, 1]
    assert store.workflow(eng.uuid)["lock_owner"] is None
