"""The times ``workflow list --since`` and ``--until`` take: ISO 8601 dates and times.

A time without an offset is UTC, as the command shows times; one with an
offset (``Z``, ``+01:00``) is converted to UTC. A date alone is a whole day:
``--since`` starts at its first moment, ``--until`` ends after its last.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta, timezone

__all__ = ["parse_when", "since", "until"]

_EXAMPLES = "e.g. 2026-12-05, 2026-12-05T14:30 or 2026-12-05T14:30:00+01:00"


def parse_when(text: str, *, end_of_day: bool) -> datetime:
    """Return ``text`` as a naive UTC time; a date alone is its start (or its end).

    :raises argparse.ArgumentTypeError: naming what an ISO 8601 time looks like.
    """
    shown = text if len(text) <= 40 else f"{text[:37]}..."
    value = text.strip()
    if value[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat knows no Z
        value = value[:-1] + "+00:00"
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time())
            return start + timedelta(days=1) if end_of_day else start
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shown!r} is not an ISO 8601 date or time ({_EXAMPLES})"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def since(text: str) -> datetime:
    """The ``--since`` option: a date is its first moment."""
    return parse_when(text, end_of_day=False)


def until(text: str) -> datetime:
    """The ``--until`` option: a date lasts to its end."""
    return parse_when(text, end_of_day=True)
