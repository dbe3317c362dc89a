"""``workflow run --key K [--on-conflict refuse|existing]`` and ``--id UUID``: runs that start once.

The key is ``--key``, or the flow's ``"key"`` read from the one input
record; ``--on-conflict`` defaults to the flow's ``"on_conflict"``, then
``refuse``. A refused start exits 1 naming the run that holds the key; a
start that finds its run (``existing``, or ``--id`` of a stored run)
reports that run, says it was not started again, and exits as its state says.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._context import CLIError, Context, ExitCode
from ._output import printable
from ._targets import Target

if TYPE_CHECKING:
    from workflow.storage import PersistentWorkflowEngine

__all__ = ["add_options", "choose_key", "not_started", "refused", "start_options"]


def add_options(run: argparse.ArgumentParser) -> None:
    """Add ``--key``, ``--on-conflict`` and ``--id`` to ``workflow run``."""
    run.add_argument(
        "--key",
        metavar="KEY",
        help="the run's key: while a run of the same name holding KEY is active (not "
        "completed nor cancelled), this one is not started (default: the flow's key)",
    )
    run.add_argument(
        "--on-conflict",
        choices=["refuse", "existing"],
        help="when an active run holds the key: refuse (exit 1) or report that run "
        "(default: the flow's on_conflict, else refuse)",
    )
    run.add_argument(
        "--id",
        metavar="UUID",
        help="the new run's uuid; when a run has it already, that run is reported and "
        "not started again",
    )


def choose_key(ctx: Context, target: Target, records: list[Any]) -> tuple[str | None, str]:
    """Return the run's key and what to do on a conflict, from the options and the flow.

    :raises CLIError: for a key that cannot be read from the input, or options that
        do not go together.
    """
    from workflow.errors import WorkflowValueError
    from workflow.storage.run_keys import check_key

    args = ctx.args
    key: str | None = args.key
    on_conflict = args.on_conflict
    flow = target.flow
    if flow is not None:
        if key is None and "key" in flow.body:
            spec = flow.body["key"]
            if spec.startswith("@") and not spec.startswith("@@") and len(records) != 1:
                raise CLIError(
                    f"flow {printable(repr(flow.name))} takes its run key from the input "
                    f"record ({printable(spec)}), and {len(records)} records were given: one "
                    "run has one key, so give one record, or the key with --key KEY"
                )
            try:
                key = flow.run_key(records[0] if records else None)
            except WorkflowValueError as exc:
                raise CLIError(f"{args.tokens or 'the input'}: token 0: {exc}") from None
        on_conflict = on_conflict or flow.on_conflict
    if key is None and args.on_conflict is not None:
        raise CLIError("--on-conflict says what a start with a key does: give --key KEY too")
    if key is not None:
        try:
            key = check_key(key)
        except WorkflowValueError as exc:
            raise CLIError(f"--key: {exc}") from None
    return key, on_conflict or "refuse"


def start_options(ctx: Context) -> dict[str, Any]:
    """Return ``uuid=`` for ``with_name()``: ``--id``, checked."""
    from workflow.errors import WorkflowValueError
    from workflow.storage.run_keys import check_uuid

    if ctx.args.id is None:
        return {}
    try:
        return {"uuid": check_uuid(ctx.args.id)}
    except WorkflowValueError as exc:
        raise CLIError(f"--id: {exc}") from None


def refused(ctx: Context, exc: Any) -> int:
    """Report a start refused because an active run holds its key (a RunKeyConflictError)."""
    message = (
        f"run {exc.workflow} ({exc.status}) holds the key {exc.key!r} of {exc.scope!r}: "
        f"nothing was started (`workflow show {exc.workflow}` shows it; --on-conflict "
        "existing reports it instead)"
    )
    holder = {"uuid": exc.workflow, "status": exc.status}
    extra = {"started": False, "key": exc.key, "holder": holder}
    ctx.out.error(message, ExitCode.ERROR, extra=extra)
    return int(ExitCode.ERROR)


def not_started(ctx: Context, engine: PersistentWorkflowEngine, key: str | None) -> None:
    """Say that ``engine``'s run existed already and was not started again."""
    why = f"holds the key {key!r}" if key is not None and ctx.args.id is None else "exists"
    ctx.out.note(
        f"run {engine.uuid} ({engine.status.name}) {printable(why)}: it was not started "
        "again; its state follows"
    )
