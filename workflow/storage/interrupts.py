"""Stopping a stored run on request: after the current task, or abandoning it.

A run asked to stop with
:meth:`~workflow.storage.PersistentWorkflowEngine.request_stop` (the
``workflow`` command's first Ctrl-C or SIGTERM) stops once the task that
runs now returns: the token is stored after that task, with the tokens that
completed before it, and the lock is released. A :exc:`KeyboardInterrupt`
in the middle of a task (a second Ctrl-C, or Ctrl-C in a Python program)
abandons that task: what completed before it is stored, the token keeps its
last stored state, and the lock is released. Either way the run stays
``RUNNING`` with no lock, and the engine raises
:class:`~workflow.errors.WorkflowInterrupted`: any process may resume it at
once, where a killed process's run waits for its lock to lapse.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import WorkflowInterrupted
from .run_rows import TokenChange

if TYPE_CHECKING:
    from .persistent import PersistentWorkflowEngine
    from .token import Token

__all__ = ["abandon", "stop_after_task"]

log = logging.getLogger(__name__)


def stop_after_task(engine: PersistentWorkflowEngine, obj: Token, reason: str) -> NoReturn:
    """Store ``obj`` after the task that just returned, release the lock, and raise.

    :raises WorkflowInterrupted: always, once the run is stored.
    """
    position = list(engine.state.callback_pos)
    message = (
        f"stopped ({reason}) after task {position} of token {obj.position}; resume the run to go on"
    )
    engine._stop_heartbeat()
    change = TokenChange(obj, ObjectStatus.RUNNING, position)
    engine._writes.interrupt(engine._run_row(position), change, engine._take_unsaved(), message)
    log.info("workflow %s %s", engine.uuid, message)
    raise WorkflowInterrupted(
        f"workflow {engine.uuid} {message}",
        workflow=engine.uuid,
        token=obj.position,
        reason=reason,
    )


def abandon(engine: PersistentWorkflowEngine, exc: BaseException) -> WorkflowInterrupted | None:
    """Store what completed before ``exc`` interrupted the pass, and release the lock.

    The token that was running keeps its last stored state: the task that
    ``exc`` interrupted runs again when the run resumes (with the ``TOKEN``
    policy, the token runs again from its last stored point).

    :returns: the error to raise instead of a :exc:`KeyboardInterrupt`, or
        ``None`` when the engine was not running a pass (nothing to store).
    """
    engine._stop_heartbeat()
    if engine._writes.status is not WorkflowStatus.RUNNING:
        engine._writes.release(quietly=True)
        return None
    reason = str(exc) or type(exc).__name__
    token, position = engine.state.token_pos, list(engine.state.callback_pos)
    message = (
        f"interrupted ({reason}) in task {position} of token {token}; that token goes on "
        "from its last checkpoint when the run resumes"
    )
    try:
        engine._writes.interrupt(engine._run_row(), None, engine._take_unsaved(), message)
    except Exception:  # the database, or an unstorable value: the lock at least goes
        log.warning("could not store the interruption of workflow %s", engine.uuid, exc_info=True)
        engine._writes.release(quietly=True)
    log.info("workflow %s %s", engine.uuid, message)
    return WorkflowInterrupted(
        f"workflow {engine.uuid} {message}",
        workflow=engine.uuid,
        token=token if token >= 0 else None,
        reason=reason,
        abandoned=True,
    )
