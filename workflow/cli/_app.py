"""The argument parser of the ``workflow`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import workflow

from . import (
    _argtypes,
    _commands_check,
    _commands_definitions,
    _commands_fix,
    _commands_inspect,
    _commands_run,
    _commands_schedule,
    _commands_serve,
    _commands_trace,
    _commands_wait,
    _commands_worker,
)
from ._context import ENV_DATABASE, ENV_IMPORT_ALLOW
from ._logging import LEVELS

__all__ = ["EPILOG", "build_parser"]

EPILOG = f"""\
exit codes: 0 completed, 1 a task failed on a token (or the database failed, or
the run was cancelled or interrupted), 2 invalid command line or input,
3 halted (tokens wait for `workflow resume`) or not finished,
130 interrupted by Ctrl-C or SIGTERM (the run is stored: resume it at once).
answer: 0 recorded (or decided), 2 refused, with the reason; send: 0 sent or
kept, 2 refused (unknown, completed or cancelled run); worker: 0 when it
stopped on SIGINT or SIGTERM.
The database is --database, else ${ENV_DATABASE}, else the SQLite file
workflow.sqlite in the working directory."""


def _level(text: str) -> str:
    level = text.upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(LEVELS)}")
    return level


def _add_global_options(parser: argparse.ArgumentParser, *, late: bool) -> None:
    """Add the options every command takes.

    :param late: for the copy each command takes after its name: these leave
        the values given before the command alone unless given again.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if late else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--database",
        metavar="URL",
        default=default(None),
        help=f"the SQLAlchemy URL of the database (default: ${ENV_DATABASE}, else "
        "sqlite:///workflow.sqlite)",
    )
    group.add_argument(
        "--import",
        dest="late_imports" if late else "imports",
        action="append",
        metavar="MODULE",
        default=default([]),
        help="import MODULE first, e.g. to register tasks (repeatable); `resume` imports "
        f"only these and those ${ENV_IMPORT_ALLOW} lists",
    )
    group.add_argument(
        "--log-level",
        type=_level,
        metavar="LEVEL",
        default=default("WARNING"),
        help=f"one of {', '.join(LEVELS)} (default: WARNING)",
    )
    group.add_argument(
        "--log-file", type=Path, metavar="PATH", default=default(None), help="log to PATH too"
    )
    group.add_argument(
        "--log-max-bytes",
        type=_argtypes.count,
        metavar="N",
        default=default(10_000_000),
        help="rotate the log file at N bytes (default: 10000000; 0: never)",
    )
    group.add_argument(
        "--log-backups",
        type=_argtypes.count,
        metavar="N",
        default=default(5),
        help="keep N rotated log files (default: 5)",
    )
    group.add_argument(
        "--log-database",
        action="store_true",
        default=default(False),
        help="log to the database's wf_syslog table too",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the result as one JSON document",
    )


class _Parser(argparse.ArgumentParser):
    """A parser that takes options only as written in full.

    argparse would take ``--data`` for ``--database`` (its prefix): one
    misspelt option would then name a database file.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``workflow``: the global options, then one subcommand."""
    parser = _Parser(
        prog="workflow",
        description="Run workflows and flows, resume halted runs, answer waiting runs, "
        "inspect the database.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"workflow {workflow.__version__}")
    _add_global_options(parser, late=False)
    common = _Parser(add_help=False)
    _add_global_options(common, late=True)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    _commands_run.register(commands, common)
    _commands_inspect.register(commands, common)
    _commands_fix.register(commands, common)
    _commands_definitions.register(commands, common)
    _commands_check.register(commands, common)
    _commands_wait.register(commands, common)
    _commands_worker.register(commands, common)
    _commands_serve.register(commands, common)
    _commands_trace.register(commands, common)
    _commands_schedule.register(commands, common)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``); argparse exits with 2 on a usage error."""
    args = build_parser().parse_args(argv)
    args.imports = [*args.imports, *getattr(args, "late_imports", [])]
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a `serve` worker parses again
    return args
