"""restart(obj, task): the sixteen combinations, resumed inside nested lists."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.errors import HaltProcessing

from .conftest import append, halt_task

WORDS = ["mouse", "dog", "cat", "puppy", "python", "horse"]
FULL = WORDS
HALF = WORDS[:5]


def definition() -> list[Any]:
    mouse, dog, cat, puppy, python, horse = (append(word) for word in WORDS)
    return [mouse, [dog, [cat, puppy], [python, halt_task], horse]]


@pytest.fixture
def halted_twice(make_engine: Any) -> Any:
    """Token 0 finished after one resume; token 1 halted at [1, 2, 1]."""
    eng = make_engine(definition())
    tokens: list[list[str]] = [[] for _ in range(5)]
    with pytest.raises(HaltProcessing):
        eng.process(tokens)
    assert eng.state.token_pos == 0
    assert eng.state.callback_pos == [1, 2, 1]
    assert tokens[0] == HALF
    with pytest.raises(HaltProcessing):
        eng.restart("current", "next")
    assert tokens[0] == FULL
    assert tokens[1] == HALF
    assert eng.state.token_pos == 1
    assert eng.state.callback_pos == [1, 2, 1]
    return eng, tokens


# (obj, task) -> expected tokens 0..3 after the restart, and whether it halts again.
TABLE = {
    ("prev", "first"): ([FULL + HALF, HALF, [], []], True),
    ("prev", "prev"): ([[*FULL, "python"], HALF, [], []], True),
    ("prev", "current"): ([FULL, HALF, [], []], True),
    ("prev", "next"): ([[*FULL, "horse"], HALF + HALF, [], []], True),
    ("current", "prev"): ([FULL, [*HALF, "python"], [], []], True),
    ("current", "current"): ([FULL, HALF, [], []], True),
    ("current", "next"): ([FULL, [*HALF, "horse"], HALF, []], True),
    ("current", "first"): ([FULL, HALF + HALF, [], []], True),
    ("next", "prev"): ([FULL, HALF, ["python"], []], True),
    ("next", "current"): ([FULL, HALF, [], []], True),
    ("next", "next"): ([FULL, HALF, ["horse"], HALF], True),
    ("next", "first"): ([FULL, HALF, HALF, []], True),
}
TABLE.update(
    {("first", task): TABLE[("prev", task)] for task in ("first", "prev", "current", "next")}
)


@pytest.mark.parametrize(("obj", "task"), sorted(TABLE))
def test_restart_applies_task_move_to_the_chosen_token(
    halted_twice: Any, obj: str, task: str
) -> None:
    eng, tokens = halted_twice
    expected, halts = TABLE[(obj, task)]
    if halts:
        with pytest.raises(HaltProcessing):
            eng.restart(obj, task)
    assert tokens[:4] == expected
    assert tokens[4] == []


def test_restart_table_covers_all_sixteen_combinations() -> None:
    assert len(TABLE) == 16


def test_halt_in_nested_list_resumes_at_same_position(make_engine: Any) -> None:
    eng = make_engine(definition())
    tokens: list[list[str]] = [[]]
    with pytest.raises(HaltProcessing):
        eng.process(tokens)
    assert eng.state.callback_pos == [1, 2, 1]
    assert eng.current_taskname == "halt_task"
    eng.restart("current", "next")
    assert tokens == [FULL]
    assert eng.has_completed


def test_resume_does_not_rerun_tasks_before_the_position(make_engine: Any) -> None:
    eng = make_engine(definition())
    eng.objects = [["seed"]]
    eng.state.token_pos = 0
    eng.state.callback_pos = [1, 1, 1]
    with pytest.raises(HaltProcessing):
        eng.restart("current", "current")
    assert eng.objects == [["seed", "puppy", "python"]]
    assert eng.state.callback_pos == [1, 2, 1]


def test_restart_with_unknown_obj_names_the_bad_value(make_engine: Any) -> None:
    eng = make_engine(definition())
    with pytest.raises(ValueError, match=r"obj must be one of .*got 'nxt'"):
        eng.restart("nxt", "first")


def test_restart_with_unknown_task_names_the_bad_value(make_engine: Any) -> None:
    eng = make_engine(definition())
    with pytest.raises(ValueError, match=r"task must be one of .*got 'last'"):
        eng.restart("next", "last")


def test_bad_restart_arguments_leave_the_state_untouched(halted_twice: Any) -> None:
    eng, _ = halted_twice
    with pytest.raises(ValueError, match="got 'bogus'"):
        eng.restart("prev", "bogus")
    assert eng.state.token_pos == 1
    assert eng.state.callback_pos == [1, 2, 1]


def test_prev_task_at_the_first_task_never_wraps_to_the_last(make_engine: Any) -> None:
    def first(obj: Any, eng: Any) -> None:
        obj.append("first")
        if len(obj) == 1:
            eng.halt("first time")

    eng = make_engine([first, append("last")])
    tokens: list[list[str]] = [[]]
    with pytest.raises(HaltProcessing):
        eng.process(tokens)
    assert eng.state.callback_pos == [0]
    eng.restart("current", "prev")
    assert tokens == [["first", "first", "last"]]


def test_prev_token_at_the_first_token_stays_at_the_first(make_engine: Any) -> None:
    eng = make_engine([append("a"), halt_task])
    tokens: list[list[str]] = [[], []]
    with pytest.raises(HaltProcessing):
        eng.process(tokens)
    with pytest.raises(HaltProcessing):
        eng.restart("prev", "first")
    assert eng.state.token_pos == 0
    assert tokens == [["a", "a"], []]


def test_restart_over_fresh_objects_uses_them(make_engine: Any) -> None:
    eng = make_engine([append("a"), halt_task, append("b")])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    fresh: list[list[str]] = [["reloaded"]]
    eng.restart("current", "next", objects=fresh)
    assert fresh == [["reloaded", "b"]]
    assert eng.objects is fresh
