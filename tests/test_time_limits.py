"""Time limits of tasks: interrupted in the main thread and in other threads, never late."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.errors import (
    FlowRuntimeError,
    FlowValidationError,
    TaskTimeLimitError,
    WorkflowValueError,
)
from workflow.flows import TaskRegistry, load_flow
from workflow.runtime import call_with_time_limit, time_limited


def busy(seconds: float) -> int:
    """Python code that runs for ``seconds`` (no blocking call)."""
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        count += 1
    return count


def test_a_blocking_call_in_the_main_thread_is_interrupted() -> None:
    started = time.monotonic()
    with pytest.raises(TaskTimeLimitError, match=r"task 'nap' ran past its time limit of 0\.1 s"):
        call_with_time_limit(0.1, time.sleep, 30, name="nap")
    assert time.monotonic() - started < 10
    assert time.sleep(0.2) is None  # the alarm is gone


def test_a_call_in_another_thread_fails_when_it_returns_late() -> None:
    outcome: list[Any] = []

    def worker() -> None:
        outcome.append(call_with_time_limit(5, busy, 0.01))  # within its limit: its result
        try:
            call_with_time_limit(0.1, busy, 0.3, name="busy")
        except TaskTimeLimitError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    result, error = outcome
    assert result > 0
    assert isinstance(error, TaskTimeLimitError)
    assert (error.limit, error.task) == (0.1, "busy")
    assert "task 'busy' ran past its time limit of 0.1 s (it took" in str(error)
    assert "could not be interrupted, so what it returned is not used" in str(error)


def test_time_limited_wraps_a_callback_for_any_engine() -> None:
    def slow(obj: Any, eng: Any) -> None:
        time.sleep(30)

    def quick(obj: Any, eng: Any) -> None:
        obj.append("quick")

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([time_limited(5, quick), time_limited(0.1, slow)])
    token: list[str] = []
    with pytest.raises(TaskTimeLimitError, match="task 'slow'"):
        eng.process([token])
    assert token == ["quick"]
    assert time_limited(1, quick).__name__ == "quick"


@pytest.mark.parametrize("bad", [0, -1, 86401, float("nan"), "1", True, None])
def test_bad_limits_are_refused(bad: Any) -> None:
    with pytest.raises(WorkflowValueError, match="a time limit is a number of seconds"):
        time_limited(bad, lambda obj, eng: None)


def flow_with_limit(limit: Any) -> dict[str, Any]:
    return {"name": "limited", "steps": [{"name": "s", "task": "slow", "time_limit": limit}]}


@pytest.fixture
def tasks() -> TaskRegistry:
    registry = TaskRegistry(entry_point_group=None)

    def slow(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        time.sleep(params.get("seconds", 30))
        return {"slept": True}

    registry.register("slow", slow)
    return registry


def test_a_flow_step_over_its_time_limit_fails_naming_the_step(tasks: TaskRegistry) -> None:
    flow = load_flow(flow_with_limit("PT0.1S"), registry=tasks)
    eng = GenericWorkflowEngine()
    eng.callbacks.replace(flow.callbacks())
    with pytest.raises(FlowRuntimeError) as caught:
        eng.process([flow.new_context({})])
    assert "flow 'limited', step 's': TaskTimeLimitError: task 'slow' ran past" in str(caught.value)


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("30s", "$.steps[0].time_limit|time_limit '30s' is not an ISO 8601 duration"),
        ("PT0S", "$.steps[0].time_limit|time_limit must be above zero and at most a day"),
        ("P2D", "$.steps[0].time_limit|time_limit must be above zero and at most a day"),
    ],
)
def test_bad_flow_time_limits_are_refused_with_where(
    tasks: TaskRegistry, limit: str, message: str
) -> None:
    with pytest.raises(FlowValidationError) as caught:
        load_flow(flow_with_limit(limit), registry=tasks)
    found = [f"{e.path}|{e.message}" for e in caught.value.errors]
    assert any(text.startswith(message) for text in found), found


def test_time_limit_is_for_task_steps_only(tasks: TaskRegistry) -> None:
    body = {"name": "x", "steps": [{"name": "h", "halt": True, "time_limit": "PT1S"}]}
    with pytest.raises(FlowValidationError, match="time_limit is for task steps only"):
        load_flow(body, registry=tasks)
