"""``workflow list``, ``workflow show`` and ``workflow db upgrade``."""

from __future__ import annotations

import argparse
from typing import Any

from ._context import Context, import_storage
from ._output import table
from ._report import outcome

__all__ = ["STATUSES", "register"]

#: The workflow statuses ``list --status`` accepts (:class:`~workflow.engine_db.WorkflowStatus`).
STATUSES = ("new", "running", "halted", "error", "completed", "waiting")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``show`` and ``db`` commands."""
    listing = commands.add_parser(
        "list", parents=[common], help="list the stored workflows, newest first"
    )
    listing.add_argument(
        "--status", type=str.lower, choices=STATUSES, help="only workflows with this status"
    )
    listing.add_argument(
        "--limit", type=_positive, metavar="N", help="at most N workflows (default: all)"
    )
    listing.set_defaults(handler=cmd_list)

    show = commands.add_parser(
        "show",
        parents=[common],
        help="show a workflow: its tokens and its status log",
    )
    show.add_argument("uuid", metavar="UUID")
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
    """List the stored workflows."""
    from workflow.engine_db import WorkflowStatus

    args = ctx.args
    status = None if args.status is None else WorkflowStatus[args.status.upper()]
    rows = ctx.store(write=False).workflows(status=status, limit=args.limit)
    result = [
        {
            "uuid": row["uuid"],
            "name": row["name"],
            "status": WorkflowStatus(row["status"]).name,
            "definition": (
                {"name": row["definition_name"], "version": row["definition_version"]}
                if row.get("definition_name")
                else None
            ),
            "created": row["created"],
            "modified": row["modified"],
        }
        for row in rows
    ]

    def text() -> str:
        if not result:
            return "no workflows"
        return table(
            [
                (
                    row["uuid"],
                    row["status"],
                    f"{row['modified']:%Y-%m-%d %H:%M:%S}",
                    row["name"],
                )
                for row in result
            ],
            ["UUID", "STATUS", "MODIFIED (UTC)", "NAME"],
        )

    ctx.out.result(result, text)
    return 0


def _status_changes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from workflow.engine_db import ObjectStatus, WorkflowStatus

    def name(value: int | None, token: bool) -> str | None:
        if value is None:
            return None
        return (ObjectStatus if token else WorkflowStatus)(value).name

    return [
        {
            "created": row["created"],
            "token": row["token_position"],
            "from": name(row["from_status"], row["token_position"] is not None),
            "to": name(row["to_status"], row["token_position"] is not None),
            "callback_pos": row["callback_pos"],
            "message": row["message"],
        }
        for row in rows
    ]


def _render_show(result: dict[str, Any]) -> str:
    definition = result["definition"]
    lines = [
        f"workflow  {result['uuid']}",
        f"name      {result['name']}",
        f"status    {result['status']}",
    ]
    if definition:
        lines.append(f"flow      {definition['name']} version {definition['version']}")
    if result["target"]:
        lines.append(f"target    {result['target']}")
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
            f"{row['created']:%Y-%m-%d %H:%M:%S}",
            "workflow" if row["token"] is None else f"token {row['token']}",
            f"{row['from'] or '-'} -> {row['to']}",
            row["message"],
        )
        for row in result["status_changes"]
    ]
    lines.append(table(log, ["AT (UTC)", "WHAT", "CHANGE", "MESSAGE"]))
    return "\n".join(lines)


def cmd_show(ctx: Context) -> int:
    """Show one workflow with its tokens and its status log."""
    storage = import_storage()
    engine = storage.PersistentWorkflowEngine.from_uuid(ctx.args.uuid, store=ctx.store(write=False))
    result = outcome(engine, data=True)
    result["extra_data"] = engine.extra_data
    result["status_changes"] = _status_changes(engine.status_changes())
    ctx.out.result(result, lambda: _render_show(result))
    return 0


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
