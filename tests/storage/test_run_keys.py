"""Runs that start once: a key held by an active run, and uuids the caller chooses.

On every database (the ``backend`` fixture), with eight real processes for the race.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import (
    HaltProcessing,
    RunKeyConflictError,
    WorkflowAPIError,
    WorkflowValueError,
)
from workflow.flows import load_flow, validate_flow
from workflow.storage import Definitions, PersistentWorkflowEngine, Store
from workflow.storage.models import RunKeyRecord
from workflow.storage.schema import current_revision, downgrade, upgrade

ROOT = Path(__file__).resolve().parents[2]
UUID = "0f0f0f0f-0000-4000-8000-000000000001"
PROCESSES = 8


def add_one(obj: Any, eng: Any) -> None:
    obj.data["n"] = obj.data.get("n", 0) + 1


def wait_here(obj: Any, eng: Any) -> None:
    if not eng.extra_data.get("approved"):
        eng.halt("waiting for approval")


def start(store: Store, key: Any = "A-17", **options: Any) -> PersistentWorkflowEngine:
    return PersistentWorkflowEngine.with_name(
        "invoice", store=store, definition=[add_one, wait_here], key=key, **options
    )


def key_rows(store: Store) -> list[tuple[str, str, str]]:
    with store.session() as session:
        rows = session.scalars(sa.select(RunKeyRecord)).all()
        return [(row.scope, row.key, row.workflow_uuid) for row in rows]


def test_a_second_start_with_the_key_of_an_active_run_is_refused(store: Store) -> None:
    first = start(store)
    with pytest.raises(HaltProcessing):
        first.process([{}])
    with pytest.raises(RunKeyConflictError) as info:
        start(store)
    error = info.value
    assert (error.key, error.scope, error.workflow, error.status) == (
        "A-17",
        "invoice",
        first.uuid,
        "HALTED",
    )
    assert f"held by run {first.uuid}, which is HALTED" in str(error)
    assert [row["uuid"] for row in store.workflows(name="invoice")] == [first.uuid]


@pytest.mark.parametrize("status", ["NEW", "RUNNING", "HALTED", "ERROR", "WAITING"])
def test_every_run_that_may_go_on_holds_its_key(store: Store, status: str) -> None:
    first = start(store)
    table = sa.Table("wf_workflow", sa.MetaData(), autoload_with=store.engine)
    with store.transaction("test") as conn:  # the run in each status it may be left in
        value = WorkflowStatus[status].value
        conn.execute(table.update().where(table.c.uuid == first.uuid).values(status=value))
    with pytest.raises(RunKeyConflictError, match=status):
        start(store)


def test_on_conflict_existing_returns_the_active_run_which_refuses_new_tokens(
    store: Store,
) -> None:
    first = start(store)
    with pytest.raises(HaltProcessing):
        first.process([{"n": 0}])
    again = start(store, on_conflict="existing")
    assert (again.uuid, again.created, first.created) == (first.uuid, False, True)
    with pytest.raises(WorkflowAPIError, match="resume"):
        again.process([{"n": 10}])
    again.extra_data["approved"] = True
    again.resume()
    assert [token.data for token in again.load_tokens()] == [{"n": 1}]
    assert again.load_tokens()[0].status is ObjectStatus.COMPLETED


@pytest.mark.parametrize("finish", ["complete", "cancel"])
def test_a_run_that_finished_lets_its_key_go(store: Store, finish: str) -> None:
    first = start(store)
    if finish == "complete":
        first.extra_data["approved"] = True
        first.process([{}])
        assert first.status is WorkflowStatus.COMPLETED
    else:
        store.cancel(first.uuid, "wrong order")
    second = start(store)
    assert second.created
    assert second.uuid != first.uuid
    assert key_rows(store) == [("invoice", "A-17", second.uuid)]
    with pytest.raises(RunKeyConflictError):
        start(store)


def test_keys_are_unique_per_run_name_and_integers_are_keys_too(store: Store) -> None:
    first = start(store, key=17)
    refund = PersistentWorkflowEngine.with_name("refund", store=store, key="17")
    assert refund.uuid != first.uuid
    with pytest.raises(RunKeyConflictError):
        start(store, key="17")
    assert sorted(key_rows(store)) == sorted(
        [("invoice", "17", first.uuid), ("refund", "17", refund.uuid)]
    )


@pytest.mark.parametrize("key", [True, 1.5, None, "", "x" * 256, ["A"]])
def test_a_key_is_a_short_string_or_an_integer(store: Store, key: Any) -> None:
    if key is None:  # no key at all: every start is a new run
        assert start(store, key=None).uuid != start(store, key=None).uuid
        return
    with pytest.raises(WorkflowValueError, match="run key"):
        start(store, key=key)
    assert store.workflows() == []


def test_on_conflict_is_refuse_or_existing(store: Store) -> None:
    with pytest.raises(WorkflowValueError, match="on_conflict"):
        start(store, on_conflict="replace")


def test_a_start_with_a_stored_uuid_returns_that_run(store: Store) -> None:
    first = PersistentWorkflowEngine.with_name(
        "import", store=store, uuid=UUID.upper(), definition=[add_one]
    )
    assert (first.uuid, first.created) == (UUID, True)
    first.process([{"n": 1}])
    again = PersistentWorkflowEngine.with_name("import", store=store, uuid=UUID)
    assert (again.uuid, again.created, again.status) == (UUID, False, WorkflowStatus.COMPLETED)
    with pytest.raises(WorkflowAPIError):
        again.process([{"n": 2}])
    assert len(store.workflows()) == 1
    assert store.start_workflow("import", uuid=UUID) == (UUID, False, "COMPLETED")


def test_a_stored_uuid_with_another_name_or_definition_is_refused(store: Store) -> None:
    Definitions(store).put("flow", {"steps": []})
    store.create_workflow("import", uuid=UUID, definition_name="flow", definition_version=1)
    with pytest.raises(WorkflowValueError, match=f"uuid {UUID} is taken by a run of name"):
        store.create_workflow("export", uuid=UUID, definition_name="flow", definition_version=1)
    with pytest.raises(WorkflowValueError, match="definition_name 'flow'"):
        store.create_workflow("import", uuid=UUID)
    assert (
        store.create_workflow("import", uuid=UUID, definition_name="flow", definition_version=1)
        == UUID
    )


@pytest.mark.parametrize("uid", ["not-a-uuid", "0f0f0f0f00004000800000000000000l", 42, ""])
def test_a_chosen_uuid_must_look_like_one(store: Store, uid: Any) -> None:
    with pytest.raises(WorkflowValueError, match="a run's uuid is written like"):
        store.create_workflow("import", uuid=uid)


def test_the_status_log_records_the_key(store: Store) -> None:
    first = start(store)
    assert first.status_changes()[0]["message"] == "created with the key 'A-17'"


# -- eight processes at once ---------------------------------------------------------

WORKER = """
import json, os, sys, time
from workflow.errors import RunKeyConflictError
from workflow.storage import PersistentWorkflowEngine, Store

url, gate, mode = sys.argv[1:]
store = Store(url, lock_ttl=30.0)
store.workflows(limit=1)  # connected before the gate opens
while not os.path.exists(gate):
    time.sleep(0.001)
try:
    engine = PersistentWorkflowEngine.with_name(
        "invoice", store=store, key="A-17", on_conflict=mode
    )
except RunKeyConflictError as error:
    print(json.dumps({"refused": error.workflow, "status": error.status}))
else:
    print(json.dumps({"uuid": engine.uuid, "created": engine.created}))
"""


def race(url: str, gate: Path, mode: str) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(gate), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    time.sleep(0.5)  # let them connect; the outcome does not depend on it
    gate.touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.mark.parametrize("mode", ["refuse", "existing"])
@pytest.mark.parametrize("taken_over", [False, True], ids=["new", "takeover"])
def test_eight_processes_starting_one_key_make_exactly_one_run(
    store: Store, db_url: str, tmp_path: Path, mode: str, taken_over: bool
) -> None:
    finished = None
    if taken_over:  # the key is held by a run that completed: one start takes it over
        finished = start(store)
        finished.extra_data["approved"] = True
        finished.process([{}])
    results = race(db_url, tmp_path / "gate", mode)
    created = [result["uuid"] for result in results if result.get("created")]
    assert len(created) == 1, results
    [winner] = created
    others = [result for result in results if not result.get("created")]
    if mode == "refuse":
        assert others == [{"refused": winner, "status": "NEW"}] * (PROCESSES - 1)
    else:
        assert others == [{"uuid": winner, "created": False}] * (PROCESSES - 1)
    runs = {row["uuid"] for row in store.workflows(name="invoice")}
    assert runs == {winner} | ({finished.uuid} if finished else set())
    assert key_rows(store) == [("invoice", "A-17", winner)]


# -- a flow's key ----------------------------------------------------------------------

FLOW = {"name": "billing", "key": "@_input.order", "steps": [{"name": "wait", "halt": {}}]}


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"key": "@wait.x"}, "$.key", "refers to 'wait': a run's key is known when it starts"),
        ({"key": ""}, "$.key", "key must be a non-empty string"),
        ({"key": 17}, "$.key", "key must be a non-empty string"),
        ({"key": "@_input..x"}, "$.key", "names and keys cannot be empty"),
        ({"on_conflict": "replace"}, "$.on_conflict", "on_conflict is 'refuse' or 'existing'"),
        ({"key": None, "on_conflict": "existing"}, "$.on_conflict", "goes with a 'key'"),
    ],
)
def test_a_flows_key_fields_are_validated(fields: dict[str, Any], path: str, message: str) -> None:
    body = {**FLOW, **fields}
    if body["key"] is None:
        del body["key"]
    [error] = validate_flow(body)
    assert (error.flow, error.path) == ("billing", path)
    assert message in error.message


def test_a_flows_key_comes_from_its_input_record(store: Store) -> None:
    flow = load_flow(FLOW)
    assert (flow.run_key({"order": 17}), flow.on_conflict) == ("17", "refuse")
    assert load_flow({**FLOW, "key": "@@nightly"}).run_key(None) == "@nightly"
    assert load_flow({**FLOW, "key": "nightly"}).run_key({"order": 1}) == "nightly"
    assert load_flow({k: v for k, v in FLOW.items() if k != "key"}).run_key({"order": 1}) is None
    with pytest.raises(
        WorkflowValueError, match=r"flow 'billing': the run key @_input\.order is None"
    ):
        flow.run_key({"order": None})

    def begin(record: dict[str, Any]) -> PersistentWorkflowEngine:
        return PersistentWorkflowEngine.with_name(
            flow.name, store=store, definition=flow.callbacks(), key=flow.run_key(record)
        )

    first = begin({"order": 17})
    first.process([flow.new_context({"order": 17})], stop_on_halt=False)
    with pytest.raises(RunKeyConflictError):
        begin({"order": 17})
    assert begin({"order": 18}).created


# -- the error and the migration ----------------------------------------------------------


def test_the_conflict_error_survives_a_pickle_round_trip() -> None:
    error = RunKeyConflictError("held", key="A-17", scope="invoice", status="HALTED", workflow=UUID)
    copy = pickle.loads(pickle.dumps(error))
    assert vars(copy) == vars(error)
    assert str(copy) == f"held (workflow {UUID!r})"


def test_migration_0004_adds_the_key_table_to_a_database_with_runs(db_url: str) -> None:
    store = Store(db_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS wf_alembic_version"))
        upgrade(store, "0003")
        old = store.create_workflow("invoice")  # stored before keys existed: it holds none
        upgrade(store, "0004")
        assert current_revision(store) == "0004"
        first = start(store)
        with pytest.raises(RunKeyConflictError):
            start(store)
        assert key_rows(store) == [("invoice", "A-17", first.uuid)]
        downgrade(store, "0003")
        assert "wf_run_key" not in sa.inspect(store.engine).get_table_names()
        assert {row["uuid"] for row in store.workflows()} == {old, first.uuid}
    finally:
        store.dispose()
