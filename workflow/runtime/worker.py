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
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..engine_db import WorkflowStatus
from ..errors import (
    LeaseLostError,
    StorageError,
    StoredRunError,
    WorkflowError,
    WorkflowKeyError,
    WorkflowLockedError,
    WorkflowNotFoundError,
    WorkflowValueError,
)
from ..storage.persistent import PersistentWorkflowEngine
from ..storage.queue import Lease, WorkQueue
from ..storage.queued import QueuedTokenEngine
from ..storage.run_checks import tokens_from_rows
from ..storage.store import Store
from .schedules import Fire, Schedule, Schedules, start_run
from .tasks import parked_on
from .waits import Wait, Waits

__all__ = ["Definitions", "Pass", "Worker", "definition_for", "run_leased"]

log = logging.getLogger(__name__)

#: What a worker runs a stored run with: a mapping from the run's name to its
#: callbacks, or a callable given the run's engine that returns them.
Definitions = Mapping[str, Any] | Callable[[PersistentWorkflowEngine], Any]

#: What :meth:`Worker._continue` says when no token was parked at the decided waits.
_SETTLED = "settled: no token waited there"

#: How many queued runs' rows a worker keeps (a run's row is read once for its tokens).
_RUN_ROWS_KEPT = 64
#: Seconds a kept row is used (a run put back on its queue may have changed meanwhile).
_RUN_ROW_AGE = 10.0

#: Seconds a pass runs queued tokens before it looks at timers and decided waits again.
_QUEUE_SLICE = 1.0

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
    #: How many queued tokens it ran (see the ``queue`` of :class:`Worker`).
    ran: int = 0

    @property
    def idle(self) -> bool:
        """Whether the pass found nothing to do."""
        return not (self.fired or self.continued or self.ran or self.scheduled)


def definition_for(definitions: Definitions, engine: PersistentWorkflowEngine) -> Any:
    """The callbacks ``definitions`` gives the run of ``engine``.

    :raises WorkflowKeyError: when a mapping has no entry for the run's name.
    """
    if callable(definitions):
        return definitions(engine)
    try:
        return definitions[engine.name]
    except KeyError:
        raise WorkflowKeyError(
            f"the worker has no definition for runs called {engine.name!r}"
        ) from None


def run_leased(
    store: Store,
    lease: Lease,
    definitions: Definitions,
    *,
    lease_ttl: float,
    run_row: dict[str, Any] | None = None,
    worker_name: str | None = None,
) -> bool:
    """Run the token ``lease`` holds, from where it stopped; tell whether its lease held.

    What a :class:`Worker` does with each token it claimed, and what a
    Celery task does with the one its message named
    (:mod:`workflow.integrations.celery`). A task that fails or halts is
    stored as in any run and ends the token. A lease taken over meanwhile
    (the worker stalled past its lease) is logged and ``False`` returned:
    the other worker goes on with the token.

    :param run_row: the run's row, when the caller read it already (see
        :class:`~workflow.storage.queued.QueuedTokenEngine`).
    :param worker_name: what the step trace says ran the task (default: ``host:pid``).
    :raises Exception: what went wrong when the token could not be run at
        all (no definition, a damaged token, the database); the token is
        given back to the queue first (ready at once), if the lease holds.
        A token of a run cancelled meanwhile is not (its work items were
        stopped): ``False`` is returned.

    .. versionadded:: 3.0
    """
    engine: QueuedTokenEngine | None = None
    try:
        engine = QueuedTokenEngine(store, lease, lease_ttl=lease_ttl, run_row=run_row)
        if worker_name is not None:
            engine.trace_worker = worker_name
        engine.callbacks.replace(definition_for(definitions, engine))
        engine.run_token()
    except LeaseLostError as exc:
        log.warning("%s", exc, extra={"workflow_uuid": lease.run})
        return False
    except StoredRunError:
        if _cancelled(store, lease.run):  # its items were stopped: nothing to give back
            log.info("run %s was cancelled", lease.run, extra={"workflow_uuid": lease.run})
            return False
        if engine is not None:
            engine._writes.release(quietly=True)
        raise
    except Exception:
        if engine is not None:
            engine._writes.release(quietly=True)
        else:
            try:
                WorkQueue(store, lease.queue, lease_ttl=lease_ttl).release(lease)
            except StorageError:
                log.debug("could not give back %s", lease, exc_info=True)
        raise
    return True


def _cancelled(store: Store, run: str) -> bool:
    try:
        return bool(store.workflow(run)["status"] == WorkflowStatus.CANCELLED.value)
    except StorageError:
        return False


class Worker:
    """Fire due timers and continue the runs whose waits were decided.

    :param store: the database.
    :param definitions: the runs' callbacks: ``{run name: callbacks}`` or a
        callable ``(engine) -> callbacks`` (the ``workflow`` command passes
        one that rebuilds a run's flow as ``workflow resume`` does).
    :param batch: how many timers, and how many decided waits, a pass takes.
    :param poll: seconds between passes that found nothing to do; a pass
        starts earlier when a schedule is due sooner.
    :param queue: the name of a work queue (:mod:`workflow.storage.queue`)
        whose tokens this worker runs too; ``None``: none.
    :param concurrency: how many queued tokens it runs at once (threads).
    :param lease_ttl: seconds a claimed token is held without renewal: a
        token of a worker that died is taken over once this lapsed.
    :param name: what the step trace says ran the tasks of the runs this
        worker continues (default: ``host:pid``).
    :param schedules: whether each pass also fires the schedules that are
        due (:class:`~workflow.runtime.Schedules`), starting their runs here.

    .. versionchanged:: 3.0
       Added ``queue``, ``concurrency``, ``lease_ttl``, ``name`` and ``schedules``
       (a pass fires the schedules that are due).
    """

    def __init__(
        self,
        store: Store,
        definitions: Definitions,
        *,
        batch: int = 500,
        poll: float = 0.2,
        queue: str | None = None,
        concurrency: int = 1,
        lease_ttl: float = 10.0,
        name: str | None = None,
        schedules: bool = True,
    ) -> None:
        if not isinstance(concurrency, int) or not 1 <= concurrency <= 256:
            raise WorkflowValueError(
                f"concurrency must be a whole number from 1 to 256, not {concurrency!r}"
            )
        url = store.sql_engine.url
        if concurrency > 1 and url.get_backend_name() == "sqlite" and not url.database:
            raise WorkflowValueError(
                "an in-memory SQLite database is a new, empty one in every thread: "
                "a worker with concurrency above 1 needs a database file or a server"
            )
        self.store = store
        self.name = name
        self.waits = Waits(store)
        self.schedules = Schedules(store) if schedules else None
        self.definitions = definitions
        self.batch = batch
        self.poll = poll
        self.concurrency = concurrency
        #: The work queue this worker takes tokens from, if any.
        self.queue = None if queue is None else WorkQueue(store, queue, lease_ttl=lease_ttl)
        #: The name this worker claims tokens under.
        self.owner = store.new_owner()
        self._stop = threading.Event()
        self._backoff: dict[str, tuple[float, int]] = {}
        self._threads: ThreadPoolExecutor | None = None
        #: The rows of the queued runs whose tokens this worker ran lately.
        self._run_rows: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()

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
        if self.queue is not None:
            # Tokens until none is left, or for at most a second: then timers again.
            until = time.monotonic() + _QUEUE_SLICE
            while not self._stop.is_set() and time.monotonic() < until:
                ran = self._work(self.queue)
                done.ran += ran
                if not ran:
                    break
        return done

    # -- queued tokens -------------------------------------------------------------

    def _work(self, queue: WorkQueue) -> int:
        """Claim up to ``concurrency`` tokens of ``queue`` and run them; return how many ran."""
        leases = queue.claim(self.owner, limit=self.concurrency)
        if len(leases) <= 1:
            return sum(self._run_leased(lease) for lease in leases)
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="workflow")
        return sum(self._threads.map(self._run_leased, leases))

    def _run_leased(self, lease: Lease) -> bool:
        """Run the token ``lease`` holds; tell whether it ran (its lease held to the end)."""
        try:
            row, read_at = self._run_rows.get(lease.run, (None, 0.0))
            if row is None or time.monotonic() - read_at > _RUN_ROW_AGE:
                row = self.store.workflow(lease.run)
                self._run_rows[lease.run] = (row, time.monotonic())
                while len(self._run_rows) > _RUN_ROWS_KEPT:
                    self._run_rows.popitem(last=False)
            return run_leased(
                self.store,
                lease,
                self.definitions,
                lease_ttl=self._lease_ttl,
                run_row=row,
                worker_name=self.name,
            )
        except Exception as exc:  # no definition, a damaged token, the database
            self._failed(lease.run, exc)
            return False

    @property
    def _lease_ttl(self) -> float:
        return 10.0 if self.queue is None else self.queue.lease_ttl

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
            queue = WorkQueue.queue_of(self.store, run)
            if queue is not None:
                return self._requeue(run, queue, decided)
            engine = PersistentWorkflowEngine.from_uuid(run, store=self.store)
            if self.name is not None:
                engine.trace_worker = self.name
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

    def _requeue(self, run: str, queue: str, decided: list[Wait]) -> str | None:
        """Put the tokens of queued ``run`` parked at ``decided`` back on ``queue``."""
        parked = []
        for wait in decided:
            row = self.store.token_row(run, wait.token)
            if row is not None and parked_on(tokens_from_rows(run, [row])[0]) == wait.id:
                parked.append(wait.token)
        WorkQueue(self.store, queue).requeue(run, parked)
        self.waits.mark_done(wait.id for wait in decided)
        return None if parked else _SETTLED

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
        return definition_for(self.definitions, engine)

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
