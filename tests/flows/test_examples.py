"""The flows of ``examples/`` run as their READMEs say, on both engines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import examples.flow_framework.run as flow_framework
import examples.pipeline.tasks  # noqa: F401  (registers the orders.* tasks)
from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing
from workflow.flows import Flow, apply_resume_data, halted_step, load_flow
from workflow.storage import PersistentWorkflowEngine, Store

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "examples" / "pipeline"
OUTPUT = "orders-out.jsonl"

#: What the pipeline writes for the nine orders that need no review, in input order.
ACCEPTED = [
    ("A-1001", "Ada Lovelace", "GB", 25.0, 5.0, 30.0),
    ("A-1002", "Max Mustermann", "DE", 49.6, 9.42, 59.02),
    ("A-1003", "Camille Martin", "FR", 64.0, 12.8, 76.8),
    ("A-1005", "Sanne de Vries", "NL", 74.4, 15.62, 90.02),
    ("A-1006", "Ada Lovelace", "GB", 12.0, 2.4, 14.4),
    ("A-1008", "Lena Schmidt", "DE", 298.0, 56.62, 354.62),
    ("A-1009", "Sanne de Vries", "NL", 12.5, 2.62, 15.12),
    ("A-1011", "Lena Schmidt", "DE", 438.0, 83.22, 521.22),
    ("A-1012", "Hugo Bernard", "FR", 42.0, 8.4, 50.4),
]

#: The suspicious orders: token position, id, and why they halt for a review.
SUSPICIOUS = [
    (3, "A-1004", ["total 3209.43 is over 1000"]),
    (6, "A-1007", ["ships to BR, customer lives in FR"]),
    (9, "A-1010", ["total 2400.00 is over 1000", "40 pieces of GIFT-CARD-50"]),
]

#: The reviewers' answers, by token position.
ANSWERS: dict[int, Any] = {
    3: {"approved": True},
    6: {"approved": False, "note": "address not verified"},
    9: {"approved": True},
}

#: What the pipeline writes for the suspicious orders once they are answered.
REVIEWED = [
    {
        "id": "A-1004",
        "customer": "Max Mustermann",
        "ship_to": "DE",
        "net": 2697.0,
        "vat": 512.43,
        "gross": 3209.43,
        "status": "approved",
        "reasons": ["total 3209.43 is over 1000"],
    },
    {
        "id": "A-1007",
        "customer": "Camille Martin",
        "ship_to": "BR",
        "net": 429.0,
        "vat": 85.8,
        "gross": 514.8,
        "status": "rejected",
        "reasons": ["ships to BR, customer lives in FR"],
        "note": "address not verified",
    },
    {
        "id": "A-1010",
        "customer": "Hugo Bernard",
        "ship_to": "FR",
        "net": 2000.0,
        "vat": 400.0,
        "gross": 2400.0,
        "status": "approved",
        "reasons": ["total 2400.00 is over 1000", "40 pieces of GIFT-CARD-50"],
    },
]


def accepted_lines() -> list[dict[str, Any]]:
    keys = ("id", "customer", "ship_to", "net", "vat", "gross")
    return [
        {**dict(zip(keys, row, strict=True)), "status": "accepted", "reasons": []}
        for row in ACCEPTED
    ]


def records() -> list[dict[str, Any]]:
    lines = (PIPELINE / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def written(directory: Path) -> list[dict[str, Any]]:
    text = (directory / OUTPUT).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: the pipeline writes its output file there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite database in a file of the test's directory, with the tables."""
    database = Store(f"sqlite:///{tmp_path / 'workflow.sqlite'}")
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def pipeline() -> Flow:
    return load_flow(PIPELINE / "pipeline.json")


# -- examples/flow_framework -------------------------------------------------------


def test_flow_framework_example_passes_step1_message_to_step2() -> None:
    context = flow_framework.run()

    assert context["step1"] == {"msg": "hello"}
    assert context["step2"] == {"msg": "hello"}
    assert context["_runtime"]["flow"] == "hello"


def test_flow_framework_runner_prints_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    flow_framework.main()

    out = capsys.readouterr().out
    title, _, document = out.partition("\n")
    assert title == "flow 'hello' ran; its context:"
    assert json.loads(document) == {
        "_input": None,
        "step1": {"msg": "hello"},
        "step2": {"msg": "hello"},
    }


def test_flow_framework_example_keeps_its_procedures_as_mod_method_tasks() -> None:
    flow = load_flow(flow_framework.FLOW_FILE)

    assert flow.body == {
        "name": "hello",
        "steps": [
            {"name": "step1", "task": "common.Kt.prt", "params": {"msg": "hello"}},
            {"name": "step2", "task": "common.Kt.prt", "params": {"msg": "@step1.msg"}},
        ],
    }


def test_flow_framework_example_runs_on_the_persistent_engine(store: Store) -> None:
    flow = load_flow(flow_framework.FLOW_FILE)
    engine = PersistentWorkflowEngine.with_name("hello", store=store, definition=flow.callbacks())

    engine.process([flow.new_context()])

    (token,) = engine.load_tokens()
    assert token.status.name == "COMPLETED"
    assert token.data["step2"] == {"msg": "hello"}
    assert token.data["_runtime"]["run_id"] == engine.uuid


# -- examples/pipeline --------------------------------------------------------------


def test_pipeline_halts_suspicious_orders_and_writes_all_on_the_plain_engine(
    workdir: Path, pipeline: Flow
) -> None:
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(pipeline.callbacks())
    contexts = [pipeline.new_context(record) for record in records()]
    halts = []
    resuming = False

    while True:
        try:
            if resuming:
                engine.restart("current", "next")
            else:
                engine.process(contexts)
            break
        except HaltProcessing as halt:
            position = engine.state.token_pos
            halts.append((position, halt.action))
            apply_resume_data(engine.current_object, ANSWERS[position])
            resuming = True

    assert halts == [(3, "review"), (6, "review"), (9, "review")]
    for position, order_id, reasons in SUSPICIOUS:
        assert contexts[position]["screen"] == {"suspicious": True, "reasons": reasons}
        assert contexts[position]["review"] == ANSWERS[position]
        assert contexts[position]["read"]["order"]["id"] == order_id
    # Here each answer resumes its token at once, so the output keeps the input order.
    by_id = {line["id"]: line for line in accepted_lines() + REVIEWED}
    assert written(workdir) == [by_id[record["id"]] for record in records()]


def test_pipeline_prices_lines_with_for_each(workdir: Path, pipeline: Flow) -> None:
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(pipeline.callbacks())
    context = pipeline.new_context(records()[1])

    engine.process([context])

    assert context["lines"] == [
        {"line": {"sku": "MUG-0007", "qty": 4, "net": 3560, "vat": 676, "gross": 4236}},
        {"line": {"sku": "TEA-0031", "qty": 1, "net": 1400, "vat": 266, "gross": 1666}},
    ]
    assert context["total"] == {"net": 4960, "vat": 942, "gross": 5902}
    assert context["route"] == {"branch": "else"}
    assert context["write"] == {"path": OUTPUT, "status": "accepted"}


def test_pipeline_halts_then_resumes_on_the_persistent_engine(
    workdir: Path, store: Store, pipeline: Flow
) -> None:
    engine = PersistentWorkflowEngine.with_name(
        "orders", store=store, definition=pipeline.callbacks()
    )

    engine.process([pipeline.new_context(record) for record in records()], stop_on_halt=False)

    assert engine.status.name == "HALTED"
    halted = engine.halted_tokens
    assert [
        (token.position, token.data["read"]["order"]["id"], token.data["screen"]["reasons"])
        for token in halted
    ] == SUSPICIOUS
    assert {json.dumps(halted_step(token.data)) for token in halted} == {
        json.dumps(
            {
                "step": "review",
                "message": "a suspicious order waits for a review",
                "action": "review",
            }
        )
    }
    assert written(workdir) == accepted_lines()

    later = PersistentWorkflowEngine.from_uuid(
        engine.uuid, store=store, definition=pipeline.callbacks()
    )
    for token in later.halted_tokens:
        apply_resume_data(token.data, ANSWERS[token.position])
        later.update_token(token.position, token.data)
    later.resume()

    assert later.status.name == "COMPLETED"
    assert [token.status.name for token in later.load_tokens()] == ["COMPLETED"] * 12
    assert written(workdir) == accepted_lines() + REVIEWED
    assert [token.data["write_reviewed"] for token in later.load_tokens()[3:10:3]] == [
        {"path": OUTPUT, "status": "approved"},
        {"path": OUTPUT, "status": "rejected"},
        {"path": OUTPUT, "status": "approved"},
    ]


def test_pipeline_fails_a_malformed_order_and_goes_on(workdir: Path, store: Store) -> None:
    flow = load_flow(PIPELINE / "pipeline.json")
    engine = PersistentWorkflowEngine.with_name("orders", store=store, definition=flow.callbacks())
    broken = {"id": "A-2000", "customer": "C-999", "ship_to": "DE", "items": []}

    engine.process(
        [flow.new_context(broken), flow.new_context(records()[0])],
        stop_on_error=False,
    )

    failed, fine = engine.load_tokens()
    assert failed.status.name == "ERROR"
    assert failed.last_error is not None
    assert (
        "ValueError: order A-2000 is invalid: unknown customer 'C-999'; it has no items"
        in failed.last_error
    )
    assert fine.status.name == "COMPLETED"
    assert written(workdir) == accepted_lines()[:1]


def test_pipeline_rejects_an_order_resumed_without_an_answer(workdir: Path, pipeline: Flow) -> None:
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(pipeline.callbacks())
    context = pipeline.new_context(records()[3])
    with pytest.raises(HaltProcessing):
        engine.process([context])

    engine.restart("current", "next")  # no answer: @review reads as null
    assert context["write_reviewed"]["status"] == "rejected"


def test_pipeline_runs_through_the_cli_as_run_example_does(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = pytest.importorskip("workflow.cli")
    database = ["--database", f"sqlite:///{workdir / 'workflow.sqlite'}"]
    run = [
        *database,
        "--json",
        "--import",
        "examples.pipeline.tasks",
        "run",
        str(PIPELINE / "pipeline.json"),
        "--tokens",
        str(PIPELINE / "records.jsonl"),
    ]

    assert cli.main(run) == 3
    result = json.loads(capsys.readouterr().out)
    waiting = [token["position"] for token in result["tokens"] if "halted" in token]
    assert waiting == [3, 6, 9]
    resume = [*database, "--import", "examples.pipeline.tasks", "resume", result["uuid"]]
    assert cli.main([*resume, "--data", '{"approved": true}']) == 0
    assert [line["status"] for line in written(workdir)] == ["accepted"] * 9 + ["approved"] * 3
