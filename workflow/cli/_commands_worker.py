"""``workflow worker``: fire the timers that are due and continue the runs whose waits were decided.

A :class:`~workflow.runtime.Worker` with the runs' definitions built as
``workflow resume`` builds them (:class:`~workflow.cli._waits.RunDefinitions`).
``--once`` makes one pass and reports it; otherwise the worker passes until
SIGINT or SIGTERM, after which it stops once the run it continues is stored,
and exits with 0.
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._argtypes import positive, seconds
from ._celery import add_celery_options, celery_queue, run_celery_worker
from ._commands_run import check_queue_option, lock_ttl_option
from ._context import CLIError, Context, ExitCode, import_storage
from ._interrupt import stop_worker_on_signals
from ._output import dumps, printable
from ._waits import RunDefinitions, describe_state, run_state

if TYPE_CHECKING:
    from workflow.runtime import Pass
    from workflow.storage import Store

__all__ = ["DEFAULT_POLL", "register"]

log = logging.getLogger("workflow.cli")

#: Seconds between two passes that found nothing to do: the most a decision waits for a
#: worker, so that a decided run goes on well within a second.
DEFAULT_POLL = 0.2


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``worker`` command."""
    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="fire the timers and schedules that are due and continue the runs whose waits "
        "were decided",
        description="Fire the timers that are due (sleeps, deadlines, retries) and the "
        "schedules that are due (starting their runs), and continue "
        "the runs whose waits were decided, with the definitions they started with, as "
        "`workflow resume` does (give their --import). Runs until SIGINT or SIGTERM, then "
        "stops after the run it continues (exit 0); --once makes one pass. Any number of "
        "workers may run at once.",
    )
    worker.add_argument("--once", action="store_true", help="make one pass, report it, exit 0")
    worker.add_argument(
        "--poll",
        type=seconds,
        default=DEFAULT_POLL,
        metavar="SECONDS",
        help="pause between passes that found nothing to do (default: %(default)g)",
    )
    worker.add_argument(
        "--batch",
        type=positive,
        default=500,
        metavar="N",
        help="how many timers, and decided waits, a pass takes (default: %(default)d)",
    )
    worker.add_argument(
        "--queue",
        metavar="NAME",
        help="also run the tokens of the runs on the work queue NAME (`workflow run --queue`)",
    )
    worker.add_argument(
        "--concurrency",
        type=positive,
        default=1,
        metavar="N",
        help="with --queue: run up to N tokens at once, in threads; with --celery, in "
        "processes (default: %(default)d)",
    )
    add_celery_options(
        worker,
        what="be a Celery worker that runs the tokens of --queue (default: 'default') "
        "sent as Celery messages (`workflow run --queue NAME --celery URL`), and sweeps",
    )
    worker.add_argument(
        "--name",
        metavar="NAME",
        help="what the step trace (`workflow trace`) says ran the tasks (default: host:pid)",
    )
    lock_ttl_option(worker)
    worker.set_defaults(handler=cmd_worker)


def _continued(store: Store, done: Pass) -> list[dict[str, Any]]:
    return [run_state(store, run) for run in done.continued]


def _pass_lines(done: Pass, states: list[dict[str, Any]]) -> list[str]:
    lines = []
    if done.fired:
        lines.append(f"fired {done.fired} timer(s)")
    if done.ran:
        lines.append(f"ran {done.ran} queued token(s)")
    lines += [
        f"schedule {fire.schedule} at {fire.as_dict()['fire_time']}: {fire.outcome}"
        + (f" run {fire.run}" if fire.run else "")
        for fire in done.scheduled
    ]
    lines += [f"continued run {state['uuid']}: {describe_state(state)}" for state in states]
    return lines


def _celery_worker(ctx: Context) -> int:
    """Be a Celery worker of ``--queue`` over the broker of ``--celery``, until a signal."""
    args = ctx.args
    if args.once:
        raise CLIError("--once: a Celery worker runs until SIGINT or SIGTERM; leave out --once")
    queue = args.queue if args.queue is not None else "default"
    carrier = celery_queue(ctx, RunDefinitions(ctx), queue)
    return run_celery_worker(ctx, carrier, concurrency=args.concurrency)


def cmd_worker(ctx: Context) -> int:
    """Make one pass (``--once``), or pass until a signal stops the worker."""
    import_storage()
    from workflow.runtime import Worker

    args = ctx.args
    store = ctx.store()
    if args.concurrency > 256:
        raise CLIError(f"--concurrency: at most 256 tokens at once, not {args.concurrency}")
    check_queue_option(args.queue)
    if args.celery is not None:
        return _celery_worker(ctx)
    if args.celery_queue is not None:
        raise CLIError("--celery-queue names the broker's queue of --celery: give --celery too")
    worker = Worker(
        store,
        RunDefinitions(ctx),
        batch=args.batch,
        poll=args.poll,
        queue=args.queue,
        concurrency=args.concurrency,
        name=args.name,
    )
    if args.once:
        done = worker.run_once()
        states = _continued(store, done)
        result = {
            "fired": done.fired,
            "ran": done.ran,
            "scheduled": [fire.as_dict() for fire in done.scheduled],
            "continued": states,
            "skipped": done.skipped,
        }

        def text() -> str:
            lines = _pass_lines(done, states)
            lines += [f"skipped run {run}: {why}" for run, why in done.skipped.items()]
            return "\n".join(lines or ["nothing to do"])

        ctx.out.result(result, text)
        return ExitCode.OK

    def report(done: Pass) -> None:
        """Print one line per fired batch and continued run (a JSON object with --json)."""
        if done.idle:
            return
        states = _continued(store, done)
        at = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
        out = ctx.out.stdout
        if ctx.out.json_mode:
            if done.fired:
                print(dumps({"at": at, "fired": done.fired}, indent=None), file=out, flush=True)
            if done.ran:
                print(dumps({"at": at, "ran": done.ran}, indent=None), file=out, flush=True)
            for fire in done.scheduled:
                print(dumps({"at": at, "scheduled": fire.as_dict()}, indent=None), file=out)
            for state in states:
                print(dumps({"at": at, "continued": state}, indent=None), file=out, flush=True)
            return
        for line in _pass_lines(done, states):
            print(printable(f"{at} {line}"), file=out, flush=True)

    ctx.out.note(f"worker on {ctx.shown_url}: Ctrl-C or SIGTERM stops it")
    log.info("worker started on %s", ctx.shown_url)
    with stop_worker_on_signals(worker) as received:
        worker.run(on_pass=report)
    why = received[0] if received else "stopped"
    log.info("worker stopped (%s)", why)
    if ctx.out.json_mode:  # JSON Lines, as the passes were reported
        print(dumps({"stopped": why}, indent=None), file=ctx.out.stdout, flush=True)
    else:
        ctx.out.result(None, f"worker stopped ({why})")
    return ExitCode.OK
