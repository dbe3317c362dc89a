"""Parallel steps of queued runs: branches as work items of their own, and their join.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import StoredRunError
from workflow.flows import Flow, TaskRegistry, load_flow
from workflow.runtime import Waits, Worker
from workflow.runtime.worker import run_leased
from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.fanout import BRANCH
from workflow.storage.queue import WorkQueue, work_items

from .test_queue import drain


@pytest.fixture
def registry() -> TaskRegistry:
    tasks = TaskRegistry(entry_point_group=None)
    tasks.register("add", add)
    tasks.register("where", where)
    tasks.register("boom", boom)
    return tasks


def add(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {"value": params["a"] + params["b"]}


def where(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {"thread": threading.current_thread().name, **params}


def boom(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError(f"boom on {params.get('n')}")


def queued(store: Store, flow: Flow, inputs: list[Any], queue: str = "q") -> str:
    engine = PersistentWorkflowEngine.with_name(flow.name, store=store, definition=flow.callbacks())
    assert engine.enqueue([flow.new_context(value) for value in inputs], queue) == len(inputs)
    return engine.uuid


def items_of(store: Store, uid: str) -> list[dict[str, Any]]:
    with store.transaction("read items") as conn:
        rows = conn.execute(
            sa.select(work_items).where(work_items.c.workflow_uuid == uid).order_by(work_items.c.id)
        )
        return [dict(row._mapping) for row in rows]


SPLIT = {
    "name": "split",
    "steps": [
        {"name": "start", "task": "add", "params": {"a": "@_input", "b": 1}},
        {
            "name": "both",
            "parallel": [
                [
                    {"name": "left", "task": "where", "params": {"n": "@start.value"}},
                    {"name": "left2", "task": "add", "params": {"a": "@left.n", "b": 10}},
                ],
                [{"name": "right", "task": "add", "params": {"a": "@start.value", "b": 100}}],
            ],
        },
        {"name": "sum", "task": "add", "params": {"a": "@left2.value", "b": "@right.value"}},
    ],
}


def test_each_branch_is_a_work_item_and_the_join_merges_their_results(
    store: Store, registry: TaskRegistry
) -> None:
    flow = load_flow(SPLIT, registry=registry)
    uid = queued(store, flow, [1, 2])
    worker = Worker(store, {"split": flow.callbacks()}, queue="q", concurrency=2)
    drain(worker)
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value
    rows = store.token_rows(uid)
    # the run's two tokens, then two branch tokens for each
    assert [row["position"] for row in rows] == [0, 1, 2, 3, 4, 5]
    for row in rows[:2]:
        start = row["data"]["_input"] + 1
        assert row["data"]["sum"] == {"value": start + 10 + start + 100}
        assert row["data"]["both"] == {"branches": 2}
        assert row["data"]["left"]["n"] == start
        assert "_forks" not in row["data"]
    branches = [row["extra_data"][BRANCH] for row in rows[2:]]
    assert sorted((b["of"], b["index"]) for b in branches) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(row["status"] == ObjectStatus.COMPLETED.value for row in rows)
    items = items_of(store, uid)
    assert len(items) == 6
    parents = {item["id"]: item for item in items if item["parent_item"] is None}
    assert {item["parent_item"] for item in items if item["parent_item"]} == set(parents)
    assert all(item["children_left"] == 0 for item in parents.values())
    # the parents waited for their branches: halted, then went on
    messages = [c["message"] for c in store.status_change_rows(uid) if c["token_position"] == 0]
    assert "step 'both' waits for its 2 branches" in messages
    run_messages = [
        c["message"] for c in store.status_change_rows(uid) if c["token_position"] is None
    ]
    assert run_messages[-1] == "finished"


def test_a_failing_branch_fails_the_step_naming_the_branch(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "fails",
        "steps": [
            {
                "name": "both",
                "parallel": [
                    [{"name": "fine", "task": "add", "params": {"a": 1, "b": 2}}],
                    [{"name": "bad", "task": "boom", "params": {"n": "@_input"}}],
                ],
            },
            {"name": "after", "task": "add", "params": {"a": 1, "b": 1}},
        ],
    }
    flow = load_flow(body, registry=registry)
    uid = queued(store, flow, [7])
    drain(Worker(store, {"fails": flow.callbacks()}, queue="q"))
    rows = store.token_rows(uid)
    assert rows[0]["status"] == ObjectStatus.ERROR.value
    assert "step 'both': branch 1 failed:" in rows[0]["last_error"]
    assert "boom on 7" in rows[0]["last_error"]
    assert "after" not in rows[0]["data"]
    assert store.workflow(uid)["status"] == WorkflowStatus.ERROR.value
    assert store.status_change_rows(uid)[-1]["message"] == "stopped: 1 token failed"


def test_a_parallel_for_each_runs_an_item_per_work_item_within_max_concurrency(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "each",
        "steps": [
            {
                "name": "lines",
                "for_each": "@_input",
                "as": "line",
                "parallel": True,
                "max_concurrency": 2,
                "do": [{"name": "priced", "task": "add", "params": {"a": "@line", "b": 1000}}],
            },
            {"name": "first", "task": "add", "params": {"a": "@lines.0.priced.value", "b": 0}},
        ],
    }
    flow = load_flow(body, registry=registry)
    uid = queued(store, flow, [[5, 6, 7, 8, 9]])
    queue = WorkQueue(store, "q")
    definitions = {"each": flow.callbacks()}
    seen = []
    while leases := queue.claim("one-at-a-time"):
        run_leased(store, leases[0], definitions, lease_ttl=10)
        children = [item for item in items_of(store, uid) if item["parent_item"]]
        seen.append(sorted(item["state"] for item in children))
    assert seen[0] == ["pending", "pending", "pending", "ready", "ready"]  # the fork
    assert all(states.count("ready") <= 2 for states in seen)
    assert seen[-1] == ["done"] * 5
    [row, *branches] = store.token_rows(uid)
    assert row["status"] == ObjectStatus.COMPLETED.value
    assert row["data"]["lines"] == [{"priced": {"value": n + 1000}} for n in [5, 6, 7, 8, 9]]
    assert row["data"]["first"] == {"value": 1005}
    assert "line" not in row["data"]
    assert len(branches) == 5
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value


def test_a_branch_that_asks_waits_and_the_run_goes_on_when_it_is_answered(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "approve",
        "steps": [
            {
                "name": "checks",
                "parallel": [
                    [{"name": "auto", "task": "add", "params": {"a": 1, "b": 1}}],
                    [
                        {"name": "ok", "ask": {"message": "Refund?", "approvers": ["ann"]}},
                        {"name": "noted", "task": "add", "params": {"a": 2, "b": 2}},
                    ],
                ],
            },
            {"name": "after", "task": "add", "params": {"a": "@auto.value", "b": "@noted.value"}},
        ],
    }
    flow = load_flow(body, registry=registry)
    uid = queued(store, flow, [None])
    worker = Worker(store, {"approve": flow.callbacks()}, queue="q", concurrency=2)
    drain(worker)
    assert store.workflow(uid)["status"] == WorkflowStatus.HALTED.value
    [wait] = Waits(store).waiting(run=uid)
    assert wait.token == 2  # the asking branch's own token
    Waits(store).answer(wait.id, by="ann", decision="approve")
    drain(worker)
    row = store.token_rows(uid)[0]
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value, row
    assert row["data"]["after"] == {"value": 6}
    assert row["data"]["ok"]["decision"] == "approved"


def test_nested_parallel_steps_fan_out_from_a_branch(store: Store, registry: TaskRegistry) -> None:
    body = {
        "name": "nested",
        "steps": [
            {
                "name": "outer",
                "parallel": [
                    [{"name": "a", "task": "add", "params": {"a": "@_input", "b": 1}}],
                    [
                        {
                            "name": "inner",
                            "for_each": [1, 2, 3],
                            "as": "n",
                            "parallel": True,
                            "do": [{"name": "sq", "task": "add", "params": {"a": "@n", "b": "@n"}}],
                        }
                    ],
                ],
            }
        ],
    }
    flow = load_flow(body, registry=registry)
    uid = queued(store, flow, [10])
    drain(Worker(store, {"nested": flow.callbacks()}, queue="q", concurrency=3))
    row = store.token_rows(uid)[0]
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value
    assert row["data"]["a"] == {"value": 11}
    assert row["data"]["inner"] == [{"sq": {"value": n * 2}} for n in (1, 2, 3)]
    assert len(store.token_rows(uid)) == 1 + 2 + 3


def test_a_run_with_branch_tokens_is_not_resumed_in_a_process(
    store: Store, registry: TaskRegistry
) -> None:
    body = {
        "name": "held",
        "steps": [
            {
                "name": "p",
                "parallel": [
                    [{"name": "w", "ask": {"message": "ok?"}}],
                    [{"name": "x", "task": "add", "params": {"a": 1, "b": 1}}],
                ],
            }
        ],
    }
    flow = load_flow(body, registry=registry)
    uid = queued(store, flow, [None])
    drain(Worker(store, {"held": flow.callbacks()}, queue="q"))
    assert store.workflow(uid)["status"] == WorkflowStatus.HALTED.value
    engine = PersistentWorkflowEngine.from_uuid(uid, store=store, definition=flow.callbacks())
    with pytest.raises(Exception, match="parallel branches"):
        engine.resume()


def test_a_branch_taken_over_from_a_stalled_worker_is_joined_once(
    store: Store, registry: TaskRegistry
) -> None:
    flow = load_flow(SPLIT, registry=registry)
    uid = queued(store, flow, [1])
    definitions = {"split": flow.callbacks()}
    queue = WorkQueue(store, "q", lease_ttl=0.2)
    [parent] = queue.claim("first")
    assert run_leased(store, parent, definitions, lease_ttl=0.2)  # forks: two branches
    stalled, other = queue.claim("stalled", limit=2)
    time.sleep(0.3)  # the stalled worker's leases lapse...
    taken = queue.claim("rescuer", limit=2)  # ...and another worker takes both over
    assert sorted(lease.position for lease in taken) == [1, 2]
    for lease in taken:
        assert run_leased(store, lease, definitions, lease_ttl=10)
    # the stalled worker wakes up: its writes are refused, nothing is counted twice
    assert run_leased(store, stalled, definitions, lease_ttl=10) is False
    assert run_leased(store, other, definitions, lease_ttl=10) is False
    [again] = queue.claim("joiner")
    assert again.position == 0
    assert run_leased(store, again, definitions, lease_ttl=10)
    row = store.token_rows(uid)[0]
    assert row["data"]["sum"] == {"value": 2 + 10 + 2 + 100}
    assert queue.claim("nobody") == []
    assert store.workflow(uid)["status"] == WorkflowStatus.COMPLETED.value
    joined = [c for c in store.status_change_rows(uid) if c["token_position"] is None]
    assert [c["message"] for c in joined][-1] == "finished"
    assert sum(c["message"] == "finished" for c in joined) == 1


def test_a_branch_whose_parallel_step_is_gone_from_the_definition_is_refused(
    store: Store, registry: TaskRegistry
) -> None:
    flow = load_flow(SPLIT, registry=registry)
    uid = queued(store, flow, [1])
    queue = WorkQueue(store, "q")
    [parent] = queue.claim("w")
    assert run_leased(store, parent, {"split": flow.callbacks()}, lease_ttl=10)
    changed = load_flow({"name": "split", "steps": SPLIT["steps"][:1]}, registry=registry)
    branch = queue.claim("w")[0]
    with pytest.raises(StoredRunError, match=r"is branch 0 of a parallel step that its defini"):
        run_leased(store, branch, {"split": changed.callbacks()}, lease_ttl=10)
    assert queue.counts(uid)["ready"] == 2  # given back, for a worker with the right definition
