"""``workflow list``, ``workflow show`` and ``workflow db upgrade``."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from ._argtypes import positive
from ._context import Context, ExitCode, import_storage
from ._output import printable, table

__all__ = ["STATUSES", "register"]

#: The workflow statuses ``list --status`` accepts (:class:`~workflow.engine_db.WorkflowStatus`).
STATUSES = ("new", "running", "halted", "error", "completed", "waiting")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``show`` and ``db`` commands."""
    listing = commands.add_parser(
        "list", parents=[common], help="list the stored workflows, newest first"
    )
    listing.add_argument(
        "--status", type=str.lower, choices=STATUSES, help="only workflows with this status"
    )
    listing.add_argument(
        "--limit", type=positive, metavar="N", help="at most N workflows (default: all)"
    )
    listing.set_defaults(handler=cmd_list)

    show = commands.add_parser(
        "show",
        parents=[common],
        help="show a workflow: its tokens and its status log",
    )
    show.add_argument("uuid", metavar="UUID", help="the workflow's uuid, or its first hex digits")
    show.set_defaults(handler=cmd_show)

    db = commands.add_parser("db", parents=[common], help="manage the database")
    db_commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade",
        parents=[common],
        help="create the tables, or migrate them to this version of workflow",
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)


def cmd_list(ctx: Context) -> int:
    """List the stored workflows; exit with 1, naming them, when values cannot be read."""
    from workflow.engine_db import WorkflowStatus

    from ._stored_run import read_workflows

    args = ctx.args
    status = None if args.status is None else WorkflowStatus[args.status.upper()]
    result, problems = read_workflows(ctx.store(write=False), status=status, limit=args.limit)

    def text() -> str:
        if not result:
            return "no workflows"
        return table(
            [(row["uuid"], row["status"], _when(row["modified"]), row["name"]) for row in result],
            ["UUID", "STATUS", "MODIFIED (UTC)", "NAME"],
        )

    ctx.out.result(result, text)
    return _damaged(ctx, "the database", problems)


def _damaged(ctx: Context, what: str, problems: list[str]) -> int:
    """Name the values that could not be read, if any, and return the exit code."""
    if not problems:
        return ExitCode.OK
    listed = "".join(f"\n  {problem}" for problem in problems)
    ctx.out.note(f"{what} has values that cannot be read:{listed}")
    return ExitCode.ERROR


def _render_show(result: dict[str, Any]) -> str:
    definition = result["definition"]
    lines = [
        f"workflow  {result['uuid']}",
        f"name      {printable(result['name'])}",
        f"status    {result['status']}",
    ]
    if definition:
        lines.append(f"flow      {printable(definition['name'])} version {definition['version']}")
    if result["target"]:
        lines.append(f"target    {printable(str(result['target']))}")
    lines += ["", "tokens:"]
    rows = []
    for token in result["tokens"]:
        halt = token.get("halted") or {}
        note = token.get("error") or " ".join(
            part for part in (halt.get("step") and f"[{halt['step']}]", halt.get("message")) if part
        )
        rows.append((token["position"], token["status"], token["callback_pos"], note))
    lines.append(table(rows, ["#", "STATUS", "POSITION", "HALTED AT / LAST ERROR"]))
    lines += ["", "status changes:"]
    log = [
        (
            _when(row["created"]),
            "workflow" if row["token"] is None else f"token {row['token']}",
            f"{row['from'] or '-'} -> {row['to']}",
            row["message"],
        )
        for row in result["status_changes"]
    ]
    lines.append(table(log, ["AT (UTC)", "WHAT", "CHANGE", "MESSAGE"]))
    return "\n".join(lines)


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else str(value)


def cmd_show(ctx: Context) -> int:
    """Show one workflow with its tokens and its status log.

    A damaged run is shown too: what cannot be read is marked, and the
    command exits with 1 listing it.
    """
    from ._stored_run import read_run
    from ._uuids import resolve_uuid

    result, problems = read_run(ctx.store(write=False), resolve_uuid(ctx, ctx.args.uuid))
    if problems:
        result["unreadable"] = problems
    ctx.out.result(result, lambda: _render_show(result))
    return _damaged(ctx, f"workflow {result['uuid']}", problems)


def cmd_db_upgrade(ctx: Context) -> int:
    """Create or migrate the tables of the database."""
    storage = import_storage()
    from workflow.storage.schema import current_revision, head_revision

    store = ctx.open_store()
    before = current_revision(store)
    storage.upgrade(store)
    head = head_revision()
    result = {"database": ctx.shown_url, "from": before, "to": head}
    if before == head:
        text = f"the database {ctx.shown_url} is up to date (revision {head})"
    else:
        text = f"upgraded the database {ctx.shown_url} from revision {before} to {head}"
    ctx.out.result(result, text)
    return 0
