"""``workflow list``, ``workflow show`` and ``workflow db upgrade``."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from workflow.engine_db import WorkflowStatus

from ._argtypes import positive
from ._commands_trace import render_summary, summary_dict
from ._context import CLIError, Context, ExitCode, import_storage
from ._output import dumps, printable, table
from ._report import next_lines
from ._times import since, until

__all__ = ["DEFAULT_LIMIT", "STATUSES", "SYNONYMS", "register"]

#: Other names ``list --status`` accepts for a status.
SYNONYMS = {"failed": "error", "canceled": "cancelled"}
#: The workflow statuses ``list --status`` accepts (:class:`~workflow.engine_db.WorkflowStatus`).
STATUSES = (*(status.name.lower() for status in WorkflowStatus), *SYNONYMS)
#: How many runs ``workflow list`` shows when ``--limit`` is not given.
DEFAULT_LIMIT = 100


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``show`` and ``db`` commands."""
    listing = commands.add_parser(
        "list", parents=[common], help="list the stored workflows, newest first"
    )
    listing.add_argument(
        "--status",
        type=str.lower,
        choices=STATUSES,
        help="only workflows with this status (failed: error)",
    )
    listing.add_argument(
        "--flow",
        metavar="NAME",
        help="only the runs of the stored definition (flow) NAME, or of that workflow name",
    )
    listing.add_argument(
        "--since",
        type=since,
        metavar="WHEN",
        help="only runs created at or after WHEN: an ISO 8601 date or time, UTC unless it "
        "gives its offset (2026-12-05, 2026-12-05T14:30, 2026-12-05T14:30:00+01:00)",
    )
    listing.add_argument(
        "--until",
        type=until,
        metavar="WHEN",
        help="only runs created before WHEN (a date alone: up to the end of that day)",
    )
    listing.add_argument(
        "--limit",
        type=positive,
        metavar="N",
        default=DEFAULT_LIMIT,
        help=f"at most N workflows, the newest (default: {DEFAULT_LIMIT})",
    )
    listing.set_defaults(handler=cmd_list)

    show = commands.add_parser(
        "show",
        parents=[common],
        help="show a workflow: its tokens, its status log and a summary of its trace",
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
    from ._stored_run import read_workflows

    args = ctx.args
    status = None
    if args.status is not None:
        status = WorkflowStatus[SYNONYMS.get(args.status, args.status).upper()]
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise CLIError(
            f"--since ({args.since:%Y-%m-%d %H:%M:%S} UTC) must come before --until "
            f"({args.until:%Y-%m-%d %H:%M:%S} UTC)"
        )
    limit = args.limit
    result, problems = read_workflows(
        ctx.store(write=False),
        status=status,
        limit=limit + 1,  # one more tells whether there are more
        flow=args.flow,
        since=args.since,
        until=args.until,
    )
    more = len(result) > limit
    result = result[:limit]

    def text() -> str:
        if not result:
            return "no workflows"
        return table(
            [
                (
                    row["uuid"],
                    row["status"],
                    _counts(row["counts"]),
                    _when(row["modified"]),
                    row["name"],
                )
                for row in result
            ],
            ["UUID", "STATUS", "TOKENS", "MODIFIED (UTC)", "NAME"],
        )

    ctx.out.result(result, text)
    if more:
        ctx.out.note(f"showing the newest {limit} workflows: --limit N shows more")
    return _damaged(ctx, "the database", problems)


def _counts(counts: dict[str, int]) -> str:
    """``3: 1 completed, 2 error`` (the total, then each status)."""
    parts = [f"{number} {name}" for name, number in counts.items() if name != "total"]
    return f"{counts['total']}" + (f": {', '.join(parts)}" if parts else "")


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
        f"outcome   {result['outcome']} (exit code {result['exit_code']})",
    ]
    lock = result.get("lock")
    if lock:
        state = "live" if lock["live"] else "lapsed"
        holder = printable(str(lock["owner"]))
        lines.append(f"lock      {holder} until {_when(lock['expires'])} UTC ({state})")
    if definition:
        lines.append(f"flow      {printable(definition['name'])} version {definition['version']}")
    if result["target"]:
        lines.append(f"target    {printable(str(result['target']))}")
    trace = result.get("trace")
    if trace is not None:
        summary = render_summary(trace)
        lines.append(f"trace     {summary} (workflow trace {result['uuid'][:8]})")
    lines += ["", "tokens:"]
    rows = []
    for token in result["tokens"]:
        halt = token.get("halted") or {}
        failed_at = token.get("step") or token.get("task")
        note = token.get("error") or " ".join(
            part for part in (halt.get("step") and f"[{halt['step']}]", halt.get("message")) if part
        )
        if failed_at and token.get("error"):
            note = f"[{failed_at}] {note}"
        branch = token.get("branch_of")
        if branch:
            note = f"(branch {branch['index']} of token {branch['token']}) {note}".rstrip()
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
    lines += _render_waits(result.get("waits") or [])
    following = next_lines(result)
    if following:
        lines += ["", *following]
    return "\n".join(lines)


def _render_waits(waits: list[dict[str, Any]]) -> list[str]:
    """The waits of a run and every answer given, when it has any."""
    if not waits:
        return []
    rows = [
        (
            wait["id"][:8],
            wait["token"],
            wait["step"],
            wait["kind"],
            wait["phase"],
            wait["decision"] or "-",
            wait["due"] or "-",
        )
        for wait in waits
    ]
    headers = ["ID", "TOKEN", "STEP", "KIND", "PHASE", "DECISION", "DUE (UTC)"]
    lines = ["", "waits:", table(rows, headers)]
    answers = [
        (
            wait["id"][:8],
            str(answer["at"])[:19].replace("T", " "),
            answer["by"],
            answer["decision"],
            _data(answer["data"]),
        )
        for wait in waits
        for answer in wait.get("answers") or []
    ]
    if answers:
        lines += ["", "answers:", table(answers, ["WAIT", "AT (UTC)", "BY", "ANSWER", "DATA"])]
    return lines


def _data(value: Any) -> str:
    if value is None:
        return ""
    text = dumps(value, indent=None)
    return text if len(text) <= 60 else text[:57] + "..."


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else str(value)


def cmd_show(ctx: Context) -> int:
    """Show one workflow with its tokens and its status log.

    A damaged run is shown too: what cannot be read is marked, and the
    command exits with 1 listing it.
    """
    from workflow.storage.trace import summarize

    from ._stored_run import read_run
    from ._uuids import resolve_uuid

    store = ctx.store(write=False)
    result, problems = read_run(store, resolve_uuid(ctx, ctx.args.uuid))
    result["trace"] = summary_dict(summarize(store.trace(result["uuid"])))
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
