"""Keeping a workflow's lock while a long task runs.

A run renews its lock when it commits; a single task that runs longer than
the store's ``lock_ttl`` would let the lock lapse, and another process could
take the workflow over. :class:`LockHeartbeat` renews the lock from a
daemon thread meanwhile, so only a dead process loses its lock.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from typing import Any

from ..errors import StorageError
from .store import Store

__all__ = ["LockHeartbeat"]

log = logging.getLogger(__name__)


class LockHeartbeat:
    """Renew the lock of workflow ``uid`` held by ``owner`` every third of the lock's time.

    The thread stops by itself when the lock is no longer ``owner``'s (it was
    released, or lost); a database error is logged and retried at the next
    beat. ``guard`` is held while renewing: the engine holds the same lock
    around its own transactions, so that the two never contend for the
    workflow's row.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        store: Store,
        uid: str,
        owner: str,
        *,
        guard: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.store = store
        self.uid = uid
        self.owner = owner
        #: Held while renewing; the engine holds it around its own transactions.
        self.guard: AbstractContextManager[Any] = guard if guard is not None else threading.Lock()
        self.interval = store.lock_ttl / 3
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"workflow-lock-{uid[:8]}", daemon=True
        )

    def __repr__(self) -> str:
        state = "beating" if self._thread.is_alive() else "stopped"
        return f"<LockHeartbeat {self.uid} every {self.interval:g} s, {state}>"

    def start(self) -> None:
        """Start renewing in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and wait for the thread (at most one beat)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(self.interval, 1.0) * 2)

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                with self.guard:
                    held = self.store.renew(self.uid, self.owner)
            except StorageError as exc:  # the next checkpoint reports a real outage
                log.warning("could not renew the lock of workflow %s: %s", self.uid, exc)
                continue
            if not held:
                log.debug("workflow %s is no longer locked by %s", self.uid, self.owner)
                return
