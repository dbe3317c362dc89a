"""A worker continues only tokens parked at a decided wait, never one that went past it.

A wait can be decided before its token halts at it: a ``receive`` takes a
message kept for it as it opens, a ``sleep`` or a deadline already passed is
decided at once. The token then goes on in its own process, and later halts
for a person or fails. The decided wait must not make a worker move that
token again. On SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from typing import Any

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.runtime import ASK, RECEIVE, SLEEP, Waits, Worker
from workflow.storage import PersistentWorkflowEngine, Store

from .race_flows import in_


def review(obj: Any, eng: Any) -> None:
    """Halt for a person once."""
    if not obj.data.get("reviewed"):
        obj.data["reviewed"] = True
        eng.halt("a person reviews this")


def after(obj: Any, eng: Any) -> None:
    obj.data["after"] = True


def test_a_worker_leaves_a_token_at_a_persons_halt_after_a_kept_message(store: Store) -> None:
    steps = [*RECEIVE("message", "go"), review, after]
    engine = PersistentWorkflowEngine.with_name("review", store=store, definition=steps)
    Waits(store).send(engine.uuid, "go", {"n": 1})  # kept for the step
    engine.process([{}], stop_on_halt=False)
    [wait] = Waits(store).of_run(engine.uuid)
    # the token went past the wait without halting: its own process settled it
    assert (wait.phase, wait.decision) == ("done", "received")

    done = Worker(store, {"review": steps}).run_once()

    assert (done.skipped, done.continued) == ({}, [])
    [token] = store.token_rows(engine.uuid)
    assert token["data"] == {"reviewed": True}
    assert token["status"] == ObjectStatus.HALTED.value
    assert store.workflow(engine.uuid)["status"] == WorkflowStatus.HALTED.value
    assert Waits(store).get(wait.id).phase == "done"
    # the person's halt still holds for whoever resumes the run
    engine = PersistentWorkflowEngine.from_uuid(engine.uuid, store=store, definition=steps)
    engine.resume()
    assert store.token_rows(engine.uuid)[0]["data"] == {"reviewed": True, "after": True}


def test_a_worker_does_not_run_a_failed_task_again_after_a_passed_timer(store: Store) -> None:
    calls = []

    def fail(obj: Any, eng: Any) -> None:
        calls.append(obj.position)
        raise ValueError("boom")

    steps = [*SLEEP("nap", until=in_(-60)), fail]
    engine = PersistentWorkflowEngine.with_name("failing", store=store, definition=steps)
    engine.process([{}], stop_on_halt=False, stop_on_error=False)
    assert calls == [0]
    assert store.token_rows(engine.uuid)[0]["status"] == ObjectStatus.ERROR.value

    Worker(store, {"failing": steps}).run_once()

    assert calls == [0]
    assert store.token_rows(engine.uuid)[0]["status"] == ObjectStatus.ERROR.value
    assert {wait.phase for wait in Waits(store).of_run(engine.uuid)} == {"done"}


def test_a_token_parked_at_a_wait_names_it_until_it_goes_on(store: Store) -> None:
    steps = [*SLEEP("nap", "PT0.1S"), after]
    engine = PersistentWorkflowEngine.with_name("nap", store=store, definition=steps)
    engine.process([{}], stop_on_halt=False)
    [wait] = Waits(store).of_run(engine.uuid)
    assert store.token_rows(engine.uuid)[0]["extra_data"]["_parked_on"] == wait.id
    worker = Worker(store, {"nap": steps})
    while store.workflow(engine.uuid)["status"] != WorkflowStatus.COMPLETED.value:
        worker.run_once()
    [token] = store.token_rows(engine.uuid)
    assert token["data"] == {"after": True}
    assert "_parked_on" not in token["extra_data"]


def test_a_worker_leaves_a_token_that_a_person_resumed_past_its_wait(store: Store) -> None:
    steps = [*ASK("approve", "Go?"), review, after]
    engine = PersistentWorkflowEngine.with_name("review", store=store, definition=steps)
    engine.process([{}], stop_on_halt=False)
    [wait] = Waits(store).waiting(run=engine.uuid)
    Waits(store).answer(wait.id, by="ann", decision="approve")
    # somebody resumes the run by hand instead of a worker: the token goes on to the review
    by_hand = PersistentWorkflowEngine.from_uuid(engine.uuid, store=store, definition=steps)
    by_hand.resume(stop_on_halt=False)
    assert Waits(store).get(wait.id).phase == "decided"

    done = Worker(store, {"review": steps}).run_once()

    assert (done.skipped, done.continued) == ({}, [])
    [token] = store.token_rows(engine.uuid)
    assert token["data"] == {"reviewed": True}
    assert token["status"] == ObjectStatus.HALTED.value
    assert Waits(store).get(wait.id).phase == "done"
