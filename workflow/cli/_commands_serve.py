"""``workflow serve``: the HTTP API and the web page, with uvicorn (the ``web`` extra).

People are known by the tokens of ``--users FILE`` or ``$WORKFLOW_WEB_USERS``
(:func:`~workflow.web.load_users`). Without either, the server listens on
127.0.0.1 only, makes one token for the person who started it, and prints
it: another host is refused, since anyone who reaches it would need a token.
An answer that decides continues its run in the server, with the run's
definition built as ``workflow resume`` builds it (give the ``--import``
of its tasks); a run it may not build is left to a ``workflow worker``.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from ._argtypes import positive
from ._context import CLIError, Context, ExitCode, import_modules, import_storage
from ._waits import RunDefinitions

__all__ = ["LOCAL_HOSTS", "register"]

log = logging.getLogger("workflow.cli")

#: The hosts a server without configured users may listen on.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


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
    serve.set_defaults(handler=cmd_serve)


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
    if not users:
        if args.host not in LOCAL_HOSTS:
            raise CLIError(
                f"no users are configured: refusing to listen on {args.host}; give --users "
                "FILE or $WORKFLOW_WEB_USERS, or serve on 127.0.0.1"
            )
        token = secrets.token_urlsafe(24)
        name = getpass.getuser()
        users = web.Users({token: name}, source="a token made for this server")
        ctx.out.note(
            f"no users configured: listening on {args.host} only; sign in as {name} with the "
            f"token {token}"
        )
    import_modules(args.imports)
    store = ctx.store()
    app = web.create_app(
        store,
        users=users,
        definitions=RunDefinitions(ctx),
        imports=list(args.imports),
        secret=os.environ.get(web.ENV_SECRET) or None,
    )
    ctx.out.note(f"serving {ctx.shown_url} on http://{args.host}:{args.port}/ ({users!r})")
    log.info("serving on %s:%d", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return ExitCode.OK
