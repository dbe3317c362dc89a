"""What the wait commands share: waits as people read them, and going on with a run.

``workflow answer`` and ``workflow worker`` continue a stored run with the
definition it started with, built exactly as ``workflow resume`` builds it
(:func:`~workflow.cli._targets.resume_target`: only the modules the user
allows are imported). :class:`RunDefinitions` is that, as the
``definitions`` of a :class:`~workflow.runtime.Worker`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._commands_run import apply_checkpoint
from ._context import Context, import_storage
from ._output import printable
from ._targets import META_KEY, Target, check_resume_imports, resume_target

if TYPE_CHECKING:
    from workflow.runtime import Wait
    from workflow.storage import PersistentWorkflowEngine, Store

__all__ = [
    "RunDefinitions",
    "answers_text",
    "describe_state",
    "iso",
    "run_state",
    "short",
    "wait_info",
]

log = logging.getLogger("workflow.cli")

#: How many hex digits of an id a table shows.
SHORT = 8


def short(ident: str) -> str:
    """The first :data:`SHORT` hex digits of an id (enough for any command that takes it)."""
    return ident[:SHORT]


def iso(moment: datetime | None) -> str | None:
    """A naive UTC time as ISO 8601 with ``Z`` (seconds), or ``None``."""
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def answers_text(wait: Wait) -> str:
    """``1/2 approvals`` (and the rejections, when there are any)."""
    text = f"{wait.approvals}/{wait.quorum} approvals"
    if wait.rejections:
        reject_quorum = int(wait.spec.get("reject_quorum", 1))
        text += f", {wait.rejections}/{reject_quorum} rejections"
    return text


def wait_info(wait: Wait, runs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Describe a wait as ``waiting``, ``answer`` and ``show`` print it with ``--json``.

    :param runs: the rows of the runs, by uuid, to name each wait's flow.
    """
    run = (runs or {}).get(wait.workflow_uuid) or {}
    info: dict[str, Any] = {
        "id": wait.id,
        "run": wait.workflow_uuid,
        "token": wait.token,
        "step": wait.step,
        "kind": wait.kind,
        "phase": wait.phase,
        "decision": wait.outcome(),
        "due": iso(wait.due),
        "created": iso(wait.created),
        "decided": iso(wait.decided),
    }
    if runs is not None:
        info["flow"] = run.get("definition_name") or run.get("name")
    if wait.kind == "ask":
        info.update(
            message=wait.spec.get("message", ""),
            approvers=wait.approvers,
            quorum=wait.quorum,
            reject_quorum=int(wait.spec.get("reject_quorum", 1)),
            approvals=wait.approvals,
            rejections=wait.rejections,
            answers=[{**answer.as_dict(), "key": answer.key} for answer in wait.answers],
        )
    elif wait.kind == "receive":
        info.update(topic=wait.topic, message=wait.message)
    return info


def run_rows(store: Store, uuids: set[str]) -> dict[str, dict[str, Any]]:
    """The ``name`` and ``definition_name`` of the runs ``uuids``, by uuid."""
    import sqlalchemy as sa

    from workflow.storage.run_rows import workflows

    if not uuids:
        return {}
    query = sa.select(workflows.c.uuid, workflows.c.name, workflows.c.definition_name).where(
        workflows.c.uuid.in_(sorted(uuids))
    )
    with store.transaction("read the names of runs") as conn:
        return {row.uuid: dict(row._mapping) for row in conn.execute(query)}


def run_state(store: Store, uuid: str) -> dict[str, Any]:
    """The run's status now, and the steps its tokens wait at: ``{"uuid", "status", "waiting"}``."""
    from workflow.engine_db import WorkflowStatus
    from workflow.runtime import Waits

    status = WorkflowStatus(store.workflow(uuid)["status"]).name
    waiting = [
        {"id": wait.id, "step": wait.step, "kind": wait.kind, "token": wait.token}
        for wait in Waits(store).waiting(run=uuid, kind=None)
    ]
    return {"uuid": uuid, "status": status, "waiting": waiting}


_OUTCOME = {"COMPLETED": "completed", "ERROR": "failed", "CANCELLED": "cancelled"}


def describe_state(state: dict[str, Any]) -> str:
    """``completed``, ``failed``, ``waiting at step 'x'``, ``halted``, ..."""
    if state["waiting"]:
        steps = ", ".join(dict.fromkeys(repr(wait["step"]) for wait in state["waiting"]))
        return printable(f"waiting at step {steps}")
    status = str(state["status"])
    return _OUTCOME.get(status, status.lower())


class RunDefinitions:
    """The callbacks of a stored run, built as ``workflow resume`` builds them.

    Called with the run's engine by a :class:`~workflow.runtime.Worker`: the
    modules the run was started with must be allowed (``--import``,
    ``$WORKFLOW_IMPORT_ALLOW``) for each run; a definition built once is
    kept for the runs that share it. The engine takes the checkpoint policy
    the run recorded.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._built: dict[tuple[Any, ...], Target] = {}

    def __repr__(self) -> str:
        return f"<RunDefinitions of {len(self._built)} definition(s)>"

    def __call__(self, engine: PersistentWorkflowEngine) -> list[Any]:
        apply_checkpoint(engine, import_storage())
        needed = check_resume_imports(self.ctx, engine)  # for every run: its record is its own
        meta = engine.extra_data.get(META_KEY) or {}
        key = (engine.definition_name, engine.definition_version, meta.get("target"), *needed)
        target = self._built.get(key)
        if target is None:
            target = self._built[key] = resume_target(self.ctx, engine)
        return target.callbacks
