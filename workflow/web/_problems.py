"""Refusals: a :class:`Problem` names its HTTP status, a message and a reason word."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.responses import Response

__all__ = ["ANSWER_STATUS", "Problem", "json_response", "plain"]

#: The HTTP status of each reason an answer is refused for.
ANSWER_STATUS = {
    "not_found": 404,
    "not_an_approver": 403,
    "already_answered": 409,
    "key_in_use": 409,
    "already_decided": 409,
    "cancelled": 409,
    "expired": 410,
    "invalid": 422,
}


class Problem(Exception):
    """A request refused: its HTTP status, a message, a reason word and more fields."""

    def __init__(self, status: int, detail: str, reason: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return {"detail": self.detail, "reason": self.reason, **plain(self.extra)}


def plain(value: Any) -> Any:
    """Return ``value`` with every :class:`~datetime.datetime` as ISO 8601 text in UTC (``Z``)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response in ASCII: text a request brought (a lone surrogate) cannot break it."""
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    return Response(text, status_code=status, headers=headers, media_type="application/json")
