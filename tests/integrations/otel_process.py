"""One process of the OpenTelemetry tests: start a run that waits, or answer and resume it.

Run as a program::

    python tests/integrations/otel_process.py URL start
    python tests/integrations/otel_process.py URL resume UUID

Each exports its spans to the SDK's in-memory exporter and prints them as
one JSON line: ``{"uuid": ..., "spans": [{name, trace_id, parent, attributes,
events}, ...]}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from workflow.integrations.otel import disable_otel, enable_otel
from workflow.runtime import ASK, Waits, Worker
from workflow.storage import PersistentWorkflowEngine, Store


def prepare(obj: Any, eng: Any) -> None:
    obj.data["prepared"] = True


def pay(obj: Any, eng: Any) -> None:
    obj.data["paid"] = True


STEPS = [prepare, *ASK("approve", "Refund?", approvers=["alice"]), pay]


def main() -> None:
    url, command, *rest = sys.argv[1:]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    enable_otel(tracer_provider=provider)
    store = Store(url)
    try:
        if command == "start":
            store.create_all()
            engine = PersistentWorkflowEngine.with_name("refund", store=store, definition=STEPS)
            engine.process([{}], stop_on_halt=False)
            uuid = engine.uuid
        else:
            [uuid] = rest
            waits = Waits(store)
            [wait] = waits.waiting(run=uuid)
            waits.answer(wait.id, by="alice", decision="approve")
            Worker(store, {"refund": STEPS}).run_once()
    finally:
        disable_otel()
        store.dispose()
    spans = [
        {
            "name": span.name,
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "parent": None if span.parent is None else format(span.parent.span_id, "016x"),
            "attributes": dict(span.attributes or {}),
            "events": [[event.name, dict(event.attributes or {})] for event in span.events],
            "status": span.status.status_code.name,
        }
        for span in exporter.get_finished_spans()
    ]
    print(json.dumps({"uuid": uuid, "spans": spans}))


if __name__ == "__main__":
    main()
