"""``workflow trace``: the steps a run ran, as a timeline; ``--prune`` deletes old trace rows.

The rows come from :meth:`~workflow.storage.Store.trace`: one per task a
token ran (its step, attempt, outcome, duration and who ran it), with the
answers given to the run's ``ask`` steps merged in by time.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._argtypes import count
from ._context import CLIError, Context, ExitCode
from ._output import dumps, table
from ._times import parse_when

if TYPE_CHECKING:
    from workflow.storage.trace import TraceRow, TraceSummary

__all__ = ["older_than", "register", "render_summary", "summary_dict"]


def older_than(text: str) -> timedelta | datetime:
    """The ``--prune`` option: an ISO 8601 duration (``P30D``) or a date or time (UTC)."""
    if text.strip().upper().startswith("P"):
        from workflow.errors import WorkflowValueError
        from workflow.runtime._time import parse_duration

        try:
            return parse_duration(text, what="--prune")
        except WorkflowValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse_when(text, end_of_day=False)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``trace`` command."""
    trace = commands.add_parser(
        "trace",
        parents=[common],
        help="show the steps a run ran, as a timeline (or prune old trace rows)",
        description="Show the step trace of a stored run: every task its tokens ran, when, "
        "for how long, how it ended and who ran it, with the answers to its ask steps. "
        "--prune OLDER_THAN deletes the trace rows of every run that ended before then.",
    )
    trace.add_argument(
        "uuid", metavar="UUID", nargs="?", help="the run's uuid, or its first hex digits"
    )
    trace.add_argument("--token", type=count, metavar="N", help="only the token at position N")
    trace.add_argument(
        "--prune",
        type=older_than,
        metavar="OLDER_THAN",
        help="delete the trace rows (of all runs) of tasks that ended before OLDER_THAN: "
        "an ISO 8601 duration before now (P30D) or a date or time, UTC (2026-11-01)",
    )
    trace.set_defaults(handler=cmd_trace)


def cmd_trace(ctx: Context) -> int:
    """Print a run's trace, or prune the trace of all runs."""
    args = ctx.args
    if args.prune is not None:
        if args.uuid is not None or args.token is not None:
            raise CLIError("--prune deletes the old rows of every run: give no UUID or --token")
        return _prune(ctx, args.prune)
    if args.uuid is None:
        raise CLIError("give the UUID of the run to show (or --prune OLDER_THAN)")
    from workflow.storage.trace import summarize

    from ._uuids import resolve_uuid

    store = ctx.store(write=False)
    uuid = resolve_uuid(ctx, args.uuid)
    rows = store.trace(uuid, token=args.token)
    summary = summarize(rows)
    result = {
        "uuid": uuid,
        "token": args.token,
        "summary": summary_dict(summary),
        "trace": [row.as_dict() for row in rows],
    }
    ctx.out.result(result, lambda: _render(uuid, rows, summary))
    return ExitCode.OK


def _prune(ctx: Context, older: timedelta | datetime) -> int:
    store = ctx.store(write=True)
    before = store.now() - older if isinstance(older, timedelta) else older
    deleted = store.prune_trace(before=before)
    result = {"deleted": deleted, "before": before}
    text = f"deleted {deleted} trace row{'' if deleted == 1 else 's'} of tasks that ended "
    ctx.out.result(result, text + f"before {before:%Y-%m-%d %H:%M:%S} UTC")
    return ExitCode.OK


def _render(uuid: str, rows: list[TraceRow], summary: TraceSummary) -> str:
    if not rows:
        return f"run {uuid} has no trace (yet, or it was pruned, or the trace was off)"
    lines = [f"run {uuid}", ""]
    cells: list[tuple[Any, ...]] = []
    for row in rows:
        if row.kind == "answer":
            note = "" if row.data is None else dumps(row.data, indent=None)
            answer = f"answer: {row.outcome}"
            cells.append(
                (_at(row.started), row.token, row.step, "", answer, "", row.worker, _short(note))
            )
            continue
        note = row.error_message or ""
        if row.error_type:
            note = f"{row.error_type}: {note}"
        cells.append(
            (
                _at(row.started),
                row.token,
                row.step,
                row.attempt,
                row.outcome,
                _took(row.duration),
                row.worker,
                _short(note),
            )
        )
    headers = ["STARTED (UTC)", "TOKEN", "STEP", "TRY", "OUTCOME", "TOOK", "BY", "NOTE"]
    lines.append(table(cells, headers))
    lines += ["", render_summary(summary_dict(summary))]
    return "\n".join(lines)


def render_summary(summary: dict[str, Any]) -> str:
    """``5 steps (1 failed), 2 answers, 12.0 ms in tasks``: a :func:`summary_dict` in a line."""
    steps, answers = summary["steps"], summary["answers"]
    text = f"{steps} step{'' if steps == 1 else 's'} ({summary['failures']} failed)"
    if answers:
        text += f", {answers} answer{'' if answers == 1 else 's'}"
    return f"{text}, {_took(summary['busy_seconds'])} in tasks"


def summary_dict(summary: TraceSummary) -> dict[str, Any]:
    """The summary as ``workflow --json show`` and ``trace`` give it."""
    return {
        "steps": summary.steps,
        "failures": summary.failures,
        "answers": summary.answers,
        "busy_seconds": summary.busy,
        "first": summary.first,
        "last": summary.last,
    }


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"


def _took(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.3f} ms"
    return f"{seconds:.3f} s"


def _short(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
