"""``workflow run`` and ``workflow resume``."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from ._context import CLIError, Context, import_storage
from ._inputs import parse_json, read_tokens
from ._progress import progress
from ._report import outcome, render_outcome
from ._targets import META_KEY, Target, resume_target, run_target

if TYPE_CHECKING:
    from workflow.storage import PersistentWorkflowEngine, Token

__all__ = ["register"]

log = logging.getLogger("workflow.cli")

_WAITING = ("HALTED", "WAITING")


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
    run.add_argument("--version", type=int, metavar="N", help="with --definition: run version N")
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
    run.set_defaults(handler=cmd_run)

    resume = commands.add_parser(
        "resume",
        parents=[common],
        help="resume a halted or failed run",
        description="Go on with a stored run where it stopped, with the definition it "
        "started with.",
    )
    resume.add_argument("uuid", metavar="UUID", help="the workflow to resume")
    resume.add_argument(
        "--data",
        metavar="JSON",
        help="the answer for the halted tokens: a flow records it as the result of the halt "
        "step; a Python run merges a JSON object into the token's data",
    )
    resume.add_argument(
        "--lock-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for another process running the workflow to let go "
        "(default: fail at once)",
    )
    resume.add_argument(
        "--token",
        type=int,
        metavar="N",
        help="give --data to token N only (default: every halted token)",
    )
    resume.set_defaults(handler=cmd_resume)


def _run(ctx: Context, engine: PersistentWorkflowEngine, action: Any, total: int) -> int:
    """Run ``action`` with a progress bar, then report the outcome of the stored run."""
    with progress(engine, ctx.out.stderr, total):
        action(stop_on_error=False, stop_on_halt=False)
    result = outcome(engine)
    log.info("workflow %s %s: %s", engine.uuid, engine.status.name, result["counts"])
    ctx.out.result(result, lambda: render_outcome(result))
    return int(result["exit_code"])


def cmd_run(ctx: Context) -> int:
    """Run a definition over the tokens in a new stored workflow."""
    args = ctx.args
    records = read_tokens(args.tokens)
    target: Target = run_target(ctx)
    storage = import_storage()
    meta = {"target": target.spec, "imports": args.imports, "checkpoint": args.checkpoint}
    engine = storage.PersistentWorkflowEngine.with_name(
        args.name or target.name,
        store=ctx.store(),
        definition=target.callbacks,
        extra_data={META_KEY: meta},
        checkpoint=args.checkpoint,
        definition_name=target.definition_name,
        definition_version=target.definition_version,
    )
    tokens = [target.token(record) for record in records]
    log.info("workflow %s (%s) runs %d token(s)", engine.uuid, engine.name, len(tokens))
    return _run(ctx, engine, lambda **kw: engine.process(tokens, **kw), len(tokens))


def _waiting(engine: PersistentWorkflowEngine, target: Target, position: int | None) -> list[Token]:
    """The halted tokens ``--data`` goes to: token ``position``, or every one that waits.

    In a flow run, a token waits for its answer until it has one.
    """
    tokens = engine.load_tokens()
    if position is None:
        unanswered = set(_unanswered(engine)) if target.flow is not None else None
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
    """Record ``data`` in each halted token, then store the tokens."""
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
        engine.update_token(token.position, token.data)
        log.info("token %d of workflow %s got the data %r", token.position, engine.uuid, data)


def _unanswered(engine: PersistentWorkflowEngine) -> list[int]:
    """The halted tokens of a flow run that still wait at a halt step for their answer."""
    from workflow.flows import halted_step

    return [
        token.position
        for token in engine.load_tokens()
        if token.status.name in _WAITING and halted_step(token.data) is not None
    ]


def cmd_resume(ctx: Context) -> int:
    """Resume a stored run, giving ``--data`` to its halted tokens first.

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
    if args.lock_wait < 0:
        raise CLIError(f"--lock-wait must be 0 or more seconds, not {args.lock_wait}")
    engine = storage.PersistentWorkflowEngine.from_uuid(
        args.uuid, store=ctx.store(), lock_wait=args.lock_wait
    )
    meta = engine.extra_data.get(META_KEY) or {}
    if meta.get("checkpoint"):
        engine.checkpoint = storage.CheckpointPolicy(meta["checkpoint"])
    target = resume_target(ctx, engine)
    engine.callbacks.replace(target.callbacks)
    if args.data is not None:
        tokens = _waiting(engine, target, args.token)
        if not tokens:
            raise CLIError(f"workflow {engine.uuid} has no halted token to give --data to")
        _give_data(engine, target, tokens, data)
    if target.flow is not None:
        unanswered = _unanswered(engine)
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
            result = outcome(engine)
            ctx.out.result(result, lambda: render_outcome(result))
            return int(result["exit_code"])
    pending = sum(token.status.name != "COMPLETED" for token in engine.load_tokens())
    if not pending and engine.status.name == "COMPLETED":
        ctx.out.note(f"workflow {engine.uuid} already completed: nothing to resume")
    return _run(ctx, engine, engine.resume, pending)


def _positions(positions: list[int]) -> str:
    return ", ".join(map(str, positions))
