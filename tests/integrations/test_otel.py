"""OpenTelemetry spans of stored runs: one trace across the processes that run a run.

The spans go to the SDK's in-memory exporter; the cross-process test runs
two real processes (``otel_process.py``) on one SQLite file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workflow.errors import WorkflowError
from workflow.integrations.otel import CONTEXT_KEY, disable_otel, enable_otel
from workflow.storage import PersistentWorkflowEngine, Store

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(found))
    enable_otel(tracer_provider=provider)
    yield found
    disable_otel()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    found = Store(f"sqlite:///{tmp_path / 'otel.sqlite'}")
    found.create_all()
    yield found
    found.dispose()


def double(obj: Any, eng: Any) -> None:
    obj.data["n"] *= 2


def refuse_odd(obj: Any, eng: Any) -> None:
    if obj.data["n"] % 2:
        raise ValueError("odd")


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def test_a_run_makes_a_span_per_pass_token_and_step(
    exporter: InMemorySpanExporter, store: Store
) -> None:
    engine = PersistentWorkflowEngine.with_name("numbers", store=store, definition=[double, double])
    engine.process([{"n": 1}])
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["double", "double", "token 0", "workflow run numbers"]
    step, _, token, run = spans
    assert run.parent is None
    assert token.parent is not None
    assert token.parent.span_id == run.context.span_id
    assert step.parent is not None
    assert step.parent.span_id == token.context.span_id
    assert dict(run.attributes or {}) == {
        "workflow.run_id": engine.uuid,
        "workflow.flow": "numbers",
        "workflow.status": "completed",
    }
    attributes = dict(step.attributes or {})
    assert (attributes["workflow.step"], attributes["workflow.token"]) == ("double", 0)
    assert (attributes["workflow.attempt"], attributes["workflow.outcome"]) == (1, "completed")
    assert {span.context.trace_id for span in spans} == {run.context.trace_id}
    assert set(store.workflow(engine.uuid)["extra_data"][CONTEXT_KEY]) == {"traceparent"}


def test_a_failed_step_records_its_exception_and_the_resume_counts_the_attempt(
    exporter: InMemorySpanExporter, store: Store
) -> None:
    steps = [double, refuse_odd]
    engine = PersistentWorkflowEngine.with_name("odd", store=store, definition=steps)
    engine.process([{"n": 0}])  # n stays 0: even
    bad = PersistentWorkflowEngine.with_name("odd", store=store, definition=[refuse_odd])
    with pytest.raises(WorkflowError):
        bad.process([{"n": 1}])
    again = PersistentWorkflowEngine.from_uuid(bad.uuid, store=store, definition=[refuse_odd])
    with pytest.raises(WorkflowError):
        again.resume()
    failed = [span for span in exporter.get_finished_spans() if span.name == "refuse_odd"][1:]
    assert [dict(span.attributes or {})["workflow.attempt"] for span in failed] == [1, 2]
    assert [span.status.status_code.name for span in failed] == ["ERROR", "ERROR"]
    assert failed[0].events[0].name == "exception"
    resumed = by_name(exporter.get_finished_spans())["workflow resume odd"]
    assert resumed.context.trace_id == failed[0].context.trace_id
    assert dict(resumed.attributes or {})["workflow.status"] == "error"


def test_nothing_is_watched_once_disabled(exporter: InMemorySpanExporter, store: Store) -> None:
    disable_otel()
    engine = PersistentWorkflowEngine.with_name("quiet", store=store, definition=[double])
    engine.process([{"n": 1}])
    assert exporter.get_finished_spans() == ()
    assert CONTEXT_KEY not in store.workflow(engine.uuid)["extra_data"]


def run_process(url: str, *argv: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(HERE / "otel_process.py"), url, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_a_run_resumed_in_another_process_continues_the_same_trace(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.sqlite'}"
    first = run_process(url, "start")
    second = run_process(url, "resume", first["uuid"])

    started = {span["name"]: span for span in first["spans"]}
    resumed = {span["name"]: span for span in second["spans"]}
    run = started["workflow run refund"]
    assert {span["trace_id"] for span in first["spans"] + second["spans"]} == {run["trace_id"]}
    resume = resumed["workflow resume refund"]
    assert resume["parent"] == run["span_id"]
    assert resume["attributes"]["workflow.run_id"] == first["uuid"]
    events = [name for name, _ in resume["events"]]
    assert events == ["resume", "answer"]
    answer = resume["events"][1][1]
    assert (answer["workflow.answer.by"], answer["workflow.answer.decision"]) == (
        "alice",
        "approve",
    )
    assert started["token 0"]["events"][0][0] == "halt"
    assert started["approve"]["attributes"]["workflow.outcome"] == "waiting"
    assert resumed["pay"]["attributes"]["workflow.outcome"] == "completed"


def test_importing_the_package_does_not_import_opentelemetry() -> None:
    probe = (
        "import sys, workflow, workflow.storage, workflow.runtime, workflow.flows, workflow.cli;"
        "print(sorted(name for name in sys.modules if name.startswith('opentelemetry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
