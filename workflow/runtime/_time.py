"""Times a run waits by: ISO 8601 durations and instants, and retry back-off.

Durations are the ISO 8601 ``PnW``, ``PnDTnHnMnS`` forms (``PT48H``,
``P1DT12H``, ``PT0.5S``). Years and months are refused: their length
depends on the calendar, and a deadline must mean one instant. Instants
must say their offset (``2026-12-06T09:00:00Z``, ``...+01:00``): a time
without one would mean something else on each machine. Every time is
turned into naive UTC, as the database stores it.

>>> parse_duration("PT1H30M")
datetime.timedelta(seconds=5400)
>>> parse_instant("2026-12-06T10:00:00+01:00")
datetime.datetime(2026, 12, 6, 9, 0)

.. versionadded:: 3.0
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

from ..errors import WorkflowValueError

__all__ = ["MAX_DURATION", "backoff_delay", "parse_duration", "parse_instant"]

#: The longest duration accepted: a hundred years of 365 days.
MAX_DURATION = timedelta(days=36500)

_NUMBER = r"(\d{1,9}(?:[.,]\d{1,9})?)"
_DURATION = re.compile(
    rf"P(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)
_UNITS = ("weeks", "days", "hours", "minutes", "seconds")


def parse_duration(text: object, *, what: str = "duration") -> timedelta:
    """Return the :class:`~datetime.timedelta` an ISO 8601 duration means.

    :param what: what the text is, for the error (``"timeout"``).
    :raises WorkflowValueError: naming the text and the forms accepted.
    """
    if not isinstance(text, str):
        raise WorkflowValueError(
            f"{what} must be an ISO 8601 duration such as 'PT10M', not {type(text).__name__}"
        )
    match = _DURATION.fullmatch(text.strip().upper())
    if match is None or not any(match.groups()) or text.strip().upper().endswith("T"):
        hint = ""
        if re.fullmatch(r"P.*\d+[YM].*", text.strip().upper().split("T")[0]):
            hint = "; years and months are not accepted (their length varies): use days"
        raise WorkflowValueError(
            f"{what} {text!r} is not an ISO 8601 duration such as 'PT10M', 'PT48H' "
            f"or 'P1DT12H'{hint}"
        )
    parts = {
        unit: float(value.replace(",", "."))
        for unit, value in zip(_UNITS, match.groups(), strict=True)
        if value is not None
    }
    try:
        duration = timedelta(**parts)
    except OverflowError:
        duration = MAX_DURATION + timedelta(days=1)
    if duration > MAX_DURATION:
        raise WorkflowValueError(f"{what} {text!r} is longer than 100 years")
    return duration


def parse_instant(text: object, *, what: str = "time") -> datetime:
    """Return the instant an ISO 8601 time with an offset means, as naive UTC.

    :raises WorkflowValueError: when ``text`` is not such a time, or has no offset.
    """
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise WorkflowValueError(
                f"{what} {text!r} is not an ISO 8601 time such as '2026-12-06T09:00:00Z'"
            ) from None
    else:
        raise WorkflowValueError(
            f"{what} must be an ISO 8601 time such as '2026-12-06T09:00:00Z', "
            f"not {type(text).__name__}"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise WorkflowValueError(
            f"{what} {str(text)!r} has no UTC offset: write it as '...Z' or '...+01:00'"
        )
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def backoff_delay(
    attempt: int,
    base: timedelta,
    ceiling: timedelta | None = None,
    *,
    jitter: bool = True,
    rng: random.Random | None = None,
) -> timedelta:
    """Return how long to wait after failed attempt number ``attempt`` (1 for the first).

    The delay doubles with each attempt from ``base``, up to ``ceiling``;
    with ``jitter`` it is drawn between half of that and all of it, so that
    runs that failed together do not all try again at the same instant.

    >>> from datetime import timedelta
    >>> from workflow.runtime import backoff_delay
    >>> backoff_delay(3, timedelta(seconds=2), jitter=False)
    datetime.timedelta(seconds=8)
    >>> backoff_delay(10, timedelta(seconds=2), timedelta(minutes=1), jitter=False)
    datetime.timedelta(seconds=60)
    """
    seconds = base.total_seconds() * 2 ** min(max(attempt - 1, 0), 60)
    if ceiling is not None:
        seconds = min(seconds, ceiling.total_seconds())
    if jitter:
        seconds *= 0.5 + 0.5 * (rng or random).random()
    return timedelta(seconds=seconds)
