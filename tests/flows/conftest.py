"""Fixtures of the declarative-flow tests: a private registry with a few tasks."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.flows import Flow, TaskRegistry


def _echo(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return dict(params)


def _add(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {"value": params["a"] + params["b"]}


def _count_down(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    previous = context.get("tick", {"left": params["start"]})
    return {"left": previous["left"] - 1}


def _mark(obj: Any, eng: Any, *, label: str = "marked") -> dict[str, Any]:
    obj.setdefault("_marks", []).append(label)
    return {"label": label, "engine": type(eng).__name__}


@pytest.fixture
def registry() -> TaskRegistry:
    """A registry of its own, without entry points: echo, add, count_down, mark."""
    tasks = TaskRegistry(entry_point_group=None)
    tasks.register("echo", _echo)
    tasks.register("add", _add)
    tasks.register("count_down", _count_down)
    tasks.register("mark", _mark, style="engine")
    return tasks


def run(flow: Flow, *inputs: Any) -> list[dict[str, Any]]:
    """Run ``flow`` on a plain engine, one token per input; return the contexts."""
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(flow.callbacks())
    contexts = [flow.new_context(data) for data in inputs or (None,)]
    engine.process(contexts)
    return contexts
