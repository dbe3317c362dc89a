"""The web page: server-rendered HTML for people, on the same service as the API.

A person signs in by pasting their token (``/login``) and gets a signed
session cookie (HttpOnly, SameSite=Lax). Every form carries the session's
CSRF token; a POST without it, or with another session's, is refused with
403 before anything happens. Templates are Jinja2 with autoescaping on, so
every value a run or a person wrote is shown as text. The forms work
without JavaScript; ``static/page.js`` only adds the deadline countdowns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from workflow.engine_db import WorkflowStatus

from ._auth import Session, Sessions, Users
from ._forms import form_fields, read_form
from ._problems import Problem
from ._service import RunService

__all__ = ["COOKIE", "Pages", "mount_pages"]

#: The name of the session cookie.
COOKIE = "workflow_session"
#: How many runs, and interactions, a page lists.
PAGE_SIZE = 50


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("workflow.web", "templates"),
        autoescape=True,
    )
    env.filters["short"] = lambda text: str(text)[:8]
    env.filters["when"] = _when
    return env


def _when(text: Any) -> str:
    """``2026-12-06 01:07:03 UTC`` from an ISO time, or ``-``."""
    if not text:
        return "-"
    return str(text).replace("T", " ").split(".")[0].rstrip("Z") + " UTC"


def _safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Pages:
    """The routes of the page, bound to one app's service, users and sessions."""

    def __init__(self, service: RunService, users: Users, sessions: Sessions) -> None:
        self.service = service
        self.users = users
        self.sessions = sessions
        self.env = _environment()

    def __repr__(self) -> str:
        return f"<Pages of {self.service!r}>"

    # -- rendering ------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        """Render ``template`` with the session's user and CSRF token."""
        page = self.env.get_template(template).render(
            user=session.user if session else None,
            csrf=self.sessions.csrf(session) if session else "",
            path=request.url.path,
            **values,
        )
        headers = {
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
            "form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
        return HTMLResponse(page, status_code=status, headers=headers)

    def problem(self, request: Request, exc: Problem) -> Response:
        """Render a refusal as a page with its status."""
        session = self.session(request)
        if request.method == "GET" and (exc.status == 401 or session is None):
            return self._to_login(request)
        return self.render(
            request, "problem.html", session, exc.status, problem=exc, extra=exc.extra
        )

    # -- sessions -------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        """The signed-in person's session, or ``None``."""
        return self.sessions.read(request.cookies.get(COOKIE), self.users)

    def _to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def _posted(self, request: Request) -> tuple[Session, Mapping[str, str]]:
        """The session and the form of a POST, once its CSRF token is checked.

        :raises Problem: 403 without a session or with a wrong CSRF token.
        """
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        session = self.session(request)
        if session is None or not self.sessions.check_csrf(session, fields.get("csrf")):
            raise Problem(403, "this form is not from your session: reload the page", "csrf")
        return session, fields

    async def login_page(self, request: Request) -> Response:
        """The sign-in form."""
        next_page = _safe_next(request.query_params.get("next"))
        return self.render(request, "login.html", None, next_page=next_page, error=None)

    async def login(self, request: Request) -> Response:
        """Trade a token for a session cookie."""
        form = await request.form()
        token = str(form.get("token") or "").strip()
        next_page = _safe_next(str(form.get("next") or "/"))
        user = self.users.user(token)
        if user is None:
            error = "That token is not known here. Paste the token you were given."
            return self.render(request, "login.html", None, 401, next_page=next_page, error=error)
        response = RedirectResponse(next_page, status_code=303)
        response.set_cookie(
            COOKIE,
            self.sessions.issue(user),
            max_age=self.sessions.seconds,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """End the session."""
        await self._posted(request)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- runs -----------------------------------------------------------------------

    async def runs(self, request: Request) -> Response:
        """Runs with status counts and filters."""
        from fastapi.concurrency import run_in_threadpool

        session = self.session(request)
        if session is None:
            return self._to_login(request)
        query = request.query_params
        filters = {
            name: query.get(name) or None for name in ("status", "flow", "key", "since", "until")
        }
        if filters["status"] not in (None, *WorkflowStatus.__members__):
            raise Problem(422, f"no run status is called {filters['status']!r}", "invalid")
        try:
            offset = max(0, int(query.get("offset") or 0))
            since, until = (
                None if not text else datetime.fromisoformat(text)
                for text in (filters["since"], filters["until"])
            )
        except ValueError as exc:
            raise Problem(422, f"a filter is not valid: {exc}", "invalid") from None
        found, next_offset = await run_in_threadpool(
            self.service.runs,
            status=filters["status"],
            flow=filters["flow"],
            key=filters["key"],
            since=since,
            until=until,
            limit=PAGE_SIZE,
            offset=offset,
        )
        counts = await run_in_threadpool(self.service.status_counts)
        shown = {key: value for key, value in filters.items() if value}
        return self.render(
            request,
            "runs.html",
            session,
            runs=found,
            counts=counts,
            filters=filters,
            next_page=None
            if next_offset is None
            else "/?" + urlencode({**shown, "offset": next_offset}),
            first_page="/?" + urlencode(shown) if offset else None,
        )

    async def run(self, request: Request) -> Response:
        """One run: its diagram, tokens and log."""
        from fastapi.concurrency import run_in_threadpool

        session = self.session(request)
        if session is None:
            return self._to_login(request)
        uuid = request.path_params["uuid"]
        found = await run_in_threadpool(self.service.run, uuid)
        diagram = await run_in_threadpool(self.service.diagram, found)
        return self.render(request, "run.html", session, run=found, diagram=diagram)

    async def run_action(self, request: Request) -> Response:
        """Resume or cancel a run, then show it."""
        from fastapi.concurrency import run_in_threadpool

        session, form = await self._posted(request)
        uuid = request.path_params["uuid"]
        action = request.path_params["action"]
        if action not in ("cancel", "resume"):
            raise Problem(404, f"a run can be resumed or cancelled, not {action!r}", "not_found")
        if action == "cancel":
            reason = form.get("reason", "")[:1000]
            await run_in_threadpool(self.service.cancel, uuid, reason=reason, by=session.user)
        else:
            await run_in_threadpool(self.service.resume, uuid)
        return RedirectResponse(f"/runs/{quote(uuid)}", status_code=303)

    # -- interactions ---------------------------------------------------------------

    async def waiting(self, request: Request) -> Response:
        """The interactions waiting for an answer, with their forms."""
        from fastapi.concurrency import run_in_threadpool

        session = self.session(request)
        if session is None:
            return self._to_login(request)
        try:
            offset = max(0, int(request.query_params.get("offset") or 0))
        except ValueError:
            raise Problem(422, "offset is a whole number", "invalid") from None
        found, next_offset = await run_in_threadpool(
            self.service.waiting, limit=PAGE_SIZE, offset=offset
        )
        for item in found:
            approvers = item.get("approvers")
            answered = {answer["by"] for answer in item.get("answers", [])}
            item["may_answer"] = (
                approvers is None or session.user in approvers
            ) and session.user not in answered
            item["answered_by_me"] = session.user in answered
            item["fields"] = form_fields(item.get("schema"))
        return self.render(
            request,
            "waiting.html",
            session,
            interactions=found,
            now=time.time(),
            next_page=None if next_offset is None else f"/waiting?offset={next_offset}",
        )

    async def answer(self, request: Request) -> Response:
        """Record the signed-in person's answer; say what it did."""
        from fastapi.concurrency import run_in_threadpool

        session, form = await self._posted(request)
        ident = request.path_params["ident"]
        decision = form.get("decision")
        if decision not in ("approve", "reject"):
            raise Problem(422, "choose Approve or Reject", "invalid")
        interaction = await run_in_threadpool(self.service.interaction, ident)
        try:
            data = read_form(interaction.get("schema"), form)
        except ValueError as exc:
            raise Problem(422, str(exc), "invalid", interaction=ident) from None
        done = await run_in_threadpool(
            self.service.answer,
            ident,
            by=session.user,
            decision=decision,
            data=data,
            key=form.get("key") or None,
        )
        return self.render(request, "answered.html", session, done=done, interaction=interaction)


def mount_pages(app: FastAPI) -> None:
    """Add the page's routes and its assets (``/static``) to ``app``."""
    pages = Pages(app.state.service, app.state.users, app.state.sessions)
    app.state.pages = pages
    static = resources.files("workflow.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    routes = [
        ("/", pages.runs, ["GET"]),
        ("/login", pages.login_page, ["GET"]),
        ("/login", pages.login, ["POST"]),
        ("/logout", pages.logout, ["POST"]),
        ("/waiting", pages.waiting, ["GET"]),
        ("/runs/{uuid}", pages.run, ["GET"]),
        ("/runs/{uuid}/{action:str}", pages.run_action, ["POST"]),
        ("/interactions/{ident}/answer", pages.answer, ["POST"]),
    ]
    for path, endpoint, methods in routes:
        app.add_api_route(
            path,
            endpoint,
            methods=methods,
            include_in_schema=False,
            response_class=HTMLResponse,
        )
