"""Parallel steps run in-process: threads, copies of the context, and the join."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.errors import FlowRuntimeError
from workflow.flows import TaskRegistry, load_flow
from workflow.storage import PersistentWorkflowEngine, Store

from .conftest import run


def flow(registry: TaskRegistry, *steps: dict[str, Any]) -> Any:
    return load_flow({"name": "f", "steps": list(steps)}, registry=registry)


def each(do: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "name": "lines",
        "for_each": "@_input",
        "as": "line",
        "parallel": True,
        "do": do,
        **extra,
    }


def test_a_parallel_for_each_keeps_the_items_order_and_binds_each_item(
    registry: TaskRegistry,
) -> None:
    f = flow(
        registry,
        each(
            [
                {"name": "doubled", "task": "add", "params": {"a": "@line", "b": "@line"}},
                {"name": "plus", "task": "add", "params": {"a": "@doubled.value", "b": 1}},
            ]
        ),
        {"name": "after", "task": "echo", "params": {"last": "@lines.4.plus.value"}},
    )
    (context,) = run(f, [1, 2, 3, 4, 5])
    assert context["lines"] == [
        {"doubled": {"value": n * 2}, "plus": {"value": n * 2 + 1}} for n in [1, 2, 3, 4, 5]
    ]
    assert context["after"] == {"last": 11}
    assert not {"line", "doubled", "_loops"} & set(context)


def test_max_concurrency_bounds_the_threads_and_they_really_overlap(
    registry: TaskRegistry,
) -> None:
    together = threading.Barrier(2, timeout=10)  # passes only when two items run at once
    guard = threading.Lock()
    running = [0]
    most = [0]

    def pair(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        together.wait()
        with guard:
            running[0] -= 1
        return {"n": params["n"]}

    registry.register("pair", pair)
    f = flow(
        registry, each([{"name": "p", "task": "pair", "params": {"n": "@line"}}], max_concurrency=2)
    )
    (context,) = run(f, list(range(6)))
    assert [item["p"]["n"] for item in context["lines"]] == list(range(6))
    assert most[0] == 2


def test_a_failing_item_fails_the_step_naming_the_item(registry: TaskRegistry) -> None:
    def odd_fails(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if params["n"] % 2:
            raise ValueError(f"{params['n']} is odd")
        return {}

    registry.register("odd_fails", odd_fails)
    f = flow(registry, each([{"name": "check", "task": "odd_fails", "params": {"n": "@line"}}]))
    with pytest.raises(FlowRuntimeError) as info:
        run(f, [0, 1, 2, 3])
    message = str(info.value)
    assert "flow 'f', step 'lines': item 1 failed: step 'check', item 1 of 'lines'" in message
    assert "ValueError: 1 is odd" in message
    assert isinstance(info.value.__cause__, ValueError)


def test_branches_work_on_copies_and_never_see_each_others_results(
    registry: TaskRegistry,
) -> None:
    seen: list[Any] = []

    def look(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        seen.append(sorted(key for key in context if not key.startswith("_")))
        return {"looked": True}

    registry.register("look", look)
    f = flow(
        registry,
        {"name": "first", "task": "echo", "params": {"x": 1}},
        {
            "name": "split",
            "parallel": [
                [{"name": "a", "task": "look"}],
                [{"name": "b", "task": "look"}],
            ],
        },
    )
    (context,) = run(f)
    assert seen == [["first"], ["first"]]
    assert context["a"] == context["b"] == {"looked": True}


def test_a_branch_that_waits_in_a_process_fails_saying_where_it_can(
    registry: TaskRegistry,
) -> None:
    f = flow(
        registry,
        {
            "name": "split",
            "parallel": [
                [{"name": "ok", "task": "echo"}],
                [{"name": "h", "halt": {"message": "stop"}}],
            ],
        },
    )
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(f.callbacks())
    with pytest.raises(FlowRuntimeError, match=r"branch 1 waits \(stop\); a branch can wait only "):
        engine.process([f.new_context(None)])


def test_an_empty_parallel_for_each_gives_an_empty_list(registry: TaskRegistry) -> None:
    f = flow(registry, each([{"name": "x", "task": "echo"}]))
    (context,) = run(f, [])
    assert context["lines"] == []


def test_a_stored_run_forks_in_process_and_stores_the_joined_results(
    registry: TaskRegistry, tmp_path: Any
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    store.create_all()
    f = flow(
        registry, each([{"name": "sq", "task": "add", "params": {"a": "@line", "b": "@line"}}])
    )
    engine = PersistentWorkflowEngine.with_name("f", store=store, definition=f.callbacks())
    engine.process([f.new_context([3, 4])])
    [row] = store.token_rows(engine.uuid)
    assert row["data"]["lines"] == [{"sq": {"value": 6}}, {"sq": {"value": 8}}]
