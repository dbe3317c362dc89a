"""Stopping a stored run on request, or abandoning a task: stored, unlocked, resumable at once.

``request_stop()`` (the command's first Ctrl-C or SIGTERM) lets the running
task return, stores the token after it and releases the lock; a
:exc:`KeyboardInterrupt` inside a task abandons that task. Either way the
pass raises :class:`~workflow.errors.WorkflowInterrupted`, the run stays
``RUNNING`` without a lock, and a resume goes on at once without running a
completed task again. On SQLite, PostgreSQL and MariaDB, under each
checkpoint policy.
"""

from __future__ import annotations

import pickle
import threading
from collections import Counter
from typing import Any

import pytest

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import WorkflowInterrupted
from workflow.storage import CheckpointPolicy, PersistentWorkflowEngine, Store, Token

POLICIES = pytest.mark.parametrize("policy", list(CheckpointPolicy), ids=lambda p: p.value)
COMPLETED = ObjectStatus.COMPLETED.value


def definition(calls: Counter[tuple[str, int]], interrupt: Any = None) -> list[Any]:
    """Three tasks counting their calls; ``interrupt(obj, eng)`` runs inside the second."""

    def first(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["first", obj.position] += 1
        obj.data["first"] = True

    def second(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["second", obj.position] += 1
        if interrupt is not None and obj.position == 1 and calls["second", 1] == 1:
            interrupt(obj, eng)
        obj.data["second"] = True

    def third(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["third", obj.position] += 1
        obj.data["third"] = True

    return [first, second, third]


def resume(store: Store, uuid: str, calls: Counter[tuple[str, int]]) -> None:
    """Resume ``uuid`` in a new engine at once (no lock wait) and check that it completes."""
    again = PersistentWorkflowEngine.from_uuid(uuid, store=store, definition=definition(calls))
    again.resume()
    assert WorkflowStatus(store.workflow(uuid)["status"]) is WorkflowStatus.COMPLETED
    done = {"first": True, "second": True, "third": True}
    assert [row["data"] for row in store.token_rows(uuid)] == [done] * 3


@POLICIES
def test_request_stop_stores_the_token_after_its_task_and_releases_the_lock(
    store: Store, policy: CheckpointPolicy
) -> None:
    calls: Counter[tuple[str, int]] = Counter()

    def ask(obj: Token, eng: PersistentWorkflowEngine) -> None:
        eng.request_stop("SIGTERM")  # as the command's signal handler does

    eng = PersistentWorkflowEngine.with_name(
        "stopped", store=store, definition=definition(calls, ask), checkpoint=policy
    )
    with pytest.raises(WorkflowInterrupted) as info:
        eng.process([{}, {}, {}])

    error = info.value
    assert isinstance(error, KeyboardInterrupt)
    assert (error.workflow, error.token, error.reason, error.abandoned) == (
        eng.uuid,
        1,
        "SIGTERM",
        False,
    )
    assert f"workflow {eng.uuid} stopped (SIGTERM) after task [1] of token 1" in str(error)
    row = store.workflow(eng.uuid)
    assert WorkflowStatus(row["status"]) is WorkflowStatus.RUNNING
    assert row["lock_owner"] is None
    rows = store.token_rows(eng.uuid)
    assert [r["status"] for r in rows] == [COMPLETED, ObjectStatus.RUNNING.value, 0]
    assert rows[1]["data"] == {"first": True, "second": True}  # the task returned
    assert rows[1]["callback_pos"] == [1]
    [note] = [c for c in store.status_change_rows(eng.uuid) if "stopped (SIGTERM)" in c["message"]]
    assert note["token_position"] is None

    resume(store, eng.uuid, calls)
    assert set(calls.values()) == {1}  # no task ran twice


@POLICIES
def test_keyboard_interrupt_in_a_task_abandons_it_and_releases_the_lock(
    store: Store, policy: CheckpointPolicy
) -> None:
    calls: Counter[tuple[str, int]] = Counter()

    def ctrl_c(obj: Token, eng: PersistentWorkflowEngine) -> None:
        raise KeyboardInterrupt

    eng = PersistentWorkflowEngine.with_name(
        "abandoned", store=store, definition=definition(calls, ctrl_c), checkpoint=policy
    )
    with pytest.raises(WorkflowInterrupted) as info:
        eng.process([{}, {}, {}])

    error = info.value
    assert (error.workflow, error.token, error.abandoned) == (eng.uuid, 1, True)
    assert isinstance(error.__cause__, KeyboardInterrupt)
    assert "interrupted (KeyboardInterrupt) in task [1] of token 1" in str(error)
    row = store.workflow(eng.uuid)
    assert WorkflowStatus(row["status"]) is WorkflowStatus.RUNNING
    assert row["lock_owner"] is None
    statuses = [r["status"] for r in store.token_rows(eng.uuid)]
    assert statuses[0] == COMPLETED  # stored even under the HALT policy
    assert statuses[2] == 0

    resume(store, eng.uuid, calls)
    assert calls["second", 1] == 2  # the abandoned task ran again
    first_runs = 1 if policy is CheckpointPolicy.TASK else 2  # else the token starts over
    assert calls["first", 1] == first_runs
    assert calls["first", 0] == calls["first", 2] == 1


def test_request_stop_from_another_thread(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    started = threading.Event()
    go_on = threading.Event()

    def wait(obj: Token, eng: PersistentWorkflowEngine) -> None:
        started.set()
        assert go_on.wait(30)

    eng = PersistentWorkflowEngine.with_name(
        "threads", store=store, definition=definition(calls, wait)
    )

    def stop_it() -> None:
        assert started.wait(30)
        eng.request_stop()
        go_on.set()

    stopper = threading.Thread(target=stop_it)
    stopper.start()
    try:
        with pytest.raises(WorkflowInterrupted, match=r"stopped \(stop requested\)"):
            eng.process([{}, {}, {}])
    finally:
        stopper.join()
    assert store.workflow(eng.uuid)["lock_owner"] is None
    resume(store, eng.uuid, calls)


def test_system_exit_in_a_task_releases_the_lock(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()

    def leave(obj: Token, eng: PersistentWorkflowEngine) -> None:
        raise SystemExit(3)

    eng = PersistentWorkflowEngine.with_name(
        "exits", store=store, definition=definition(calls, leave)
    )
    with pytest.raises(SystemExit) as info:
        eng.process([{}, {}, {}])
    assert info.value.code == 3
    assert store.workflow(eng.uuid)["lock_owner"] is None
    resume(store, eng.uuid, calls)


def test_a_stop_request_is_used_once(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name("once", store=store, definition=definition(calls))
    eng.request_stop()  # between passes: the next pass stops after its first task
    with pytest.raises(WorkflowInterrupted, match=r"after task \[0\] of token 0"):
        eng.process([{}, {}, {}])
    eng.resume()  # the request was used: this pass runs to the end
    assert WorkflowStatus(store.workflow(eng.uuid)["status"]) is WorkflowStatus.COMPLETED
    assert set(calls.values()) == {1}


def test_workflow_interrupted_pickles_with_its_fields() -> None:
    error = WorkflowInterrupted("stopped", workflow="u", token=2, reason="SIGINT", abandoned=True)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.workflow, copy.token, copy.reason, copy.abandoned) == (
        "stopped",
        "u",
        2,
        "SIGINT",
        True,
    )
    assert repr(copy) == "WorkflowInterrupted('stopped', workflow='u', token=2, reason='SIGINT')"
