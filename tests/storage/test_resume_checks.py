"""Resume guesses nothing: a run's input is stored whole, and what resume loads is checked.

The tokens of a run and their number (``wf_workflow.token_count``) are
stored in one transaction, so a process that dies while storing them
leaves a run that ``resume()`` refuses, naming it, instead of finishing it
with no tokens. Rows changed by hand (a completed token deleted, a position
outside the definition, a status that is none) are refused the same way,
before any task runs, and the lock is released. Every test runs on SQLite,
PostgreSQL and MariaDB.
"""

from __future__ import annotations

from typing import Any

import pytest

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import HaltProcessing, StoredRunError, TokenEncodingError, WorkflowError
from workflow.storage import PersistentWorkflowEngine, Store, Token, TokenRecord

COMPLETED = ObjectStatus.COMPLETED
HALTED = ObjectStatus.HALTED


def add_one(obj: Token, eng: PersistentWorkflowEngine) -> None:
    obj.data["n"] += 1


def halt_on_two(obj: Token, eng: PersistentWorkflowEngine) -> None:
    if obj.data["id"] == 2 and not eng.extra_data.get("go"):
        eng.halt("waiting")


DEFINITION = [add_one, [add_one, halt_on_two], add_one]


def halted_run(store: Store) -> PersistentWorkflowEngine:
    """A run of four tokens halted on token 2 at [1, 1]; tokens 0 and 1 completed."""
    eng = PersistentWorkflowEngine.with_name("checked", store=store, definition=DEFINITION)
    with pytest.raises(HaltProcessing):
        eng.process([{"id": i, "n": 0} for i in range(4)])
    return eng


def resumer(store: Store, uid: str) -> PersistentWorkflowEngine:
    eng = PersistentWorkflowEngine.from_uuid(uid, store=store, definition=DEFINITION)
    eng.extra_data["go"] = True
    return eng


def change_token(store: Store, uid: str, position: int, **values: Any) -> None:
    table = TokenRecord.__table__
    with store.transaction("test") as conn:
        conn.execute(
            table.update()
            .where(table.c.workflow_uuid == uid, table.c.position == position)
            .values(**values)
        )


def assert_refused_untouched(store: Store, uid: str, before: list[dict[str, Any]]) -> None:
    """Nothing ran and nothing is held: the rows are as they were and the lock is free."""
    assert store.token_rows(uid) == before
    assert store.workflow(uid)["lock_owner"] is None


def test_stored_tokens_are_counted_with_the_run(store: Store) -> None:
    eng = halted_run(store)
    assert store.workflow(eng.uuid)["token_count"] == 4
    empty = PersistentWorkflowEngine.with_name("empty", store=store, definition=DEFINITION)
    assert store.workflow(empty.uuid)["token_count"] is None
    empty.process([])
    assert (empty.status, store.workflow(empty.uuid)["token_count"]) == (
        WorkflowStatus.COMPLETED,
        0,
    )


def test_resume_refuses_a_run_whose_input_was_never_stored(store: Store) -> None:
    # What a process killed while storing its tokens leaves: the run, NEW, no tokens.
    uid = store.create_workflow("interrupted")
    eng = resumer(store, uid)
    with pytest.raises(StoredRunError, match="no input to resume") as caught:
        eng.resume()
    assert (caught.value.workflow, caught.value.token) == (uid, None)
    assert uid in str(caught.value)
    assert_refused_untouched(store, uid, [])
    assert store.workflow(uid)["status"] == WorkflowStatus.NEW.value
    # The input can still be given, and the run goes on as any other.
    eng.process([{"id": 0, "n": 0}])
    assert [t.data["n"] for t in eng.load_tokens()] == [3]


def test_tokens_that_cannot_all_be_stored_store_none(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("half", store=store, definition=DEFINITION)
    items: list[Any] = [{"id": i, "n": 0} for i in range(5)]
    items[3]["bad"] = {1, 2}
    with pytest.raises(TokenEncodingError, match="token 3"):
        eng.process(items)
    assert store.token_rows(eng.uuid) == []
    assert store.workflow(eng.uuid)["token_count"] is None
    with pytest.raises(StoredRunError, match="no input to resume"):
        resumer(store, eng.uuid).resume()


def test_the_tokens_of_a_run_are_stored_once(store: Store) -> None:
    first = PersistentWorkflowEngine.with_name("once", store=store, definition=DEFINITION)
    second = PersistentWorkflowEngine.from_uuid(first.uuid, store=store, definition=DEFINITION)
    first.extra_data["go"] = True
    first.process([{"id": 0, "n": 0}])
    with pytest.raises(WorkflowError, match="already has tokens"):
        second.process([{"id": 7, "n": 0}, {"id": 8, "n": 0}])
    assert [row["data"]["id"] for row in store.token_rows(first.uuid)] == [0]
    assert store.workflow(first.uuid)["token_count"] == 1


def test_resume_refuses_a_run_missing_a_completed_token(store: Store) -> None:
    eng = halted_run(store)
    table = TokenRecord.__table__
    with store.transaction("test") as conn:
        conn.execute(table.delete().where(table.c.workflow_uuid == eng.uuid, table.c.position == 1))
    before = store.token_rows(eng.uuid)
    with pytest.raises(StoredRunError, match="given 4 tokens but 3 are stored") as caught:
        resumer(store, eng.uuid).resume()
    assert caught.value.token == 1
    assert "positions 1 are missing" in str(caught.value)
    assert_refused_untouched(store, eng.uuid, before)
    assert store.workflow(eng.uuid)["status"] == WorkflowStatus.HALTED.value


@pytest.mark.parametrize(
    ("position", "problem"),
    [
        ([-3], "index -3 at depth 0 is outside a list of 3 items"),
        ([99], "index 99 at depth 0 is outside a list of 3 items"),
        ([1, 2], "index 2 at depth 1 is outside a list of 2 items"),
        ([0, 0], "the item at depth 0 is a task, not a list"),
    ],
)
def test_resume_refuses_a_position_outside_the_definition(
    store: Store, position: list[int], problem: str
) -> None:
    eng = halted_run(store)
    change_token(store, eng.uuid, 2, callback_pos=position)
    before = store.token_rows(eng.uuid)
    with pytest.raises(StoredRunError, match="token 2 is stored at position") as caught:
        resumer(store, eng.uuid).resume()
    assert problem in str(caught.value)
    assert (caught.value.workflow, caught.value.token) == (eng.uuid, 2)
    assert_refused_untouched(store, eng.uuid, before)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"status": 42}, "its status 42 is none of"),
        ({"callback_pos": {"a": 1}}, "its position {'a': 1} is not a list of indexes"),
        ({"callback_pos": [1, "x"]}, "is not a list of indexes"),
        ({"extra_data": [1]}, "its extra_data is list, not an object"),
    ],
)
def test_resume_refuses_a_token_row_that_cannot_be_read(
    store: Store, values: dict[str, Any], problem: str
) -> None:
    eng = halted_run(store)
    change_token(store, eng.uuid, 3, **values)
    before = store.token_rows(eng.uuid)
    with pytest.raises(StoredRunError, match="the stored token 3 cannot be read") as caught:
        resumer(store, eng.uuid).resume()
    assert problem in str(caught.value)
    assert_refused_untouched(store, eng.uuid, before)


def test_a_checked_run_resumes_as_before(store: Store) -> None:
    eng = halted_run(store)
    resumed = resumer(store, eng.uuid)
    resumed.resume()
    tokens = resumed.load_tokens()
    assert [t.status for t in tokens] == [COMPLETED] * 4
    assert [t.data["n"] for t in tokens] == [3, 3, 3, 3]
    assert store.workflow(eng.uuid)["lock_owner"] is None


def test_restart_refuses_a_run_whose_input_was_never_stored(store: Store) -> None:
    uid = store.create_workflow("interrupted")
    with pytest.raises(StoredRunError, match="no input to resume"):
        resumer(store, uid).restart("current", "current")
    assert store.workflow(uid)["lock_owner"] is None


def test_a_halted_token_stays_halted_when_resume_is_refused(store: Store) -> None:
    eng = halted_run(store)
    change_token(store, eng.uuid, 2, callback_pos=[7])
    with pytest.raises(StoredRunError):
        resumer(store, eng.uuid).resume()
    assert [ObjectStatus(row["status"]) for row in store.token_rows(eng.uuid)][2] is HALTED
    # Once the row is fixed the run resumes.
    change_token(store, eng.uuid, 2, callback_pos=[1, 1])
    resumer(store, eng.uuid).resume()
    assert store.workflow(eng.uuid)["status"] == WorkflowStatus.COMPLETED.value


def test_load_tokens_names_an_unreadable_row(store: Store) -> None:
    eng = halted_run(store)
    change_token(store, eng.uuid, 0, status=-5)
    with pytest.raises(StoredRunError, match="stored token 0 cannot be read"):
        eng.load_tokens()
