"""A task longer than the lock's time keeps the lock: a heartbeat renews it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from workflow.engine_db import ObjectStatus
from workflow.errors import HaltProcessing, WorkflowLockedError
from workflow.storage import PersistentWorkflowEngine, Store, Token
from workflow.storage.heartbeat import LockHeartbeat

TTL = 0.6


def heartbeats() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("workflow-lock-")]


def test_a_task_longer_than_the_lock_time_keeps_the_lock(db_url: str, store: Store) -> None:
    short = Store(db_url, lock_ttl=TTL)
    seen: list[str] = []

    def long_task(obj: Token, eng: PersistentWorkflowEngine) -> None:
        time.sleep(TTL * 3)  # without a heartbeat, the lock would have lapsed twice
        try:
            store.acquire(eng.uuid, "an intruder")
        except WorkflowLockedError:
            seen.append("refused")
        obj.data["done"] = True

    try:
        eng = PersistentWorkflowEngine.with_name("slow", store=short, definition=[long_task])
        eng.process([{}])
    finally:
        short.dispose()
    assert seen == ["refused"]
    (token,) = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store).load_tokens()
    assert (token.status, token.data) == (ObjectStatus.COMPLETED, {"done": True})
    assert store.workflow(eng.uuid)["lock_owner"] is None
    assert heartbeats() == []


def test_the_heartbeat_stops_when_the_run_halts_or_fails(store: Store) -> None:
    def halt(obj: Token, eng: PersistentWorkflowEngine) -> None:
        assert len(heartbeats()) == 1  # beating while tasks run
        eng.halt("wait")

    eng = PersistentWorkflowEngine.with_name("h", store=store, definition=[halt])
    with pytest.raises(HaltProcessing):
        eng.process([{}])
    assert heartbeats() == []

    def fail(obj: Token, eng: PersistentWorkflowEngine) -> None:
        raise RuntimeError("boom")

    failing = PersistentWorkflowEngine.with_name("f", store=store, definition=[fail])
    with pytest.raises(Exception, match="boom"):
        failing.process([{}])
    assert heartbeats() == []
    with pytest.raises(Exception, match="boom"):
        failing.resume()
    assert heartbeats() == []
    with pytest.raises(Exception, match="boom"):
        failing.restart("current", "current")
    assert heartbeats() == []


def test_a_heartbeat_stops_by_itself_once_the_lock_is_not_its_owners(store: Store) -> None:
    uid = store.create_workflow("w")
    store.acquire(uid, "me")
    short = Store(store.engine, lock_ttl=0.15)
    heartbeat = LockHeartbeat(short, uid, "me")
    heartbeat.start()
    try:
        assert store.renew(uid, "me")
        with store.transaction("release", workflow=uid) as conn:
            store.release(conn, uid, "me")
        assert not store.renew(uid, "me")
        deadline = time.monotonic() + 30
        while heartbeats() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert heartbeats() == []
        assert "stopped" in repr(heartbeat)
    finally:
        heartbeat.stop()
    assert store.workflow(uid)["lock_owner"] is None


def test_a_database_error_during_a_beat_is_logged_and_retried(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    uid = store.create_workflow("w")
    store.acquire(uid, "me")
    calls: list[Any] = []

    class Flaky(Store):
        def renew(self, uid: str, owner: str) -> bool:
            calls.append(owner)
            if len(calls) == 1:
                from workflow.errors import DatabaseUnavailableError

                raise DatabaseUnavailableError("the database went away", operation="renew")
            return False  # then: not held, so the thread ends

    flaky = Flaky(store.engine, lock_ttl=0.06)
    heartbeat = LockHeartbeat(flaky, uid, "me")
    with caplog.at_level("WARNING", logger="workflow.storage.heartbeat"):
        heartbeat.start()
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        heartbeat.stop()
    assert len(calls) == 2
    assert "could not renew the lock of workflow" in caplog.text
    assert "beating" not in repr(heartbeat)


def test_a_beat_waits_while_its_engine_is_in_a_transaction(store: Store) -> None:
    uid = store.create_workflow("w")
    store.acquire(uid, "me")
    calls: list[str] = []

    class Counting(Store):
        def renew(self, uid: str, owner: str) -> bool:
            calls.append(owner)
            return super().renew(uid, owner)

    counting = Counting(store.engine, lock_ttl=0.06)
    guard = threading.Lock()
    heartbeat = LockHeartbeat(counting, uid, "me", guard=guard)
    try:
        with guard:  # what the engine holds around each of its transactions
            heartbeat.start()
            time.sleep(0.2)  # ten beats' time: not one may renew meanwhile
            assert calls == []
        deadline = time.monotonic() + 30
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls[0] == "me"
    finally:
        heartbeat.stop()
