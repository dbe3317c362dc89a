"""The tasks a wait compiles to, for flows and for plain callback lists.

A wait is three plain tasks and a loop of the engine, so halting, storing
and resuming work as for any definition::

    [OpenWait, WHILE(Pending, [Park]), CloseWait]

``OpenWait`` stores the wait's row (:meth:`Waits.open`) under an id derived
from the run, the token, the site and a count kept in the token, so that a
task run again after a crash opens the same row. ``Park`` halts the token
while the row says ``waiting``; a resumed token goes back to ``Pending``,
which reads the row again. ``CloseWait`` hands the result to the site. A
retried task is ``[StartRetry, WHILE(not done, [Attempt, WHILE(Pending,
[Park])])]``: the failed attempts are counted in the token, stored with it
when it halts for the back-off timer, so no count is lost in a crash.

Where the bookkeeping and the result live is the :class:`Site`'s business:
:class:`TokenSite` keeps them in a stored token's ``extra_data`` (the
patterns of :mod:`workflow.runtime.patterns`); flows keep them in the
token's context.

.. versionadded:: 3.0
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from ..errors import FlowRuntimeError, StorageError, WorkflowError, WorkflowTransition
from ..patterns import WHILE
from ._time import backoff_delay
from .waits import Wait, Waits, WaitSpec, wait_id

__all__ = [
    "PARKED",
    "RetryPolicy",
    "Site",
    "TokenSite",
    "parked_on",
    "retry_tasks",
    "wait_tasks",
]

log = logging.getLogger(__name__)

#: How many failed attempts a token's retry state remembers.
_KEPT_ERRORS = 10
#: The key of a stored token's ``extra_data`` naming the wait it is parked at.
PARKED = "_parked_on"


def parked_on(obj: Any) -> str | None:
    """Return the id of the wait the stored token ``obj`` halted at, if it is parked at one.

    A worker continues a token only while it is parked at a decided wait: a
    token that went past the wait in its own process (a wait decided as it
    opened, or answered before the token halted) is not moved again.
    """
    extra = getattr(obj, "extra_data", None)
    found = extra.get(PARKED) if isinstance(extra, dict) else None
    return found if isinstance(found, str) else None


class Site(Protocol):
    """Where a wait lives in a token: its bookkeeping, its spec and where its result goes."""

    #: Unique among the waiting sites of the definition (part of the wait's id).
    key: str
    #: The step's name, as people read it.
    name: str

    def state(self, obj: Any) -> dict[str, Any]:
        """Return the dict, stored with the token, that keeps the wait's bookkeeping."""

    def spec(self, obj: Any, eng: Any) -> WaitSpec:
        """Return what the token waits for, resolved now."""

    def done(self, obj: Any, eng: Any, result: dict[str, Any]) -> None:
        """Hand the wait's result to the next steps."""

    def failure(self, obj: Any, message: str, cause: BaseException | None = None) -> BaseException:
        """Return the error the step fails with (``on_timeout: fail``, the last retry)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a task is tried, and how long the run waits in between.

    :param attempts: how many times in all (1 means no retry).
    :param backoff: the wait after the first failure; it doubles each time.
    :param max_backoff: the longest wait.
    :param jitter: draw each wait between half of it and all of it.
    """

    attempts: int
    backoff: timedelta
    max_backoff: timedelta | None = None
    jitter: bool = True

    def delay(self, attempt: int) -> timedelta:
        """Return the wait after failed attempt number ``attempt``."""
        return backoff_delay(attempt, self.backoff, self.max_backoff, jitter=self.jitter)


def _waits_of(eng: Any, site: Site) -> Waits:
    """Return the waits of the engine's store, or say that only a stored run can wait."""
    store = getattr(eng, "storage", None)
    if store is None or not hasattr(store, "transaction") or getattr(eng, "uuid", None) is None:
        raise WorkflowError(
            f"step {site.name!r} waits: only a run stored in a database can wait "
            "(run it with workflow.storage.PersistentWorkflowEngine or the workflow command)"
        )
    cached = getattr(eng, "_wait_rows", None)
    if cached is None or cached.store is not store:
        cached = Waits(store)
        with suppress(AttributeError):  # an engine with __slots__ reads it each time
            eng._wait_rows = cached
    return cached


def _open(obj: Any, eng: Any, site: Site, spec: WaitSpec) -> Wait:
    """Open the token's next wait at ``site``; its id goes into the site's state."""
    rows = _waits_of(eng, site)  # first: an engine without a database is told so
    state = site.state(obj)
    count = int(state.get("count", 0)) + 1
    state["count"] = count
    ident = wait_id(eng.uuid, int(getattr(obj, "position", 0)), site.key, count)
    state["id"] = ident
    wait = rows.open(eng.uuid, int(getattr(obj, "position", 0)), ident, spec)
    state["message"] = _park_message(spec, wait)
    state["kind"] = spec.kind
    return wait


def _park_message(spec: WaitSpec, wait: Wait) -> str:
    if spec.kind == "ask":
        return spec.message or f"waiting for an answer at step {spec.step!r}"
    if spec.kind == "receive":
        return f"waiting for a message on {spec.topic!r}"
    due = wait.due.isoformat(timespec="seconds") + "Z" if wait.due else "its time"
    if spec.kind == "retry":
        return f"{spec.message}; next attempt at {due}"
    return f"sleeping until {due}"


class OpenWait:
    """Store the token's wait (a row), unless a run of this task stored it before a crash."""

    traced = False  # the trace shows the step when it parks (waiting) and when it closes

    def __init__(self, site: Site) -> None:
        self.site = site
        self.__name__ = site.name

    def __call__(self, obj: Any, eng: Any) -> None:
        _waits_of(eng, self.site)  # before anything else: only a stored run can wait
        _open(obj, eng, self.site, self.site.spec(obj, eng))


class Pending:
    """The loop's test: the token's wait is still ``waiting``."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.__name__ = f"{site.name}_pending"

    def __call__(self, obj: Any, eng: Any) -> bool:
        ident = self.site.state(obj).get("id")
        waiting = ident is not None and _waits_of(eng, self.site).phase(ident) == "waiting"
        extra = getattr(obj, "extra_data", None)
        if not waiting and isinstance(extra, dict):
            extra.pop(PARKED, None)  # stored with the token's next checkpoint
        return waiting


class Park:
    """Halt the token while it waits; the run is stored and its process may exit."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.__name__ = site.name

    def __call__(self, obj: Any, eng: Any) -> None:
        state = self.site.state(obj)
        payload = {"step": self.site.name, "wait": state.get("id"), "kind": state.get("kind")}
        extra = getattr(obj, "extra_data", None)
        if isinstance(extra, dict) and state.get("id") is not None:
            extra[PARKED] = state["id"]  # stored with the halt: what a worker continues
        state["parked"] = True
        eng.halt(state.get("message") or "waiting", action=state.get("kind"), payload=payload)


class CloseWait:
    """Hand the decided wait's result to the next steps (or fail, ``on_timeout: fail``)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.__name__ = site.name

    def __call__(self, obj: Any, eng: Any) -> None:
        state = self.site.state(obj)
        waits = _waits_of(eng, self.site)
        wait = waits.get(state["id"])
        state.pop("id", None)
        state.pop("message", None)
        try:
            if wait.decision == "timed_out" and wait.spec.get("on_timeout") == "fail":
                what = "no decision" if wait.kind == "ask" else "no message"
                raise self.site.failure(obj, f"{what} before the deadline (on_timeout: fail)")
            self.site.done(obj, eng, wait.result())
        finally:
            if not state.pop("parked", False):
                # Decided as it opened (a kept message, a time already past): the token
                # never halted, so no worker has to continue the run for it. A token
                # that halted here is settled by the worker after its pass, once the
                # token is stored past the wait: a crash before that leaves the wait
                # decided and the token parked, for the next worker.
                waits.mark_done([wait.id])


def wait_tasks(site: Site) -> list[Any]:
    """Return the tasks of a wait at ``site``: open it, halt while it waits, hand on its result."""
    return [OpenWait(site), *WHILE(Pending(site), [Park(site)]), CloseWait(site)]


class StartRetry:
    traced = False  # bookkeeping of the retry, not a step of its own

    def __init__(self, site: Site) -> None:
        self.site = site
        self.__name__ = site.name

    def __call__(self, obj: Any, eng: Any) -> None:
        state = self.site.state(obj)
        state.update(attempts=0, done=False, errors=[])
        state.pop("id", None)


class Untried:
    """The retry loop's test: the task has not succeeded yet."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.__name__ = f"{site.name}_untried"

    def __call__(self, obj: Any, eng: Any) -> bool:
        return not self.site.state(obj).get("done", False)


class Attempt:
    """Try the task once; after a failure, wait for the back-off timer (a row), or give up."""

    def __init__(self, site: Site, call: Callable[[Any, Any], None], policy: RetryPolicy) -> None:
        self.site = site
        self.call = call
        self.policy = policy
        self.__name__ = site.name

    def __call__(self, obj: Any, eng: Any) -> None:
        state = self.site.state(obj)
        waited = state.pop("id", None)
        if waited is not None and not state.pop("parked", False):
            # a back-off timer the token never halted at (no time): nothing to continue
            _waits_of(eng, self.site).mark_done([waited])
        try:
            self.call(obj, eng)
        except (WorkflowTransition, StorageError, FlowRuntimeError):
            raise  # a flow's own mistake (a reference without a value) fails at once
        except Exception as exc:
            attempts = int(state.get("attempts", 0)) + 1
            state["attempts"] = attempts
            errors = state.setdefault("errors", [])
            errors.append(f"{type(exc).__name__}: {exc}"[:500])
            del errors[:-_KEPT_ERRORS]
            total = self.policy.attempts
            if attempts >= total:
                error = self.site.failure(
                    obj, f"{type(exc).__name__}: {exc} (attempt {attempts} of {total})", exc
                )
                if error is exc:
                    raise
                raise error from exc
            delay = self.policy.delay(attempts)
            log.warning(
                "step %s: attempt %d of %d failed (%s: %s); next in %.3f s",
                self.site.name,
                attempts,
                total,
                type(exc).__name__,
                exc,
                delay.total_seconds(),
            )
            message = f"step {self.site.name!r}: attempt {attempts} of {total} failed: {exc}"
            spec = WaitSpec("retry", self.site.name, message=message[:500], timeout=delay)
            _open(obj, eng, self.site, spec)
            return
        state["done"] = True
        state.pop("id", None)

    def trace_failure(self, obj: Any) -> str | None:
        """Return the failure of the attempt that just returned, if it failed (for the trace)."""
        state = self.site.state(obj)
        errors = state.get("errors")
        if state.get("done") or "id" not in state or not errors:
            return None
        return str(errors[-1])


def retry_tasks(site: Site, call: Callable[[Any, Any], None], policy: RetryPolicy) -> list[Any]:
    """Return the tasks that try ``call`` up to ``policy.attempts`` times, waiting in rows."""
    inner = [Attempt(site, call, policy), *WHILE(Pending(site), [Park(site)])]
    return [StartRetry(site), *WHILE(Untried(site), inner)]


class TokenSite:
    """A site that keeps its bookkeeping and its result in a stored token's ``extra_data``.

    The result of the wait called ``name`` is ``token.extra_data[name]``.
    """

    def __init__(self, name: str, spec: Callable[[Any, Any], WaitSpec] | None = None) -> None:
        self.key = name
        self.name = name
        self._spec = spec

    def state(self, obj: Any) -> dict[str, Any]:
        extra = getattr(obj, "extra_data", None)
        if not isinstance(extra, dict):
            raise WorkflowError(
                f"step {self.name!r} waits: its token must be a stored token "
                f"(workflow.storage.Token), not {type(obj).__name__}"
            )
        found: dict[str, Any] = extra.setdefault("_waits", {}).setdefault(self.key, {})
        return found

    def spec(self, obj: Any, eng: Any) -> WaitSpec:
        if self._spec is None:  # pragma: no cover - retries build their own specs
            raise WorkflowError(f"step {self.name!r} has nothing to wait for")
        return self._spec(obj, eng)

    def done(self, obj: Any, eng: Any, result: dict[str, Any]) -> None:
        obj.extra_data[self.name] = result

    def failure(self, obj: Any, message: str, cause: BaseException | None = None) -> BaseException:
        if cause is not None:
            note = getattr(cause, "add_note", None)
            if note is not None:
                note(f"step {self.name!r}: {message.rsplit('(', 1)[-1].rstrip(')')}")
            return cause
        return WorkflowError(f"step {self.name!r}: {message}")
