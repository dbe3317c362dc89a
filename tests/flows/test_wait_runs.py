"""Flows that wait, run on the persistent engine and continued by a worker, on every database.

Each run halts at its waiting step and is stored; answers, messages and
timers decide the wait's row; :meth:`Worker.run_once` (a fresh worker and
engine each time, as another process would be) continues the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import BACKENDS, empty_database
from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import AnswerRefusedError
from workflow.flows import Flow, TaskRegistry, load_flow
from workflow.runtime import Wait, Waits, Worker
from workflow.storage import PersistentWorkflowEngine, Store

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"type": "object", "properties": {"note": {"type": "string"}}}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    database = Store(empty_database(str(request.param), tmp_path), lock_ttl=5.0)
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def registry() -> TaskRegistry:
    tasks = TaskRegistry(entry_point_group=None)
    tasks.register("echo", lambda context, params: dict(params))
    return tasks


def start(store: Store, body: dict[str, Any], registry: TaskRegistry, data: Any = None) -> str:
    """Start a run of ``body`` over one token; return its uuid (the run halts or ends)."""
    flow = load_flow(body, registry=registry)
    engine = PersistentWorkflowEngine.with_name(flow.name, store=store, definition=flow.callbacks())
    engine.process([flow.new_context(data)], stop_on_halt=False, stop_on_error=False)
    assert engine.uuid is not None
    return engine.uuid


def go_on(store: Store, body: dict[str, Any], registry: TaskRegistry) -> list[str]:
    """One pass of a new worker, whose flow is compiled afresh; return the runs it continued."""
    flow: Flow = load_flow(body, registry=registry)
    done = Worker(store, {flow.name: flow.callbacks()}).run_once()
    assert not done.skipped, done.skipped
    return done.continued


def context(store: Store, uuid: str) -> dict[str, Any]:
    data: dict[str, Any] = store.token_rows(uuid)[0]["data"]
    return data


def token(store: Store, uuid: str) -> dict[str, Any]:
    return store.token_rows(uuid)[0]


def waiting(store: Store, uuid: str) -> list[Wait]:
    return [wait for wait in Waits(store).of_run(uuid) if wait.phase == "waiting"]


def until_due(store: Store, wait: Wait) -> None:
    """Return once the database's clock passed the wait's due time."""
    assert wait.due is not None
    give_up = time.monotonic() + 30
    while store.now() < wait.due:
        assert time.monotonic() < give_up, "the database's clock did not reach the due time"
        time.sleep(0.01)


def refund(ask: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "refund",
        "steps": [
            {"name": "approve", "ask": ask},
            {
                "name": "after",
                "task": "echo",
                "params": {
                    "decision": "@approve.decision",
                    "who": "@approve.answers",
                    "data": {"ref": "@approve.data", "default": None},
                },
            },
        ],
    }


TWO_OF_THREE = {
    "message": "Refund of an order over the limit",
    "approvers": ["alice", "bob", "carol"],
    "quorum": 2,
    "reject_quorum": 1,
    "schema": SCHEMA,
}


def test_two_of_three_approvers_decide_and_the_next_step_reads_their_answers(
    store: Store, registry: TaskRegistry
) -> None:
    body = refund(TWO_OF_THREE)
    uuid = start(store, body, registry)
    assert PersistentWorkflowEngine.from_uuid(uuid, store=store).status is WorkflowStatus.HALTED
    (wait,) = waiting(store, uuid)
    assert (wait.kind, wait.step, wait.spec["message"]) == (
        "ask",
        "approve",
        "Refund of an order over the limit",
    )
    waits = Waits(store)
    with pytest.raises(AnswerRefusedError) as refused:
        waits.answer(wait.id, by="mallory", decision="approve")
    assert refused.value.reason == "not_an_approver"
    with pytest.raises(AnswerRefusedError) as invalid:
        waits.answer(wait.id, by="alice", decision="approve", data={"note": 5})
    assert invalid.value.reason == "invalid"
    assert not waits.answer(wait.id, by="alice", decision="approve", data={}).decided
    assert go_on(store, body, registry) == []  # one approval of two: the run still waits
    assert waits.answer(wait.id, by="bob", decision="approve", data={"note": "fine"}).decided
    assert go_on(store, body, registry) == [uuid]
    after = context(store, uuid)["after"]
    assert after["decision"] == "approved"
    assert [(a["by"], a["decision"], a["data"]) for a in after["who"]] == [
        ("alice", "approve", {}),
        ("bob", "approve", {"note": "fine"}),
    ]
    assert context(store, uuid)["approve"]["approvals"] == 2
    assert token(store, uuid)["status"] == ObjectStatus.COMPLETED.value
    assert Waits(store).get(wait.id).phase == "done"
    assert go_on(store, body, registry) == []


def test_one_rejection_decides_rejected(store: Store, registry: TaskRegistry) -> None:
    body = refund(TWO_OF_THREE)
    uuid = start(store, body, registry)
    (wait,) = waiting(store, uuid)
    Waits(store).answer(wait.id, by="alice", decision="approve", data={})
    assert Waits(store).answer(wait.id, by="carol", decision="reject", data={}).decided
    assert go_on(store, body, registry) == [uuid]
    found = context(store, uuid)
    assert found["after"]["decision"] == "rejected"
    assert (found["approve"]["approvals"], found["approve"]["rejections"]) == (1, 1)


@pytest.mark.parametrize(
    ("on_timeout", "decision", "data"),
    [
        ("reject", "rejected", None),
        ("approve", "approved", None),
        ({"answer": {"note": "nobody answered"}}, "timed_out", {"note": "nobody answered"}),
        (None, "timed_out", None),
    ],
)
def test_a_question_nobody_answers_in_time_is_decided_by_on_timeout(
    store: Store, registry: TaskRegistry, on_timeout: Any, decision: str, data: Any
) -> None:
    ask: dict[str, Any] = {**TWO_OF_THREE, "timeout": "PT0.05S"}
    if on_timeout is not None:
        ask["on_timeout"] = on_timeout
    body = refund(ask)
    uuid = start(store, body, registry)
    (wait,) = waiting(store, uuid)
    until_due(store, wait)
    assert go_on(store, body, registry) == [uuid]
    found = context(store, uuid)
    assert found["approve"]["timed_out"] is True
    assert found["after"]["decision"] == decision
    assert found["after"]["data"] == data
    with pytest.raises(AnswerRefusedError) as late:
        Waits(store).answer(wait.id, by="alice", decision="approve", data={})
    assert late.value.reason == "expired"


def test_on_timeout_fail_fails_the_token_naming_the_flow_and_step(
    store: Store, registry: TaskRegistry
) -> None:
    body = refund({**TWO_OF_THREE, "timeout": "PT0.05S", "on_timeout": "fail"})
    uuid = start(store, body, registry)
    until_due(store, waiting(store, uuid)[0])
    assert go_on(store, body, registry) == [uuid]
    row = token(store, uuid)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "FlowRuntimeError" in str(row["last_error"])
    assert (
        "flow 'refund', step 'approve': no decision before the deadline (on_timeout: fail)"
        in str(row["last_error"])
    )
    assert "after" not in context(store, uuid)


def test_a_deadline_from_a_reference_is_resolved_when_the_step_is_reached(
    store: Store, registry: TaskRegistry
) -> None:
    soon = store.now() + timedelta(seconds=0.2)
    body = {
        "name": "planned",
        "steps": [
            {"name": "plan", "task": "echo", "params": {"start": "@_input.start"}},
            {"name": "approve", "ask": {"deadline": "@plan.start", "on_timeout": "approve"}},
            {"name": "after", "task": "echo", "params": {"decision": "@approve.decision"}},
        ],
    }
    uuid = start(store, body, registry, {"start": soon.isoformat() + "+00:00"})
    (wait,) = waiting(store, uuid)
    assert wait.due == soon
    assert wait.approvers is None
    until_due(store, wait)
    assert go_on(store, body, registry) == [uuid]
    assert context(store, uuid)["after"] == {"decision": "approved"}


def test_a_deadline_reference_that_is_no_time_fails_the_step(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "planned",
        "steps": [
            {"name": "plan", "task": "echo", "params": {"start": "@_input.start"}},
            {"name": "approve", "ask": {"deadline": "@plan.start"}},
        ],
    }
    uuid = start(store, body, registry, {"start": "next tuesday"})
    row = token(store, uuid)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "flow 'planned', step 'approve': deadline 'next tuesday' is not an ISO 8601 time" in str(
        row["last_error"]
    )
    assert Waits(store).of_run(uuid) == []


def test_a_sleep_ends_when_its_time_comes_and_a_worker_passes(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "naps",
        "steps": [
            {"name": "nap", "sleep": "PT0.05S"},
            {"name": "until", "sleep": {"until": "@_input.at"}},
            {"name": "woke", "task": "echo", "params": {"due": "@nap.due", "at": "@until.due"}},
        ],
    }
    past = "2020-01-01T00:00:00+02:00"  # long past: that sleep is over when it starts
    uuid = start(store, body, registry, {"at": past})
    (wait,) = waiting(store, uuid)
    assert (wait.kind, wait.step) == ("sleep", "nap")
    until_due(store, wait)
    assert go_on(store, body, registry) == [uuid]
    woke = context(store, uuid)["woke"]
    assert woke["due"] is not None
    assert woke["at"] == "2019-12-31T22:00:00.000000Z"
    assert token(store, uuid)["status"] == ObjectStatus.COMPLETED.value


def test_messages_sent_before_and_after_the_step_is_reached_are_received_once(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "shop",
        "steps": [
            {"name": "order", "receive": "order"},
            {"name": "pay", "receive": "payment"},
            {"name": "done", "task": "echo", "params": {"o": "@order.data", "p": "@pay.data"}},
        ],
    }
    uuid = start(store, body, registry)
    waits = Waits(store)
    early = waits.send(uuid, "payment", {"amount": 12}, key="pay-1")
    assert early.wait is None  # nobody waits for it yet: it is kept for the step
    assert waits.send(uuid, "payment", {"amount": 99}, key="pay-1").duplicate
    first = waits.send(uuid, "order", {"id": 7}, key="order-7")
    assert first.wait is not None
    again = waits.send(uuid, "order", {"id": 8}, key="order-7")
    assert (again.duplicate, again.message_id) == (True, first.message_id)
    assert go_on(store, body, registry) == [uuid]
    found = context(store, uuid)
    assert found["done"] == {"o": {"id": 7}, "p": {"amount": 12}}
    assert (found["pay"]["received"], found["pay"]["key"]) == (True, "pay-1")
    assert token(store, uuid)["status"] == ObjectStatus.COMPLETED.value


def test_a_message_that_does_not_come_in_time_fails_with_on_timeout_fail(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "shop",
        "steps": [
            {"name": "pay", "receive": "payment", "timeout": "PT0.05S", "on_timeout": "fail"}
        ],
    }
    uuid = start(store, body, registry)
    until_due(store, waiting(store, uuid)[0])
    assert go_on(store, body, registry) == [uuid]
    row = token(store, uuid)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "flow 'shop', step 'pay': no message before the deadline (on_timeout: fail)" in str(
        row["last_error"]
    )


def retrying(attempts: int) -> dict[str, Any]:
    return {
        "name": "payments",
        "steps": [
            {
                "name": "charge",
                "task": "flaky",
                "params": {"amount": 12},
                "retry": {"attempts": attempts, "backoff": "PT0.02S", "jitter": False},
            },
            {"name": "after", "task": "echo", "params": {"charged": "@charge.charged"}},
        ],
    }


def test_a_task_failing_twice_then_succeeding_goes_on_with_its_attempts_recorded(
    store: Store, registry: TaskRegistry
) -> None:
    calls: list[int] = []

    def flaky(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        calls.append(params["amount"])
        if len(calls) < 3:
            raise ConnectionError(f"try {len(calls)} refused")
        return {"charged": params["amount"]}

    registry.register("flaky", flaky)
    body = retrying(5)
    uuid = start(store, body, registry)
    for attempt in (1, 2):
        (wait,) = waiting(store, uuid)
        assert wait.kind == "retry"
        assert f"attempt {attempt} of 5 failed: try {attempt} refused" in wait.spec["message"]
        until_due(store, wait)
        assert go_on(store, body, registry) == [uuid]
    found = context(store, uuid)
    assert found["after"] == {"charged": 12}
    assert found["_waits"]["charge"]["attempts"] == 2
    assert found["_waits"]["charge"]["errors"] == [
        "ConnectionError: try 1 refused",
        "ConnectionError: try 2 refused",
    ]
    assert len(calls) == 3
    assert len({wait.id for wait in Waits(store).of_run(uuid)}) == 2


def test_a_task_failing_every_time_fails_with_its_own_error_and_the_attempt_count(
    store: Store, registry: TaskRegistry
) -> None:
    def flaky(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("boom")

    registry.register("flaky", flaky)
    body = retrying(2)
    uuid = start(store, body, registry)
    until_due(store, waiting(store, uuid)[0])
    assert go_on(store, body, registry) == [uuid]
    row = token(store, uuid)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "flow 'payments', step 'charge': ValueError: boom (attempt 2 of 2)" in str(
        row["last_error"]
    )


def test_a_reference_without_a_value_is_not_retried(store: Store, registry: TaskRegistry) -> None:
    body = {
        "name": "payments",
        "steps": [
            {
                "name": "charge",
                "task": "echo",
                "params": {"amount": "@_input.amount"},
                "retry": {"attempts": 5, "backoff": "PT0.02S"},
            }
        ],
    }
    uuid = start(store, body, registry, {"price": 3})
    row = token(store, uuid)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "flow 'payments', step 'charge'" in str(row["last_error"])
    assert "amount" in str(row["last_error"])
    assert Waits(store).of_run(uuid) == []


#: A worker in a process of its own: the flow's task fails every time.
WORKER = """
import sys
from workflow.flows import TaskRegistry, load_flow
from workflow.runtime import Worker
from workflow.storage import Store
import json

def flaky(context, params):
    raise ValueError("boom")

registry = TaskRegistry(entry_point_group=None)
registry.register("flaky", flaky)
registry.register("echo", lambda context, params: dict(params))
flow = load_flow(json.loads(sys.argv[2]), registry=registry)
store = Store(sys.argv[1])
done = Worker(store, {flow.name: flow.callbacks()}).run_once()
print(json.dumps(done.continued))
store.dispose()
"""


def test_the_attempt_count_survives_into_other_processes(
    store: Store, registry: TaskRegistry
) -> None:
    def flaky(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("boom")

    registry.register("flaky", flaky)
    body = retrying(3)
    uuid = start(store, body, registry)  # attempt 1, in this process
    url = store.engine.url.render_as_string(hide_password=False)
    for attempt in (2, 3):  # each in a new process, with a new worker and engine
        until_due(store, waiting(store, uuid)[0])
        done = subprocess.run(
            [sys.executable, "-c", WORKER, url, json.dumps(body)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [uuid]
        assert context(store, uuid)["_waits"]["charge"]["attempts"] == attempt
    row = token(store, uuid)
    assert row["status"] == ObjectStatus.ERROR.value
    assert "flow 'payments', step 'charge': ValueError: boom (attempt 3 of 3)" in str(
        row["last_error"]
    )


def test_an_ask_inside_a_loop_opens_a_new_wait_in_each_round(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "lines",
        "steps": [
            {
                "name": "lines",
                "for_each": "@_input.lines",
                "as": "line",
                "do": [
                    {"name": "check", "ask": {"message": "Is this line right?"}},
                    {"name": "seen", "task": "echo", "params": {"d": "@check.decision"}},
                ],
            }
        ],
    }
    uuid = start(store, body, registry, {"lines": [10, 20]})
    (first,) = waiting(store, uuid)
    assert first.spec["message"] == "Is this line right? (item 0 of 'lines')"
    Waits(store).answer(first.id, by="ann", decision="approve")
    assert go_on(store, body, registry) == [uuid]
    (second,) = waiting(store, uuid)
    assert second.id != first.id
    assert second.spec["message"] == "Is this line right? (item 1 of 'lines')"
    with pytest.raises(AnswerRefusedError) as again:
        Waits(store).answer(first.id, by="bob", decision="reject")
    assert again.value.reason == "already_decided"
    Waits(store).answer(second.id, by="bob", decision="reject")
    assert go_on(store, body, registry) == [uuid]
    found = context(store, uuid)
    assert [item["seen"] for item in found["lines"]] == [{"d": "approved"}, {"d": "rejected"}]
    assert found["_waits"]["check"]["count"] == 2
    assert token(store, uuid)["status"] == ObjectStatus.COMPLETED.value


def test_a_flow_that_waits_on_an_engine_without_storage_says_it_needs_one(
    registry: TaskRegistry,
) -> None:
    from workflow.engine import GenericWorkflowEngine
    from workflow.errors import WorkflowError

    flow = load_flow({"name": "f", "steps": [{"name": "nap", "sleep": "PT1S"}]}, registry=registry)
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(flow.callbacks())
    with pytest.raises(WorkflowError, match="step 'nap' waits: only a run stored in a database"):
        engine.process([flow.new_context()])


def test_waits_of_a_flow_called_twice_are_kept_apart_by_the_calling_step(
    store: Store, registry: TaskRegistry
) -> None:
    child = {
        "name": "child",
        "steps": [
            {"name": "nap", "sleep": "PT0.05S"},
            {"name": "out", "task": "echo", "params": {"woke": "@nap.fired"}},
        ],
    }
    body = {
        "name": "parent",
        "steps": [{"name": "first", "flow": "child"}, {"name": "second", "flow": "child"}],
    }

    def definitions(name: str, version: int | None) -> dict[str, Any]:
        return child

    flow = load_flow(body, registry=registry, definitions=definitions)
    engine = PersistentWorkflowEngine.with_name("parent", store=store, definition=flow.callbacks())
    engine.process([flow.new_context()], stop_on_halt=False)
    uuid = engine.uuid
    assert uuid is not None
    worker = Worker(store, {"parent": flow.callbacks()})
    for _ in range(2):
        until_due(store, waiting(store, uuid)[0])
        assert worker.run_once().continued == [uuid]
    found = context(store, uuid)
    assert sorted(found["_waits"]) == ["first/nap", "second/nap"]
    assert found["first"]["out"]["woke"] is not None
    assert found["second"]["out"]["woke"] is not None
    assert len(Waits(store).of_run(uuid)) == 2


def test_a_deadline_reference_without_a_value_and_a_null_default_means_no_deadline(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "open",
        "steps": [
            {"name": "plan", "task": "echo"},
            {"name": "approve", "ask": {"deadline": {"ref": "@plan.start", "default": None}}},
        ],
    }
    uuid = start(store, body, registry)
    (wait,) = waiting(store, uuid)
    assert wait.due is None


def test_a_retry_inside_a_loop_counts_the_attempts_of_each_round_afresh(
    store: Store, registry: TaskRegistry
) -> None:
    seen: dict[int, int] = {}

    def flaky(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        item = params["item"]
        seen[item] = seen.get(item, 0) + 1
        if seen[item] == 1:
            raise TimeoutError(f"item {item}: first try")
        return {"item": item, "tries": seen[item]}

    registry.register("flaky", flaky)
    body = {
        "name": "items",
        "steps": [
            {
                "name": "each",
                "for_each": "@_input.items",
                "as": "item",
                "do": [
                    {
                        "name": "work",
                        "task": "flaky",
                        "params": {"item": "@item"},
                        "retry": {"attempts": 2, "backoff": "PT0.02S", "jitter": False},
                    }
                ],
            }
        ],
    }
    uuid = start(store, body, registry, {"items": [1, 2]})
    for _ in range(2):
        (wait,) = waiting(store, uuid)
        until_due(store, wait)
        assert go_on(store, body, registry) == [uuid]
    found = context(store, uuid)
    assert [item["work"] for item in found["each"]] == [
        {"item": 1, "tries": 2},
        {"item": 2, "tries": 2},
    ]
    assert token(store, uuid)["status"] == ObjectStatus.COMPLETED.value
    assert len({wait.id for wait in Waits(store).of_run(uuid)}) == 2


def test_a_task_over_its_time_limit_is_interrupted_and_retried(
    store: Store, registry: TaskRegistry
) -> None:
    calls: list[float] = []

    def slow_then_quick(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(30)  # interrupted long before
        return {"charged": params["amount"]}

    registry.register("flaky", slow_then_quick)
    body = retrying(3)
    body["steps"][0]["time_limit"] = "PT0.2S"
    started = time.monotonic()
    uuid = start(store, body, registry)
    assert time.monotonic() - started < 20
    (wait,) = waiting(store, uuid)
    assert (
        "attempt 1 of 3 failed: task 'flaky' ran past its time limit of 0.2 s and was "
        "interrupted" in wait.spec["message"]
    )
    until_due(store, wait)
    assert go_on(store, body, registry) == [uuid]
    assert context(store, uuid)["after"] == {"charged": 12}
    assert len(calls) == 2
