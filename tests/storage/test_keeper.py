"""The lease keeper: one thread per process renews every lease its tokens hold."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import pytest

from workflow.storage.keeper import Keeper


def until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the keeper did not get there in time"
        time.sleep(0.01)


def threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_each_beat_is_called_every_interval_from_one_thread() -> None:
    keeper = Keeper("test-keeper-one")
    calls: dict[str, list[str]] = {"a": [], "b": []}

    def beat(name: str) -> object:
        return lambda: calls[name].append(threading.current_thread().name) or True

    first = keeper.every(0.05, beat("a"))
    second = keeper.every(0.05, beat("b"))
    until(lambda: len(calls["a"]) >= 3 and len(calls["b"]) >= 3)
    first.cancel()
    second.cancel()
    assert set(calls["a"] + calls["b"]) == {"test-keeper-one"}
    assert len(threads("test-keeper-one")) == 1  # one thread for every beat


def test_a_cancelled_beat_is_not_called_again_and_leaves_the_queue() -> None:
    keeper = Keeper("test-keeper")
    calls: list[float] = []
    entry = keeper.every(0.05, lambda: calls.append(time.monotonic()) or True)
    until(lambda: len(calls) >= 1)
    entry.cancel()
    seen = len(calls)
    time.sleep(0.2)
    assert len(calls) <= seen + 1  # a call under way at the cancel may finish
    until(lambda: len(keeper) == 0)


def test_the_thread_ends_with_nothing_to_keep_and_a_new_beat_starts_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("workflow.storage.keeper._LINGER", 0.05)
    keeper = Keeper("test-keeper-linger")
    called = threading.Event()
    keeper.every(0.01, lambda: called.set() or False)
    assert called.wait(5)
    until(lambda: not threads("test-keeper-linger"))
    again = threading.Event()
    keeper.every(0.01, lambda: again.set() or False)
    assert again.wait(5)


def test_a_beat_that_says_false_or_raises_stops_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keeper = Keeper("test-keeper")
    done: list[str] = []
    steady: list[str] = []

    def once() -> bool:
        done.append("once")
        return False  # the lease is gone

    def broken() -> bool:
        done.append("broken")
        raise RuntimeError("a bug in a renewal")

    with caplog.at_level(logging.ERROR, logger="workflow.storage.keeper"):
        keeper.every(0.02, once)
        keeper.every(0.02, broken)
        entry = keeper.every(0.02, lambda: steady.append("x") or True)
        until(lambda: len(steady) >= 5)
        entry.cancel()
    assert sorted(done) == ["broken", "once"]  # each called exactly once
    assert "a lease renewal failed" in caplog.text
    assert "a bug in a renewal" in caplog.text


def _beat_in_child(keeper: Keeper, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    called = threading.Event()
    keeper.every(0.02, lambda: called.set() or False)
    results.put(called.wait(5))


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (Linux)"
)
def test_a_forked_child_gets_a_thread_of_its_own() -> None:
    keeper = Keeper("test-keeper")
    entry = keeper.every(0.05, lambda: True)  # the parent's thread runs
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_beat_in_child, args=(keeper, results))
    child.start()
    try:
        assert results.get(timeout=10) is True
    finally:
        child.join(10)
        entry.cancel()
    assert child.exitcode == 0
