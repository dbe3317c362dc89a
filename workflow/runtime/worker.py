"""The worker: fire the timers that are due, and continue the runs whose waits were decided.

A worker keeps nothing of its own: every pass reads the database, fires
what is due (one conditional write per batch) and continues each run with
decided waits, under the run's lock. Any number of workers may run at once,
on any machines; a worker killed at any instant leaves the rows as a
transaction left them, and the next pass of any worker does what remains.

>>> from workflow.storage import Store, PersistentWorkflowEngine
>>> from workflow.runtime import SLEEP, Worker
>>> store = Store("sqlite://"); store.create_all()
>>> steps = [*SLEEP("nap", "PT0.1S"), lambda obj, eng: obj.data.append("woke")]
>>> eng = PersistentWorkflowEngine.with_name("nap", store=store, definition=steps)
>>> eng.process([[]])
Traceback (most recent call last):
...
workflow.errors.HaltProcessing: sleeping until ...
>>> import time; time.sleep(0.2)  # the nap is over: a worker continues the run
>>> worker = Worker(store, {"nap": steps})
>>> worker.run_once().continued == [eng.uuid]
True
>>> store.token_rows(eng.uuid)[0]["data"]
['woke']

.. versionadded:: 3.0
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    StorageError,
    StoredRunError,
    WorkflowError,
    WorkflowKeyError,
    WorkflowLockedError,
    WorkflowNotFoundError,
)
from ..storage.persistent import PersistentWorkflowEngine
from ..storage.store import Store
from .schedules import Fire, Schedule, Schedules, start_run
from .tasks import parked_on
from .waits import Wait, Waits

__all__ = ["Definitions", "Pass", "Worker"]

log = logging.getLogger(__name__)

#: What a worker runs a stored run with: a mapping from the run's name to its
#: callbacks, or a callable given the run's engine that returns them.
Definitions = Mapping[str, Any] | Callable[[PersistentWorkflowEngine], Any]

#: What :meth:`Worker._continue` says when no token was parked at the decided waits.
_SETTLED = "settled: no token waited there"

#: The longest a worker leaves a run alone after it could not continue it.
_MAX_BACKOFF = 60.0


@dataclass
class Pass:
    """What one pass of a worker did."""

    #: How many timers it fired.
    fired: int = 0
    #: The schedules' fire times it decided (started, queued, skipped or missed).
    scheduled: list[Fire] = field(default_factory=list)
    #: The runs it continued.
    continued: list[str] = field(default_factory=list)
    #: The runs it could not continue now (locked elsewhere, or failing), with why.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        """Whether the pass found nothing to do."""
        return not (self.fired or self.continued or self.scheduled)


class Worker:
    """Fire due timers and continue the runs whose waits were decided.

    :param store: the database.
    :param definitions: the runs' callbacks: ``{run name: callbacks}`` or a
        callable ``(engine) -> callbacks`` (the ``workflow`` command passes
        one that rebuilds a run's flow as ``workflow resume`` does).
    :param batch: how many timers, and how many decided waits, a pass takes.
    :param poll: seconds between passes that found nothing to do; a pass
        starts earlier when a schedule is due sooner.
    :param schedules: whether each pass also fires the schedules that are
        due (:class:`~workflow.runtime.Schedules`), starting their runs here.

    .. versionchanged:: 3.0
       Added ``schedules``: a pass fires the schedules that are due.
    """

    def __init__(
        self,
        store: Store,
        definitions: Definitions,
        *,
        batch: int = 500,
        poll: float = 0.2,
        schedules: bool = True,
    ) -> None:
        self.store = store
        self.waits = Waits(store)
        self.schedules = Schedules(store) if schedules else None
        self.definitions = definitions
        self.batch = batch
        self.poll = poll
        self._stop = threading.Event()
        self._backoff: dict[str, tuple[float, int]] = {}

    def __repr__(self) -> str:
        return f"<Worker {self.store!r}>"

    # -- one pass ------------------------------------------------------------

    def run_once(self) -> Pass:
        """Fire every timer and schedule that is due, then continue the runs with decided waits."""
        done = Pass()
        if self.schedules is not None:
            done.scheduled = self.schedules.fire_due(start=self.start_scheduled, limit=self.batch)
        while True:
            fired = self.waits.fire_due(limit=self.batch)
            done.fired += fired
            if fired < self.batch:
                break
        now = time.monotonic()
        for run, decided in self.waits.decided(limit=self.batch).items():
            if self._stop.is_set():
                break
            retry_at, _ = self._backoff.get(run, (0.0, 0))
            if retry_at > now:
                done.skipped[run] = "backing off after a failure"
                continue
            why = self._continue(run, decided)
            if why is None:
                done.continued.append(run)
            elif why is not _SETTLED:
                done.skipped[run] = why
        return done

    def continue_run(self, run: str) -> bool:
        """Continue ``run`` if waits of it were decided; return whether it went on.

        This is what ``workflow answer`` does after an answer that decides,
        in the answering process.
        """
        decided = [wait for wait in self.waits.of_run(run) if wait.phase == "decided"]
        return bool(decided) and self._continue(run, decided) is None

    def _continue(self, run: str, decided: list[Wait]) -> str | None:
        """Resume the tokens parked at ``decided``, under the run's lock; return why not, or None.

        The lock is taken first: under it a token's stored state is settled,
        and only the tokens still parked at one of the decided waits go on. A
        token that went past its wait in its own process (a wait decided as it
        opened, or answered before the token halted) stays where it is: at a
        person's halt, failed, or done. The waits are marked done either way.
        """
        try:
            engine = PersistentWorkflowEngine.from_uuid(run, store=self.store)
            engine.callbacks.replace(self._definition(engine))
            self.store.acquire(run, engine.owner)
            try:
                stored = {token.position: token for token in engine.load_tokens()}
            except BaseException:
                self._release(run, engine.owner)
                raise
            parked = sorted(
                {
                    wait.token
                    for wait in decided
                    if wait.token in stored and parked_on(stored[wait.token]) == wait.id
                }
            )
            if not parked:  # its tokens went past the waits in their own process
                self._release(run, engine.owner)
                self.waits.mark_done(wait.id for wait in decided)
                return _SETTLED
            engine.resume(tokens=parked, stop_on_error=False, stop_on_halt=False)
        except WorkflowLockedError:
            return "another process runs it"  # it, or a later pass, goes on with the wait
        except (StoredRunError, WorkflowNotFoundError) as exc:
            log.warning("run %s cannot go on: %s", run, exc, extra={"workflow_uuid": run})
        except StorageError as exc:
            return self._failed(run, exc)
        except WorkflowError:
            pass  # a token failed: it is stored ERROR, and the run went on past its wait
        except Exception as exc:  # the definition could not be built, for instance
            return self._failed(run, exc)
        self._backoff.pop(run, None)
        self.waits.mark_done(wait.id for wait in decided)
        return None

    def start_scheduled(self, schedule: Schedule, run: str, fire_time: Any) -> None:
        """Start the run of a schedule's fire, with this worker's definitions."""
        start_run(self.store, self._definition, schedule, run, fire_time)

    def _pause(self) -> float:
        """Seconds to wait after an idle pass: ``poll``, or less when a schedule is due sooner."""
        if self.schedules is None:
            return self.poll
        due = self.schedules.next_due()
        if due is None:
            return self.poll
        return max(0.0, min(self.poll, (due - self.store.now()).total_seconds()))

    def _release(self, run: str, owner: str) -> None:
        with self.store.transaction("release the lock", workflow=run) as conn:
            self.store.release(conn, run, owner)

    def _definition(self, engine: PersistentWorkflowEngine) -> Any:
        if callable(self.definitions):
            return self.definitions(engine)
        try:
            return self.definitions[engine.name]
        except KeyError:
            raise WorkflowKeyError(
                f"the worker has no definition for runs called {engine.name!r}"
            ) from None

    def _failed(self, run: str, exc: BaseException) -> str:
        _, failures = self._backoff.get(run, (0.0, 0))
        delay = min(_MAX_BACKOFF, self.poll * 2 ** min(failures + 1, 12))
        self._backoff[run] = (time.monotonic() + delay, failures + 1)
        log.error(
            "run %s could not go on: %s: %s; trying again in %.1f s",
            run,
            type(exc).__name__,
            exc,
            delay,
            extra={"workflow_uuid": run},
        )
        return f"{type(exc).__name__}: {exc}"

    # -- the loop ----------------------------------------------------------------

    def run(
        self,
        *,
        until: Callable[[], bool] | None = None,
        on_pass: Callable[[Pass], None] | None = None,
    ) -> None:
        """Pass after pass until :meth:`stop` (or ``until()`` says so).

        A pass that did something is followed at once by the next; an idle
        one by a pause of ``poll`` seconds.

        :param on_pass: called with what each pass did (the ``workflow
            worker`` command prints it).
        """
        self._stop.clear()
        while not self._stop.is_set() and not (until is not None and until()):
            try:
                done = self.run_once()
            except StorageError as exc:
                log.error("worker pass failed: %s; trying again", exc)
                done = Pass()
            if on_pass is not None:
                on_pass(done)
            if done.idle:
                try:
                    pause = self._pause()
                except StorageError:
                    pause = self.poll
                self._stop.wait(pause)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the run it continues now."""
        self._stop.set()
