"""The JSON API under ``/api``: runs and interactions, for bearer-token users.

Every route needs ``Authorization: Bearer TOKEN``; the user who answers is
the one the token names. Refusals are :class:`~._models.ProblemBody`
objects with the status the route documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._models import (
    PRINTABLE,
    AnswerRequest,
    AnswerResult,
    CancelRequest,
    Interaction,
    InteractionList,
    ProblemBody,
    RunDetail,
    RunList,
    RunState,
    StartRequest,
    StatusName,
)
from ._problems import Problem, json_response
from ._service import RunService

__all__ = ["UUID_PATTERN", "router"]

#: A run's uuid, or an interaction's id: 8-4-4-4-12 lower-case hex digits.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

_bearer = HTTPBearer(auto_error=False, description="a token of the users file")


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ProblemBody} for code in (401, 422, *codes)}


router = APIRouter(prefix="/api", tags=["api"])


# The dependencies are coroutines: they do no I/O, and FastAPI would run a plain
# function in a thread of its pool, a hop per dependency and request.


async def service(request: Request) -> RunService:
    """The :class:`RunService` of the app."""
    found: RunService = request.app.state.service
    return found


async def user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The user the bearer token names; 401 without a known token."""
    token = credentials.credentials if credentials is not None else None
    name: str | None = request.app.state.users.user(token)
    if name is None:
        raise Problem(401, "give a known token: Authorization: Bearer TOKEN", "unauthorized")
    return name


User = Annotated[str, Depends(user)]
Service = Annotated[RunService, Depends(service)]
RunId = Annotated[str, Path(pattern=UUID_PATTERN, description="the run's uuid")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=PRINTABLE,
        description="the same key again gives the first request's result, done once",
    ),
]


@router.get("/runs", response_model=RunList, responses=_problems())
async def list_runs(
    _: User,
    runs: Service,
    status: Annotated[StatusName | None, Query(description="only runs of this status")] = None,
    flow: Annotated[
        str | None,
        Query(max_length=255, pattern=PRINTABLE, description="only runs of this flow or name"),
    ] = None,
    since: Annotated[datetime | None, Query(description="created at or after (UTC)")] = None,
    until: Annotated[datetime | None, Query(description="created before (UTC)")] = None,
    key: Annotated[
        str | None, Query(max_length=255, pattern=PRINTABLE, description="runs that took this key")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """List runs, newest first, a page at a time."""
    found, next_offset = await run_in_threadpool(
        runs.runs,
        status=status,
        flow=flow,
        since=since,
        until=until,
        key=key,
        limit=limit,
        offset=offset,
    )
    return {"runs": found, "next_offset": next_offset}


@router.post(
    "/runs",
    response_model=RunState,
    status_code=201,
    responses={
        200: {"model": RunState, "description": "the run of this Idempotency-Key, not started"},
        **_problems(404, 409),
    },
)
async def start_run(
    who: User, runs: Service, body: StartRequest, idempotency_key: IdempotencyKey = None
) -> Any:
    """Start a run of a stored flow; it goes on until it ends or waits.

    With an ``Idempotency-Key``, the same key (of the same user) gives the
    same run again, with status 200, and does not start it twice.
    """
    idempotency = None if idempotency_key is None else (who, idempotency_key)
    started = await run_in_threadpool(
        runs.start,
        flow=body.flow,
        version=body.version,
        tokens=body.tokens,
        key=body.key,
        on_conflict=body.on_conflict,
        idempotency=idempotency,
    )
    return JSONResponse(started, status_code=201 if started["created"] else 200)


@router.get("/runs/{uuid}", response_model=RunDetail, responses=_problems(404))
async def get_run(_: User, runs: Service, uuid: RunId) -> dict[str, Any]:
    """One run with its tokens, its waits and its trace."""
    return await run_in_threadpool(runs.run, uuid)


@router.post("/runs/{uuid}/resume", response_model=RunState, responses=_problems(404, 409))
async def resume_run(_: User, runs: Service, uuid: RunId) -> dict[str, Any]:
    """Resume a halted or failed run here, with the definition it started with."""
    return await run_in_threadpool(runs.resume, uuid)


@router.post("/runs/{uuid}/cancel", response_model=RunState, responses=_problems(404, 409))
async def cancel_run(
    who: User, runs: Service, uuid: RunId, body: Annotated[CancelRequest | None, Body()] = None
) -> dict[str, Any]:
    """Cancel a run for good (the status log records who and why)."""
    reason = "" if body is None else body.reason
    return await run_in_threadpool(runs.cancel, uuid, reason=reason, by=who)


@router.get("/interactions", response_model=InteractionList, responses=_problems())
async def list_interactions(
    who: User,
    runs: Service,
    mine: Annotated[
        bool, Query(description="only those I may answer and have not answered")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """List the open interactions, oldest first."""
    found, next_offset = await run_in_threadpool(
        runs.waiting, user=who if mine else None, limit=limit, offset=offset
    )
    return {"interactions": found, "next_offset": next_offset}


@router.get("/interactions/{ident}", response_model=Interaction, responses=_problems(404))
async def get_interaction(
    _: User,
    runs: Service,
    ident: Annotated[str, Path(pattern=UUID_PATTERN, description="the interaction's id")],
) -> dict[str, Any]:
    """One interaction, open or decided, with its answers."""
    return await run_in_threadpool(runs.interaction, ident)


@router.post(
    "/interactions/{ident}/answer",
    response_model=AnswerResult,
    responses=_problems(403, 404, 409, 410),
)
async def answer_interaction(
    who: User,
    runs: Service,
    ident: Annotated[str, Path(pattern=UUID_PATTERN, description="the interaction's id")],
    body: AnswerRequest,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Answer as the token's user; an answer that decides continues the run here.

    200: recorded (or recorded before with the same ``Idempotency-Key``);
    403: not an approver; 409: already decided (with the decision and who
    decided), already answered, or the run was cancelled; 410: the deadline
    passed; 422: the data does not match the step's schema.
    """
    done = await runs.answer_async(
        ident, by=who, decision=body.decision, data=body.data, key=idempotency_key
    )
    return json_response(done)  # made by the service in the documented shape: sent as it is
