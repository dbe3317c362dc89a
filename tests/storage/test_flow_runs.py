"""Declarative flows on the persistent engine: halted in a loop, resumed, versions kept."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.flows import TaskRegistry, apply_resume_data, halted_step, load_flow
from workflow.storage import Definitions, PersistentWorkflowEngine, Store

ORDERS = {
    "name": "orders",
    "steps": [
        {"name": "total", "task": "sum", "params": {"values": "@_input.lines"}},
        {
            "name": "lines",
            "for_each": "@_input.lines",
            "as": "line",
            "do": [
                {
                    "name": "big",
                    "if": {">": ["@line", 100]},
                    "then": [
                        {"name": "review", "halt": {"message": "big line", "action": "ok"}},
                        {"name": "approved", "task": "keep", "params": {"ok": "@review.ok"}},
                    ],
                },
                {"name": "kept", "task": "keep", "params": {"line": "@line"}},
            ],
        },
    ],
}


@pytest.fixture
def registry() -> TaskRegistry:
    tasks = TaskRegistry(entry_point_group=None)
    tasks.register("sum", lambda context, params: {"value": sum(params["values"])})
    tasks.register("keep", lambda context, params: dict(params))
    tasks.register("double", lambda context, params: {"value": 2 * params["v"]})
    return tasks


def _engine(store: Store, uid: str, body: dict[str, Any], registry: TaskRegistry) -> Any:
    flow = load_flow(body, registry=registry)
    return PersistentWorkflowEngine.from_uuid(uid, store=store, definition=flow.callbacks())


def test_a_flow_halted_inside_a_loop_resumes_in_a_new_engine_where_it_stopped(
    store: Store, registry: TaskRegistry
) -> None:
    flow = load_flow(ORDERS, registry=registry)
    engine = PersistentWorkflowEngine.with_name("orders", store=store, definition=flow.callbacks())
    inputs = [{"lines": [5, 7]}, {"lines": [50, 500, 60]}]
    engine.process([flow.new_context(data) for data in inputs], stop_on_halt=False)
    uid = engine.uuid
    assert engine.status is WorkflowStatus.HALTED

    done, waiting = PersistentWorkflowEngine.from_uuid(uid, store=store).load_tokens()
    assert done.status is ObjectStatus.COMPLETED
    assert [r["kept"]["line"] for r in done.data["lines"]] == [5, 7]
    assert done.data["_runtime"]["run_id"] == uid
    assert waiting.status is ObjectStatus.HALTED
    assert halted_step(waiting.data) == {
        "step": "review",
        "message": "big line (item 1 of 'lines')",
        "action": "ok",
        "round": "item 1 of 'lines'",
    }

    resumed = _engine(store, uid, ORDERS, registry)
    context = waiting.data
    apply_resume_data(context, {"ok": True})
    resumed.update_token(waiting.position, context)
    resumed.resume()

    assert resumed.status is WorkflowStatus.COMPLETED
    final = PersistentWorkflowEngine.from_uuid(uid, store=store).load_tokens()[1]
    assert final.status is ObjectStatus.COMPLETED
    assert final.data["total"] == {"value": 610}
    assert final.data["lines"] == [
        {"big": {"branch": "else"}, "kept": {"line": 50}},
        {
            "big": {"branch": "then"},
            "review": {"ok": True},
            "approved": {"ok": True},
            "kept": {"line": 500},
        },
        {"big": {"branch": "else"}, "kept": {"line": 60}},
    ]


def test_a_run_resumes_with_the_definition_version_it_started_with(
    store: Store, registry: TaskRegistry
) -> None:
    definitions = Definitions(store)
    first = {
        "name": "scale",
        "steps": [
            {"name": "wait", "halt": {"message": "go?"}},
            {"name": "out", "task": "double", "params": {"v": "@_input"}},
        ],
    }
    v1 = definitions.put("scale", first)
    flow = load_flow(v1.body, registry=registry, version=v1.version)
    engine = PersistentWorkflowEngine.with_name(
        "scale",
        store=store,
        definition=flow.callbacks(),
        definition_name=v1.name,
        definition_version=v1.version,
    )
    engine.process([flow.new_context(21)], stop_on_halt=False)

    second = {"name": "scale", "steps": [{"name": "out", "task": "keep", "params": {"v": 0}}]}
    assert definitions.put("scale", second).version == 2

    stored = PersistentWorkflowEngine.from_uuid(engine.uuid, store=store)
    assert (stored.definition_name, stored.definition_version) == ("scale", 1)
    pinned = definitions.get(stored.definition_name, stored.definition_version)
    again = load_flow(pinned.body, registry=registry, version=pinned.version)
    stored.callbacks.replace(again.callbacks())
    stored.resume()

    (token,) = stored.load_tokens()
    assert token.data["out"] == {"value": 42}
    assert token.data["_runtime"]["version"] == 1


def test_a_called_flow_keeps_the_version_the_run_started_with(
    store: Store, registry: TaskRegistry
) -> None:
    definitions = Definitions(store)
    definitions.put(
        "child",
        {
            "name": "child",
            "steps": [
                {"name": "wait", "halt": {"message": "child waits"}},
                {"name": "out", "task": "double", "params": {"v": "@_input.v"}},
            ],
        },
    )
    parent = load_flow(
        {"name": "parent", "steps": [{"name": "call", "flow": "child", "params": {"v": 5}}]},
        registry=registry,
        definitions=definitions.get,
    )
    assert parent.body["steps"][0]["version"] == 1  # pinned: the lookup says which version
    stored = definitions.put("parent", parent.body)
    engine = PersistentWorkflowEngine.with_name(
        "parent",
        store=store,
        definition=parent.callbacks(),
        definition_name="parent",
        definition_version=stored.version,
    )
    engine.process([parent.new_context()], stop_on_halt=False)

    definitions.put("child", {"name": "child", "steps": [{"name": "other", "task": "keep"}]})
    again = definitions.get("parent", engine.definition_version)
    flow = load_flow(again.body, registry=registry, definitions=definitions.get)
    resumed = PersistentWorkflowEngine.from_uuid(
        engine.uuid, store=store, definition=flow.callbacks()
    )
    resumed.resume()

    (token,) = resumed.load_tokens()
    assert token.status is ObjectStatus.COMPLETED
    assert token.data["call"]["out"] == {"value": 10}
    assert "other" not in token.data["call"]
