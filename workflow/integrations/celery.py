"""Celery carries a work queue's tokens; the database stays the only truth.

For users who already run Celery (over Redis or RabbitMQ): instead of
``workflow worker --queue NAME`` processes claiming tokens from the
database, Celery workers run them. A :class:`CeleryQueue` puts runs on the
work queue (:mod:`workflow.storage.queue`) exactly as
:meth:`~workflow.storage.PersistentWorkflowEngine.enqueue` does, then sends
one Celery message per token. A message names the work item — ``(run,
position, item, epoch)`` — and never carries token data.

The task a message starts claims its item with one conditional write
(:meth:`~workflow.storage.queue.WorkQueue.claim_item`: the item must be
ready, or claimed under a lapsed lease) and runs the token as a database
worker does (:func:`~workflow.runtime.worker.run_leased`), under a lease
with a fencing epoch. A message for an item that is done or held under a
live lease does nothing, so a duplicate, a redelivery or a stale message is
harmless.

Messages that were never sent (the sender died after the commit) or that
came to nothing (a task found its item held by a worker that then died)
leave claimable items behind: :meth:`CeleryQueue.sweep` — a Celery beat
task every ``sweep_every`` seconds — sends them again once they were not
dispatched for ``redispatch_after`` seconds. The sweep also does what a
``workflow worker`` pass does: it fires due timers and puts the tokens
whose waits were decided back on the queue, and sends those at once.

The Celery settings that make this safe are the defaults
(:data:`SAFE_SETTINGS`): late acks, reject on worker lost, prefetch 1,
JSON only; and no message has an ETA or a countdown — timers stay in the
database, so a broker's visibility timeout can never run a task twice.

.. versionadded:: 3.0
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import WorkflowImportError, WorkflowValueError

try:
    import celery
    import kombu.exceptions
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise WorkflowImportError(
        "workflow.integrations.celery needs Celery: install it with "
        "pip install 'workflow-ng[celery]'"
    ) from exc

from ..runtime.worker import Definitions, Worker, run_leased
from ..storage.dispatch import Dispatch, take_dispatches
from ..storage.queue import DEFAULT_QUEUE, WorkQueue, check_queue_name
from ..storage.store import Store

if TYPE_CHECKING:
    from ..storage.persistent import PersistentWorkflowEngine

__all__ = ["SAFE_SETTINGS", "CeleryQueue"]

log = logging.getLogger(__name__)

#: The Celery settings a :class:`CeleryQueue` starts from (``settings`` may
#: add to them). ``task_acks_late`` and ``task_reject_on_worker_lost``: a
#: message is acknowledged only after its task ran, and a pool process that
#: died mid-task gives its message back, so a killed worker's tokens are
#: redelivered at once. ``worker_prefetch_multiplier`` 1: a busy worker
#: holds no messages that an idle one could run. JSON only: nothing is
#: pickled. Results are not kept: the database has them.
SAFE_SETTINGS: Mapping[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_serializer": "json",
    "task_ignore_result": True,
    "broker_connection_retry_on_startup": True,
}

#: How many items one sweep or dispatch stamps and sends per batch.
_BATCH = 1000


class CeleryQueue:
    """The work queue ``queue``, its tokens carried by Celery tasks.

    Build one in a module of yours and point Celery at its :attr:`app`::

        # tasks.py
        from workflow.integrations.celery import CeleryQueue
        orders = CeleryQueue(
            "redis://127.0.0.1:6379/0", "postgresql+psycopg://db/runs",
            {"orders": ORDER_STEPS}, queue="orders",
        )
        app = orders.app

    then ``celery -A tasks worker`` runs the tokens and ``celery -A tasks
    beat`` (or ``worker -B`` on one worker) sweeps; ``orders.enqueue(engine,
    items)`` queues a run.

    :param broker_url: the Celery broker (``redis://...``, ``amqp://...``).
    :param database_url: the database of the runs; each process opens its
        own :class:`~workflow.storage.Store` on first use.
    :param definitions: the runs' callbacks, as a
        :class:`~workflow.runtime.Worker` takes them: ``{run name:
        callbacks}`` or a callable ``(engine) -> callbacks``.
    :param queue: the work queue's name.
    :param celery_queue: the broker's queue the messages go to (default
        ``workflow.`` and ``queue``).
    :param lease_ttl: seconds a claimed token is held without renewal.
    :param redispatch_after: seconds after which a sweep sends again the
        message of an item that is still claimable.
    :param sweep_every: seconds between sweeps of the beat schedule.
    :param main: the Celery app's name.
    :param settings: more Celery settings, applied over :data:`SAFE_SETTINGS`.
    """

    def __init__(
        self,
        broker_url: str,
        database_url: str,
        definitions: Definitions,
        *,
        queue: str = DEFAULT_QUEUE,
        celery_queue: str | None = None,
        lease_ttl: float = 10.0,
        redispatch_after: float = 30.0,
        sweep_every: float = 5.0,
        main: str = "workflow",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.queue = check_queue_name(queue)
        self.celery_queue = check_queue_name(
            f"workflow.{queue}" if celery_queue is None else celery_queue
        )
        for name, value in (
            ("lease_ttl", lease_ttl),
            ("redispatch_after", redispatch_after),
            ("sweep_every", sweep_every),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise WorkflowValueError(
                    f"{name} must be a number of seconds above 0, not {value!r}"
                )
        self.database_url = database_url
        self.definitions = definitions
        self.lease_ttl = float(lease_ttl)
        self.redispatch_after = float(redispatch_after)
        self._store: Store | None = None
        self._worker: Worker | None = None
        self._pid = 0
        self._lock = threading.Lock()

        run_name, sweep_name = f"workflow.{queue}.run_token", f"workflow.{queue}.sweep"
        self.app = celery.Celery(main, broker=broker_url, set_as_current=False)
        self.app.conf.update(
            {
                **SAFE_SETTINGS,
                "task_default_queue": self.celery_queue,
                "beat_schedule": {
                    sweep_name: {
                        "task": sweep_name,
                        "schedule": float(sweep_every),
                        "options": {"queue": self.celery_queue, "expires": float(sweep_every)},
                    }
                },
                **(settings or {}),
            }
        )
        #: The task that runs one token; its arguments are a :class:`Dispatch`'s.
        # Plain functions: Celery checks a message's arguments against their signature.

        def run_token(run: str, position: int, item: int, epoch: int) -> str:
            return self._run_token(run, position, item, epoch)

        def sweep() -> int:
            return self.sweep()

        self.run_task = self.app.task(name=run_name)(run_token)
        #: The task of the beat schedule: :meth:`sweep`.
        self.sweep_task = self.app.task(name=sweep_name)(sweep)

    def __repr__(self) -> str:
        return f"<CeleryQueue {self.queue!r} via {self.celery_queue!r}>"

    @property
    def store(self) -> Store:
        """This process's database (a forked pool process opens its own)."""
        with self._lock:
            if self._store is None or self._pid != os.getpid():
                self._store = Store(self.database_url)
                self._worker = None
                self._pid = os.getpid()
            return self._store

    # -- putting runs on the queue ------------------------------------------------------

    def enqueue(self, engine: PersistentWorkflowEngine, objects: Any) -> int:
        """Store ``objects`` as the new run's tokens, queue it and send a message per token.

        The run and its work items are committed first, then the messages
        are sent: a sender that dies in between leaves the items to the
        sweep. ``engine`` is a new run of the queue's database (its
        :class:`~workflow.storage.Store` may be this process's own). Return
        how many tokens were queued.

        :raises ~workflow.errors.WorkflowAPIError: as
            :meth:`~workflow.storage.PersistentWorkflowEngine.enqueue`, for
            a run that existed already.
        """
        count = engine.enqueue(objects, self.queue)
        self.dispatch(engine.uuid, store=engine.storage)
        return count

    def dispatch(self, run: str | None = None, *, store: Store | None = None) -> int:
        """Send a message for each claimable item (of ``run``) never sent; return how many."""
        work = WorkQueue(store or self.store, self.queue, lease_ttl=self.lease_ttl)
        return self._send_all(lambda: take_dispatches(work, run=run, limit=_BATCH))

    def sweep(self) -> int:
        """Send again the items left claimable ``redispatch_after`` seconds; return how many.

        Also fires the timers that are due and puts the tokens whose waits
        were decided back on the queue (a :class:`~workflow.runtime.Worker`
        pass), then sends those at once. Safe in any number of processes at
        once: each item is stamped by one of them.
        """
        self._waits_worker().run_once()
        sent = self.dispatch()
        work = WorkQueue(self.store, self.queue, lease_ttl=self.lease_ttl)
        older = self.redispatch_after
        return sent + self._send_all(lambda: take_dispatches(work, older_than=older, limit=_BATCH))

    def _send_all(self, take: Any) -> int:
        sent = 0
        while True:
            batch: list[Dispatch] = take()
            sent += self.send(batch)
            if len(batch) < _BATCH:
                return sent

    def send(self, dispatches: Iterable[Dispatch]) -> int:
        """Send one message per item of ``dispatches``, without ETA or countdown.

        A broker that cannot be reached is logged, not raised: the items are
        stored and stamped, and a sweep sends them once ``redispatch_after``
        passed. Return how many were sent.
        """
        sent = 0
        wanted = list(dispatches)
        if not wanted:
            return 0
        try:
            with self.app.producer_or_acquire() as producer:
                for dispatch in wanted:
                    self.run_task.apply_async(
                        args=dispatch.as_args(), queue=self.celery_queue, producer=producer
                    )
                    sent += 1
        except (kombu.exceptions.KombuError, OSError) as exc:
            log.error(
                "could not send %d of %d work items to %s (%s: %s); a sweep sends them again "
                "after %.0f s",
                len(wanted) - sent,
                len(wanted),
                self.celery_queue,
                type(exc).__name__,
                exc,
                self.redispatch_after,
            )
        return sent

    # -- the tasks ---------------------------------------------------------------------

    def _run_token(self, run: str, position: int, item: int, epoch: int) -> str:
        """Claim work item ``item`` if it is claimable and run its token; say what happened."""
        check_message(run, position, item, epoch)
        store = self.store
        work = WorkQueue(store, self.queue, lease_ttl=self.lease_ttl)
        lease = work.claim_item(item, store.new_owner(), run=run, position=position)
        if lease is None:  # done, held by a live worker, or not this queue's: nothing to do
            return "skipped"
        try:
            ran = run_leased(store, lease, self.definitions, lease_ttl=self.lease_ttl)
        except Exception as exc:  # the token went back to the queue; the sweep sends it again
            log.error(
                "token %d of run %s could not run: %s: %s; it is sent again in %.0f s",
                position,
                run,
                type(exc).__name__,
                exc,
                self.redispatch_after,
                extra={"workflow_uuid": run},
            )
            return "failed"
        if ran:  # a parallel step's fork or join may have made items of the run ready
            self.dispatch(run)
        return "ran" if ran else "lost"

    def _waits_worker(self) -> Worker:
        store = self.store
        with self._lock:
            if self._worker is None:
                self._worker = Worker(store, self.definitions)
            return self._worker


def check_message(run: object, position: object, item: object, epoch: object) -> None:
    """Refuse a task message whose arguments are not ``(run uuid, position, item, epoch)``."""
    if (
        not isinstance(run, str)
        or len(run) > 36
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0
            for n in (position, item, epoch)
        )
    ):
        raise WorkflowValueError(
            "a workflow task message has the arguments (run uuid, token position, work item id, "
            f"epoch), not {(run, position, item, epoch)!r}"
        )
