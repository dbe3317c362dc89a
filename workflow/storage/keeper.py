"""One thread per process that renews every lease its tokens hold.

A worker renews the lease of each token it runs every third of the lease's
time. A thread per token would cost its start and its join on every token,
most of which end long before their first renewal; :class:`Keeper` runs
every renewal of the process from one daemon thread, started on first use,
ended after a few seconds with nothing to renew, and started afresh in a
child process after a fork (as Celery's prefork pool makes).

.. versionadded:: 3.0
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

__all__ = ["Beat", "Keeper", "lease_keeper"]

log = logging.getLogger(__name__)

#: Seconds the thread waits for a new beat once it has none, before it ends.
_LINGER = 5.0


class Beat:
    """A callable the :class:`Keeper` calls every ``interval`` seconds until cancelled."""

    __slots__ = ("beat", "cancelled", "interval")

    def __init__(self, beat: Callable[[], bool], interval: float) -> None:
        self.beat = beat
        self.interval = interval
        self.cancelled = False

    def cancel(self) -> None:
        """Call it no more (a call under way finishes)."""
        self.cancelled = True


class Keeper:
    """Call each :class:`Beat` every ``interval`` seconds, from one daemon thread.

    A beat that returns ``False`` (the lease is gone) or raises is not
    called again.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._reset()

    def _reset(self) -> None:
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, Beat]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def every(self, interval: float, beat: Callable[[], bool]) -> Beat:
        """Call ``beat`` every ``interval`` seconds, the first time ``interval`` from now."""
        if self._pid != os.getpid():  # a forked child: the parent's thread is not here
            self._reset()
        entry = Beat(beat, interval)
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + interval, next(self._order), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._wake.notify()
        return entry

    def __len__(self) -> int:
        """How many beats are waiting for their next call (cancelled ones until their time)."""
        with self._wake:
            return len(self._due)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    if not self._due:
                        self._wake.wait(_LINGER)
                        if not self._due:  # nothing to keep: the next beat starts a thread
                            self._thread = None
                            return
                    elif self._due[0][2].cancelled:
                        heapq.heappop(self._due)
                    else:
                        self._wake.wait(self._due[0][0] - time.monotonic())
                _, _, entry = heapq.heappop(self._due)
            if entry.cancelled:
                continue
            try:
                again = entry.beat()
            except Exception:  # the beat logs what it knows; a bug must not stop the others
                log.exception("a lease renewal failed")
                again = False
            if again and not entry.cancelled:
                with self._wake:
                    due = time.monotonic() + entry.interval
                    heapq.heappush(self._due, (due, next(self._order), entry))


#: The keeper of the leases this process's workers hold.
lease_keeper = Keeper("workflow-leases")
