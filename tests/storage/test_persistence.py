"""What a persistent run stores, when it stores it, and how a stored run goes on.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture). What
was committed is read back through the store, or through a second :class:`Store`
on the same database while the run is still going.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import (
    HaltProcessing,
    StorageError,
    TokenEncodingError,
    WorkflowError,
    WorkflowNotFoundError,
)
from workflow.storage import CheckpointPolicy, JSONCodec, PersistentWorkflowEngine, Store, Token
from workflow.storage.models import utcnow
from workflow.storage.store import tokens, workflows

COMPLETED = ObjectStatus.COMPLETED
HALTED = ObjectStatus.HALTED
INITIAL = ObjectStatus.INITIAL
RUNNING = ObjectStatus.RUNNING
ERROR = ObjectStatus.ERROR


class Crash(BaseException):
    """Stands for the process dying inside a task: no handler of the engine sees it."""


@pytest.fixture
def observer(db_url: str, store: Store) -> Iterator[Store]:
    """A second :class:`Store` on the database under test, to see what was committed."""
    second = Store(db_url)
    yield second
    second.dispose()


def statuses(store: Store, uid: str) -> list[ObjectStatus]:
    return [ObjectStatus(row["status"]) for row in store.token_rows(uid)]


def workflow_status(store: Store, uid: str) -> WorkflowStatus:
    return WorkflowStatus(store.workflow(uid)["status"])


def completions(store: Store, uid: str) -> Counter[int]:
    """Count, per token, the transitions to COMPLETED in the log."""
    return Counter(
        row["token_position"]
        for row in store.transition_rows(uid)
        if row["token_position"] is not None and row["to_status"] == COMPLETED.value
    )


def halt_on(position: int, calls: Counter[tuple[str, int]]) -> Any:
    """Return a task that halts the first time it meets token ``position``."""

    def gate(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["gate", obj.position] += 1
        if obj.position == position and calls["gate", position] == 1:
            eng.halt("needs a person", action="approve")

    return gate


def noop(obj: Token, eng: PersistentWorkflowEngine) -> None:
    """A task that does nothing."""


def counted(name: str, calls: Counter[tuple[str, int]]) -> Any:
    """Return a task that counts its calls and marks the token's data with ``name``."""

    def task(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls[name, obj.position] += 1
        obj.data[name] = obj.data.get(name, 0) + 1

    task.__name__ = name
    return task


# -- the stored rows ---------------------------------------------------------------


def test_with_name_stores_a_new_workflow_row(store: Store) -> None:
    before = utcnow()
    eng = PersistentWorkflowEngine.with_name("ingest", store=store, extra_data={"source": "ftp"})
    row = store.workflow(eng.uuid)

    assert str(uuid.UUID(row["uuid"])) == row["uuid"] == eng.uuid
    assert row["name"] == eng.name == "ingest"
    assert row["status"] == WorkflowStatus.NEW.value
    assert eng.status is WorkflowStatus.NEW
    assert (row["token_pos"], row["callback_pos"]) == (-1, [0])
    assert row["extra_data"] == eng.extra_data == {"source": "ftp"}
    assert (row["lock_owner"], row["lock_expires"]) == (None, None)
    assert row["created"].tzinfo is None  # naive UTC, on every backend
    assert before - timedelta(seconds=1) <= row["created"] <= row["modified"] <= utcnow()
    assert store.token_rows(eng.uuid) == []
    [created] = store.transition_rows(eng.uuid)
    assert (created["token_position"], created["from_status"], created["to_status"]) == (
        None,
        None,
        WorkflowStatus.NEW.value,
    )


def test_a_halted_run_stores_its_position_and_each_token(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    definition = [counted("first", calls), [counted("second", calls), halt_on(1, calls)]]
    eng = PersistentWorkflowEngine.with_name("rows", store=store, definition=definition)
    eng.extra_data["seen_by"] = "test"
    with pytest.raises(HaltProcessing, match="needs a person"):
        eng.process([{"id": 0}, {"id": 1}, {"id": 2}])

    row = store.workflow(eng.uuid)
    assert row["status"] == WorkflowStatus.HALTED.value
    assert (row["token_pos"], row["callback_pos"]) == (1, [1, 1])
    assert row["extra_data"] == {"seen_by": "test"}
    assert (row["lock_owner"], row["lock_expires"]) == (None, None)
    assert row["created"] <= row["modified"]

    rows = store.token_rows(eng.uuid)
    assert [r["position"] for r in rows] == [0, 1, 2]
    assert [ObjectStatus(r["status"]) for r in rows] == [COMPLETED, HALTED, INITIAL]
    assert [r["callback_pos"] for r in rows] == [None, [1, 1], None]
    assert [r["data"] for r in rows] == [
        {"id": 0, "first": 1, "second": 1},
        {"id": 1, "first": 1, "second": 1},
        {"id": 2},
    ]
    assert [r["extra_data"] for r in rows] == [{}, {}, {}]
    assert [r["last_error"] for r in rows] == [None, None, None]
    assert all(r["created"] <= r["modified"] for r in rows)


def test_a_failed_task_stores_the_token_in_error_with_its_traceback(store: Store) -> None:
    def explode(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 1:
            obj.extra_data["tried"] = True
            raise ValueError("boom")

    eng = PersistentWorkflowEngine.with_name("fails", store=store, definition=[explode])
    with pytest.raises(WorkflowError, match="ValueError: boom") as info:
        eng.process(["a", "b", "c"])

    assert isinstance(info.value.__cause__, ValueError)
    assert (info.value.id_workflow, info.value.id_object) == (eng.uuid, 1)
    assert workflow_status(store, eng.uuid) is WorkflowStatus.ERROR
    assert store.workflow(eng.uuid)["lock_owner"] is None
    rows = store.token_rows(eng.uuid)
    assert [ObjectStatus(r["status"]) for r in rows] == [COMPLETED, ERROR, INITIAL]
    failed = rows[1]
    assert failed["callback_pos"] == [0]
    assert failed["extra_data"] == {"tried": True}
    assert failed["last_error"].startswith("Traceback (most recent call last):")
    assert failed["last_error"].rstrip().endswith("ValueError: boom")
    assert [t.position for t in eng.error_tokens] == [1]


def test_the_transition_log_records_every_change_in_order_and_only_grows(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    definition = [counted("work", calls), halt_on(1, calls)]
    eng = PersistentWorkflowEngine.with_name("log", store=store, definition=definition)
    with pytest.raises(HaltProcessing):
        eng.process([{}, {}, {}])
    halted_log = store.transition_rows(eng.uuid)
    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()
    log = eng.transitions()

    new, running, halted, done = (
        WorkflowStatus.NEW.value,
        WorkflowStatus.RUNNING.value,
        WorkflowStatus.HALTED.value,
        WorkflowStatus.COMPLETED.value,
    )
    assert [(r["token_position"], r["from_status"], r["to_status"]) for r in log] == [
        (None, None, new),
        (None, new, running),
        (0, INITIAL.value, COMPLETED.value),
        (1, INITIAL.value, HALTED.value),
        (None, running, halted),
        (None, halted, running),
        (1, HALTED.value, COMPLETED.value),
        (2, INITIAL.value, COMPLETED.value),
        (None, running, done),
    ]
    assert log[:5] == halted_log  # nothing logged before was changed
    assert [r["id"] for r in log] == sorted(r["id"] for r in log)
    assert [r["created"] for r in log] == sorted(r["created"] for r in log)
    halt = log[3]
    assert (halt["message"], halt["callback_pos"]) == ("needs a person", [1])


def test_every_stored_status_loads_as_its_member(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("statuses", store=store, definition=[noop])
    eng.process(["a", "b"])
    for status in ObjectStatus:  # WAITING included
        with store.transaction("test") as conn:
            conn.execute(
                tokens.update()
                .where(tokens.c.workflow_uuid == eng.uuid, tokens.c.position == 1)
                .values(status=status.value)
            )
        assert [t.position for t in eng.load_tokens(status) if t.position == 1] == [1]
        assert eng.load_tokens()[1].status is status
    for workflow_state in WorkflowStatus:
        with store.transaction("test") as conn:
            conn.execute(
                workflows.update()
                .where(workflows.c.uuid == eng.uuid)
                .values(status=workflow_state.value)
            )
        loaded = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store)
        assert loaded.status is workflow_state


# -- finding stored runs and tokens ----------------------------------------------------


def test_from_uuid_loads_the_stored_run(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    definition = [counted("work", calls), halt_on(2, calls)]
    eng = PersistentWorkflowEngine.with_name(
        "reload", store=store, definition=definition, extra_data={"batch": 7}
    )
    with pytest.raises(HaltProcessing):
        eng.process([{}, {}, {}, {}])

    loaded = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition)
    assert (loaded.uuid, loaded.name, loaded.status) == (eng.uuid, "reload", WorkflowStatus.HALTED)
    assert loaded.extra_data == {"batch": 7}
    assert (loaded.state.token_pos, loaded.state.callback_pos) == (2, [1])
    assert loaded.owner != eng.owner
    assert loaded.uuid in repr(loaded)
    assert "HALTED" in repr(loaded)


def test_from_uuid_of_an_unknown_uuid_raises_workflow_not_found(store: Store) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(WorkflowNotFoundError, match=unknown) as info:
        PersistentWorkflowEngine.from_uuid(unknown, store=store)
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, StorageError)
    assert info.value.workflow == unknown
    with pytest.raises(LookupError):
        PersistentWorkflowEngine.from_uuid(unknown, store=store)


def test_tokens_are_found_by_status(store: Store) -> None:
    def route(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.data == "halt":
            eng.halt("wait")
        if obj.data == "fail":
            raise WorkflowError("bad token")

    eng = PersistentWorkflowEngine.with_name("by status", store=store, definition=[route])
    eng.process(["ok", "halt", "ok", "fail", "ok"], stop_on_error=False, stop_on_halt=False)

    assert [t.position for t in eng.completed_tokens] == [0, 2, 4]
    assert [t.position for t in eng.halted_tokens] == [1]
    assert [t.position for t in eng.error_tokens] == [3]
    assert [t.position for t in eng.load_tokens(COMPLETED)] == [0, 2, 4]
    assert eng.load_tokens(INITIAL) == []
    assert eng.load_tokens(RUNNING) == []
    everything = eng.load_tokens()
    assert [(t.position, t.data, t.status) for t in everything] == [
        (0, "ok", COMPLETED),
        (1, "halt", HALTED),
        (2, "ok", COMPLETED),
        (3, "fail", ERROR),
        (4, "ok", COMPLETED),
    ]
    assert [t.callback_pos for t in everything] == [None, [0], None, [0], None]
    assert "bad token" in (everything[3].last_error or "")
    assert repr(everything[1]) == "<Token #1 HALTED data='halt'>"


# -- process(), resume(), restart() ---------------------------------------------------


@pytest.mark.parametrize(
    "again",
    [
        pytest.param(["x", "y"], id="new-items"),
        pytest.param([], id="empty-list"),
    ],
)
def test_process_refuses_a_workflow_that_already_has_tokens(store: Store, again: list[Any]) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name("once", store=store, definition=[halt_on(1, calls)])
    with pytest.raises(HaltProcessing):
        eng.process(["a", "b", "c"])
    before = store.token_rows(eng.uuid)

    other = PersistentWorkflowEngine.from_uuid(
        eng.uuid, store=store, definition=[halt_on(1, calls)]
    )
    with pytest.raises(WorkflowError, match=r"already has tokens; use resume\(\)"):
        other.process(again)
    assert store.token_rows(eng.uuid) == before
    assert workflow_status(store, eng.uuid) is WorkflowStatus.HALTED


def test_resume_of_a_halted_run_goes_on_after_the_halting_task(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()

    def definition() -> list[Any]:
        return [
            counted("before", calls),
            [counted("inner", calls), halt_on(1, calls), counted("after", calls)],
            counted("last", calls),
        ]

    eng = PersistentWorkflowEngine.with_name("halts", store=store, definition=definition())
    with pytest.raises(HaltProcessing):
        eng.process([{}, {}, {}])
    assert store.token_rows(eng.uuid)[1]["callback_pos"] == [1, 1]

    resumed = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition())
    resumed.resume()

    assert statuses(store, eng.uuid) == [COMPLETED] * 3
    assert workflow_status(store, eng.uuid) is WorkflowStatus.COMPLETED
    # Token 1: nothing before the halting task ran twice; what follows it ran once.
    assert [calls[name, 1] for name in ("before", "inner", "gate", "after", "last")] == [
        1,
        1,
        1,
        1,
        1,
    ]
    one = {"before": 1, "inner": 1, "after": 1, "last": 1}
    assert [t.data for t in resumed.load_tokens()] == [one, one, one]


def test_resume_of_a_failed_run_runs_the_failed_task_again(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    fixed = False

    def flaky(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["flaky", obj.position] += 1
        if obj.position == 2 and not fixed:
            raise RuntimeError("service down")

    definition = [counted("before", calls), flaky, counted("after", calls)]
    eng = PersistentWorkflowEngine.with_name("flaky", store=store, definition=definition)
    with pytest.raises(WorkflowError, match="RuntimeError: service down"):
        eng.process([{}, {}, {}, {}])
    assert store.token_rows(eng.uuid)[2]["callback_pos"] == [1]

    fixed = True
    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()

    assert statuses(store, eng.uuid) == [COMPLETED] * 4
    assert (calls["before", 2], calls["flaky", 2], calls["after", 2]) == (1, 2, 1)
    assert store.token_rows(eng.uuid)[2]["last_error"] is None


def test_resume_never_runs_a_completed_token_again(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    definition = [counted("work", calls), halt_on(3, calls)]
    eng = PersistentWorkflowEngine.with_name("no rerun", store=store, definition=definition)
    with pytest.raises(HaltProcessing):
        eng.process([{} for _ in range(5)])
    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()
    # A run that already completed does nothing when resumed again.
    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()

    assert [calls["work", position] for position in range(5)] == [1] * 5
    assert completions(store, eng.uuid) == Counter(range(5))
    assert workflow_status(store, eng.uuid) is WorkflowStatus.COMPLETED


@pytest.mark.parametrize(
    ("obj", "task", "runs", "final"),
    [
        # (obj, task) -> calls of (work, gate, after) on token 1; final statuses.
        ("current", "next", (1, 1, 1), [COMPLETED] * 3),
        ("current", "current", (1, 2, 1), [COMPLETED] * 3),
        ("current", "first", (2, 2, 1), [COMPLETED] * 3),
        ("next", "first", (1, 1, 0), [COMPLETED, HALTED, COMPLETED]),
    ],
    ids=["current-next", "current-current", "current-first", "next-first"],
)
def test_restart_goes_on_from_the_stored_position(
    store: Store, obj: str, task: str, runs: tuple[int, int, int], final: list[ObjectStatus]
) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    definition = [counted("work", calls), halt_on(1, calls), counted("after", calls)]
    eng = PersistentWorkflowEngine.with_name("restart", store=store, definition=definition)
    with pytest.raises(HaltProcessing):
        eng.process([{}, {}, {}])

    # A new engine knows the position only from the database.
    restarted = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition)
    restarted.state.token_pos, restarted.state.callback_pos = -1, [0]
    restarted.restart(obj, task)

    assert (calls["work", 1], calls["gate", 1], calls["after", 1]) == runs
    assert (calls["work", 0], calls["work", 2]) == (1, 1)
    assert statuses(store, eng.uuid) == final


def test_stop_on_error_false_stores_the_failure_and_goes_on(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    fixed = False

    def fragile(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["fragile", obj.position] += 1
        if obj.position == 1 and not fixed:
            raise KeyError("missing")

    definition = [fragile, counted("after", calls)]
    eng = PersistentWorkflowEngine.with_name("go on", store=store, definition=definition)
    eng.process([{}, {}, {}], stop_on_error=False)

    assert statuses(store, eng.uuid) == [COMPLETED, ERROR, COMPLETED]
    assert "KeyError: 'missing'" in (store.token_rows(eng.uuid)[1]["last_error"] or "")
    # The pass ended with a failed token: the run is stored ERROR, not HALTED.
    assert workflow_status(store, eng.uuid) is WorkflowStatus.ERROR
    assert store.workflow(eng.uuid)["lock_owner"] is None

    fixed = True
    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()
    assert statuses(store, eng.uuid) == [COMPLETED] * 3
    assert [calls["fragile", p] for p in range(3)] == [1, 2, 1]
    assert [calls["after", p] for p in range(3)] == [1, 1, 1]


def test_stop_on_halt_false_stores_the_halt_and_goes_on(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    definition = [counted("work", calls), halt_on(1, calls), counted("after", calls)]
    eng = PersistentWorkflowEngine.with_name("go on", store=store, definition=definition)
    eng.process([{}, {}, {}], stop_on_halt=False)

    assert statuses(store, eng.uuid) == [COMPLETED, HALTED, COMPLETED]
    assert store.token_rows(eng.uuid)[1]["callback_pos"] == [1]
    assert workflow_status(store, eng.uuid) is WorkflowStatus.HALTED
    assert store.workflow(eng.uuid)["lock_owner"] is None

    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()
    assert statuses(store, eng.uuid) == [COMPLETED] * 3
    assert [calls["work", p] for p in range(3)] == [1, 1, 1]
    assert [calls["after", p] for p in range(3)] == [1, 1, 1]


def test_resume_goes_on_after_the_halting_task_of_every_halted_token(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()

    def gate(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["gate", obj.position] += 1
        if obj.position in (1, 3) and calls["gate", obj.position] == 1:
            eng.halt("wait")

    definition = [counted("work", calls), gate, counted("after", calls)]
    eng = PersistentWorkflowEngine.with_name("two halts", store=store, definition=definition)
    eng.process([{}, {}, {}, {}], stop_on_halt=False)
    assert statuses(store, eng.uuid) == [COMPLETED, HALTED, COMPLETED, HALTED]

    PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=definition).resume()
    assert statuses(store, eng.uuid) == [COMPLETED] * 4
    assert [calls["work", p] for p in range(4)] == [1, 1, 1, 1]
    assert [calls["gate", p] for p in range(4)] == [1, 1, 1, 1]


# -- checkpoint policies: what is committed, and when ----------------------------------


def snapshot(observer: Store, uid: str) -> dict[str, Any]:
    """What a second store sees of the run right now."""
    row = observer.workflow(uid)
    return {
        "workflow": (WorkflowStatus(row["status"]), row["token_pos"], row["callback_pos"]),
        "tokens": [
            (ObjectStatus(r["status"]), r["callback_pos"], r["data"])
            for r in observer.token_rows(uid)
        ],
    }


@pytest.mark.parametrize("policy", list(CheckpointPolicy), ids=lambda p: p.value)
def test_each_checkpoint_policy_commits_what_it_promises(
    store: Store, observer: Store, policy: CheckpointPolicy
) -> None:
    seen: list[dict[str, Any]] = []

    def step(name: str) -> Any:
        def task(obj: Token, eng: PersistentWorkflowEngine) -> None:
            if obj.position == 3:
                seen.append(snapshot(observer, eng.uuid))
            obj.data.append(name)

        return task

    definition = [step("a"), [step("b"), step("c")], step("d")]
    eng = PersistentWorkflowEngine.with_name(
        "policy", store=store, definition=definition, checkpoint=policy
    )
    eng.process([[] for _ in range(5)])

    done: tuple[Any, ...] = (COMPLETED, None, ["a", "b", "c", "d"])
    untouched: tuple[Any, ...] = (INITIAL, None, [])
    # What was committed of tokens 0-2 and of the run when token 3 started.
    first = seen[0]
    if policy is CheckpointPolicy.HALT:
        assert first["tokens"] == [untouched] * 5
        assert first["workflow"] == (WorkflowStatus.RUNNING, -1, [0])
    else:
        assert first["tokens"] == [done, done, done, untouched, untouched]
        assert first["workflow"] == (WorkflowStatus.RUNNING, 2, [0])
    # What was committed of token 3 itself before each of its tasks.
    token_3 = [s["tokens"][3] for s in seen]
    if policy is CheckpointPolicy.TASK:
        assert token_3 == [
            untouched,
            (RUNNING, [0], ["a"]),
            (RUNNING, [1, 0], ["a", "b"]),
            (RUNNING, [1, 1], ["a", "b", "c"]),
        ]
        assert [s["workflow"][1:] for s in seen] == [(2, [0]), (3, [0]), (3, [1, 0]), (3, [1, 1])]
    else:
        assert token_3 == [untouched] * 4
    # Every policy commits everything when the run ends.
    assert snapshot(observer, eng.uuid)["tokens"] == [done] * 5
    assert workflow_status(observer, eng.uuid) is WorkflowStatus.COMPLETED


@pytest.mark.parametrize(
    ("policy", "reruns"),
    [
        # calls of (a, crash, b) per token when the run is recovered after a crash at
        # the task "crash" of token 2.
        (CheckpointPolicy.TOKEN, [(1, 1, 1), (1, 1, 1), (2, 2, 1), (1, 1, 1)]),
        (CheckpointPolicy.TASK, [(1, 1, 1), (1, 1, 1), (1, 2, 1), (1, 1, 1)]),
        (CheckpointPolicy.HALT, [(2, 2, 2), (2, 2, 2), (2, 2, 1), (1, 1, 1)]),
    ],
    ids=["token", "task", "halt"],
)
def test_a_crash_reruns_only_what_the_policy_did_not_commit(
    db_url: str, store: Store, policy: CheckpointPolicy, reruns: list[tuple[int, int, int]]
) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    crashed = False

    def crash(obj: Token, eng: PersistentWorkflowEngine) -> None:
        nonlocal crashed
        calls["crash", obj.position] += 1
        if obj.position == 2 and not crashed:
            crashed = True
            raise Crash

    definition = [counted("a", calls), crash, counted("b", calls)]
    short = Store(db_url, lock_ttl=0.2)
    try:
        eng = PersistentWorkflowEngine.with_name(
            "crash", store=short, definition=definition, checkpoint=policy
        )
        with pytest.raises(Crash):
            eng.process([{} for _ in range(4)])
        # Another process picks the run up once the dead one's lock expired.
        recovered = PersistentWorkflowEngine.from_uuid(
            eng.uuid, store=store, definition=definition, checkpoint=policy, lock_wait=5
        )
        recovered.resume()
    finally:
        short.dispose()

    assert [(calls["a", p], calls["crash", p], calls["b", p]) for p in range(4)] == reruns
    assert statuses(store, eng.uuid) == [COMPLETED] * 4
    assert completions(store, eng.uuid) == Counter(range(4))
    # The data is that of one clean pass: what was re-run started from committed data.
    assert [t.data for t in recovered.load_tokens()] == [{"a": 1, "b": 1}] * 4


def test_the_same_engine_resumed_after_a_crash_logs_each_completion_once(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    crashed = False

    def crash(obj: Token, eng: PersistentWorkflowEngine) -> None:
        nonlocal crashed
        if obj.position == 2 and not crashed:
            crashed = True
            raise Crash

    definition = [counted("a", calls), crash]
    eng = PersistentWorkflowEngine.with_name(
        "crash", store=store, definition=definition, checkpoint=CheckpointPolicy.HALT
    )
    with pytest.raises(Crash):
        eng.process([{} for _ in range(4)])
    eng.resume()

    assert statuses(store, eng.uuid) == [COMPLETED] * 4
    assert completions(store, eng.uuid) == Counter(range(4))


# -- token data as JSON ----------------------------------------------------------------


NESTED = {
    "title": 'Ünïcödé ☃ "quoted" \\ back',
    "numbers": [0, -1, 2**53, 1.5, -0.25, 1e-300],
    "flags": {"yes": True, "no": False, "nothing": None},
    "deep": {"a": [{"b": [[], {}, [{"c": "d"}]]}]},
    "empty": "",
}


def test_nested_json_data_round_trips_through_a_halt(store: Store) -> None:
    def touch(obj: Token, eng: PersistentWorkflowEngine) -> None:
        obj.extra_data["seen"] = obj.extra_data.get("seen", 0) + 1
        if obj.position == 1 and obj.extra_data["seen"] == 1:
            eng.halt("look")

    eng = PersistentWorkflowEngine.with_name("json", store=store, definition=[touch])
    eng.extra_data["config"] = NESTED
    with pytest.raises(HaltProcessing):
        eng.process([NESTED, [NESTED, None], "text", 3.25, None, True])

    resumed = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=[touch])
    assert resumed.extra_data == {"config": NESTED}
    assert [t.data for t in resumed.load_tokens()] == [
        NESTED,
        [NESTED, None],
        "text",
        3.25,
        None,
        True,
    ]
    resumed.resume()
    assert [t.extra_data for t in resumed.load_tokens()] == [{"seen": 1}] * 6
    assert resumed.load_tokens()[1].data == [NESTED, None]


def test_a_tuple_is_stored_as_a_list(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("tuple", store=store, definition=[noop])
    eng.process([(1, (2, 3))])
    assert eng.load_tokens()[0].data == [1, [2, 3]]


@dataclasses.dataclass(frozen=True)
class Money:
    amount: decimal.Decimal
    currency: str


def money_codec() -> JSONCodec:
    codec = JSONCodec()
    codec.register(decimal.Decimal, "decimal", str, decimal.Decimal)
    codec.register(
        Money,
        "money",
        lambda money: {"amount": money.amount, "currency": money.currency},
        lambda value: Money(**value),
    )
    return codec


def raw_json(store: Store, uid: str) -> list[tuple[Any, ...]]:
    """Return the JSON columns of the run's tokens as the database holds them: text."""
    # CAST(... AS TEXT) (AS CHAR on MariaDB) skips the JSON type's decoding.
    query = (
        sa.select(
            sa.cast(tokens.c.data, sa.Text),
            sa.cast(tokens.c.extra_data, sa.Text),
            sa.cast(tokens.c.callback_pos, sa.Text),
        )
        .where(tokens.c.workflow_uuid == uid)
        .order_by(tokens.c.position)
    )
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_registered_types_round_trip_through_a_halt_and_resume(
    request: pytest.FixtureRequest, backend: str, db_url: str, store: Store
) -> None:
    seen: list[Any] = []

    def charge(obj: Token, eng: PersistentWorkflowEngine) -> None:
        price = obj.data["price"]
        seen.append(price)
        if obj.data.get("charged") is None:
            obj.data["charged"] = Money(price.amount * 2, price.currency)
            obj.data["rate"] = decimal.Decimal("0.10")
            eng.halt("confirm")

    first = Store(db_url, codec=money_codec())
    second = Store(db_url, codec=money_codec())
    try:
        eng = PersistentWorkflowEngine.with_name("money", store=first, definition=[charge])
        with pytest.raises(HaltProcessing):
            eng.process([{"price": Money(decimal.Decimal("9.99"), "EUR")}])
        [(data, _, _)] = raw_json(first, eng.uuid)
        assert json.loads(data)["rate"] == {"__workflow_type__": "decimal", "value": "0.10"}

        resumed = PersistentWorkflowEngine.from_uuid(eng.uuid, store=second, definition=[charge])
        [halted] = resumed.halted_tokens
        assert halted.data == {
            "price": Money(decimal.Decimal("9.99"), "EUR"),
            "charged": Money(decimal.Decimal("19.98"), "EUR"),
            "rate": decimal.Decimal("0.10"),
        }
        assert type(halted.data["charged"].amount) is decimal.Decimal
        assert str(halted.data["rate"]) == "0.10"  # the exact value, not a float
        resumed.callbacks.replace([charge, charge])
        resumed.resume()
    finally:
        first.dispose()
        second.dispose()

    assert seen == [Money(decimal.Decimal("9.99"), "EUR")] * 2
    assert all(type(price) is Money for price in seen)


def test_columns_hold_json_text_and_nothing_is_pickled(store: Store) -> None:
    def halt(obj: Token, eng: PersistentWorkflowEngine) -> None:
        obj.extra_data["note"] = "é"
        eng.halt("look")

    eng = PersistentWorkflowEngine.with_name("raw", store=store, definition=[[noop, halt]])
    with pytest.raises(HaltProcessing):
        eng.process([{"tags": ["a", None], "n": 1.5, "ok": True}, "x"])

    assert raw_json(store, eng.uuid) == [
        ('{"tags":["a",null],"n":1.5,"ok":true}', '{"note":"\\u00e9"}', "[0,1]"),
        ('"x"', "{}", "null"),
    ]


UNSTORABLE = [
    pytest.param({"a", "b"}, "builtins.set", id="set"),
    pytest.param(object(), "builtins.object", id="object"),
    pytest.param(Crash(), "Crash", id="exception"),
    pytest.param(float("nan"), "nan", id="nan"),
    pytest.param(b"bytes", "builtins.bytes", id="bytes"),
]


@pytest.mark.parametrize(("value", "named"), UNSTORABLE)
def test_an_unstorable_value_fails_when_its_token_is_saved(
    store: Store, value: Any, named: str
) -> None:
    def enrich(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 1:
            obj.data["payload"] = {"items": [1, value]}

    eng = PersistentWorkflowEngine.with_name("bad data", store=store, definition=[enrich])
    with pytest.raises(TokenEncodingError) as info:
        eng.process([{}, {}, {}])

    error = info.value
    assert isinstance(error, TypeError)
    assert (error.workflow, error.token, error.operation) == (eng.uuid, 1, "checkpoint")
    assert "token 1" in str(error)
    assert "$.payload.items[1]" in str(error)
    assert named in str(error)
    # The token is stored ERROR with its last storable data; the lock is released.
    rows = store.token_rows(eng.uuid)
    assert [ObjectStatus(r["status"]) for r in rows] == [COMPLETED, ObjectStatus.ERROR, INITIAL]
    assert [r["data"] for r in rows] == [{}, {}, {}]
    assert named in (rows[1]["last_error"] or "")
    assert workflow_status(store, eng.uuid) is WorkflowStatus.ERROR
    assert store.workflow(eng.uuid)["lock_owner"] is None


def _store_a_set_on_token_1(obj: Token, eng: PersistentWorkflowEngine) -> None:
    obj.data["n"] = obj.data.get("n", 0) + 1
    if obj.position == 1:
        obj.data["tags"] = {"x"}


def _store_a_list_on_token_1(obj: Token, eng: PersistentWorkflowEngine) -> None:
    obj.data["n"] = obj.data.get("n", 0) + 1
    if obj.position == 1:
        obj.data["tags"] = ["x"]


def test_the_same_engine_resumes_once_the_encoding_error_is_fixed(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name(
        "fix", store=store, definition=[_store_a_set_on_token_1]
    )
    with pytest.raises(TokenEncodingError):
        eng.process([{}, {}, {}])

    eng.callbacks.replace([_store_a_list_on_token_1])
    eng.resume()
    assert [t.data for t in eng.load_tokens()] == [{"n": 1}, {"n": 1, "tags": ["x"]}, {"n": 1}]
    assert workflow_status(store, eng.uuid) is WorkflowStatus.COMPLETED


def test_a_fixed_process_resumes_at_once_after_an_encoding_error(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name(
        "fix", store=store, definition=[_store_a_set_on_token_1]
    )
    with pytest.raises(TokenEncodingError):
        eng.process([{}, {}, {}])

    fixed = PersistentWorkflowEngine.from_uuid(
        eng.uuid, store=store, definition=[_store_a_list_on_token_1]
    )
    fixed.resume()
    assert workflow_status(store, eng.uuid) is WorkflowStatus.COMPLETED


def test_an_unstorable_initial_item_is_named_by_its_token(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("bad input", store=store, definition=[noop])
    with pytest.raises(TokenEncodingError, match=r"\$\.tags") as info:
        eng.process([{}, {"tags": {"x"}}, {}])
    assert store.token_rows(eng.uuid) == []  # nothing half-stored
    assert info.value.token == 1


def test_dict_keys_that_json_turns_into_strings_are_stored_as_strings(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("keys", store=store, definition=[noop])
    eng.process([{1: "one", None: "none"}])
    assert eng.load_tokens()[0].data == {"1": "one", "null": "none"}


def test_a_tuple_dict_key_is_refused_with_its_path(store: Store) -> None:
    eng = PersistentWorkflowEngine.with_name("keys", store=store, definition=[noop])
    with pytest.raises(TokenEncodingError, match=r"\$ as JSON: a dict key of type tuple") as info:
        eng.process([{(1, 2): "pair"}])
    assert info.value.token == 0


def test_a_store_built_on_an_engine_uses_its_codec(db_url: str, store: Store) -> None:
    codec = money_codec()
    engine = Store.create_engine(db_url, codec=codec)
    on_engine = Store(engine, codec=codec)
    try:
        eng = PersistentWorkflowEngine.with_name("engine", store=on_engine, definition=[noop])
        eng.process([{"rate": decimal.Decimal("0.5")}])
        assert eng.load_tokens()[0].data == {"rate": decimal.Decimal("0.5")}
    finally:
        engine.dispose()
