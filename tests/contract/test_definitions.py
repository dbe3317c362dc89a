"""How definitions are read and run: tuple branches, and lists edited while they run.

A tuple is flattened into the list around it, except as a pattern's branch:
there it is one branch. A task may edit the running list in place (replace a
later item, append one); the edited list is what runs, for the first token
and for the later ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from workflow.patterns import IF, IF_ELSE, IF_NOT, WHILE

from .modes import Mode, Recorder, Task, items, token_name
from .tasks import TOKENS, recorded_fewer, token_is

Build = Callable[[Recorder], list[Any]]


def _if(rec: Recorder) -> list[Any]:
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    return [a, IF(token_is("t1"), (b, c)), d]


def _if_not(rec: Recorder) -> list[Any]:
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    return [a, IF_NOT(token_is("t1"), (b, c)), d]


def _if_else_second(rec: Recorder) -> list[Any]:
    a, b, c, d, e = rec.tasks("a", "b", "c", "d", "e")
    return [a, IF_ELSE(token_is("t1"), b, (c, d)), e]


def _if_else_first(rec: Recorder) -> list[Any]:
    a, b, c, d, e = rec.tasks("a", "b", "c", "d", "e")
    return [a, IF_ELSE(token_is("t1"), (b, c), d), e]


def _while(rec: Recorder) -> list[Any]:
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    return [a, WHILE(recorded_fewer("b"), (b, c)), d]


TUPLE_BRANCHES: list[tuple[str, Build, dict[str, list[str]]]] = [
    (
        "IF",
        _if,
        {"t0": ["a", "d"], "t1": ["a", "b", "c", "d"], "t2": ["a", "d"]},
    ),
    (
        "IF_NOT",
        _if_not,
        {"t0": ["a", "b", "c", "d"], "t1": ["a", "d"], "t2": ["a", "b", "c", "d"]},
    ),
    (
        "IF_ELSE-else",
        _if_else_second,
        {"t0": ["a", "c", "d", "e"], "t1": ["a", "b", "e"], "t2": ["a", "c", "d", "e"]},
    ),
    (
        "IF_ELSE-then",
        _if_else_first,
        {"t0": ["a", "d", "e"], "t1": ["a", "b", "c", "e"], "t2": ["a", "d", "e"]},
    ),
    (
        "WHILE",
        _while,
        {"t0": ["a", "d"], "t1": ["a", "b", "c", "d"], "t2": ["a", "b", "c", "b", "c", "d"]},
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"),
    [pytest.param(build, expected, id=name) for name, build, expected in TUPLE_BRANCHES],
)
def test_a_tuple_branch_of_a_pattern_is_one_branch(
    mode: Mode, build: Build, expected: dict[str, list[str]]
) -> None:
    rec = Recorder()
    eng = mode.engine(build(rec))

    mode.process(eng, items())

    assert rec.sequences(TOKENS) == expected
    assert [payload[1:] for payload in mode.payloads(eng)] == [expected[t] for t in TOKENS]


def replacing(rec: Recorder, path: tuple[int, ...]) -> Task:
    """A task replacing the item at ``path`` of the running definition by ``new_<token>``."""

    def edit(obj: Any, eng: Any) -> None:
        block = eng.callbacks.get()
        for index in path[:-1]:
            block = block[index]
        block[path[-1]] = rec.task(f"new_{token_name(obj)}")

    return edit


def appending(rec: Recorder) -> Task:
    """A task appending ``tail_<token>`` to the running definition."""

    def edit(obj: Any, eng: Any) -> None:
        eng.callbacks.get().append(rec.task(f"tail_{token_name(obj)}"))

    return edit


def _replace_later(rec: Recorder) -> list[Any]:
    a, old, c = rec.tasks("a", "old", "c")
    return [a, rec.task("edit", then=replacing(rec, (2,))), old, c]


def _replace_later_nested(rec: Recorder) -> list[Any]:
    a, old, c = rec.tasks("a", "old", "c")
    return [a, [rec.task("edit", then=replacing(rec, (1, 1))), old], c]


def _append(rec: Recorder) -> list[Any]:
    return [rec.task("a"), rec.task("edit", then=appending(rec))]


EDITS: list[tuple[str, Build, dict[str, list[str]]]] = [
    (
        "replace-later-item",
        _replace_later,
        {t: ["a", "edit", f"new_{t}", "c"] for t in TOKENS},
    ),
    (
        "replace-later-item-nested",
        _replace_later_nested,
        {t: ["a", "edit", f"new_{t}", "c"] for t in TOKENS},
    ),
    (
        "append",
        _append,
        {
            "t0": ["a", "edit", "tail_t0"],
            "t1": ["a", "edit", "tail_t0", "tail_t1"],
            "t2": ["a", "edit", "tail_t0", "tail_t1", "tail_t2"],
        },
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"),
    [pytest.param(build, expected, id=name) for name, build, expected in EDITS],
)
def test_a_list_edited_in_place_by_a_task_runs_the_new_item(
    mode: Mode, build: Build, expected: dict[str, list[str]]
) -> None:
    rec = Recorder()
    eng = mode.engine(build(rec))

    mode.process(eng, items())

    assert rec.sequences(TOKENS) == expected
    assert [payload[1:] for payload in mode.payloads(eng)] == [expected[t] for t in TOKENS]
