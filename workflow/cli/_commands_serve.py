"""``workflow serve``: the HTTP API and the web page, with uvicorn (the ``web`` extra).

People are known by the tokens of ``--users FILE`` or ``$WORKFLOW_WEB_USERS``
(:func:`~workflow.web.load_users`). Without either, the server listens on
127.0.0.1 only, makes one token for the person who started it, and prints
it: another host is refused, since anyone who reaches it would need a token.
An answer that decides continues its run in the server, with the run's
definition built as ``workflow resume`` builds it (give the ``--import``
of its tasks); a run it may not build is left to a ``workflow worker``.

With ``--workers N``, N processes serve the port: on Linux each listens
with a socket of its own (:mod:`._serve_group`, so that the kernel spreads
connections evenly), elsewhere uvicorn's workers share one socket. Each
builds the same app from the same command line (:mod:`._serve_worker`);
the users and the secret that signs sessions and CSRF tokens are settled
here first and handed to all of them, so that a session begun with one
process holds in the others.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from ._argtypes import positive
from ._context import CLIError, Context, ExitCode, import_modules, import_storage
from ._serve_group import REUSE_PORT, serve_group
from ._waits import RunDefinitions

__all__ = ["ANSWER_CONNECTIONS", "ENV_ARGV", "LOCAL_HOSTS", "THREADS", "build_app", "register"]

log = logging.getLogger("workflow.cli")

#: The hosts a server without configured users may listen on.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: How many requests one server process works on at once, each in a thread with
#: a database connection of its own; more wait for a turn. The work is Python
#: under one interpreter lock: more threads only take turns more often (8 and 16
#: answered fewer answers a second than 4 in ``benchmarks/bench_web.py``).
THREADS = 4
#: How many connections of its own one server process answers through on
#: PostgreSQL, on its event loop without a thread (8 answered most answers a
#: second in ``benchmarks/bench_web.py``; 4 fewer).
ANSWER_CONNECTIONS = 8
#: The variable that gives the workers of ``--workers N`` the command line to parse again.
ENV_ARGV = "_WORKFLOW_SERVE_ARGV"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``serve`` command."""
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="serve the HTTP API and the web page of runs and approvals",
        description="Serve the JSON API (/api, described by /openapi.json) and the web page "
        "(/) of the runs and the interactions waiting for people, with uvicorn. Users are "
        "tokens mapped to names, from --users FILE (JSON or TOML {token: user}, readable by "
        "its owner only) or $WORKFLOW_WEB_USERS (JSON); without them the server listens on "
        "127.0.0.1 only and prints a token for you. $WORKFLOW_WEB_SECRET signs the session "
        "cookies (default: a random secret, sessions end with the server). Needs the web "
        "extra: pip install 'workflow-ng[web]'.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen on HOST (default: %(default)s)")
    serve.add_argument(
        "--port", type=positive, default=8000, help="listen on PORT (default: %(default)d)"
    )
    serve.add_argument("--users", type=Path, metavar="FILE", help="the users file")
    serve.add_argument(
        "--workers",
        type=positive,
        default=1,
        metavar="N",
        help="serve with N processes on the same port, for more answers per second on "
        "more cores; sessions hold across them (default: %(default)d)",
    )
    serve.set_defaults(handler=cmd_serve)


def build_app(ctx: Context, users: Any, secret: str | None) -> Any:
    """Return the ASGI app ``workflow serve`` serves, on the database of ``ctx``.

    The database gets a pool of :data:`THREADS` connections, one for each
    request the process works on at once; on PostgreSQL, answers through the
    API take :data:`ANSWER_CONNECTIONS` more, on the event loop.
    """
    web = importlib.import_module("workflow.web")
    ctx.engine_options = {"pool_size": THREADS, "max_overflow": THREADS}
    return web.create_app(
        ctx.store(),
        users=users,
        definitions=RunDefinitions(ctx),
        imports=list(ctx.args.imports),
        secret=secret,
        threads=THREADS,
        answer_connections=ANSWER_CONNECTIONS,
    )


def cmd_serve(ctx: Context) -> int:
    """Serve until SIGINT or SIGTERM."""
    import_storage()
    try:
        web = importlib.import_module("workflow.web")
        uvicorn = importlib.import_module("uvicorn")
    except ImportError as exc:
        raise CLIError(str(exc), ExitCode.ERROR) from exc
    from workflow.errors import WorkflowValueError

    args = ctx.args
    try:
        users = web.load_users(args.users)
    except WorkflowValueError as exc:
        raise CLIError(str(exc)) from None
    made: dict[str, str] | None = None
    if not users:
        if args.host not in LOCAL_HOSTS:
            raise CLIError(
                f"no users are configured: refusing to listen on {args.host}; give --users "
                "FILE or $WORKFLOW_WEB_USERS, or serve on 127.0.0.1"
            )
        made = {secrets.token_urlsafe(24): getpass.getuser()}
        users = web.Users(made, source="a token made for this server")
        [(token, name)] = made.items()
        ctx.out.note(
            f"no users configured: listening on {args.host} only; sign in as {name} with the "
            f"token {token}"
        )
    import_modules(args.imports)
    secret = os.environ.get(web.ENV_SECRET) or None
    where = f"http://{args.host}:{args.port}/"
    # uvicorn logs warnings and errors only: its access log would be built and dropped.
    options = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False}
    if args.workers == 1:
        app = build_app(ctx, users, secret)
        ctx.out.note(f"serving {ctx.shown_url} on {where} ({users!r})")
        log.info("serving on %s:%d", args.host, args.port)
        uvicorn.run(app, **options)
        return ExitCode.OK
    ctx.store()  # a database that is missing or out of date fails here, not in N workers
    # The workers are new processes (spawned): they take these from the environment.
    os.environ[web.ENV_SECRET] = secret or secrets.token_urlsafe(32)
    if made is not None:
        os.environ[web.ENV_USERS] = json.dumps(made)
    os.environ[ENV_ARGV] = json.dumps(args.argv)
    ctx.out.note(f"serving {ctx.shown_url} on {where} with {args.workers} workers ({users!r})")
    log.info("serving on %s:%d with %d workers", args.host, args.port, args.workers)
    if REUSE_PORT:  # a socket of its own in each process: connections spread evenly
        return serve_group(
            args.host, args.port, args.workers, {"log_level": "warning", "access_log": False}
        )
    uvicorn.run(
        "workflow.cli._serve_worker:worker_app", factory=True, workers=args.workers, **options
    )
    return ExitCode.OK
