"""Which tasks a token runs, for plain lists and every control-flow pattern, in every mode.

Each case runs three tokens (``t0``, ``t1``, ``t2``) through a definition
whose tasks record themselves; conditions look at the token's name, so the
tokens take different paths through the same definition. What observers see
(signals, debug log, ``execute_callback``) must be exactly what ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing
from workflow.patterns import (
    BREAK,
    CHOICE,
    FOR,
    HALT,
    IF,
    IF_ELSE,
    IF_NOT,
    OBJ_NEXT,
    SIMPLE_MERGE,
    STOP,
    TASK_JUMP_BWD,
    TASK_JUMP_FWD,
    TASK_JUMP_IF,
    WHILE,
)

from .modes import Mode, Recorder, assert_observers_saw_the_real_tasks, items, token_name
from .tasks import TOKENS, always, recorded_fewer, token_is


def same(*labels: str) -> dict[str, list[str]]:
    return {token: list(labels) for token in TOKENS}


@dataclass
class Case:
    """A definition, and the labels each token records running it."""

    id: str
    build: Callable[[Recorder], list[Any]]
    expected: dict[str, list[str]]
    #: Tokens left before their end (stop, next token): their stored payload is not compared.
    unfinished: set[str] = field(default_factory=set)
    #: How many times the run halts (each halt is resumed).
    halts: int = 0


def _nested(rec: Recorder) -> list[Any]:
    a, b, c, d, e, f = rec.tasks("a", "b", "c", "d", "e", "f")
    return [a, [b, [c, d], e], f]


def _if(rec: Recorder) -> list[Any]:
    a, b, c, d, x = rec.tasks("a", "b", "c", "d", "x")
    return [a, IF(token_is("t1"), [b, c]), IF(token_is("t2"), x), d]


def _if_not(rec: Recorder) -> list[Any]:
    a, b, c = rec.tasks("a", "b", "c")
    return [a, IF_NOT(token_is("t1"), [b]), c]


def _if_else(rec: Recorder) -> list[Any]:
    a, b, c, d, e = rec.tasks("a", "b", "c", "d", "e")
    return [a, IF_ELSE(token_is("t0", "t2"), [b, c], [d]), e]


def _while(rec: Recorder) -> list[Any]:
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    return [a, WHILE(recorded_fewer("b"), [b, c]), d]


def _for(rec: Recorder) -> list[Any]:
    a, c = rec.tasks("a", "c")
    body = rec.task("b", text=lambda obj, eng: f"b:{eng.extra_data['item']}")
    return [a, FOR(["x", "y", "z"], "item", [body]), c]


def _choice(rec: Recorder) -> list[Any]:
    a, b, c, d, e, f, g = rec.tasks("a", "b", "c", "d", "e", "f", "g")
    return [a, CHOICE(lambda obj, eng: token_name(obj), ("t0", b, c), ("t1", d), t2=[e, f]), g]


def _simple_merge(rec: Recorder) -> list[Any]:
    a, b, c, d, e = rec.tasks("a", "b", "c", "d", "e")
    return [a, SIMPLE_MERGE([b, c], d, e)]


def _task_jump_fwd(rec: Recorder) -> list[Any]:
    a, b, c = rec.tasks("a", "b", "c")
    return [a, TASK_JUMP_FWD(2), b, c]


def _task_jump_bwd(rec: Recorder) -> list[Any]:
    a, b, c = rec.tasks("a", "b", "c")
    fewer = recorded_fewer("b", 2)

    def enough(obj: Any, eng: Any) -> bool:
        return not fewer(obj, eng)

    return [a, b, TASK_JUMP_IF(enough, 2), TASK_JUMP_BWD(-2), c]


def _task_jump_if(rec: Recorder) -> list[Any]:
    a, b, c = rec.tasks("a", "b", "c")
    return [a, TASK_JUMP_IF(token_is("t1"), 2), b, c]


def _break(rec: Recorder) -> list[Any]:
    a, b, c, d, e, f = rec.tasks("a", "b", "c", "d", "e", "f")
    return [a, [b, BREAK(), c], WHILE(always, [d, BREAK(), e]), f]


def _obj_next(rec: Recorder) -> list[Any]:
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    return [a, [b, IF(token_is("t1"), [OBJ_NEXT()]), c], d]


def _stop(rec: Recorder) -> list[Any]:
    a, b = rec.tasks("a", "b")
    return [a, IF(token_is("t1"), [STOP()]), b]


def _halt(rec: Recorder) -> list[Any]:
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    return [a, [b, IF(token_is("t1"), [HALT()]), c], d]


CASES = [
    Case("flat", lambda rec: rec.tasks("a", "b", "c"), same("a", "b", "c")),
    Case("nested", _nested, same("a", "b", "c", "d", "e", "f")),
    Case("IF", _if, {"t0": ["a", "d"], "t1": ["a", "b", "c", "d"], "t2": ["a", "x", "d"]}),
    Case("IF_NOT", _if_not, {"t0": ["a", "b", "c"], "t1": ["a", "c"], "t2": ["a", "b", "c"]}),
    Case(
        "IF_ELSE",
        _if_else,
        {"t0": ["a", "b", "c", "e"], "t1": ["a", "d", "e"], "t2": ["a", "b", "c", "e"]},
    ),
    Case(
        "WHILE",
        _while,
        {"t0": ["a", "d"], "t1": ["a", "b", "c", "d"], "t2": ["a", "b", "c", "b", "c", "d"]},
    ),
    Case("FOR", _for, same("a", "b:x", "b:y", "b:z", "c")),
    Case(
        "CHOICE",
        _choice,
        {"t0": ["a", "b", "c", "g"], "t1": ["a", "d", "g"], "t2": ["a", "e", "f", "g"]},
    ),
    Case("SIMPLE_MERGE", _simple_merge, same("a", "b", "c", "e")),
    Case("TASK_JUMP_FWD", _task_jump_fwd, same("a", "c")),
    Case("TASK_JUMP_BWD", _task_jump_bwd, same("a", "b", "b", "c")),
    Case(
        "TASK_JUMP_IF",
        _task_jump_if,
        {"t0": ["a", "b", "c"], "t1": ["a", "c"], "t2": ["a", "b", "c"]},
    ),
    Case("BREAK", _break, same("a", "b", "d", "f")),
    Case(
        "OBJ_NEXT",
        _obj_next,
        {"t0": ["a", "b", "c", "d"], "t1": ["a", "b"], "t2": ["a", "b", "c", "d"]},
        unfinished={"t1"},
    ),
    Case("STOP", _stop, {"t0": ["a", "b"], "t1": ["a"], "t2": []}, unfinished={"t1"}),
    Case("HALT", _halt, same("a", "b", "c", "d"), halts=1),
]

#: The cases run twice on one engine.
RERUN = ["nested", "IF_ELSE", "WHILE", "FOR", "CHOICE", "TASK_JUMP_BWD"]


def run(mode: Mode, eng: GenericWorkflowEngine, payloads: list[Any], halts: int = 0) -> None:
    """Process ``payloads``, resuming after each of the ``halts`` expected halts."""
    if not halts:
        mode.process(eng, payloads)
        return
    with pytest.raises(HaltProcessing):
        mode.process(eng, payloads)
    assert mode.resume_until_done(eng) == halts


def assert_payloads(mode: Mode, eng: GenericWorkflowEngine, case: Case) -> None:
    payloads = {payload[0]: payload[1:] for payload in mode.payloads(eng)}
    assert list(payloads) == TOKENS
    for token, labels in payloads.items():
        if token not in case.unfinished:
            assert labels == case.expected[token], token


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_token_runs_the_tasks_its_path_through_the_definition_takes(
    mode: Mode, case: Case
) -> None:
    rec = Recorder()
    eng = mode.engine(case.build(rec))

    run(mode, eng, items(), case.halts)

    assert rec.sequences(TOKENS) == case.expected
    assert_payloads(mode, eng, case)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_observers_see_exactly_the_tasks_that_ran(mode: Mode, case: Case) -> None:
    rec = Recorder()
    definition = case.build(rec)
    eng = mode.engine(definition)

    run(mode, eng, items(), case.halts)

    assert rec.sequences(TOKENS) == case.expected
    assert_observers_saw_the_real_tasks(mode, rec, definition)


@pytest.mark.parametrize(
    "case", [case for case in CASES if case.id in RERUN], ids=lambda case: case.id
)
def test_a_second_process_call_runs_the_same_tasks_again(mode: Mode, case: Case) -> None:
    rec = Recorder()
    definition = case.build(rec)
    eng = mode.engine(definition)
    run(mode, eng, items())
    rec.clear()
    if mode.observer is not None:
        mode.observer.clear()

    again = mode.process_again(eng, items())

    assert rec.sequences(TOKENS) == case.expected
    assert_payloads(mode, again, case)
    assert_observers_saw_the_real_tasks(mode, rec, definition)
