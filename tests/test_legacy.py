"""The deprecated camelCase API of Invenio 2.x: it warns, and it works."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing, WorkflowError

from .conftest import append


def test_set_workflow_and_friends_manage_callbacks() -> None:
    eng = GenericWorkflowEngine()
    a, b = append("a"), append("b")
    with pytest.warns(DeprecationWarning, match=r"setWorkflow\(\) is deprecated"):
        eng.setWorkflow([a])
    with pytest.warns(DeprecationWarning):
        eng.addCallback("*", b, before=None, after=None, relative_weight=1)
    with pytest.warns(DeprecationWarning):
        assert eng.getCallbacks() == [a, b]
    with pytest.warns(DeprecationWarning):
        eng.addManyCallbacks("k", [a, (b,)])
    with pytest.warns(DeprecationWarning):
        eng.replaceCallbacks("k", [b])
    assert eng.callbacks.get("k") == [b]
    with pytest.warns(DeprecationWarning):
        eng.removeCallbacks("k")
    with pytest.warns(DeprecationWarning):
        eng.removeAllCallbacks()
    assert eng.callbacks.empty()


def test_variable_helpers_use_extra_data() -> None:
    eng = GenericWorkflowEngine()
    with pytest.warns(DeprecationWarning):
        eng.setVar("x", 1)
    with pytest.warns(DeprecationWarning):
        assert eng.getVar("x") == 1
    with pytest.warns(DeprecationWarning):
        assert eng.getVar("y", default=5) == 5
    assert eng.extra_data["y"] == 5
    with pytest.warns(DeprecationWarning):
        assert eng.getVar("z") is None
    assert "z" not in eng.extra_data
    with pytest.warns(DeprecationWarning):
        assert eng.hasVar("x")
    with pytest.warns(DeprecationWarning):
        eng.delVar("x")
    with pytest.warns(DeprecationWarning):
        assert eng.store == {"y": 5}


def test_position_helpers() -> None:
    eng = GenericWorkflowEngine()
    with pytest.warns(DeprecationWarning):
        eng.setPosition(2, [1, 0])
    with pytest.warns(DeprecationWarning):
        assert eng.getCurrObjId() == 2
    with pytest.warns(DeprecationWarning):
        assert eng.getCurrTaskId() == [1, 0]


def test_duplicate_returns_a_new_empty_engine_of_the_same_class() -> None:
    class Mine(GenericWorkflowEngine):
        pass

    eng = Mine()
    eng.callbacks.add(append("a"))
    with pytest.warns(DeprecationWarning):
        copy = eng.duplicate()
    assert type(copy) is Mine
    assert copy.callbacks.empty()


def run_with(task: Any, tokens: Any) -> GenericWorkflowEngine:
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([task, append("after")])
    eng.process(tokens)
    return eng


def test_camel_case_transitions_behave_like_their_successors() -> None:
    def halt(obj: Any, eng: Any) -> None:
        eng.haltProcessing("old halt")

    with pytest.warns(DeprecationWarning), pytest.raises(HaltProcessing, match="old halt"):
        run_with(halt, [[]])

    tokens: list[list[str]] = [[], []]
    with pytest.warns(DeprecationWarning):
        run_with(lambda o, e: e.stopProcessing(), tokens)
    assert tokens == [[], []]

    tokens = [[], []]
    with pytest.warns(DeprecationWarning):
        run_with(lambda o, e: e.continueNextToken(), tokens)
    assert tokens == [[], []]

    tokens = [[]]
    with pytest.warns(DeprecationWarning):
        run_with(lambda o, e: e.skipToken(), tokens)
    assert tokens == [[]]

    tokens = [[], []]
    with pytest.warns(DeprecationWarning):
        run_with(lambda o, e: e.abortProcessing(), tokens)
    assert tokens == [[], []]


def test_camel_case_jumps_work() -> None:
    def jump_once(method: str, offset: int, at: int = 0) -> Any:
        def task(obj: Any, eng: Any) -> None:
            obj.append("visit")
            if len(obj) == 1 and eng.state.token_pos == at:
                getattr(eng, method)(offset)

        return task

    tokens: list[list[str]] = [[], [], []]
    with pytest.warns(DeprecationWarning):
        run_with(jump_once("jumpTokenForward", 2), tokens)
    assert tokens == [["visit"], [], ["visit", "after"]]

    tokens = [[], []]
    with pytest.warns(DeprecationWarning):
        run_with(jump_once("jumpTokenBack", -1, at=1), tokens)
    assert tokens == [["visit", "after", "visit", "after"], ["visit", "visit", "after"]]

    tokens = [[]]
    with pytest.warns(DeprecationWarning):
        run_with(jump_once("jumpToken", 1), tokens)
    assert tokens == [["visit"]]

    for method, offset in [("jumpCall", 2), ("jumpCallForward", 2)]:
        tokens = [[]]
        with pytest.warns(DeprecationWarning):
            run_with(jump_once(method, offset), tokens)
        assert tokens == [["visit"]]

    tokens = [[]]
    with pytest.warns(DeprecationWarning):
        run_with(jump_once("jumpCallBack", 0), tokens)
    assert tokens == [["visit", "visit", "after"]]

    with pytest.warns(DeprecationWarning):
        run_with(lambda o, e: e.breakFromThisLoop(), [[]])


@pytest.mark.parametrize(
    ("method", "offset"),
    [
        ("jumpTokenForward", -1),
        ("jumpTokenBack", 1),
        ("jumpCallForward", -1),
        ("jumpCallBack", 1),
    ],
)
def test_camel_case_jumps_refuse_the_wrong_direction(method: str, offset: int) -> None:
    eng = GenericWorkflowEngine()
    with pytest.warns(DeprecationWarning), pytest.raises(WorkflowError, match="cannot take"):
        getattr(eng, method)(offset)
