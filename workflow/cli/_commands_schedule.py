"""``workflow schedule``: cron schedules that start runs (add, list, pause, resume, remove,
trigger, backfill).

Each subcommand calls :class:`~workflow.runtime.Schedules`; ``trigger`` and
``backfill`` start their runs in this process as ``workflow worker`` does
(:class:`~workflow.cli._waits.RunDefinitions`). A running ``workflow
worker`` fires the schedules.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._context import CLIError, Context, ExitCode, import_storage
from ._inputs import parse_json, read_tokens
from ._output import table
from ._times import since, until
from ._waits import RunDefinitions

if TYPE_CHECKING:
    from workflow.runtime import Fire, Schedule, Schedules

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``schedule`` command and its subcommands."""
    schedule = commands.add_parser(
        "schedule",
        parents=[common],
        help="cron schedules that start runs; `workflow worker` fires them",
        description="Add, list, pause, resume, remove, trigger and backfill cron schedules. "
        "Every `workflow worker` fires the schedules that are due; each fire time starts "
        "at most one run, however many workers run.",
    )
    subcommands = schedule.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND")
    schedule.set_defaults(handler=_missing)

    add = subcommands.add_parser(
        "add",
        parents=[common],
        help="add a schedule (or those a flow file declares)",
        description="Add the schedule NAME: FLOW over the input records on the cron CRON read "
        "in --timezone. With --from-flow FILE, store the flow and add (or replace) every "
        "schedule its 'schedules' list declares.",
    )
    add.add_argument("name", nargs="?", metavar="NAME", help="the schedule's name")
    add.add_argument("--cron", metavar="CRON", help='a cron expression, e.g. "0 6 * * 1-5"')
    add.add_argument(
        "--timezone", default="UTC", metavar="ZONE", help="an IANA time zone (default: UTC)"
    )
    add.add_argument(
        "--flow",
        metavar="FLOW",
        help="what to run: def:NAME[@VERSION] (a stored definition) or module:attribute",
    )
    inputs = add.add_mutually_exclusive_group()
    inputs.add_argument("--tokens", metavar="FILE", help="the input records, as `workflow run`")
    inputs.add_argument("--data", metavar="JSON", help="one input record")
    add.add_argument("--overlap", choices=["skip", "queue", "allow"], default="skip")
    add.add_argument("--catch-up", choices=["none", "latest", "all"], default="none")
    add.add_argument(
        "--catch-up-window",
        default="P1D",
        metavar="DURATION",
        help="how far back missed fire times are caught up, ISO 8601 (default: P1D)",
    )
    add.add_argument("--replace", action="store_true", help="replace a schedule of that name")
    add.add_argument("--from-flow", metavar="FILE", help="add the schedules a flow file declares")
    add.set_defaults(handler=cmd_add)

    listing = subcommands.add_parser("list", parents=[common], help="list the schedules")
    listing.set_defaults(handler=cmd_list)
    for name, what in (
        ("pause", "stop firing a schedule"),
        ("resume", "fire a paused schedule again, from its next fire time"),
        ("remove", "remove a schedule and its history (its runs stay)"),
        ("trigger", "start a run of a schedule now"),
    ):
        sub = subcommands.add_parser(name, parents=[common], help=what)
        sub.add_argument("name", metavar="NAME", help="the schedule's name")
        sub.set_defaults(handler=cmd_change)
    backfill = subcommands.add_parser(
        "backfill",
        parents=[common],
        help="start a run for each fire time in a past range",
        description="Start a run for each fire time of NAME from --from to --to (UTC unless "
        "the times say their offset); fire times that have a record are left alone.",
    )
    backfill.add_argument("name", metavar="NAME", help="the schedule's name")
    backfill.add_argument("--from", dest="since", type=since, required=True, metavar="TIME")
    backfill.add_argument("--to", dest="until", type=until, required=True, metavar="TIME")
    backfill.set_defaults(handler=cmd_backfill)


def _missing(ctx: Context) -> int:
    raise CLIError("give a subcommand: add, list, pause, resume, remove, trigger or backfill")


def _schedules(ctx: Context) -> Schedules:
    import_storage()
    from workflow.runtime import Schedules

    return Schedules(ctx.store())


def _start(ctx: Context) -> Any:
    from workflow.runtime import Worker

    return Worker(ctx.store(), RunDefinitions(ctx), schedules=False).start_scheduled


def _value_error(option: str, exc: Exception) -> CLIError:
    return CLIError(f"{option}: {exc}")


def cmd_add(ctx: Context) -> int:
    """Add one schedule, or the schedules of ``--from-flow``."""
    args = ctx.args
    if args.from_flow is not None:
        return _add_from_flow(ctx)
    if not args.name or args.cron is None or args.flow is None:
        raise CLIError("give NAME, --cron and --flow (or --from-flow FILE)")
    from workflow.errors import WorkflowValueError
    from workflow.runtime import parse_duration
    from workflow.runtime._cron import check_cron, check_timezone

    try:
        check_cron(args.cron, what="--cron")
        check_timezone(args.timezone, what="--timezone")
        window = parse_duration(args.catch_up_window, what="--catch-up-window")
    except WorkflowValueError as exc:
        raise CLIError(str(exc)) from None
    if not args.flow.startswith("def:") and ":" not in args.flow:
        raise CLIError(f"--flow {args.flow!r} is not def:NAME[@VERSION] or module:attribute")
    records = [parse_json(args.data, "--data")] if args.data is not None else None
    if args.tokens is not None:
        records = read_tokens(args.tokens)
    try:
        added = _schedules(ctx).add(
            args.name,
            cron=args.cron,
            timezone=args.timezone,
            flow=args.flow,
            tokens=records,
            overlap=args.overlap,
            catch_up=args.catch_up,
            catch_up_window=window,
            replace=args.replace,
        )
    except WorkflowValueError as exc:
        raise CLIError(str(exc)) from None
    return _show(ctx, [added])


def _add_from_flow(ctx: Context) -> int:
    """Store the flow of ``--from-flow`` and add (replace) each schedule it declares."""
    from workflow.errors import WorkflowValueError
    from workflow.flows import flow_schedules
    from workflow.storage import Definitions

    from ._targets import load_flow_file

    flow = load_flow_file(ctx, ctx.args.from_flow)
    declared = flow_schedules(flow.body)
    if not declared:
        raise CLIError(f"{Path(ctx.args.from_flow)} declares no 'schedules'")
    definition = Definitions(ctx.store()).put(flow.name, flow.body)
    schedules = _schedules(ctx)
    added = []
    for spec in declared:
        try:
            added.append(schedules.add(flow=f"def:{definition.name}", replace=True, **spec))
        except WorkflowValueError as exc:
            raise CLIError(f"flow {flow.name!r}: {exc}") from None
    return _show(ctx, added)


def _row(schedule: Schedule) -> list[Any]:
    next_at = "paused" if schedule.paused else schedule.next_fire_at.isoformat() + "Z"
    return [
        schedule.name,
        schedule.cron,
        schedule.timezone,
        schedule.flow,
        schedule.overlap,
        schedule.catch_up,
        next_at,
    ]


def _show(ctx: Context, schedules: list[Schedule]) -> int:
    result = [schedule.as_dict() for schedule in schedules]
    headers = ["NAME", "CRON", "TIMEZONE", "FLOW", "OVERLAP", "CATCH-UP", "NEXT (UTC)"]
    ctx.out.result(
        result,
        lambda: (
            table([_row(schedule) for schedule in schedules], headers)
            if schedules
            else "no schedules"
        ),
    )
    return ExitCode.OK


def cmd_list(ctx: Context) -> int:
    """List every schedule."""
    return _show(ctx, _schedules(ctx).list())


def cmd_change(ctx: Context) -> int:
    """``pause``, ``resume``, ``remove`` or ``trigger`` one schedule."""
    args = ctx.args
    schedules = _schedules(ctx)
    command = args.schedule_command
    if command == "pause":
        return _show(ctx, [schedules.pause(args.name)])
    if command == "resume":
        return _show(ctx, [schedules.resume(args.name)])
    if command == "remove":
        schedules.remove(args.name)
        ctx.out.result({"removed": args.name}, f"removed schedule {args.name!r}")
        return ExitCode.OK
    return _fires(ctx, [schedules.trigger(args.name, start=_start(ctx))])


def cmd_backfill(ctx: Context) -> int:
    """Start a run for each fire time of a past range."""
    from workflow.errors import WorkflowValueError

    args = ctx.args
    try:
        fires = _schedules(ctx).backfill(args.name, args.since, args.until, start=_start(ctx))
    except WorkflowValueError as exc:
        raise CLIError(str(exc)) from None
    return _fires(ctx, fires)


def _fires(ctx: Context, fires: list[Fire]) -> int:
    result = [fire.as_dict() for fire in fires]
    rows = [[fire.schedule, fire.as_dict()["fire_time"], fire.outcome, fire.run] for fire in fires]
    ctx.out.result(
        result,
        lambda: (
            table(rows, ["SCHEDULE", "FIRE TIME (UTC)", "OUTCOME", "RUN"])
            if fires
            else "no fire time to start"
        ),
    )
    failed = any(fire.outcome == "failed" for fire in fires)
    return ExitCode.ERROR if failed else ExitCode.OK
