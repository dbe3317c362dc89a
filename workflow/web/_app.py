"""The ASGI application: the JSON API, the web page and its assets, one database."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

import workflow

from ._auth import Sessions, Users
from ._problems import Problem
from ._service import Definitions, RunService

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from workflow.flows import TaskRegistry
    from workflow.storage import Store

__all__ = ["MAX_BODY", "create_app"]

#: The largest request body taken, in bytes.
MAX_BODY = 1_000_000


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    """A JSON response in ASCII: text a request brought (a lone surrogate) cannot break it."""
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    return Response(text, status_code=status, headers=headers, media_type="application/json")


def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if request.url.path.startswith("/api") or not hasattr(request.app.state, "pages"):
        return _json(exc.body(), exc.status, headers)
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
    return _json({"detail": detail, "reason": "invalid", "errors": shown}, 422)


def create_app(
    store: Store,
    *,
    users: Users,
    registry: TaskRegistry | None = None,
    definitions: Definitions | None = None,
    imports: list[str] | None = None,
    secret: str | bytes | None = None,
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
        one: sessions end with the process).

    .. versionadded:: 3.0
    """
    if registry is None:
        from workflow.flows import default_registry

        default_registry.load_entry_points()
        registry = default_registry
    app = FastAPI(
        title="workflow",
        version=workflow.__version__,
        description="Runs and the interactions that wait for people.",
    )
    app.state.users = users
    app.state.sessions = Sessions(secret)
    app.state.service = RunService(
        store, registry=registry, definitions=definitions, imports=imports
    )
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _invalid)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            body = {"detail": f"the body is larger than {MAX_BODY} bytes", "reason": "too_large"}
            return _json(body, 413)
        return await call_next(request)

    from ._api import router

    app.include_router(router)
    from ._pages import mount_pages

    mount_pages(app)
    return app
