"""A value that cannot be stored never leaves a run stuck, whatever write meets it.

A task may put a value JSON cannot hold in its token (``obj.data``,
``obj.extra_data``) or in the run (``eng.extra_data``), then fail, halt or
complete. Whichever write of the run meets the value first, the run ends
``ERROR`` with its lock released, the token keeps its last stored data and
records the error, the tokens that completed stay completed, and the caller
gets a :class:`~workflow.errors.TokenEncodingError` naming the workflow, the
token and what could not be stored. Every test runs on SQLite, PostgreSQL and
MariaDB, under each checkpoint policy.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import HaltProcessing, TokenEncodingError, WorkflowError
from workflow.storage import CheckpointPolicy, PersistentWorkflowEngine, Store, Token

COMPLETED = ObjectStatus.COMPLETED
ERROR = ObjectStatus.ERROR
HALTED = ObjectStatus.HALTED
INITIAL = ObjectStatus.INITIAL

POLICIES = pytest.mark.parametrize("policy", list(CheckpointPolicy), ids=lambda p: p.value)
WHERE = ["eng.extra_data", "obj.extra_data", "obj.data"]
HOW = ["fail", "halt", "complete"]
#: Unstorable values, each with what the error names: its path below "$.key", and its type.
VALUES = {
    "object": (object, "", "a builtins.object"),
    "set": (lambda: {"a"}, "", "a builtins.set"),
    "nan": (lambda: {1: float("nan")}, ".1", "the float nan"),
    "nan key": (lambda: {float("nan"): 1}, "", "the dict key nan"),
    "huge int": (lambda: 10**5000, "", "an int of over 4300 digits"),
    "lone surrogate": (lambda: "\ud800", "", "a string with a lone surrogate"),
    "surrogate key": (lambda: {"\udc00x": 1}, "", "a dict key with a lone surrogate"),
    "too deep": (lambda: nested(40), "[0]" * 31, "nested deeper than 31 levels"),
}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def spoiling(where: str, how: str, value: Any, calls: Counter[tuple[str, int]]) -> list[Any]:
    """Return a definition whose second task spoils token 1 at ``where``, then does ``how``."""

    def count(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["count", obj.position] += 1
        obj.data["n"] = obj.data.get("n", 0) + 1

    def spoil(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["spoil", obj.position] += 1
        if obj.position != 1:
            return
        target = {"eng.extra_data": eng.extra_data, "obj.extra_data": obj.extra_data}.get(
            where, obj.data
        )
        target["key"] = value
        if how == "fail":
            raise ValueError("boom")
        if how == "halt":
            eng.halt("a person must look")

    return [count, spoil]


def fixed(calls: Counter[tuple[str, int]]) -> list[Any]:
    """Return the fixed definition: the second task stores a plain value."""

    def count(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["count", obj.position] += 1
        obj.data["n"] = obj.data.get("n", 0) + 1

    def spoil(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls["spoil", obj.position] += 1
        eng.extra_data.pop("key", None)
        obj.data["key"] = "plain"

    return [count, spoil]


def culprit_of(where: str, how: str, policy: CheckpointPolicy) -> int:
    """The token blamed: the one whose write met the value.

    Under the HALT policy a completed token is written only when the pass ends;
    the run's ``extra_data`` then belongs to the last token of the pass.
    """
    if how == "complete" and policy is CheckpointPolicy.HALT and where == "eng.extra_data":
        return 2
    return 1


def chain(error: BaseException | None) -> list[BaseException]:
    found = []
    while error is not None:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


@POLICIES
@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("where", WHERE)
def test_an_unstorable_value_ends_the_run_in_error_and_names_what_could_not_be_stored(
    store: Store, policy: CheckpointPolicy, where: str, how: str
) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name(
        "spoilt", store=store, definition=spoiling(where, how, {"a"}, calls), checkpoint=policy
    )
    with pytest.raises(TokenEncodingError) as info:
        eng.process([{}, {}, {}])

    culprit = culprit_of(where, how, policy)
    error = info.value
    assert (error.workflow, error.token) == (eng.uuid, culprit)
    assert str(error).startswith(f"{where}: cannot store $.key as JSON: a builtins.set")
    assert eng.uuid in str(error)
    assert f"token {culprit}" in str(error)
    if how == "fail":  # the task's own failure is kept in the chain
        assert any(isinstance(e, ValueError) for e in chain(error))

    row = store.workflow(eng.uuid)
    assert WorkflowStatus(row["status"]) is WorkflowStatus.ERROR
    assert row["lock_owner"] is None
    assert eng.status is WorkflowStatus.ERROR
    assert "key" not in (row["extra_data"] or {})

    rows = store.token_rows(eng.uuid)
    expected = [COMPLETED, ERROR, INITIAL]
    if how == "complete" and policy is CheckpointPolicy.HALT:  # token 2 completed too
        expected = [COMPLETED, ERROR, COMPLETED] if culprit == 1 else [COMPLETED, COMPLETED, ERROR]
    assert [ObjectStatus(r["status"]) for r in rows] == expected
    # The culprit keeps its last stored data, and resumes where that data belongs.
    bad = rows[culprit]
    task_policy = policy is CheckpointPolicy.TASK and culprit == 1
    assert bad["data"] == ({"n": 1} if task_policy else {})
    assert bad["extra_data"] == {}
    assert bad["callback_pos"] == ([1] if task_policy else None)
    assert where in bad["last_error"]
    assert "$.key" in bad["last_error"]
    if how == "fail":
        assert "ValueError: boom" in bad["last_error"]
    # The transition log records the failure of the culprit, and ends with the run's.
    log = store.transition_rows(eng.uuid)
    assert (log[-1]["token_position"], log[-1]["to_status"]) == (None, WorkflowStatus.ERROR.value)
    [failed] = [r for r in log if (r["token_position"], r["to_status"]) == (culprit, ERROR.value)]
    assert where in failed["message"]
    assert where in log[-1]["message"]

    # A fixed definition resumes the run; completed tokens never run again.
    again = PersistentWorkflowEngine.from_uuid(
        eng.uuid, store=store, definition=fixed(calls), checkpoint=policy
    )
    again.resume()
    assert [ObjectStatus(r["status"]) for r in store.token_rows(eng.uuid)] == [COMPLETED] * 3
    assert WorkflowStatus(store.workflow(eng.uuid)["status"]) is WorkflowStatus.COMPLETED
    counts = [calls["count", position] for position in range(3)]
    if culprit == 2:
        assert counts == [1, 1, 2]
    else:
        assert counts == [1, 1 if task_policy else 2, 1]


@POLICIES
@pytest.mark.parametrize("kind", list(VALUES))
def test_a_failed_task_that_left_unstorable_extra_data_blames_the_extra_data(
    store: Store, policy: CheckpointPolicy, kind: str
) -> None:
    make, path, named = VALUES[kind]
    calls: Counter[tuple[str, int]] = Counter()
    definition = spoiling("eng.extra_data", "fail", make(), calls)
    eng = PersistentWorkflowEngine.with_name(
        "spoilt", store=store, definition=definition, checkpoint=policy
    )
    with pytest.raises(TokenEncodingError) as info:
        eng.process([{}, {}, {}], stop_on_error=False)  # the pass cannot go on

    message = str(info.value)
    assert message.startswith(f"eng.extra_data: cannot store $.key{path} as JSON: {named}")
    assert "obj.data" not in message
    assert info.value.operation == "error"
    [failed] = eng.error_tokens
    assert failed.position == 1
    assert failed.last_error is not None
    assert f"$.key{path}" in failed.last_error
    assert "ValueError: boom" in failed.last_error
    assert WorkflowStatus(store.workflow(eng.uuid)["status"]) is WorkflowStatus.ERROR
    assert store.workflow(eng.uuid)["lock_owner"] is None
    assert calls["count", 2] == 0


@POLICIES
def test_a_task_failure_that_cannot_be_stored_is_still_announced(
    store: Store, policy: CheckpointPolicy
) -> None:
    from workflow import signals

    errors: list[BaseException] = []
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name(
        "spoilt",
        store=store,
        definition=spoiling("eng.extra_data", "fail", object(), calls),
        checkpoint=policy,
    )
    with (
        signals.workflow_error.connected_to(lambda sender, **kw: errors.append(kw["exception"])),
        pytest.raises(TokenEncodingError),
    ):
        eng.process([{}, {}, {}])
    assert [type(error) for error in errors] == [ValueError]


@POLICIES
def test_unstorable_extra_data_before_a_halt_is_not_stored_as_a_halt(
    store: Store, policy: CheckpointPolicy
) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    definition = spoiling("eng.extra_data", "halt", {1: float("nan")}, calls)
    eng = PersistentWorkflowEngine.with_name(
        "spoilt", store=store, definition=definition, checkpoint=policy
    )
    with pytest.raises(TokenEncodingError, match=r"^eng\.extra_data: cannot store \$\.key\.1"):
        eng.process([{}, {}, {}], stop_on_halt=False)

    assert eng.halted_tokens == []
    assert [t.status for t in eng.load_tokens()] == [COMPLETED, ERROR, INITIAL]
    assert WorkflowStatus(store.workflow(eng.uuid)["status"]) is WorkflowStatus.ERROR
    assert store.workflow(eng.uuid)["lock_owner"] is None


@POLICIES
def test_unstorable_extra_data_before_the_run_starts_fails_it_without_blaming_a_token(
    store: Store, policy: CheckpointPolicy
) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name(
        "spoilt", store=store, definition=fixed(calls), checkpoint=policy
    )
    eng.extra_data["key"] = object()
    with pytest.raises(TokenEncodingError, match=r"^eng\.extra_data: cannot store \$\.key") as info:
        eng.process([{}, {}])

    assert (info.value.workflow, info.value.token, info.value.operation) == (
        eng.uuid,
        None,
        "start",
    )
    assert calls == Counter()
    assert [t.status for t in eng.load_tokens()] == [INITIAL, INITIAL]
    row = store.workflow(eng.uuid)
    assert (WorkflowStatus(row["status"]), row["lock_owner"]) == (WorkflowStatus.ERROR, None)

    # The same engine goes on once its extra_data can be stored.
    eng.extra_data["key"] = "plain"
    eng.resume()
    assert [t.status for t in eng.load_tokens()] == [COMPLETED, COMPLETED]


@POLICIES
def test_the_same_engine_resumes_once_its_extra_data_is_fixed(
    store: Store, policy: CheckpointPolicy
) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name(
        "spoilt",
        store=store,
        definition=spoiling("eng.extra_data", "complete", object(), calls),
        checkpoint=policy,
    )
    with pytest.raises(TokenEncodingError):
        eng.process([{}, {}, {}])

    eng.extra_data["key"] = "plain"
    eng.callbacks.replace(fixed(calls))
    eng.resume()
    assert [t.status for t in eng.load_tokens()] == [COMPLETED] * 3
    assert store.workflow(eng.uuid)["extra_data"] == {}  # the fixed task drops the key


def test_under_the_halt_policy_an_unstorable_token_fails_alone(store: Store) -> None:
    def tag(obj: Token, eng: PersistentWorkflowEngine) -> None:
        obj.data["n"] = 1
        if obj.position == 1:
            obj.data["tags"] = {"x"}

    eng = PersistentWorkflowEngine.with_name(
        "spoilt", store=store, definition=[tag], checkpoint=CheckpointPolicy.HALT
    )
    with pytest.raises(TokenEncodingError, match=r"^obj\.data: cannot store \$\.tags") as info:
        eng.process([{}, {}, {}])

    assert (info.value.token, info.value.operation) == (1, "finish")
    rows = store.token_rows(eng.uuid)
    assert [ObjectStatus(r["status"]) for r in rows] == [COMPLETED, ERROR, COMPLETED]
    assert [r["data"] for r in rows] == [{"n": 1}, {}, {"n": 1}]
    row = store.workflow(eng.uuid)
    assert (WorkflowStatus(row["status"]), row["lock_owner"]) == (WorkflowStatus.ERROR, None)


def test_a_halt_that_cannot_be_stored_is_not_raised_as_a_halt(store: Store) -> None:
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name(
        "spoilt", store=store, definition=spoiling("obj.data", "halt", object(), calls)
    )
    with pytest.raises(TokenEncodingError) as info:
        eng.process([{}, {}, {}])
    assert not isinstance(info.value, (HaltProcessing, WorkflowError))
    assert any(isinstance(e, HaltProcessing) for e in chain(info.value))


@pytest.mark.parametrize("how", HOW)
def test_a_database_failure_while_storing_the_failure_leaves_the_run_resumable(
    store: Store, how: str
) -> None:
    """The failure of a run cannot be stored either: the run is left as after a crash.

    The database refuses every write of the failure (an injected driver
    error on the status change that would record it): the caller still gets
    the error naming the value, the lock is released, what was stored
    before stays, and a fixed definition resumes the run.
    """
    calls: Counter[tuple[str, int]] = Counter()
    eng = PersistentWorkflowEngine.with_name(
        "spoilt", store=store, definition=spoiling("obj.data", how, {"a"}, calls)
    )
    refused: list[str] = []

    def refuse_the_failure(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        # "do_execute" runs where the driver executes: what it raises is the driver's failure.
        if "wf_transition" in statement and "cannot store" in repr(parameters):
            refused.append(statement)
            raise context.dialect.loaded_dbapi.OperationalError("injected: the disk is full")

    event.listen(store.sql_engine.dialect, "do_execute", refuse_the_failure)
    try:
        with pytest.raises(TokenEncodingError) as info:
            eng.process([{}, {}, {}])
    finally:
        event.remove(store.sql_engine.dialect, "do_execute", refuse_the_failure)

    assert refused, "the failure was never written"
    error = info.value
    assert (error.workflow, error.token) == (eng.uuid, 1)
    assert "obj.data: cannot store $.key as JSON: a builtins.set" in str(error)
    row = store.workflow(eng.uuid)
    assert row["lock_owner"] is None  # released: a resume need not wait for the lock to lapse
    assert WorkflowStatus(row["status"]) is WorkflowStatus.RUNNING  # as after a crash
    rows = store.token_rows(eng.uuid)
    assert ObjectStatus(rows[0]["status"]) is COMPLETED
    assert rows[1]["data"] == {}  # its last stored data, not the spoilt one

    again = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=fixed(calls))
    again.resume()
    assert [ObjectStatus(r["status"]) for r in store.token_rows(eng.uuid)] == [COMPLETED] * 3
    assert [r["data"]["key"] for r in store.token_rows(eng.uuid)[1:]] == ["plain", "plain"]
    assert calls["count", 0] == 1  # a completed token never runs again
