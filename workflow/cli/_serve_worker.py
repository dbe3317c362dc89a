"""The app of one worker process of ``workflow serve --workers N``.

Each server process (one of :mod:`._serve_group`, or uvicorn's worker)
calls :func:`worker_app`. It parses the command line ``serve`` was given again
(``$_WORKFLOW_SERVE_ARGV``) and builds the app as ``serve`` does, with the
users and the session secret ``serve`` put in the environment: every worker
knows the same people and signs with the same key.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from ._app import parse_args
from ._commands_serve import ENV_ARGV, build_app
from ._context import Context, import_modules
from ._logging import LogSetup
from ._output import Output

__all__ = ["worker_app"]


def worker_app() -> Any:
    """Return the ASGI app of this worker (uvicorn's application factory)."""
    web = importlib.import_module("workflow.web")
    args = parse_args(json.loads(os.environ[ENV_ARGV]))
    logs = LogSetup(
        args.log_level,
        log_file=args.log_file,
        max_bytes=args.log_max_bytes,
        backups=args.log_backups,
    )
    ctx = Context(args, Output(json_mode=args.json), logs)
    import_modules(args.imports)
    return build_app(ctx, web.load_users(args.users), os.environ[web.ENV_SECRET])
