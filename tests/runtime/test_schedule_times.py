"""Fire times across daylight-saving transitions (no database: the computation only).

The rules (cronsim's, pinned here): a local time that does not exist fires
once, at the first valid time after the gap; a local time that happens
twice fires once, at its first occurrence, when the schedule names the
hour; an hourly schedule fires every real hour, never twice at one instant,
never skipping one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice, pairwise

import pytest

from workflow.errors import WorkflowValueError
from workflow.runtime._cron import check_cron, check_timezone, fire_times, next_fire


def utc(*parts: int) -> datetime:
    return datetime(*parts)  # naive UTC, as stored


def test_daily_0230_in_berlin_fires_at_0300_on_the_night_clocks_spring_forward() -> None:
    times = list(islice(fire_times("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12)), 3))
    assert times == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_daily_0230_in_berlin_fires_once_on_the_night_clocks_fall_back() -> None:
    times = list(islice(fire_times("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12)), 2))
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]  # the first 02:30 only
    # Asked just after the first 02:30 (as a worker that fired it), the second is not a fire time.
    assert next_fire("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30)) == utc(
        2026, 10, 26, 1, 30
    )


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # spring forward, 2026-03-08: 02:30 does not exist, 03:00 EDT
        (utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]),
        # fall back, 2026-11-01: 02:30 EST happens once (01:xx is the hour that repeats)
        (utc(2026, 10, 31, 12), [utc(2026, 11, 1, 7, 30), utc(2026, 11, 2, 7, 30)]),
    ],
)
def test_daily_0230_in_new_york(after: datetime, expected: list[datetime]) -> None:
    assert list(islice(fire_times("30 2 * * *", "America/New_York", after), 2)) == expected


def test_daily_0130_in_new_york_fires_once_when_0130_happens_twice() -> None:
    times = list(islice(fire_times("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12)), 2))
    assert times == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize(
    "start", [utc(2026, 10, 24, 12), utc(2026, 3, 7, 12), utc(2026, 3, 28, 12)]
)
def test_hourly_fires_every_real_hour_across_transitions(zone: str, start: datetime) -> None:
    times = list(islice(fire_times("0 * * * *", zone, start), 48))
    assert len(set(times)) == len(times)  # never twice
    gaps = {later - earlier for earlier, later in pairwise(times)}
    assert gaps == {timedelta(hours=1)}  # never an hour skipped


def test_hourly_resumes_after_each_fire_time_as_a_worker_would() -> None:
    """Computing each time from the one before (as ``next_fire_at`` is kept) agrees."""
    moment, chained = utc(2026, 10, 24, 22, 30), []
    for _ in range(6):
        moment = next_fire("0 * * * *", "Europe/Berlin", moment)
        chained.append(moment)
    assert chained == [utc(2026, 10, 24, 23) + timedelta(hours=h) for h in range(6)]


def test_bad_cron_and_timezone_are_named() -> None:
    with pytest.raises(WorkflowValueError, match=r"--cron '\* \* \*' is not a cron expression"):
        check_cron("* * *", what="--cron")
    with pytest.raises(WorkflowValueError, match="--timezone 'Europe/Nowhere' is not a known"):
        check_timezone("Europe/Nowhere", what="--timezone")
    with pytest.raises(WorkflowValueError, match="is not a known time zone"):
        check_timezone("../etc/passwd")
