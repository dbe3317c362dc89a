"""The steps that wait (``ask``, ``sleep``, ``receive``) and ``retry``, compiled.

Each is the runtime's tasks (:func:`~workflow.runtime.tasks.wait_tasks`,
:func:`~workflow.runtime.tasks.retry_tasks`) at a :class:`FlowSite`: the
wait's bookkeeping lives in the token's context under ``"_waits"``, keyed by
the step's full path (the called flows it is in, and its name), so a step
inside a loop counts its waits across the rounds and opens a new one in
each; its result is the step's result, ``@step`` for the steps after it.

This module imports the runtime, hence SQLAlchemy: the compiler imports it
only for a flow that has such a step, so validating and drawing flows stays
free of the database libraries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..errors import FlowRuntimeError, WorkflowValueError
from ..runtime._time import parse_duration, parse_instant
from ..runtime.tasks import RetryPolicy, retry_tasks, wait_tasks
from ..runtime.waits import WaitSpec
from ._refs import Lookup, compile_value
from ._resume import context_of
from ._steps import Place, Task, _Step

__all__ = ["WAITS", "FlowSite", "ask_tasks", "receive_tasks", "retried", "sleep_tasks"]

#: Where a token's context keeps the bookkeeping of its waits.
WAITS = "_waits"

SpecBuilder = Callable[["FlowSite", Lookup], WaitSpec]


class FlowSite(_Step):
    """Where a flow step's wait lives in a flow token (a :class:`~workflow.runtime.Site`).

    :param build: what the step waits for, given the step and the token's
        :class:`Lookup` (``None`` for a retry, whose waits the retry builds).
    """

    def __init__(self, place: Place, build: SpecBuilder | None = None) -> None:
        super().__init__(place)
        self.key = "/".join((*place.scope, place.name))
        self._build = build

    def state(self, obj: Any) -> dict[str, Any]:
        waits = context_of(obj).setdefault(WAITS, {})
        found: dict[str, Any] = waits.setdefault(self.key, {})
        return found

    def spec(self, obj: Any, eng: Any) -> WaitSpec:
        if self._build is None:  # pragma: no cover - a retry builds its own specs
            raise self.fail("the step has nothing to wait for", context_of(obj))
        return self._build(self, self.lookup(obj))

    def done(self, obj: Any, eng: Any, result: dict[str, Any]) -> None:
        self.lookup(obj).scope[self.name] = result

    def failure(self, obj: Any, message: str, cause: BaseException | None = None) -> BaseException:
        if isinstance(cause, FlowRuntimeError):  # it names the flow and the step already
            return cause
        return self.fail(message, context_of(obj))

    # -- what the specs are made of ----------------------------------------------

    def moment(
        self, value: Callable[[Lookup], Any], lookup: Lookup, what: str, *, optional: bool
    ) -> datetime | None:
        """Return the time ``value`` resolves to, as naive UTC; fail the step if it is none.

        :param optional: ``None`` (no time) is an answer, not a failure.
        """
        found = self.resolve(value, lookup)
        if found is None and optional:
            return None
        try:
            return parse_instant(found, what=what)
        except WorkflowValueError as exc:
            raise self.fail(str(exc), lookup.root) from None

    def with_round(self, message: str, lookup: Lookup) -> str:
        """Return ``message``, naming the round of the loops around the step, if any."""
        rounds = self.place.rounds(lookup.root)
        return f"{message} ({rounds})" if rounds else message


def _duration(value: Any, what: str) -> timedelta | None:
    return None if value is None else parse_duration(value, what=what)


def _resolver(value: Any) -> Callable[[Lookup], Any] | None:
    return None if value is None else compile_value(value)


def ask_tasks(place: Place, spec: Mapping[str, Any]) -> list[Any]:
    """Return the tasks of an ``ask`` step (a validated ``ask`` object)."""
    message = spec.get("message") or f"waiting for an answer at step {place.name!r}"
    approvers = spec.get("approvers")
    people = None if approvers is None else tuple(approvers)
    timeout = _duration(spec.get("timeout"), "timeout")
    deadline = _resolver(spec.get("deadline"))
    quorum = spec.get("quorum", 1)
    reject_quorum = spec.get("reject_quorum", 1)

    def build(site: FlowSite, lookup: Lookup) -> WaitSpec:
        until = None
        if deadline is not None:  # a reference without a value means no deadline
            until = site.moment(deadline, lookup, "deadline", optional=True)
        return WaitSpec(
            "ask",
            place.name,
            site.with_round(message, lookup),
            timeout=timeout,
            until=until,
            approvers=people,
            quorum=quorum,
            reject_quorum=reject_quorum,
            schema=spec.get("schema"),
            on_timeout=spec.get("on_timeout"),
        )

    return wait_tasks(FlowSite(place, build))


def sleep_tasks(place: Place, spec: Any) -> list[Any]:
    """Return the tasks of a ``sleep`` step: ``"PT10M"``, ``{"for": ...}`` or ``{"until": ...}``."""
    if isinstance(spec, str):
        spec = {"for": spec}
    duration = _duration(spec.get("for"), "sleep")
    until = _resolver(spec.get("until"))

    def build(site: FlowSite, lookup: Lookup) -> WaitSpec:
        moment = None if until is None else site.moment(until, lookup, "until", optional=False)
        return WaitSpec("sleep", place.name, timeout=duration, until=moment)

    return wait_tasks(FlowSite(place, build))


def receive_tasks(place: Place, step: Mapping[str, Any]) -> list[Any]:
    """Return the tasks of a ``receive`` step (topic, ``timeout``, ``on_timeout``)."""
    topic = step["receive"]
    timeout = _duration(step.get("timeout"), "timeout")
    on_timeout = step.get("on_timeout")

    def build(site: FlowSite, lookup: Lookup) -> WaitSpec:
        return WaitSpec("receive", place.name, timeout=timeout, topic=topic, on_timeout=on_timeout)

    return wait_tasks(FlowSite(place, build))


def retried(task: Task, spec: Mapping[str, Any]) -> list[Any]:
    """Return the tasks that try ``task`` as its ``retry`` object says."""
    backoff = parse_duration(spec["backoff"], what="backoff")
    policy = RetryPolicy(
        attempts=spec["attempts"],
        backoff=backoff,
        max_backoff=_duration(spec.get("max_backoff"), "max_backoff"),
        jitter=spec.get("jitter", True),
    )
    return retry_tasks(FlowSite(task.place), task.attempt, policy)
