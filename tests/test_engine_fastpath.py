"""The compiled runners of registered definitions behave exactly like the interpreter.

Each case runs the same definition twice: registered with ``callbacks.replace``
(the engine compiles it, see ``workflow._callbacks``) and returned by a
``callback_chooser`` as an unregistered copy (the engine interprets it). Every
task records the position it sees; both runs must see the same ones.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pytest

from workflow import _callbacks
from workflow.engine import GenericWorkflowEngine, HaltProcessing, JumpTask
from workflow.errors import BreakFromThisLoop, JumpCall
from workflow.patterns import IF_ELSE, WHILE

Log = list[tuple[str, list[int]]]
Make = Callable[[Log], list[Any]]


def record(log: Log, name: str, then: Callable[[Any, Any], None] | None = None) -> Any:
    """A task that logs its name and position, then maybe does ``then(obj, eng)``."""

    def task(obj: Any, eng: Any) -> None:
        log.append((name, list(eng.state.callback_pos)))
        obj["n"] += 1
        if then is not None:
            then(obj, eng)

    task.__name__ = name
    return task


def once(action: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """Do ``action`` the first time only, for each token."""

    def then(obj: Any, eng: Any) -> None:
        if not obj.get(id(action)):
            obj[id(action)] = True
            action(obj, eng)

    return then


def copy_tree(tree: list[Any]) -> list[Any]:
    return [copy_tree(item) if item.__class__ is list else item for item in tree]


class Interpreting(GenericWorkflowEngine):
    """Runs an unregistered copy of the definition: the interpreter, never a runner."""

    def callback_chooser(self, obj: Any) -> Any:
        return copy_tree(self.callbacks.get("*"))


def run(engine: type[GenericWorkflowEngine], make: Make, tokens: int = 4) -> tuple[Log, Any]:
    log: Log = []
    eng = engine()
    eng.callbacks.replace(make(log))
    objects = [{"id": index, "n": 0} for index in range(tokens)]
    eng.process(objects)
    return log, ([obj["n"] for obj in objects], eng.state.to_dict())


def is_even(obj: Any, eng: Any) -> bool:
    return obj["id"] % 2 == 0


def below(limit: int) -> Callable[[Any, Any], bool]:
    return lambda obj, eng: obj["n"] < limit


CASES: dict[str, Make] = {
    "patterns": lambda log: [
        record(log, "a"),
        WHILE(
            below(9),
            [
                record(log, "loop"),
                IF_ELSE(is_even, [record(log, "b"), record(log, "c")], [record(log, "e")]),
                IF_ELSE(below(4), [record(log, "c2")], [record(log, "d")]),
            ],
        ),
        record(log, "g"),
    ],
    "jump_call forward, back and clamped": lambda log: [
        record(log, "a"),
        record(log, "skip", once(lambda obj, eng: eng.jump_call(2))),
        record(log, "skipped"),
        [record(log, "back", once(lambda obj, eng: eng.jump_call(-99)))],
        record(log, "past", once(lambda obj, eng: eng.jump_call(99))),
        record(log, "never"),
    ],
    "jump_call to itself": lambda log: [
        [record(log, "again", once(lambda obj, eng: eng.jump_call(0))), record(log, "z")],
    ],
    "jump_call_later": lambda log: [
        [
            record(log, "a"),
            record(log, "later", once(lambda obj, eng: eng.jump_call_later(-1))),
            record(log, "later2", once(lambda obj, eng: eng.jump_call_later(5))),
            record(log, "skipped"),
        ],
        record(log, "after"),
    ],
    "break": lambda log: [
        [record(log, "a"), [record(log, "brk", lambda obj, eng: eng.break_current_loop())]],
        record(log, "after"),
    ],
    "jump tasks": lambda log: [
        JumpTask(2),
        record(log, "skipped"),
        [record(log, "first"), JumpTask(-5, below(3)), record(log, "then"), JumpTask(9)],
        [JumpTask(1, is_even, when=False), record(log, "next")],
        record(log, "end"),
    ],
    "a condition that moves the position": lambda log: [
        [
            JumpTask(3, lambda obj, eng: eng.jump_call_later(2), when=True),
            record(log, "skipped"),
            record(log, "also skipped"),
            record(log, "lands"),
        ],
    ],
    "a negative position": lambda log: [
        [
            record(log, "a"),
            record(log, "neg", once(lambda obj, eng: eng.state.callback_pos.__setitem__(-1, -2))),
            record(log, "last"),
        ],
    ],
    "a float position": lambda log: [
        record(log, "a"),
        record(log, "float", once(lambda obj, eng: eng.state.callback_pos.__setitem__(-1, 0.0))),
    ],
    "raised transitions": lambda log: [
        [
            record(log, "a", once(lambda obj, eng: (_ for _ in ()).throw(JumpCall(2)))),
            record(log, "b"),
            record(log, "c", once(lambda obj, eng: (_ for _ in ()).throw(BreakFromThisLoop()))),
        ],
        record(log, "d"),
    ],
    "empty lists": lambda log: [[], record(log, "a"), [[]]],
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_and_interpreted_runs_see_the_same_positions(name: str) -> None:
    make = CASES[name]
    if name == "a float position":
        with pytest.raises(TypeError):
            run(GenericWorkflowEngine, make)
        with pytest.raises(TypeError):
            run(Interpreting, make)
        return
    compiled = run(GenericWorkflowEngine, make)
    interpreted = run(Interpreting, make)
    assert compiled == interpreted
    assert compiled[0]


def test_registered_definitions_are_compiled_once_and_forgotten_when_changed() -> None:
    log: Log = []
    eng = GenericWorkflowEngine()
    eng.callbacks.replace(CASES["patterns"](log))
    eng.process([{"id": 0, "n": 0}])
    assert not eng.callbacks._runners  # one token: not worth compiling
    eng.process([{"id": 0, "n": 0}, {"id": 1, "n": 0}])
    runners = dict(eng.callbacks._runners)
    assert len(runners) == 8  # the definition and its seven nested lists
    eng.process([{"id": 1, "n": 0}])  # a runner that exists is used from the first token
    assert eng.callbacks._runners == runners
    eng.callbacks.add(record(log, "added"))
    assert not eng.callbacks._runners
    assert eng.callbacks._runner([record(log, "not registered")]) is None


def test_a_list_changed_in_place_runs_its_new_items() -> None:
    log: Log = []
    eng = GenericWorkflowEngine()
    inner = [record(log, "old")]
    eng.callbacks.replace([record(log, "a"), inner])
    eng.process([{"n": 0}, {"n": 0}])
    assert eng.callbacks._runners
    tree = eng.callbacks.get()
    tree[1][0] = record(log, "new")  # the registered copy, changed in place
    tree.append(record(log, "appended"))
    eng.process([{"n": 0}])
    assert [name for name, _ in log] == ["a", "old", "a", "old", "a", "new", "appended"]
    assert not eng.callbacks._runners  # found stale, compiled again on next use
    eng.process([{"n": 0}, {"n": 0}])
    assert [name for name, _ in log][-6:] == ["a", "new", "appended"] * 2
    assert eng.callbacks._runners


def test_a_task_changing_a_list_it_enters_later_is_seen() -> None:
    log: Log = []

    def change(obj: Any, eng: Any) -> None:
        eng.callbacks.get()[1][0] = record(log, "new")

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([record(log, "a", once(change)), [record(log, "old")]])
    eng.process([{"n": 0}, {"n": 0}])
    assert [name for name, _ in log] == ["a", "new", "a", "new"]


def test_long_lists_and_lists_nested_in_themselves_are_interpreted() -> None:
    log: Log = []
    long = [record(log, f"t{index}") for index in range(_callbacks.MAX_COMPILED_ITEMS + 1)]
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([[long[0]], long])
    tree = eng.callbacks.get()
    tree.insert(0, JumpTask(2))
    tree.insert(1, tree)  # never entered: the jump goes over it
    eng.process([{"n": 0}, {"n": 0}])
    assert [name for name, _ in log] == ["t0", *(task.__name__ for task in long)] * 2


def test_the_shape_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_callbacks, "MAX_SHAPES", 2)
    monkeypatch.setattr(_callbacks, "_shapes", {})
    log: Log = []
    eng = GenericWorkflowEngine()
    for size in range(1, 5):
        eng.callbacks.replace([record(log, "t")] * size)
        eng.process([{"n": 0}, {"n": 0}])
        assert len(_callbacks._shapes) <= 2
    assert len(log) == 2 * (1 + 2 + 3 + 4)


def test_a_halt_in_a_compiled_list_keeps_its_position_and_shows_its_line() -> None:
    def halt(obj: Any, eng: Any) -> None:
        if not obj.get("halted"):
            obj["halted"] = True
            eng.halt("wait")

    log: Log = []
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([record(log, "a"), [record(log, "b"), halt, record(log, "c")]])
    objects = [{"n": 0, "halted": True}, {"n": 0}]  # the second token runs compiled
    with pytest.raises(HaltProcessing) as info:
        eng.process(objects)
    assert eng.state.callback_pos == [1, 1]
    assert "x1(obj, eng)" in "".join(traceback.format_tb(info.tb))
    eng.restart("current", "current")
    assert [name for name, _ in log] == ["a", "b", "c"] * 2
    assert eng.has_completed


def test_a_list_nested_twice_gets_one_runner() -> None:
    log: Log = []
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([[record(log, "shared")]])
    tree = eng.callbacks.get()
    tree.append(tree[0])
    eng.process([{"n": 0}, {"n": 0}])
    assert [name for name, _ in log] == ["shared"] * 4
    assert len(eng.callbacks._runners) == 2
