"""OpenTelemetry spans for stored runs: one per pass over a run, per token, per step.

Opt in once per process, after configuring OpenTelemetry's tracer provider
(an OTLP exporter to your collector, say)::

    from workflow.integrations.otel import enable_otel

    enable_otel()

From then on, every :class:`~workflow.storage.PersistentWorkflowEngine`
pass makes spans:

* ``workflow run NAME`` for the first pass of a run, ``workflow resume
  NAME`` for each later one (with a ``resume`` event), attributes
  ``workflow.run_id``, ``workflow.flow``, ``workflow.flow_version`` and,
  at the end, ``workflow.status``;
* ``token N`` inside it for each token that runs (``workflow.token``), with a
  ``halt`` event when the token halts or waits, an error status when it fails;
* one span per traced step inside that (``workflow.step``,
  ``workflow.token``, ``workflow.attempt``, ``workflow.outcome``), recording
  the exception of a failed step.

The first pass keeps its trace context (W3C ``traceparent``) in the run's
``extra_data`` under :data:`CONTEXT_KEY`, so every later pass — in another
process, days later — continues the same trace as a child of the first
pass's span. A resume adds an ``answer`` event for each answer given to
the run's ``ask`` steps since its last step ran (who, what, when).

Needs the ``otel`` extra (``pip install 'workflow-ng[otel]'``); nothing
imports OpenTelemetry unless this module is imported.

.. versionadded:: 3.0
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import WorkflowImportError

try:
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise WorkflowImportError(
        "workflow.integrations.otel needs OpenTelemetry: install it with "
        "pip install 'workflow-ng[otel]'"
    ) from exc

from ..storage import trace as step_trace

__all__ = ["CONTEXT_KEY", "OtelObserver", "disable_otel", "enable_otel"]

#: The key of a run's ``extra_data`` that keeps its trace context (a ``traceparent`` carrier).
CONTEXT_KEY = "_trace_context"

_PROPAGATOR = TraceContextTextMapPropagator()


class _PassSpans:
    """The open spans of one engine's pass, and the failures counted per step position."""

    __slots__ = ("failures", "pass_span", "token_span")

    def __init__(self, pass_span: Span, failures: dict[tuple[int, str], int]) -> None:
        self.pass_span = pass_span
        self.token_span: Span | None = None
        self.failures = failures


class OtelObserver:
    """Make the spans of stored runs with ``tracer`` (see the module's docstring).

    .. versionadded:: 3.0
    """

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def __repr__(self) -> str:
        return f"<OtelObserver {self.tracer!r}>"

    def pass_started(self, eng: Any, resuming: bool) -> None:
        """Start the pass's span: a new trace's root, or a child of the run's stored context."""
        attributes: dict[str, Any] = {
            "workflow.run_id": eng.uuid,
            "workflow.flow": eng.definition_name or eng.name,
        }
        if eng.definition_version is not None:
            attributes["workflow.flow_version"] = eng.definition_version
        carrier = eng.extra_data.get(CONTEXT_KEY)
        failures: dict[tuple[int, str], int] = {}
        if isinstance(carrier, dict) and isinstance(carrier.get("traceparent"), str):
            parent = _PROPAGATOR.extract(carrier)
            span = self.tracer.start_span(
                f"workflow resume {eng.name}", context=parent, attributes=attributes
            )
            span.add_event("resume")
            self._answers_since_last_step(eng, span, failures)
        else:
            span = self.tracer.start_span(f"workflow run {eng.name}", attributes=attributes)
            found: dict[str, str] = {}
            _PROPAGATOR.inject(found, context=otel_trace.set_span_in_context(span))
            eng.extra_data[CONTEXT_KEY] = found  # stored as the pass starts
        eng._otel_spans = _PassSpans(span, failures)

    def _answers_since_last_step(
        self, eng: Any, span: Span, failures: dict[tuple[int, str], int]
    ) -> None:
        """Add an event per answer given since the run's last step; count the failed attempts."""
        rows = eng.storage.trace(eng.uuid)
        last: datetime | None = None
        for row in rows:
            if row.kind != "task":
                continue
            last = row.ended if last is None or row.ended > last else last
            key = (row.token, repr(row.callback_pos))
            if row.outcome == step_trace.FAILED:
                failures[key] = row.attempt
            elif row.outcome == step_trace.COMPLETED:
                failures.pop(key, None)
        for row in rows:
            if row.kind == "answer" and (last is None or row.started >= last):
                span.add_event(
                    "answer",
                    {
                        "workflow.step": row.step,
                        "workflow.token": row.token,
                        "workflow.answer.by": row.worker,
                        "workflow.answer.decision": row.outcome,
                        "workflow.answer.time": row.started.isoformat() + "Z",
                    },
                )

    def pass_finished(self, eng: Any, status: str) -> None:
        """End the open token span and the pass's span (once; later calls do nothing)."""
        spans: _PassSpans | None = eng.__dict__.pop("_otel_spans", None)
        if spans is None:
            return
        if spans.token_span is not None:
            spans.token_span.end()
        spans.pass_span.set_attribute("workflow.status", status)
        if status == "error":
            spans.pass_span.set_status(Status(StatusCode.ERROR, "a token failed"))
        spans.pass_span.end()

    def token_started(self, eng: Any, token: int) -> None:
        """Start the token's span (ending the last token's, if it is still open)."""
        spans = _spans(eng)
        if spans is None:
            return
        if spans.token_span is not None:
            spans.token_span.end()
        spans.token_span = self.tracer.start_span(
            f"token {token}",
            context=otel_trace.set_span_in_context(spans.pass_span),
            attributes={"workflow.run_id": eng.uuid, "workflow.token": token},
        )

    def token_finished(self, eng: Any, token: int, outcome: str, message: str) -> None:
        """End the token's span: a ``halt`` event when it halted or waits, an error if it failed."""
        spans = _spans(eng)
        if spans is None or spans.token_span is None:
            return
        span, spans.token_span = spans.token_span, None
        span.set_attribute("workflow.outcome", outcome)
        if outcome in (step_trace.HALTED, step_trace.WAITING):
            span.add_event("halt", {"workflow.outcome": outcome, "workflow.message": message})
        elif outcome == step_trace.FAILED:
            span.set_status(Status(StatusCode.ERROR, message[:500]))
        span.end()

    def step_started(self, eng: Any, token: int, step: str, callback_pos: list[int]) -> Any:
        """Start the step's span inside its token's; return it with its failure key."""
        spans = _spans(eng)
        if spans is None:
            return None
        key = (token, repr(callback_pos))
        attempt = spans.failures.get(key, 0) + 1
        parent = spans.token_span if spans.token_span is not None else spans.pass_span
        span = self.tracer.start_span(
            step,
            context=otel_trace.set_span_in_context(parent),
            attributes={
                "workflow.run_id": eng.uuid,
                "workflow.step": step,
                "workflow.token": token,
                "workflow.attempt": attempt,
                "workflow.callback_pos": str(callback_pos),
            },
        )
        return span, key, spans

    def step_finished(self, handle: Any, outcome: str, error: BaseException | str | None) -> None:
        """End the step's span with its outcome (the exception recorded when it failed)."""
        if handle is None:
            return
        span, key, spans = handle
        span.set_attribute("workflow.outcome", outcome)
        if outcome == step_trace.FAILED:
            spans.failures[key] = spans.failures.get(key, 0) + 1
            if isinstance(error, BaseException):
                span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)[:500]))
        else:
            if outcome == step_trace.COMPLETED:
                spans.failures.pop(key, None)
            else:
                message = error.lstrip(": ") if isinstance(error, str) else ""
                span.add_event("halt", {"workflow.outcome": outcome, "workflow.message": message})
        span.end()


def _spans(eng: Any) -> _PassSpans | None:
    found: _PassSpans | None = eng.__dict__.get("_otel_spans")
    return found


def enable_otel(*, tracer_provider: TracerProvider | None = None) -> OtelObserver:
    """Make spans for every stored run this process runs from now on; return the observer.

    :param tracer_provider: where the spans go (default: OpenTelemetry's
        global provider, as configured by the application or the
        ``opentelemetry-instrument`` launcher).

    .. versionadded:: 3.0
    """
    tracer = otel_trace.get_tracer("workflow", tracer_provider=tracer_provider)
    observer = OtelObserver(tracer)
    step_trace.set_observer(observer)
    return observer


def disable_otel() -> None:
    """Stop making spans (the runs running now finish their open spans).

    .. versionadded:: 3.0
    """
    step_trace.set_observer(None)
