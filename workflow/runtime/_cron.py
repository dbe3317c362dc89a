"""Cron times in a time zone, as naive UTC instants: what a schedule fires at.

Cron expressions are read by `cronsim <https://pypi.org/project/cronsim/>`_
(the ``schedules`` extra), never by a parser of ours; time zones come from
:mod:`zoneinfo`. Across daylight-saving transitions cronsim's rules hold,
and the tests of this project pin them:

- a local time that does not exist (02:30 on the night clocks spring
  forward from 02:00 to 03:00) fires once, at the first valid time after
  the gap (03:00);
- a local time that happens twice (02:30 on the night clocks fall back)
  fires once, at its first occurrence, for a schedule that names the hour;
  a schedule whose hour field is ``*`` fires every real hour, both of them.

Every time here is naive UTC, as the database stores it.

>>> from datetime import datetime
>>> next_fire("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, 0))
datetime.datetime(2026, 3, 29, 1, 0)

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone, tzinfo
from typing import Any

from ..errors import WorkflowImportError, WorkflowValueError

__all__ = ["INSTALL_HINT", "check_cron", "check_timezone", "fire_times", "next_fire"]

INSTALL_HINT = "pip install 'workflow-ng[schedules]'"
#: The longest cron expression accepted.
MAX_CRON_LENGTH = 255


def _cronsim() -> Any:
    try:
        import cronsim
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        raise WorkflowImportError(f"schedules need cronsim: {INSTALL_HINT}") from exc
    return cronsim


def check_timezone(name: object, *, what: str = "timezone") -> tzinfo:
    """Return the time zone called ``name`` (an IANA name such as ``Europe/Berlin``).

    :raises WorkflowValueError: naming ``what`` and the name.
    """
    from zoneinfo import ZoneInfo

    if not isinstance(name, str) or not name.strip():
        raise WorkflowValueError(f"{what} must be an IANA time zone name, not {name!r}")
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise WorkflowValueError(
            f"{what} {name!r} is not a known time zone: give an IANA name such as "
            "'Europe/Berlin' or 'UTC'"
        ) from None


def check_cron(expr: object, *, what: str = "cron") -> str:
    """Return ``expr`` if cronsim reads it as a cron expression.

    :raises WorkflowValueError: naming ``what``, the expression and cronsim's complaint.
    """
    if not isinstance(expr, str) or not expr.strip() or len(expr) > MAX_CRON_LENGTH:
        raise WorkflowValueError(
            f"{what} must be a cron expression such as '0 6 * * 1-5' of at most "
            f"{MAX_CRON_LENGTH} characters, not {expr!r}"
        )
    cronsim = _cronsim()
    try:
        cronsim.CronSim(expr, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except cronsim.CronSimError as exc:
        raise WorkflowValueError(f"{what} {expr!r} is not a cron expression: {exc}") from None
    return expr


def fire_times(expr: str, zone: str, after: datetime) -> Iterator[datetime]:
    """Yield the fire times of ``expr`` read in ``zone`` strictly after ``after`` (naive UTC)."""
    local = after.replace(tzinfo=timezone.utc).astimezone(check_timezone(zone))
    for moment in _cronsim().CronSim(expr, local):
        yield moment.astimezone(timezone.utc).replace(tzinfo=None)


def next_fire(expr: str, zone: str, after: datetime) -> datetime:
    """Return the first fire time of ``expr`` in ``zone`` strictly after ``after`` (naive UTC)."""
    return next(fire_times(expr, zone, after))
