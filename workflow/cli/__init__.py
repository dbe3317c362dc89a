"""The ``workflow`` command: run flows and callback lists, resume them, inspect the database.

Run it as ``workflow`` or ``python -m workflow``; ``workflow --help`` lists
the commands. :func:`main` is the entry point, also for tests::

    from workflow.cli import main
    exit_code = main(["run", "flow.json", "--tokens", "in.jsonl"])

Importing :mod:`workflow` never imports this package.

.. versionadded:: 3.0
"""

from __future__ import annotations

import logging
import os
import sys

from ._app import parse_args
from ._context import CLIError, Context, ExitCode, import_modules
from ._interrupt import resume_command, term_interrupts
from ._logging import LogSetup
from ._output import Output

__all__ = ["ExitCode", "main"]

log = logging.getLogger("workflow.cli")


def main(argv: list[str] | None = None) -> int:
    """Run the ``workflow`` command with ``argv`` (default: ``sys.argv[1:]``).

    :returns: the exit code (:class:`ExitCode`); usage errors exit with 2
        from argparse itself.
    """
    args = parse_args(argv)
    output = Output(json_mode=args.json)
    try:
        logs = LogSetup(
            args.log_level,
            log_file=args.log_file,
            max_bytes=args.log_max_bytes,
            backups=args.log_backups,
        )
    except OSError as exc:
        output.error(f"cannot open the log file {args.log_file}: {exc.strerror}", ExitCode.USAGE)
        return ExitCode.USAGE
    ctx = Context(args, output, logs)
    try:
        with term_interrupts():
            if args.command not in ("resume", "retry"):  # they import once they know the run
                import_modules(args.imports)
            return int(args.handler(ctx))
    except CLIError as exc:
        return _fail(output, exc.message, exc.code)
    except KeyboardInterrupt as exc:
        return _interrupted(ctx, exc)
    except BrokenPipeError:
        # The reader went away (``workflow show UUID | head``): say nothing more,
        # and keep Python from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.ERROR
    except Exception as exc:
        known = _known_error(exc)
        if known is None:
            raise
        return _fail(output, *known)
    finally:
        ctx.close()


def _interrupted(ctx: Context, exc: KeyboardInterrupt) -> int:
    """Report Ctrl-C or SIGTERM; for a stored run, with the command that resumes it."""
    from workflow.errors import WorkflowInterrupted

    if not isinstance(exc, WorkflowInterrupted) or exc.workflow is None:
        signal_name = str(exc) or "SIGINT"
        return _fail(ctx.out, f"interrupted ({signal_name}); nothing was run", ExitCode.INTERRUPTED)
    database = ctx.shown_url if ctx.args.database is not None else None
    command = resume_command(exc.workflow, ctx.args.imports, database)
    how = "interrupted in" if exc.abandoned else "stopped after a task of"
    where = f" {how} token {exc.token}" if exc.token is not None else " stopped"
    message = (
        f"workflow {exc.workflow}{where} ({exc.reason}); it is stored and unlocked: "
        f"go on with `{command}`"
    )
    log.debug("the command was interrupted: %s", message, exc_info=True)
    ctx.out.error(
        message,
        ExitCode.INTERRUPTED,
        extra={"uuid": exc.workflow, "resume": command, "token": exc.token},
    )
    return ExitCode.INTERRUPTED


def _fail(output: Output, message: str, code: int) -> int:
    log.debug("the command failed: %s", message, exc_info=True)
    output.error(message, code)
    return code


def _known_error(exc: Exception) -> tuple[str, int] | None:
    """Map the library's errors to a message and an exit code; None for bugs."""
    from workflow.errors import (
        DefinitionDisabledError,
        StorageError,
        WorkflowDefinitionError,
        WorkflowLockedError,
        WorkflowNotFoundError,
        WorkflowObjectStatusError,
    )

    if isinstance(exc, WorkflowNotFoundError):  # unknown uuid, unknown definition
        return exc.message, ExitCode.USAGE  # without the context its str() repeats
    user_errors = (
        DefinitionDisabledError,
        WorkflowDefinitionError,
        WorkflowObjectStatusError,
    )
    if isinstance(exc, user_errors):
        return str(exc), ExitCode.USAGE
    if isinstance(exc, WorkflowLockedError):
        return (
            f"{exc}; `workflow resume --lock-wait SECONDS` waits for it to finish, or for the "
            "lock of a process that died to lapse",
            ExitCode.ERROR,
        )
    if isinstance(exc, StorageError):
        return " ".join(str(exc).split()), ExitCode.ERROR  # drivers' messages span lines
    return None
