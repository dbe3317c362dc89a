"""Signals: sent with the engine as sender, at the documented moments."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from blinker import Signal

from workflow import signals
from workflow.errors import HaltProcessing

from .conftest import append, halt_task


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        self.calls.append((sender, kwargs))


def fail(obj: Any, eng: Any) -> None:
    raise ValueError("task failed")


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ([append("a")], ["workflow_started", "workflow_finished"]),
        ([halt_task], ["workflow_started", "workflow_halted"]),
        ([fail], ["workflow_started", "workflow_error"]),
        ([lambda o, e: e.stop()], ["workflow_started", "workflow_finished"]),
        ([lambda o, e: e.abort()], ["workflow_started", "workflow_finished"]),
    ],
    ids=["finish", "halt", "error", "stop", "abort"],
)
def test_invenio_signals_are_sent_with_the_engine_as_sender(
    make_engine: Any, definition: list[Any], expected: list[str]
) -> None:
    eng = make_engine(definition)
    sent: list[str] = []
    names = ["workflow_started", "workflow_finished", "workflow_halted", "workflow_error"]
    receivers = {name: Recorder() for name in names}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, sender=eng)
    try:
        with contextlib.suppress(HaltProcessing, ValueError):
            eng.process([[]])
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)
    for name in names:
        for sender, _ in receivers[name].calls:
            assert sender is eng
            sent.append(name)
    assert sorted(sent) == sorted(expected)


def test_workflow_error_carries_the_exception(make_engine: Any) -> None:
    eng = make_engine([fail])
    receiver = Recorder()
    with signals.workflow_error.connected_to(receiver, sender=eng), pytest.raises(ValueError):
        eng.process([[]])
    [(sender, kwargs)] = receiver.calls
    assert sender is eng
    assert isinstance(kwargs["exception"], ValueError)


def test_workflow_started_is_sent_for_every_restart(make_engine: Any) -> None:
    eng = make_engine([halt_task])
    receiver = Recorder()
    with signals.workflow_started.connected_to(receiver):
        with pytest.raises(HaltProcessing):
            eng.process([[]])
        with pytest.raises(HaltProcessing):
            eng.restart("current", "first")
    assert len(receiver.calls) == 2


def test_token_signals_follow_each_token(make_engine: Any) -> None:
    def halt_second(obj: Any, eng: Any) -> None:
        if obj == ["second"]:
            eng.halt("wait")

    eng = make_engine([halt_second])
    events: list[tuple[str, Any, int]] = []

    def on(name: str) -> Any:
        def receiver(sender: Any, token: Any, token_pos: int, **kwargs: Any) -> None:
            assert sender is eng
            events.append((name, list(token), token_pos))

        return receiver

    started, finished, halted = on("started"), on("finished"), on("halted")
    with (
        signals.token_started.connected_to(started),
        signals.token_finished.connected_to(finished),
        signals.token_halted.connected_to(halted),
        pytest.raises(HaltProcessing),
    ):
        eng.process([["first"], ["second"]])
    assert events == [
        ("started", ["first"], 0),
        ("finished", ["first"], 0),
        ("started", ["second"], 1),
        ("halted", ["second"], 1),
    ]


def test_task_signals_give_task_and_position(make_engine: Any) -> None:
    first, second = append("a"), append("b")
    eng = make_engine([first, [second]])
    started, finished = Recorder(), Recorder()
    with (
        signals.task_started.connected_to(started),
        signals.task_finished.connected_to(finished),
    ):
        eng.process([[]])
    assert [(k["task"], k["callback_pos"]) for _, k in started.calls] == [
        (first, [0]),
        (second, [1, 0]),
    ]
    assert [k["task"] for _, k in finished.calls] == [first, second]
    assert all(sender is eng for sender, _ in started.calls + finished.calls)


def test_task_finished_is_not_sent_for_a_failing_task(make_engine: Any) -> None:
    eng = make_engine([fail])
    finished = Recorder()
    with signals.task_finished.connected_to(finished), pytest.raises(ValueError):
        eng.process([[]])
    assert finished.calls == []


def test_every_signal_is_documented() -> None:
    for name in signals.__all__:
        signal = getattr(signals, name)
        assert isinstance(signal, Signal)
        assert signal.__doc__
