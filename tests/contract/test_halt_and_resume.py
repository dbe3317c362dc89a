"""Halting inside nested blocks and resuming, in every mode.

A resumed token goes on at the task after the one that halted, without
re-running what lies before it nor re-testing the conditions around it; a
token that finished never runs again; the payloads end as an uninterrupted
run leaves them.
"""

from __future__ import annotations

from typing import Any

import pytest

from workflow import signals
from workflow.errors import HaltProcessing
from workflow.patterns import FOR, IF_ELSE, WHILE

from .modes import Mode, Recorder, Task, data, items, token_name
from .tasks import TOKENS, halt_once, recorded_fewer, token_is


def nested_definition(rec: Recorder, gate: Task | None) -> list[Any]:
    """``a, WHILE(2 rounds, [b, IF_ELSE(t0 or t2, [c, gate, d], [e]), f]), g``."""
    a, b, c, d, e, f, g = rec.tasks("a", "b", "c", "d", "e", "f", "g")
    return [
        a,
        WHILE(
            recorded_fewer("b", 2),
            [b, IF_ELSE(token_is("t0", "t2"), [c, rec.task("gate", then=gate), d], [e]), f],
        ),
        g,
    ]


def in_round(rounds: dict[str, int]) -> Task:
    """A condition: the token is in the round ``rounds`` gives for it (counting ``b``)."""

    def cond(obj: Any, eng: Any) -> bool:
        return bool(data(obj).count("b") == rounds.get(token_name(obj)))

    return cond


def test_halt_in_a_nested_list_resumes_at_the_next_task(mode: Mode) -> None:
    uninterrupted = Recorder()
    reference = mode.engine(nested_definition(uninterrupted, None))
    mode.process(reference, items())

    rec = Recorder()
    # t0 halts in the second round of the loop, t2 in the first one.
    gate = halt_once("t0", "t2", when=in_round({"t0": 2, "t2": 1}))
    eng = mode.engine(nested_definition(rec, gate))
    with pytest.raises(HaltProcessing):
        mode.process(eng, items())
    assert rec.sequence("t0")[-3:] == ["b", "c", "gate"]
    assert rec.sequence("t1") == []

    assert mode.resume_until_done(eng) == 2

    assert rec.sequences(TOKENS) == uninterrupted.sequences(TOKENS)
    assert rec.sequence("t0") == [
        *["a", "b", "c", "gate", "d", "f"],
        *["b", "c", "gate", "d", "f", "g"],
    ]
    assert rec.sequence("t1") == ["a", "b", "e", "f", "b", "e", "f", "g"]
    assert mode.payloads(eng) == mode.payloads(reference)


def test_tokens_halting_in_the_same_for_loop_each_keep_their_own_items(mode: Mode) -> None:
    rec = Recorder()
    stops = {"t0": "x", "t1": "y"}

    def at_stop(obj: Any, eng: Any) -> bool:
        return bool(eng.extra_data["item"] == stops.get(token_name(obj)))

    a, c = rec.tasks("a", "c")
    body = rec.task("b", text=lambda obj, eng: f"b:{eng.extra_data['item']}")
    gate = rec.task("gate", then=halt_once("t0", "t1", when=at_stop))
    eng = mode.engine([a, FOR(["x", "y", "z"], "item", [body, gate]), c])
    halts: list[tuple[int, list[int]]] = []

    def on_halt(sender: Any, **kwargs: Any) -> None:
        halts.append((kwargs["token_pos"], list(sender.state.callback_pos)))

    with signals.token_halted.connected_to(on_halt):
        mode.process(eng, items(), stop_on_halt=False)
    assert [token_pos for token_pos, _ in halts] == [0, 1]

    mode.resume_halted_tokens(eng, halts)

    loop = ["b:x", "gate", "b:y", "gate", "b:z", "gate"]
    assert rec.sequences(TOKENS) == {token: ["a", *loop, "c"] for token in TOKENS}
    assert [payload[1:] for payload in mode.payloads(eng)] == [["a", *loop, "c"]] * 3


def test_current_taskname_names_the_task_of_a_replaced_definition(mode: Mode) -> None:
    rec = Recorder()
    a, b, c = rec.tasks("a", "b", "c")
    eng = mode.engine([a, [b, rec.task("gate", then=halt_once("t0")), c]])
    with pytest.raises(HaltProcessing):
        mode.process(eng, items())
    assert eng.state.callback_pos == [1, 1]
    assert eng.current_taskname == "rec_gate"

    x, y, z, w = rec.tasks("x", "y", "z", "w")
    eng.callbacks.replace([x, [y, z, w]])

    assert eng.current_taskname == "rec_z"
