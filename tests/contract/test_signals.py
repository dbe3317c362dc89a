"""The signals a run sends, and how many of each, in every mode.

``workflow_started`` and ``workflow_finished`` once per ``process()`` call,
``workflow_halted`` once per halt, ``workflow_error`` once per failing task,
``token_started`` / ``token_finished`` once per token; also when
``stop_on_halt=False`` or ``stop_on_error=False`` lets the run go on past
halts and failures: that is still one pass over the tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from workflow import signals
from workflow.errors import HaltProcessing, WorkflowError
from workflow.patterns import IF_ELSE, WHILE

from .modes import Mode, Recorder, items, token_name
from .tasks import TOKENS, fail, halt_once, recorded_fewer, token_is

Received = dict[str, list[tuple[Any, dict[str, Any]]]]


@contextmanager
def received(*names: str) -> Iterator[Received]:
    """Connect a receiver to each signal of ``names``; yield what each received."""
    got: Received = {name: [] for name in names}
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(getattr(signals, name).connected_to(_append_to(got[name])))
        yield got


def _append_to(calls: list[tuple[Any, dict[str, Any]]]) -> Any:
    def receive(sender: Any, **kwargs: Any) -> None:
        calls.append((sender, kwargs))

    return receive


ALL = (
    "workflow_started",
    "workflow_finished",
    "workflow_halted",
    "workflow_error",
    "token_started",
    "token_finished",
    "token_halted",
)


def counts(got: Received) -> dict[str, int]:
    return {name: len(calls) for name, calls in got.items()}


def positions(got: Received, name: str) -> list[int]:
    return [kwargs["token_pos"] for _, kwargs in got[name]]


def test_each_process_call_sends_workflow_started_and_finished_once(mode: Mode) -> None:
    rec = Recorder()
    a, b, c, d, e = rec.tasks("a", "b", "c", "d", "e")
    eng = mode.engine([a, WHILE(recorded_fewer("b", 2), [b, IF_ELSE(token_is("t1"), [c], [d])]), e])

    with received(*ALL) as got:
        mode.process(eng, items())

    assert counts(got) == {
        "workflow_started": 1,
        "workflow_finished": 1,
        "workflow_halted": 0,
        "workflow_error": 0,
        "token_started": 3,
        "token_finished": 3,
        "token_halted": 0,
    }
    assert {sender for name in ALL for sender, _ in got[name]} == {eng}
    assert positions(got, "token_started") == positions(got, "token_finished") == [0, 1, 2]
    assert [token_name(kwargs["token"]) for _, kwargs in got["token_finished"]] == TOKENS

    with received(*ALL) as got:
        again = mode.process_again(eng, items())

    assert counts(got)["workflow_started"] == counts(got)["workflow_finished"] == 1
    assert positions(got, "token_started") == positions(got, "token_finished") == [0, 1, 2]
    assert {sender for name in ALL for sender, _ in got[name]} == {again}


def test_each_halt_sends_workflow_halted_once(mode: Mode) -> None:
    rec = Recorder()
    a, b = rec.tasks("a", "b")
    eng = mode.engine([a, rec.task("gate", then=halt_once("t0", "t2")), b])

    with received(*ALL) as got:
        with pytest.raises(HaltProcessing):
            mode.process(eng, items())
        assert counts(got)["workflow_halted"] == 1
        assert positions(got, "token_halted") == [0]
        assert got["workflow_finished"] == []

        with pytest.raises(HaltProcessing):
            mode.resume(eng)
        assert counts(got)["workflow_halted"] == 2
        assert positions(got, "token_halted") == [0, 2]

        mode.resume(eng)

    assert counts(got)["workflow_halted"] == 2
    assert counts(got)["workflow_started"] == 3  # one per pass: process() and two resumes
    assert counts(got)["workflow_finished"] == 1
    assert counts(got)["workflow_error"] == 0
    assert positions(got, "token_finished") == [0, 1, 2]
    assert rec.sequences(TOKENS) == {token: ["a", "gate", "b"] for token in TOKENS}


@pytest.mark.parametrize("error", [WorkflowError, ValueError])
def test_a_failing_task_sends_workflow_error_once(mode: Mode, error: type[Exception]) -> None:
    rec = Recorder()
    a, b = rec.tasks("a", "b")
    eng = mode.engine([a, rec.task("boom", then=fail("t1", error=error)), b])

    with received(*ALL) as got, pytest.raises(Exception) as raised:
        mode.process(eng, items())

    failure = raised.value if isinstance(raised.value, error) else raised.value.__cause__
    assert isinstance(failure, error)
    assert counts(got)["workflow_error"] == 1
    [(sender, kwargs)] = got["workflow_error"]
    assert sender is eng
    assert kwargs["exception"] in (raised.value, failure)
    assert counts(got)["workflow_halted"] == 0
    assert counts(got)["workflow_finished"] == 0
    assert positions(got, "token_finished") == [0]
    assert rec.sequences(TOKENS) == {"t0": ["a", "boom", "b"], "t1": ["a", "boom"], "t2": []}


def test_stop_on_halt_false_makes_one_pass_over_tokens_that_each_halt(mode: Mode) -> None:
    rec = Recorder()
    a, b = rec.tasks("a", "b")
    eng = mode.engine([a, rec.task("gate", then=halt_once()), b])

    with received(*ALL) as got:
        mode.process(eng, items(), stop_on_halt=False)

    assert counts(got)["workflow_started"] == 1
    assert counts(got)["workflow_finished"] == 1
    assert counts(got)["workflow_halted"] == 3
    assert positions(got, "token_halted") == [0, 1, 2]
    assert got["token_finished"] == []
    assert rec.sequences(TOKENS) == {token: ["a", "gate"] for token in TOKENS}


def test_stop_on_error_false_makes_one_pass_over_tokens_that_each_fail(mode: Mode) -> None:
    rec = Recorder()
    a, b = rec.tasks("a", "b")
    eng = mode.engine([a, rec.task("boom", then=fail()), b])

    with received(*ALL) as got:
        mode.process(eng, items(), stop_on_error=False)

    assert counts(got)["workflow_started"] == 1
    assert counts(got)["workflow_finished"] == 1
    assert counts(got)["workflow_error"] == 3
    assert counts(got)["workflow_halted"] == 0
    assert got["token_finished"] == []
    assert rec.sequences(TOKENS) == {token: ["a", "boom"] for token in TOKENS}
