"""The changes a person makes to a stored run between passes, as engine methods.

:class:`RunFixes` is a part of
:class:`~workflow.storage.PersistentWorkflowEngine`, kept in a module of its
own: replacing a token's data, retrying a failed token from a task, and
cancelling the run. Each takes the run's lock (unless the engine holds it)
and writes through :mod:`workflow.storage.run_writes` or
:mod:`workflow.storage.run_fixes`.

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine_db import WorkflowStatus
from . import run_checks
from .run_fixes import refuse_cancelled, retry_token

if TYPE_CHECKING:
    from .._callbacks import Callbacks
    from .run_writes import RunWriter
    from .store import Store

__all__ = ["RunFixes"]


class RunFixes:
    """The changes a person makes to a stored run (a part of the persistent engine)."""

    storage: Store
    uuid: str
    owner: str
    lock_wait: float
    callbacks: Callbacks
    _writes: RunWriter
    #: Read the run's status again (:class:`PersistentWorkflowEngine`'s method).
    _reload_status: Callable[[], WorkflowStatus]

    def update_token(self, position: int, data: Any, *, by: str | None = None) -> None:
        """Replace the stored data of the token at ``position``, before :meth:`resume`.

        Meant for a person fixing a halted or failed token: the token keeps its
        status and resume point, the change is logged in the status log as
        ``'data updated'``, and ``data`` is stored through the store's codec.
        Tokens that did not start, halted, failed or wait may be changed;
        ``by`` names who changed it in the log (``'data updated by alice'``).

        The change takes the workflow's lock (waiting ``lock_wait`` seconds),
        so it never races a run in another process; call it between runs.

        :raises IndexError: when the run has no token at ``position``.
        :raises ~workflow.errors.WorkflowObjectStatusError: when the token is
            ``RUNNING`` or ``COMPLETED``.
        :raises ~workflow.errors.WorkflowLockedError: when another process
            runs the workflow.
        :raises ~workflow.errors.TokenEncodingError: when ``data`` cannot be
            stored as JSON.
        :raises ~workflow.errors.StoredRunError: when the run was cancelled.

        .. versionadded:: 3.0
        .. versionchanged:: 3.0
           Added ``by``; a cancelled run's tokens are refused.
        """
        message = f"data updated by {by}" if by else "data updated"
        self._while_locked(
            lambda held: self._writes.update_token(position, data, keep_lock=held, message=message)
        )

    def retry_token(
        self, position: int, *, at: list[int] | None = None, by: str | None = None
    ) -> None:
        """Make the failed token at ``position`` run again from the task at ``at``.

        The token stays ``ERROR`` until :meth:`resume` runs it: from the task
        that failed (``at=None``) or from the task at position ``at`` (a
        path into the callback tree, e.g. ``[0]``). The move is logged in the
        status log as ``'retry from [0]'`` (with ``by``, who asked). It
        takes the run's lock as :meth:`update_token` does.

        :raises ~workflow.errors.StoredRunError: when the token is not
            ``ERROR``, ``at`` is not in the definition, or the run was cancelled.
        :raises ~workflow.errors.WorkflowLockedError: when another process
            runs the workflow.

        .. versionadded:: 3.0
        """
        if at is not None and isinstance(self.callbacks.get("*"), list):
            run_checks.check_path(self.uuid, position, self.callbacks.get("*"), at)
        shown = "the task that failed" if at is None else str(at)
        message = f"retry from {shown}" + (f" (by {by})" if by else "")
        self._while_locked(
            lambda held: retry_token(self.storage, self.uuid, self.owner, position, at, message)
        )

    def cancel(self, reason: str = "", *, by: str | None = None) -> bool:
        """Stop this run for good; see :meth:`Store.cancel <workflow.storage.Store.cancel>`.

        :returns: ``True`` when cancelled now, ``False`` when it already was.

        .. versionadded:: 3.0
        """
        cancelled = self.storage.cancel(self.uuid, reason, owner=self.owner, by=by)
        self._writes.status = WorkflowStatus.CANCELLED
        return cancelled

    def _while_locked(self, write: Callable[[bool], None]) -> None:
        """Call ``write(held)`` holding the run's lock; release it after unless it was held."""
        held = self.storage.workflow(self.uuid)["lock_owner"] == self.owner
        self.storage.acquire(self.uuid, self.owner, wait=self.lock_wait)
        try:
            refuse_cancelled(self.uuid, self._reload_status().value, "change")
            write(held)
        except BaseException:
            if not held:
                self._writes.release(quietly=True)
            raise
        if not held:
            self._writes.release(quietly=True)
