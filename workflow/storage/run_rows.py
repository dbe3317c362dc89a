"""The rows a stored run writes, and how to find what in them cannot be stored.

The typed shapes of the rows :mod:`workflow.storage.run_writes` inserts and
updates, and what a :class:`~workflow.storage.run_writes.RunWriter` is given
to write: the run as its engine holds it (:class:`RunRow`) and the changes of
its tokens (:class:`TokenChange`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, cast

import sqlalchemy as sa

from ..engine_db import ObjectStatus
from ..errors import TokenEncodingError
from .codec import JSONCodec
from .models import StatusChangeRecord, TokenRecord, WorkflowRecord
from .token import Token

__all__ = [
    "RunRow",
    "StatusChangeInsert",
    "TokenChange",
    "TokenInsert",
    "TokenUpdate",
    "Unstorable",
    "WorkflowInsert",
    "WorkflowUpdate",
    "find_unstorable",
    "status_changes",
    "tokens",
    "transitions",
    "workflows",
]

workflows = cast(sa.Table, WorkflowRecord.__table__)
tokens = cast(sa.Table, TokenRecord.__table__)
status_changes = cast(sa.Table, StatusChangeRecord.__table__)
#: The former name of :data:`status_changes`.
transitions = status_changes


# -- the rows written --------------------------------------------------------------


class WorkflowInsert(TypedDict):
    """A new row of ``wf_workflow``."""

    uuid: str
    name: str
    status: int
    token_pos: int
    callback_pos: list[int]
    extra_data: dict[str, Any]
    definition_name: str | None
    definition_version: int | None
    created: datetime
    modified: datetime


class TokenInsert(TypedDict):
    """A new row of ``wf_token``."""

    workflow_uuid: str
    position: int
    data: Any
    extra_data: dict[str, Any]
    status: int
    callback_pos: list[int] | None
    created: datetime
    modified: datetime


class StatusChangeInsert(TypedDict):
    """A row of the ``wf_transition`` log; ``token_position`` is ``None`` for the run."""

    workflow_uuid: str
    token_position: int | None
    from_status: int | None
    to_status: int
    callback_pos: list[int] | None
    message: str
    created: datetime


class _TokenKey(TypedDict):
    w_uuid: str
    w_position: int


class TokenUpdate(_TokenKey, total=False):
    """The columns of one token to change (only those given are written)."""

    data: Any
    extra_data: dict[str, Any]
    status: int
    callback_pos: list[int] | None
    last_error: str | None
    modified: datetime


class _WorkflowKey(TypedDict):
    w_uuid: str
    w_owner: str


class WorkflowUpdate(_WorkflowKey, total=False):
    """The columns of a run to change, written only while ``w_owner`` holds its lock."""

    status: int
    token_pos: int
    callback_pos: list[int]
    extra_data: dict[str, Any]
    modified: datetime
    lock_owner: str | None
    lock_expires: datetime | None


class RunRow(NamedTuple):
    """The run as its engine holds it: where it is, and its ``extra_data``."""

    token_pos: int
    callback_pos: list[int]
    extra_data: dict[str, Any]


@dataclass(frozen=True)
class TokenChange:
    """What to store of a token: its data, and this status, position and error."""

    token: Token
    status: ObjectStatus
    callback_pos: list[int] | None
    message: str = ""
    error: str | None = None
    #: Leave the stored ``data`` and ``extra_data`` as they are (they cannot be stored).
    keep_data: bool = False


@dataclass(frozen=True)
class Unstorable:
    """What a write could not store.

    :ivar culprits: the tokens to store ``ERROR`` (by position), each with its problem.
    :ivar message: the first problem, naming what could not be stored.
    :ivar token: the token the first problem belongs to, if any.
    :ivar run_extra_data: whether the run's ``extra_data`` can be stored.
    """

    culprits: dict[int, str]
    message: str
    token: int | None
    run_extra_data: bool


def _problem(codec: JSONCodec, value: Any) -> str | None:
    """Return why ``value`` cannot be stored, or ``None`` when it can."""
    try:
        codec.dumps(value)
    except TokenEncodingError as error:
        return error.message
    return None


def find_unstorable(
    codec: JSONCodec, changes: Sequence[TokenChange], run: RunRow | None, *, otherwise: str
) -> Unstorable:
    """Find what of ``changes`` and ``run`` cannot be stored, encoding each value alone.

    Each token whose ``data`` or ``extra_data`` cannot be stored is a
    culprit; so is the token changed last when the run's ``extra_data``
    cannot be stored. When every value encodes alone, the token changed last
    is blamed with ``otherwise``.
    """
    culprits: dict[int, str] = {}
    for change in changes:
        token = change.token
        for label, value in (("obj.data", token.data), ("obj.extra_data", token.extra_data)):
            problem = _problem(codec, value)
            if problem is not None:
                culprits[token.position] = f"{label}: {problem}"
                break
    named: list[tuple[str, int | None]] = [(text, at) for at, text in culprits.items()]
    blamed = changes[-1].token.position if changes else None
    run_problem = None if run is None else _problem(codec, run.extra_data)
    also = None
    if run_problem is not None:
        also = f"eng.extra_data: {run_problem}"
    elif not culprits:
        also = otherwise
    if also is not None:
        named.append((also, blamed))
        if blamed is not None:
            culprits.setdefault(blamed, also)
    message, position = named[0]
    return Unstorable(culprits, message, position, run_problem is None)
