"""The ASGI application: the JSON API, the web page and its assets, one database."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

import workflow
from workflow.errors import DatabaseUnavailableError
from workflow.runtime._answer_fast import AnswerPool

from ._auth import Sessions, Users
from ._problems import Problem, json_response
from ._service import Definitions, RunService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractAsyncContextManager

    from starlette.types import ASGIApp, Receive, Scope, Send

    from workflow.flows import TaskRegistry
    from workflow.storage import Store

__all__ = ["MAX_BODY", "create_app"]

log = logging.getLogger(__name__)

#: The largest request body taken, in bytes.
MAX_BODY = 1_000_000


def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if request.url.path.startswith("/api") or not hasattr(request.app.state, "pages"):
        return json_response(exc.body(), exc.status, headers)
    response: Response = request.app.state.pages.problem(request, exc)
    return response


def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
    shown = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg"))}
        for error in errors
    ]
    return json_response({"detail": detail, "reason": "invalid", "errors": shown}, 422)


def _unavailable(request: Request, exc: Exception) -> Response:
    """503 for a database that cannot be reached (try again later)."""
    return json_response({"detail": str(exc), "reason": "unavailable"}, 503)


class _LimitBody:
    """Refuse with 413 a request whose ``Content-Length`` is over :data:`MAX_BODY`.

    Plain ASGI (no request object, no task per request), in front of every route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit() or int(value) > MAX_BODY:
                        body = {
                            "detail": f"the body is larger than {MAX_BODY} bytes",
                            "reason": "too_large",
                        }
                        await json_response(body, 413)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def _lifespan(
    threads: int | None, answer_connections: int
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that lets ``threads`` requests at a time work in threads (the rest
    wait), and answers on ``answer_connections`` connections of the loop's own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if threads is not None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        service: RunService = app.state.service
        if answer_connections and AnswerPool.usable(service.store):
            try:
                service.answers = await AnswerPool.open(service.store, answer_connections)
            except DatabaseUnavailableError as exc:  # answers go in threads, as elsewhere
                log.warning("answers go in threads: %s", exc)
        try:
            yield
        finally:
            pool, service.answers = service.answers, None
            if pool is not None:
                await pool.close()

    return lifespan


def create_app(
    store: Store,
    *,
    users: Users,
    registry: TaskRegistry | None = None,
    definitions: Definitions | None = None,
    imports: list[str] | None = None,
    secret: str | bytes | None = None,
    threads: int | None = None,
    answer_connections: int = 0,
) -> FastAPI:
    """Return the ASGI app of the API (``/api``), the page (``/``) and ``/openapi.json``.

    :param store: the database.
    :param users: who may sign in, by token (:func:`~workflow.web.load_users`).
    :param registry: the tasks stored flows are compiled with (default: the
        default registry, with the tasks of installed packages).
    :param definitions: builds a stored run's callbacks to continue it after
        an answer or a resume (default: its stored flow, with ``registry``).
    :param imports: the modules to record with the runs started here.
    :param secret: signs session cookies and CSRF tokens (default: a random
        one: sessions end with the process). Every process that serves the
        same people needs the same one.
    :param threads: how many requests the database is worked on for at once,
        each in a thread (default: AnyIO's 40); give the store a pool of as
        many connections.
    :param answer_connections: on PostgreSQL through psycopg, answer through
        the API on the event loop, with as many connections of its own
        (opened and closed by the app's lifespan), instead of in a thread;
        0: in a thread. An answer that decides goes on in a thread.

    .. versionadded:: 3.0
    .. versionchanged:: 3.0
       ``answer_connections``.
    """
    if registry is None:
        from workflow.flows import default_registry

        default_registry.load_entry_points()
        registry = default_registry
    app = FastAPI(
        title="workflow",
        version=workflow.__version__,
        description="Runs and the interactions that wait for people.",
        lifespan=(
            None
            if threads is None and not answer_connections
            else _lifespan(threads, answer_connections)
        ),
    )
    app.state.users = users
    app.state.sessions = Sessions(secret)
    app.state.service = RunService(
        store, registry=registry, definitions=definitions, imports=imports
    )
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(DatabaseUnavailableError, _unavailable)

    app.add_middleware(_LimitBody)
    from ._api import router

    app.include_router(router)
    from ._pages import mount_pages

    mount_pages(app)
    return app
