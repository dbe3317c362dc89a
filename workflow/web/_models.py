"""The JSON shapes of the API, as its OpenAPI document describes them.

The objects are open (``additionalProperties``): the fields named here are
always there with these types, and a run or an interaction may carry more
(what ``workflow show --json`` and ``workflow waiting --json`` print).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from workflow.engine_db import WorkflowStatus

from ..errors import WorkflowValueError

__all__ = [
    "MAX_TOKENS",
    "STATUS_NAMES",
    "AnswerRequest",
    "AnswerResult",
    "CancelRequest",
    "Interaction",
    "InteractionList",
    "ProblemBody",
    "RunDetail",
    "RunList",
    "RunState",
    "RunSummary",
    "StartRequest",
    "StatusName",
    "Text",
    "storable",
]

#: The most tokens one start may give a run.
MAX_TOKENS = 1000

#: The names of the statuses of a run.
STATUS_NAMES = tuple(status.name for status in WorkflowStatus)
StatusName = Literal["NEW", "RUNNING", "HALTED", "ERROR", "COMPLETED", "WAITING", "CANCELLED"]
assert set(StatusName.__args__) == set(STATUS_NAMES), STATUS_NAMES  # type: ignore[attr-defined]

#: Text fields refuse control characters (NUL cannot be stored by PostgreSQL).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def storable(text: str) -> str:
    """Refuse text no database stores: NUL, and lone surrogates (``"\\ud800"`` in JSON)."""
    if "\x00" in text:
        raise WorkflowValueError("text cannot hold the character NUL (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WorkflowValueError("text cannot hold a lone surrogate (such as \\ud800)") from None
    return text


#: A string any database stores.
Text = Annotated[str, AfterValidator(storable)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProblemBody(_Open):
    """A refused request: what is wrong, and a ``reason`` word a program can test."""

    detail: str
    reason: str


class RunSummary(_Open):
    """One run in a list."""

    uuid: str
    name: str
    status: str
    definition: dict[str, Any] | None
    counts: dict[str, int]


class RunList(_Open):
    """A page of runs, newest first; ``next_offset`` is ``null`` on the last page."""

    runs: list[RunSummary]
    next_offset: int | None


class RunDetail(_Open):
    """One run: its tokens, its waits, the steps its tokens ran (``trace``) and
    its status changes (``log``), oldest first."""

    uuid: str
    name: str
    status: str
    tokens: list[dict[str, Any]]
    waits: list[dict[str, Any]]
    trace: list[dict[str, Any]]
    log: list[dict[str, Any]]


class RunState(_Open):
    """A run's status after an operation, and the steps it waits at."""

    uuid: str
    status: str
    waiting: list[dict[str, Any]]


class StartRequest(BaseModel):
    """Start a run of a stored flow."""

    model_config = ConfigDict(extra="forbid")

    flow: Text = Field(min_length=1, max_length=255, pattern=PRINTABLE, description="its name")
    version: int | None = Field(default=None, ge=1, le=2**31 - 1, description="default: latest")
    tokens: list[Any] | None = Field(
        default=None,
        max_length=MAX_TOKENS,
        description="the input records, one token each (default: one {})",
    )
    key: Text | None = Field(
        default=None, min_length=1, max_length=255, pattern=PRINTABLE, description="the run key"
    )
    on_conflict: Literal["refuse", "existing"] | None = Field(
        default=None, description="when an active run holds the key (default: the flow's)"
    )


class CancelRequest(BaseModel):
    """Cancel a run."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(default="", max_length=1000)


class Interaction(_Open):
    """An interaction (an ``ask`` step's wait): message, approvers, answers, deadline."""

    id: str
    run: str
    step: str
    phase: str
    due: str | None


class InteractionList(_Open):
    """A page of open interactions, oldest first."""

    interactions: list[Interaction]
    next_offset: int | None


class AnswerRequest(BaseModel):
    """An answer: approve or reject, with data the step's schema checks."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    data: Any = None


class AnswerResult(_Open):
    """What an answer did: recorded (or found by its key), decided, the run continued."""

    interaction: str
    run: str
    by: str
    answer: str
    recorded: bool
    decided: bool
    decision: str | None
    approvals: int
    rejections: int
    quorum: int
    continued: bool
    run_status: str
