"""``workflow run`` and ``workflow resume``."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from ._argtypes import count, lease, positive, seconds
from ._celery import add_celery_options, celery_queue
from ._context import DEFAULT_LOCK_TTL, CLIError, Context, ExitCode, import_storage
from ._inputs import check_flow_records, parse_json, read_tokens
from ._interrupt import stop_on_signals
from ._origins import module_origins
from ._progress import progress
from ._report import outcome, render_outcome
from ._run_once import add_options, choose_key, not_started, refused, start_options
from ._targets import META_KEY, Target, resume_target, run_target, runs_a_flow
from ._uuids import resolve_uuid

if TYPE_CHECKING:
    from workflow.integrations.celery import CeleryQueue
    from workflow.storage import PersistentWorkflowEngine, Token

__all__ = [
    "apply_checkpoint",
    "check_queue_option",
    "lock_ttl_option",
    "register",
    "release_lock",
    "reload_run",
    "resume_locked",
    "unanswered_tokens",
]

log = logging.getLogger("workflow.cli")

_WAITING = ("HALTED", "WAITING")
#: The commands that resume a stored run (their reports say whether it ran).
_RESUMING = ("resume", "retry")

#: The longest workflow name the database holds (``wf_workflow.name``).
MAX_NAME_LENGTH = 255


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``run`` and ``resume`` commands."""
    run = commands.add_parser(
        "run",
        parents=[common],
        help="run a flow, a stored definition or a Python callback list over tokens",
        description="Run a definition over tokens in a new stored workflow. Every token is "
        "processed; tokens that halt wait for `workflow resume`.",
    )
    run.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="a flow file (.json, .yaml, .yml), def:NAME[@VERSION] for a stored definition, "
        "or module:attribute naming a Python callback list",
    )
    run.add_argument("--definition", metavar="NAME", help="run the stored definition NAME")
    run.add_argument(
        "--version", type=positive, metavar="N", help="with --definition: run version N"
    )
    run.add_argument(
        "--tokens",
        metavar="FILE",
        help="the input records: a JSON file (a list is many tokens, any other value one), "
        "a JSON Lines file (.jsonl), or - for stdin; default: one token {}",
    )
    run.add_argument("--name", help="the workflow's name (default: the flow's or the target's)")
    run.add_argument(
        "--checkpoint",
        choices=["token", "task", "halt"],
        default="token",
        help="when progress is committed (default: token)",
    )
    run.add_argument(
        "--queue",
        nargs="?",
        const="default",
        metavar="NAME",
        help="store the run and put it on the work queue NAME (default: 'default'), then "
        "return at once: `workflow worker --queue NAME` runs its tokens",
    )
    add_celery_options(
        run,
        what="with --queue: send a Celery message per token, for `workflow worker --celery` "
        "to run,",
    )
    add_options(run)
    lock_ttl_option(run)
    run.set_defaults(handler=cmd_run)

    resume = commands.add_parser(
        "resume",
        parents=[common],
        help="resume a halted or failed run",
        description="Go on with a stored run where it stopped, with the definition it "
        "started with.",
    )
    resume.add_argument(
        "uuid", metavar="UUID", help="the workflow to resume: its uuid, or its first hex digits"
    )
    resume.add_argument(
        "--data",
        metavar="JSON",
        help="the answer for the halted tokens: a flow records it as the result of the halt "
        "step; a Python run merges a JSON object into the token's data",
    )
    resume.add_argument(
        "--lock-wait",
        type=seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for another process running the workflow to let go "
        "(default: fail at once)",
    )
    resume.add_argument(
        "--token",
        type=count,
        metavar="N",
        help="give --data to token N only (default: every halted token)",
    )
    lock_ttl_option(resume)
    resume.set_defaults(handler=cmd_resume)


def lock_ttl_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-ttl",
        type=lease,
        default=DEFAULT_LOCK_TTL,
        metavar="SECONDS",
        help="how long the run's lock outlives a process that stops renewing it (killed, "
        "frozen): another process may take the run over after that (default: %(default)g)",
    )


def _run(ctx: Context, engine: PersistentWorkflowEngine, action: Any, total: int) -> int:
    """Run ``action`` with a progress bar, then report the outcome of the stored run."""
    with progress(engine, ctx.out.stderr, total), stop_on_signals(engine):
        action(stop_on_error=False, stop_on_halt=False)
    result = outcome(engine)
    log.info("workflow %s %s: %s", engine.uuid, engine.status.name, result["counts"])
    return _report(ctx, result, resumed=ctx.args.command in _RESUMING, started=True)


def _report(ctx: Context, result: dict[str, Any], *, resumed: bool, started: bool = True) -> int:
    """Print the ``outcome()`` of a stored run; say whether ``resume`` ran it, or
    whether ``run`` started it."""
    if ctx.args.command in _RESUMING:
        result["resumed"] = resumed
    elif ctx.args.command == "run":
        result["started"] = started
    ctx.out.result(result, lambda: render_outcome(result))
    return int(result["exit_code"])


def cmd_run(ctx: Context) -> int:
    """Run a definition over the tokens in a new stored workflow."""
    args = ctx.args
    records = read_tokens(args.tokens)  # all of the input is checked before the run is stored
    if runs_a_flow(args):
        check_flow_records(records, args.tokens)
    carrier = _carrier(ctx)  # the broker answers before anything (a flow file too) is stored
    target: Target = run_target(ctx)
    tokens = [target.token(record) for record in records]
    name = args.name or target.name
    if len(name) > MAX_NAME_LENGTH:
        raise CLIError(
            f"the workflow name is {len(name)} characters long, at most {MAX_NAME_LENGTH} "
            "fit: give a shorter --name"
        )
    key, on_conflict = choose_key(ctx, target, records)
    chosen = start_options(ctx)
    storage = import_storage()
    check_queue_option(args.queue)
    if args.queue is None and target.flow is not None:
        _refuse_waits_in_branches(target.flow)
    modules = [*args.imports, *([target.spec.partition(":")[0]] if target.spec else [])]
    meta = {
        "target": target.spec,
        "imports": args.imports,
        "checkpoint": args.checkpoint,
        **module_origins(modules),
    }
    from workflow.errors import RunKeyConflictError, WorkflowValueError

    try:
        engine = storage.PersistentWorkflowEngine.with_name(
            name,
            store=ctx.store(),
            definition=target.callbacks,
            extra_data={META_KEY: meta},
            checkpoint=args.checkpoint,
            definition_name=target.definition_name,
            definition_version=target.definition_version,
            key=key,
            on_conflict=on_conflict,
            **chosen,
        )
    except RunKeyConflictError as exc:
        return refused(ctx, exc)
    except WorkflowValueError as exc:  # --id names a run of another name or definition
        raise CLIError(f"--id: {exc}") from None
    if not engine.created:
        not_started(ctx, engine, key)
        return _report(ctx, outcome(engine), resumed=False, started=False)
    if args.queue is not None:
        return _enqueue(ctx, engine, tokens, args.queue, carrier)
    log.info("workflow %s (%s) runs %d token(s)", engine.uuid, engine.name, len(tokens))
    return _run(ctx, engine, lambda **kw: engine.process(tokens, **kw), len(tokens))


def _refuse_waits_in_branches(flow: Any) -> None:
    """Refuse, before anything is stored, a flow whose parallel branches wait, run in-process."""
    from workflow.flows._shape import waits_in_branches

    waiting = waits_in_branches(flow.body["steps"])
    if waiting:
        names = ", ".join(repr(name) for name in waiting)
        raise CLIError(
            f"flow {flow.name!r}: step{'s' if len(waiting) > 1 else ''} {names} wait inside "
            "a parallel step's branches, which only a run on a work queue can keep: "
            "run it with --queue and start `workflow worker --queue NAME`"
        )


def check_queue_option(name: str | None) -> None:
    """Refuse a ``--queue`` that cannot name a queue (``None``: none given)."""
    if name is None:
        return
    from workflow.storage.queue import check_queue_name

    try:
        check_queue_name(name)
    except ValueError as exc:
        raise CLIError(f"--queue: {exc}") from None


def _carrier(ctx: Context) -> CeleryQueue | None:
    """The Celery queue that ``--celery`` sends the run's tokens over, or None."""
    args = ctx.args
    if args.celery is None:
        if args.celery_queue is not None:
            raise CLIError("--celery-queue names the broker's queue of --celery: give --celery too")
        return None
    if args.queue is None:
        raise CLIError("--celery sends the tokens of a queued run: give --queue [NAME] too")
    check_queue_option(args.queue)
    return celery_queue(ctx, {}, args.queue)


def _enqueue(
    ctx: Context,
    engine: PersistentWorkflowEngine,
    tokens: list[Any],
    queue: str,
    carrier: CeleryQueue | None,
) -> int:
    """Store the run's tokens and put it on ``queue`` (and send them over Celery); print its uuid.

    Messages that cannot be sent are logged: the items are stored, and the
    sweep of a ``workflow worker --celery`` sends them.
    """
    queued = engine.enqueue(tokens, queue)
    log.info("workflow %s (%s) queued on %r: %d token(s)", engine.uuid, engine.name, queue, queued)
    result: dict[str, Any] = {
        "uuid": engine.uuid,
        "name": engine.name,
        "queue": queue,
        "queued": queued,
    }
    if carrier is not None:
        result["sent"] = sent = carrier.dispatch(engine.uuid, store=engine.storage)
        result["celery_queue"] = carrier.celery_queue
        if sent < queued:
            ctx.out.note(
                f"sent {sent} of {queued} Celery messages: the sweep of a `workflow worker "
                "--celery` sends the others"
            )
    ctx.out.result(result, lambda: engine.uuid)
    return int(ExitCode.OK)


def _waiting(engine: PersistentWorkflowEngine, target: Target, position: int | None) -> list[Token]:
    """The halted tokens ``--data`` goes to: token ``position``, or every one that waits.

    In a flow run, a token waits for its answer until it has one.
    """
    tokens = engine.load_tokens()
    if position is None:
        unanswered = set(unanswered_tokens(engine)) if target.flow is not None else None
        return [
            token
            for token in tokens
            if token.status.name in _WAITING
            and (unanswered is None or token.position in unanswered)
        ]
    for token in tokens:
        if token.position == position:
            if token.status.name not in _WAITING:
                raise CLIError(
                    f"token {position} of workflow {engine.uuid} is {token.status.name}, "
                    "not halted: --data goes to halted tokens"
                )
            return [token]
    raise CLIError(f"workflow {engine.uuid} has no token {position} (it has {len(tokens)})")


def _give_data(
    engine: PersistentWorkflowEngine, target: Target, tokens: list[Token], data: Any
) -> None:
    """Record ``data`` in each halted token, then store the tokens.

    Every token takes the data before any is stored: an answer that a halt
    step's ``schema`` refuses stores nothing. ``null`` takes each step's
    ``default``.
    """
    for token in tokens:
        if target.flow is not None:
            from workflow.flows import apply_resume_data

            try:
                apply_resume_data(token.data, data)
            except ValueError as exc:
                raise CLIError(f"token {token.position}: {exc}") from exc
        elif isinstance(token.data, dict) and isinstance(data, dict):
            token.data.update(data)
        else:
            raise CLIError(
                f"--data for a Python run must be a JSON object merged into the token's data, "
                f"and token {token.position} holds {type(token.data).__name__} data"
            )
    for token in tokens:
        engine.update_token(token.position, token.data)
        log.info("token %d of workflow %s got the data %r", token.position, engine.uuid, data)


def _give_defaults(engine: PersistentWorkflowEngine, target: Target) -> None:
    """Answer each token waiting at a halt step that declares a default with that default."""
    from workflow.flows import halted_step

    defaulted = [
        token
        for token in engine.load_tokens()
        if token.status.name in _WAITING and "default" in (halted_step(token.data) or {})
    ]
    if defaulted:
        _give_data(engine, target, defaulted, None)


def unanswered_tokens(engine: PersistentWorkflowEngine) -> list[int]:
    """The halted tokens of a flow run that still wait at a halt step for their answer."""
    from workflow.flows import halted_step

    return [
        token.position
        for token in engine.load_tokens()
        if token.status.name in _WAITING and halted_step(token.data) is not None
    ]


def cmd_resume(ctx: Context) -> int:
    """Resume a stored run, giving ``--data`` to its halted tokens first.

    Everything happens under the run's lock, taken first: of several
    commands resuming one run, one runs it; the others fail naming the
    holder of the lock, or, once the run completed, say that there is
    nothing left to resume.

    A flow's halt step waits for an answer: the run resumes only once every
    token halted at one has its answer, so that no token goes past its halt
    step without one. Until then, ``--token N --data JSON`` stores the answer
    of token N, and the command exits with 3.
    """
    args = ctx.args
    data = parse_json(args.data, "--data") if args.data is not None else None
    if args.token is not None and args.data is None:
        raise CLIError("--token N says which token gets --data; give --data too")
    storage = import_storage()
    engine = storage.PersistentWorkflowEngine.from_uuid(
        resolve_uuid(ctx, args.uuid), store=ctx.store(), lock_wait=args.lock_wait
    )
    target = resume_target(ctx, engine)  # imports only what the user allows
    engine.callbacks.replace(target.callbacks)
    engine.storage.acquire(engine.uuid, engine.owner, wait=args.lock_wait)
    try:
        reload_run(engine, storage)
        return resume_locked(ctx, engine, target, data)
    finally:
        release_lock(engine)


def release_lock(engine: PersistentWorkflowEngine) -> None:
    """Release the run's lock if this command still holds it (a resume releases it itself)."""
    from workflow.errors import StorageError

    try:
        with engine.storage.transaction("release lock", workflow=engine.uuid) as conn:
            engine.storage.release(conn, engine.uuid, engine.owner)
    except StorageError:  # the error that stopped the command is the one to report
        log.debug("could not release the lock of workflow %s", engine.uuid, exc_info=True)


def reload_run(engine: PersistentWorkflowEngine, storage: Any) -> None:
    """Read the run again now that its lock is held: another process may have moved it on."""
    from workflow.engine_db import WorkflowStatus

    row = engine.storage.workflow(engine.uuid)
    engine.status = WorkflowStatus(row["status"])
    engine.extra_data = row["extra_data"] or {}
    apply_checkpoint(engine, storage)


def apply_checkpoint(engine: PersistentWorkflowEngine, storage: Any) -> None:
    """Give the engine the checkpoint policy its run recorded (``run --checkpoint``).

    :raises CLIError: when the record names no policy.
    """
    meta = engine.extra_data.get(META_KEY)
    checkpoint = meta.get("checkpoint") if isinstance(meta, dict) else None
    if checkpoint:
        try:
            engine.checkpoint = storage.CheckpointPolicy(checkpoint)
        except ValueError:
            raise CLIError(
                f"workflow {engine.uuid} records the checkpoint policy {checkpoint!r}, "
                "which is none of token, task, halt"
            ) from None


def resume_locked(ctx: Context, engine: PersistentWorkflowEngine, target: Target, data: Any) -> int:
    """Give ``data`` and resume the run, holding its lock; report what happened."""
    args = ctx.args
    if engine.status.name == "CANCELLED":
        raise CLIError(
            f"workflow {engine.uuid} was cancelled: a cancelled run is never resumed",
            ExitCode.ERROR,
        )
    pending = sum(token.status.name != "COMPLETED" for token in engine.load_tokens())
    if not pending and engine.status.name == "COMPLETED":
        unused = " (--data is not used)" if args.data is not None else ""
        ctx.out.note(f"run {engine.uuid} is already completed: nothing to resume{unused}")
        return _report(ctx, outcome(engine), resumed=False)
    if args.data is not None:
        tokens = _waiting(engine, target, args.token)
        if not tokens:
            raise CLIError(f"workflow {engine.uuid} has no halted token to give --data to")
        _give_data(engine, target, tokens, data)
    if target.flow is not None:
        if args.data is None:
            _give_defaults(engine, target)
        unanswered = unanswered_tokens(engine)
        if unanswered and args.data is None:
            raise CLIError(
                f"token(s) {_positions(unanswered)} of workflow {engine.uuid} wait at a halt "
                "step for an answer: give it with --data JSON (--token N for one token)"
            )
        if unanswered:
            ctx.out.note(
                f"stored the answer; token(s) {_positions(unanswered)} still wait for theirs "
                "(--token N --data JSON): the run resumes once every one has its answer"
            )
            return _report(ctx, outcome(engine), resumed=False)
    return _run(ctx, engine, engine.resume, pending)


def _positions(positions: list[int]) -> str:
    return ", ".join(map(str, positions))
