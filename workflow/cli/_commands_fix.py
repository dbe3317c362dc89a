"""``workflow cancel``, ``workflow retry`` and ``workflow set-data``: fixing a stored run.

Each works under the run's lock, takes nothing on trust from the run's data,
and leaves a line in the run's status log naming who did it (the user of
this process, :func:`getpass.getuser`).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import time
from typing import TYPE_CHECKING, Any

from ._argtypes import count, seconds
from ._commands_run import (
    lock_ttl_option,
    release_lock,
    reload_run,
    resume_locked,
    unanswered_tokens,
)
from ._context import CLIError, Context, ExitCode, import_storage
from ._inputs import read_data
from ._output import printable
from ._steps import resolve_step
from ._targets import resume_target
from ._uuids import resolve_uuid

if TYPE_CHECKING:
    from workflow.storage import PersistentWorkflowEngine

__all__ = ["register", "who"]

log = logging.getLogger("workflow.cli")

_LOCK_WAIT_HELP = (
    "wait up to SECONDS for another process running the workflow to let go (default: fail at once)"
)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``cancel``, ``retry`` and ``set-data`` commands."""
    cancel = commands.add_parser(
        "cancel",
        parents=[common],
        help="stop a run for good: it is never resumed",
        description="Store a run CANCELLED and release its lock. A run that a process is "
        "running, and a completed run, are refused.",
    )
    cancel.add_argument("uuid", metavar="UUID", help="the workflow to cancel")
    cancel.add_argument("--reason", default="", help="why, recorded in the run's status log")
    _lock_wait_option(cancel)
    cancel.set_defaults(handler=cmd_cancel)

    retry = commands.add_parser(
        "retry",
        parents=[common],
        help="run the failed tokens of a run again, then resume it",
        description="Run the failed tokens again from the task that failed (or from "
        "--from STEP), then go on with the run as `workflow resume` does.",
    )
    retry.add_argument("uuid", metavar="UUID", help="the workflow to retry")
    retry.add_argument(
        "--token",
        type=count,
        metavar="N",
        help="move failed token N only (default: every failed one); the run then resumes "
        "every token that did not complete, as resume does",
    )
    retry.add_argument(
        "--from",
        dest="from_step",
        metavar="STEP",
        help="run from this step: a flow's step name; for a Python list a task's name or a "
        "position such as 2 or 1.0 (default: the task that failed)",
    )
    _lock_wait_option(retry)
    lock_ttl_option(retry)
    retry.set_defaults(handler=cmd_retry, data=None)

    set_data = commands.add_parser(
        "set-data",
        parents=[common],
        help="replace the data of a token that did not complete, without running anything",
        description="Replace a halted, failed or waiting token's data (a flow's token: its "
        "context object). The change is recorded in the run's status log; `workflow resume` "
        "or `workflow retry` runs it.",
    )
    set_data.add_argument("uuid", metavar="UUID", help="the workflow")
    set_data.add_argument("--token", type=count, metavar="N", required=True, help="the token")
    given = set_data.add_mutually_exclusive_group(required=True)
    given.add_argument("--data", metavar="JSON", help="the token's new data")
    given.add_argument("--data-file", metavar="FILE", help="read the new data from FILE")
    _lock_wait_option(set_data)
    set_data.set_defaults(handler=cmd_set_data)


def _lock_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-wait", type=seconds, default=0.0, metavar="SECONDS", help=_LOCK_WAIT_HELP
    )


def who() -> str:
    """The user of this process, as the status log records a person's change."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name and no passwd entry
        return "unknown user"


def _locked(exc: Exception, command: str) -> CLIError:
    return CLIError(
        f"{exc}; `workflow {command} --lock-wait SECONDS` waits for it to finish, or for the "
        "lock of a process that died to lapse",
        ExitCode.ERROR,
    )


def cmd_cancel(ctx: Context) -> int:
    """Cancel a run; exit 0 when it is (or already was) cancelled."""
    from workflow.errors import StoredRunError, WorkflowLockedError

    args = ctx.args
    store = ctx.store()
    args.uuid = resolve_uuid(store, args.uuid)
    deadline = time.monotonic() + args.lock_wait
    while True:
        try:
            cancelled = store.cancel(args.uuid, args.reason, by=who())
            break
        except WorkflowLockedError as exc:
            if time.monotonic() >= deadline:
                raise _locked(exc, "cancel") from exc
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
        except StoredRunError as exc:
            raise CLIError(exc.message, ExitCode.ERROR) from exc
    if cancelled:
        log.info("workflow %s cancelled by %s: %s", args.uuid, who(), args.reason)
        text = f"cancelled workflow {args.uuid}"
    else:
        text = f"workflow {args.uuid} was already cancelled: nothing to do"
    result = {"uuid": args.uuid, "status": "CANCELLED", "cancelled": cancelled}
    if cancelled:
        result["reason"] = args.reason
    ctx.out.result(result, printable(text))
    return ExitCode.OK


def cmd_retry(ctx: Context) -> int:
    """Store the failed tokens to run again (from ``--from``), then resume the run."""
    from workflow.errors import StoredRunError, WorkflowLockedError

    args = ctx.args
    storage = import_storage()
    engine = storage.PersistentWorkflowEngine.from_uuid(
        resolve_uuid(ctx, args.uuid), store=ctx.store(), lock_wait=args.lock_wait
    )
    target = resume_target(ctx, engine)  # imports only what the user allows
    engine.callbacks.replace(target.callbacks)
    try:
        engine.storage.acquire(engine.uuid, engine.owner, wait=args.lock_wait)
    except WorkflowLockedError as exc:
        raise _locked(exc, "retry") from exc
    try:
        reload_run(engine, storage)
        _refuse_finished(engine)
        failed = _failed_tokens(engine, args.token)
        at = None
        if args.from_step is not None:
            at = resolve_step(target.callbacks, args.from_step, flow=target.flow is not None)
        if target.flow is not None and unanswered_tokens(engine):
            raise CLIError(
                f"tokens of workflow {engine.uuid} wait at a halt step for an answer: give it "
                "with `workflow resume UUID --data JSON` first"
            )
        for position in failed:
            try:
                engine.retry_token(position, at=at, by=who())
            except StoredRunError as exc:
                raise CLIError(exc.message) from exc
        shown = "the task that failed" if at is None else f"{args.from_step} ({at})"
        ctx.out.note(f"retrying token(s) {', '.join(map(str, failed))} from {printable(shown)}")
        return resume_locked(ctx, engine, target, None)
    finally:
        release_lock(engine)


def _refuse_finished(engine: PersistentWorkflowEngine) -> None:
    status = engine.status.name
    if status == "CANCELLED":
        raise CLIError(
            f"workflow {engine.uuid} was cancelled: a cancelled run is never retried",
            ExitCode.ERROR,
        )
    if status == "COMPLETED":
        raise CLIError(f"workflow {engine.uuid} is completed: nothing to retry", ExitCode.ERROR)


def _failed_tokens(engine: PersistentWorkflowEngine, position: int | None) -> list[int]:
    """The failed tokens to retry: token ``position``, or every failed one."""
    tokens = engine.load_tokens()
    failed = [token.position for token in tokens if token.status.name == "ERROR"]
    if position is None:
        if not failed:
            raise CLIError(
                f"workflow {engine.uuid} has no failed token; `workflow resume "
                f"{engine.uuid}` goes on with a halted run"
            )
        return failed
    if not any(token.position == position for token in tokens):
        raise CLIError(f"workflow {engine.uuid} has no token {position} (it has {len(tokens)})")
    if position not in failed:
        status = next(token.status.name for token in tokens if token.position == position)
        raise CLIError(
            f"token {position} of workflow {engine.uuid} is {status}, not ERROR: only a failed "
            "token is retried"
        )
    return [position]


def cmd_set_data(ctx: Context) -> int:
    """Replace the data of one token of a stored run, under its lock; run nothing."""
    from workflow.errors import StoredRunError, WorkflowIndexError, WorkflowLockedError

    args = ctx.args
    data = read_data(args)  # all of the input is checked before the database is touched
    storage = import_storage()
    engine = storage.PersistentWorkflowEngine.from_uuid(
        resolve_uuid(ctx, args.uuid), store=ctx.store(), lock_wait=args.lock_wait
    )
    if engine.definition_name is not None and not isinstance(data, dict):
        raise CLIError(
            f"a flow's token holds its context, a JSON object; the new data is "
            f"{type(data).__name__}"
        )
    by = who()
    try:
        engine.update_token(args.token, data, by=by)
    except WorkflowLockedError as exc:
        raise _locked(exc, "set-data") from exc
    except StoredRunError as exc:
        raise CLIError(exc.message, ExitCode.ERROR) from exc
    except WorkflowIndexError as exc:
        raise CLIError(str(exc)) from exc
    log.info("token %d of workflow %s: data replaced by %s", args.token, engine.uuid, by)
    result = {"uuid": engine.uuid, "token": args.token, "data": data, "by": by}
    text = (
        f"stored the new data of token {args.token} of workflow {engine.uuid} (by {by}); "
        f"`workflow resume {engine.uuid}` or `workflow retry {engine.uuid}` runs it"
    )
    ctx.out.result(result, printable(text))
    return ExitCode.OK
