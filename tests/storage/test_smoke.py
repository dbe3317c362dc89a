"""A first end-to-end run on each database: halt, fail, resume to completion."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import HaltProcessing, TokenEncodingError, WorkflowError
from workflow.storage import PersistentWorkflowEngine, Store


def add(obj: Any, eng: Any) -> None:
    obj.data["n"] = obj.data.get("n", 0) + 1


def review(obj: Any, eng: Any) -> None:
    if obj.data["id"] == 2 and not obj.extra_data.get("approved"):
        eng.halt("needs review", action="approve")


def fail_once(obj: Any, eng: Any) -> None:
    if obj.data["id"] == 3 and not eng.extra_data.get("fixed"):
        raise ValueError("boom")


DEFINITION = [add, [review, add], fail_once]


def test_a_run_halts_fails_and_resumes_to_completion(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("smoke", store=store, definition=DEFINITION)
    with pytest.raises(HaltProcessing, match="needs review"):
        eng.process([{"id": i} for i in range(5)])
    statuses = [t.status for t in eng.load_tokens()]
    assert statuses == [
        ObjectStatus.COMPLETED,
        ObjectStatus.COMPLETED,
        ObjectStatus.HALTED,
        ObjectStatus.INITIAL,
        ObjectStatus.INITIAL,
    ]
    assert store.workflow(eng.uuid)["status"] == WorkflowStatus.HALTED.value

    resumed = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=DEFINITION)
    with pytest.raises(WorkflowError, match="ValueError: boom") as info:
        resumed.resume()
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.id_object == 3
    [failed] = resumed.error_tokens
    assert failed.position == 3
    assert "ValueError: boom" in (failed.last_error or "")

    again = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=DEFINITION)
    again.extra_data["fixed"] = True
    again.resume()
    tokens = again.load_tokens()
    assert [t.status for t in tokens] == [ObjectStatus.COMPLETED] * 5
    assert [t.data["n"] for t in tokens] == [2, 2, 2, 2, 2]
    assert store.workflow(eng.uuid)["status"] == WorkflowStatus.COMPLETED.value
    assert store.workflow(eng.uuid)["lock_owner"] is None


def test_a_token_that_could_not_be_stored_resumes_from_its_first_task(store: Store) -> None:
    fixed = {"yes": False}

    def add_one(obj: Any, eng: Any) -> None:
        obj.data["n"] += 1

    def tag(obj: Any, eng: Any) -> None:
        obj.data["tags"] = ["new"] if fixed["yes"] else {"new"}

    def last(obj: Any, eng: Any) -> None:
        obj.data["last"] = True

    definition = [add_one, tag, last]
    eng = PersistentWorkflowEngine.with_name("unstorable", store=store, definition=definition)
    with pytest.raises(TokenEncodingError):
        eng.process([{"n": 0}])
    [stored] = eng.load_tokens()
    assert (stored.status, stored.callback_pos, stored.data) == (ObjectStatus.ERROR, None, {"n": 0})

    fixed["yes"] = True
    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()
    [done] = eng.load_tokens()
    assert done.status is ObjectStatus.COMPLETED
    assert done.data == {"n": 1, "tags": ["new"], "last": True}
