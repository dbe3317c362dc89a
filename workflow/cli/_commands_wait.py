"""``workflow waiting``, ``answer`` and ``send``: runs that wait for people and messages.

Each calls the runtime (:class:`~workflow.runtime.Waits`) and only says what
it did: who may answer, how an answer is counted, and when a message is
taken are the runtime's business, the same for the command, the Python API
and any other face.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from ._argtypes import positive
from ._commands_run import lock_ttl_option
from ._context import CLIError, Context, ExitCode, import_storage
from ._inputs import read_data
from ._output import printable, table
from ._uuids import resolve_interaction, resolve_uuid
from ._waits import (
    RunDefinitions,
    answers_text,
    describe_state,
    iso,
    run_rows,
    run_state,
    short,
    wait_info,
)

if TYPE_CHECKING:
    from workflow.errors import AnswerRefusedError
    from workflow.runtime import AnswerOutcome, Wait

__all__ = ["DEFAULT_LIMIT", "MESSAGE_WIDTH", "register"]

log = logging.getLogger("workflow.cli")

#: How many interactions ``workflow waiting`` lists when ``--limit`` is not given.
DEFAULT_LIMIT = 100
#: How many characters of an interaction's message the table shows.
MESSAGE_WIDTH = 40


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``waiting``, ``answer`` and ``send`` commands."""
    waiting = commands.add_parser(
        "waiting",
        parents=[common],
        help="list the interactions that wait for an answer, oldest first",
        description="List the open interactions (ask steps): their id, run, flow, step, "
        "message, approvers, the answers so far against the quorum, and the deadline.",
    )
    waiting.add_argument(
        "--as",
        dest="user",
        metavar="USER",
        help="only those USER may answer and has not answered yet",
    )
    waiting.add_argument(
        "--limit",
        type=positive,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N interactions, the oldest (default: {DEFAULT_LIMIT})",
    )
    waiting.set_defaults(handler=cmd_waiting)

    answer = commands.add_parser(
        "answer",
        parents=[common],
        help="answer an interaction; the run goes on when the answer decides it",
        description="Record USER's answer to an interaction (its id, or its first hex "
        "digits). An answer that decides it continues the run in this process, with the "
        "definition it started with, as `workflow resume` does (give its --import), unless "
        "--no-continue: then a `workflow worker` continues it. Exit codes: 0 recorded "
        "(or given before with the same --key), 2 refused, with the reason.",
    )
    answer.add_argument("id", metavar="ID", help="the interaction's id, or its first hex digits")
    answer.add_argument("--as", dest="user", metavar="USER", required=True, help="who answers")
    decision = answer.add_mutually_exclusive_group(required=True)
    decision.add_argument(
        "--approve", dest="decision", action="store_const", const="approve", help="approve"
    )
    decision.add_argument(
        "--reject", dest="decision", action="store_const", const="reject", help="reject"
    )
    _data_options(answer, "the answer's data (the step's schema checks it)")
    answer.add_argument(
        "--key",
        metavar="KEY",
        help="an idempotency key: the same answer given again with KEY is recorded once",
    )
    answer.add_argument(
        "--no-continue",
        dest="go_on",
        action="store_false",
        help="do not continue the run here: a `workflow worker` does",
    )
    lock_ttl_option(answer)
    answer.set_defaults(handler=cmd_answer)

    send = commands.add_parser(
        "send",
        parents=[common],
        help="send a message to a run, for the step that receives its topic",
        description="Send a message to a run on TOPIC. A receive step waiting for TOPIC "
        "takes it (a `workflow worker` then continues the run); else it is kept for the "
        "first step that receives TOPIC. A message with a --key sent before is not sent "
        "again. Completed and cancelled runs are refused (exit 2).",
    )
    send.add_argument("uuid", metavar="UUID", help="the run: its uuid, or its first hex digits")
    send.add_argument("topic", metavar="TOPIC", help="what the message is about")
    _data_options(send, "the message's data (default: null)")
    send.add_argument(
        "--key", metavar="KEY", help="an idempotency key: a message is sent once per KEY"
    )
    send.set_defaults(handler=cmd_send)


def _data_options(parser: argparse.ArgumentParser, what: str) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--data", metavar="JSON", help=what)
    given.add_argument("--data-file", metavar="FILE", help="read the data from FILE")


# -- waiting --------------------------------------------------------------------


def cmd_waiting(ctx: Context) -> int:
    """List the open interactions (for ``--as USER``: those USER may still answer)."""
    import_storage()
    from workflow.runtime import Waits

    args = ctx.args
    store = ctx.store(write=False)
    found = Waits(store).waiting(user=args.user, limit=args.limit + 1)
    more = len(found) > args.limit
    found = found[: args.limit]
    runs = run_rows(store, {wait.workflow_uuid for wait in found})
    result = [wait_info(wait, runs) for wait in found]

    def text() -> str:
        if not found:
            who = f" for {args.user}" if args.user is not None else ""
            return f"no interaction waits for an answer{who}"
        rows = [_row(wait, info) for wait, info in zip(found, result, strict=True)]
        headers = ["ID", "RUN", "FLOW", "STEP", "MESSAGE", "APPROVERS", "ANSWERS"]
        return table(rows, [*headers, "DEADLINE (UTC)"])

    ctx.out.result(result, text)
    if more:
        ctx.out.note(f"showing the oldest {args.limit} interactions: --limit N shows more")
    return ExitCode.OK


def _row(wait: Wait, info: dict[str, Any]) -> tuple[Any, ...]:
    message = " ".join(str(info["message"]).split())
    if len(message) > MESSAGE_WIDTH:
        message = message[: MESSAGE_WIDTH - 3] + "..."
    approvers = wait.approvers
    return (
        short(wait.id),
        short(wait.workflow_uuid),
        info.get("flow"),
        wait.step,
        message,
        "anyone" if approvers is None else ", ".join(approvers),
        answers_text(wait),
        info["due"] or "-",
    )


# -- answer ---------------------------------------------------------------------

#: What a refused answer's reason says, before the runtime's message.
REASONS = {
    "not_found": "not found",
    "not_an_approver": "not an approver",
    "already_answered": "answered already",
    "key_in_use": "key in use",
    "already_decided": "already decided",
    "expired": "expired",
    "cancelled": "cancelled",
    "invalid": "invalid",
}


def _refused(ctx: Context, message: str, reason: str, **extra: Any) -> int:
    """Report a refused answer or message: one line, exit 2, ``reason`` in the JSON error."""
    ctx.out.error(message, ExitCode.USAGE, extra={"reason": reason, **extra})
    return int(ExitCode.USAGE)


def _refusal_message(exc: AnswerRefusedError) -> str:
    """One line that starts with the reason, unless the runtime's message says it already."""
    said = REASONS.get(exc.reason, exc.reason.replace("_", " "))
    message = exc.message
    if said in message or exc.reason == "invalid":  # it says what is invalid
        return f"answer refused: {message}"
    return f"answer refused ({said}): {message}"


def cmd_answer(ctx: Context) -> int:
    """Record an answer; continue the run when it is decided (exit 0), or say why not (2)."""
    import_storage()
    from workflow.errors import AnswerRefusedError
    from workflow.runtime import Waits

    args = ctx.args
    data = read_data(args)  # the input is checked before the database is touched
    store = ctx.store()
    try:
        ident = resolve_interaction(store, args.id)
    except CLIError as exc:
        return _refused(ctx, exc.message, "not_found", interaction=args.id)
    waits = Waits(store)
    try:
        done = waits.answer(ident, by=args.user, decision=args.decision, data=data, key=args.key)
    except AnswerRefusedError as exc:
        extra: dict[str, Any] = {"interaction": ident, "decision": exc.decision, "by": exc.by}
        code = _refused(ctx, _refusal_message(exc), exc.reason, **extra)
        if exc.reason == "expired" and args.go_on:
            # The deadline passed: this answer's transaction decided the wait.
            wait = waits.get(ident)
            if wait.phase == "decided":
                for line in _go_on(ctx, wait.workflow_uuid, {}):
                    ctx.out.note(line)
        return code
    wait = done.wait
    result = done.as_dict(ident)
    result["at"] = iso(done.answer.at)
    lines = [_answered(done, wait)]
    if wait.phase != "waiting":
        who = ", ".join(wait.decided_by())
        lines.append(f"decided: {wait.outcome()}" + (f" by {who}" if who else ""))
    if wait.phase == "decided" and args.go_on:
        lines += _go_on(ctx, wait.workflow_uuid, result)
    elif wait.phase == "decided":
        lines.append("the run goes on when a `workflow worker` (given its --import) continues it")
    ctx.out.result(result, "\n".join(lines))
    return ExitCode.OK


def _answered(done: AnswerOutcome, wait: Wait) -> str:
    answer = done.answer
    what = "approval" if answer.decision == "approve" else "rejection"
    where = f"step {wait.step!r} of run {wait.workflow_uuid}"
    if not done.recorded:
        return (
            f"{answer.by}'s {what} with the key {answer.key!r} was recorded before "
            f"({iso(answer.at)}): the same answer, not counted again; {answers_text(wait)}"
        )
    return f"recorded {answer.by}'s {what} of {where}: {answers_text(wait)}"


def _go_on(ctx: Context, run: str, result: dict[str, Any]) -> list[str]:
    """Continue ``run`` past its decided waits here; return what to say about it.

    The definition is built first, as ``workflow resume`` builds it: a run
    whose modules are not allowed is left to a worker, and said so.
    """
    storage = import_storage()
    from workflow.runtime import Worker

    store = ctx.store()
    definitions = RunDefinitions(ctx)
    try:
        definitions(storage.PersistentWorkflowEngine.from_uuid(run, store=store))
    except CLIError as exc:
        result["continued"] = False
        result["not_continued"] = exc.message
        ctx.out.note(f"the run was not continued here: {exc.message}")
        return ["the run goes on when a `workflow worker` allowed its modules continues it"]
    went_on = Worker(store, definitions).continue_run(run)
    state = run_state(store, run)
    result.update(continued=went_on, run_status=state["status"], waiting=state["waiting"])
    if not went_on:
        return [
            f"run {run} was not continued now (another process runs it, or see the error "
            "above): a `workflow worker` continues it"
        ]
    log.info("workflow %s continued after an answer: %s", run, state["status"])
    return [f"run {run} continued: {describe_state(state)}"]


# -- send -----------------------------------------------------------------------

_FINISHED = {"COMPLETED": "completed", "CANCELLED": "cancelled"}


def cmd_send(ctx: Context) -> int:
    """Send a message to a run; say whether a waiting step took it or it is kept."""
    import_storage()
    from workflow.engine_db import WorkflowStatus
    from workflow.errors import WorkflowValueError
    from workflow.runtime import Waits

    args = ctx.args
    data = read_data(args)
    store = ctx.store()
    run = resolve_uuid(store, args.uuid)
    status = WorkflowStatus(store.workflow(run)["status"]).name
    if status in _FINISHED:
        how = _FINISHED[status]
        message = f"run {run} is {how}: no step of it will ever receive a message"
        return _refused(ctx, message, how, uuid=run, status=status)
    try:
        delivery = Waits(store).send(run, args.topic, data, key=args.key)
    except WorkflowValueError as exc:
        raise CLIError(str(exc)) from exc
    step = None
    if delivery.wait is not None:
        step = Waits(store).get(delivery.wait).step
    result = {
        "uuid": run,
        "topic": args.topic,
        "key": args.key,
        "message": delivery.message_id,
        "duplicate": delivery.duplicate,
        "taken_by": None if delivery.wait is None else {"id": delivery.wait, "step": step},
        "kept": delivery.wait is None,
    }
    where = f"run {run} on {args.topic!r}"
    if delivery.duplicate:
        first = f"a message with the key {args.key!r} was sent to {where} before: not sent again"
    else:
        first = f"sent message {delivery.message_id} to {where}"
    if delivery.wait is None:
        then = (
            f"no step waits for it yet: it is kept for the first step that receives {args.topic!r}"
        )
    else:
        then = f"step {step!r} took it; a `workflow worker` continues the run"
    log.info("message %d to workflow %s: %s", delivery.message_id, run, then)
    ctx.out.result(result, printable(f"{first}\n{then}", newlines=True))
    return ExitCode.OK
