"""The claim on a fire's start: who starts the run of a fire time, since when.

A worker that won a fire time (:mod:`workflow.runtime.schedules`) commits
the fire's row with ``claimed`` set, then stores and starts the run under
the uuid derived from the schedule and the fire time, then clears the
claim. A worker killed in between leaves the claim behind, and no run. A
later worker finishes such a fire: it takes the claim over with one
conditional write — the claim is the one it read, older than a lease, and
no run has the fire's uuid — and then stores the run under the same uuid,
so that two workers can never both store it (the uuid is unique). A claim
left behind by a worker that died *after* it stored the run is only
cleared: the stored run goes on as any stored run does.

Every statement on a fire's claim is here.

.. versionadded:: 3.0
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from ..storage.models import ScheduleFireRecord, ScheduleRecord
from ..storage.run_rows import workflows
from ..storage.store import Store
from ._schedule_shapes import Fire, Schedule, iso

__all__ = [
    "MAX_ATTEMPTS",
    "Claim",
    "clear_claim",
    "give_up",
    "stale_claims",
    "take_over",
    "take_over_stale",
]

log = logging.getLogger("workflow.runtime.schedules")

fires_table = cast(sa.Table, ScheduleFireRecord.__table__)
schedules_table = cast(sa.Table, ScheduleRecord.__table__)

#: Starts the run of a fire claimed at a time: ``start(schedule, fire, claimed)``,
#: returning what became of the fire.
StartFire = Callable[[Schedule, Fire, datetime], Fire]

#: How many workers may claim the start of one fire's run: after this many
#: died starting it (a definition that kills its process, say), the fire is
#: recorded as ``failed`` rather than claimed again.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """A fire's row whose claim is older than a lease."""

    id: int
    schedule_id: int
    fire_time: datetime
    run: str
    claimed: datetime
    attempts: int
    #: Whether a run with the fire's uuid is stored.
    stored: bool


def _run_stored() -> sa.Exists:
    return sa.exists().where(workflows.c.uuid == fires_table.c.run_uuid)


def _fenced(claim: Claim) -> Any:
    """The fire's row still under the claim that was read (no one took it over meanwhile)."""
    return sa.and_(fires_table.c.id == claim.id, fires_table.c.claimed == claim.claimed)


def stale_claims(conn: sa.Connection, before: datetime, limit: int) -> list[Claim]:
    """The claims made before ``before`` (of dead or stalled workers), the oldest first."""
    rows = conn.execute(
        sa.select(
            fires_table.c.id,
            fires_table.c.schedule_id,
            fires_table.c.fire_time,
            fires_table.c.run_uuid,
            fires_table.c.claimed,
            fires_table.c.attempts,
            _run_stored().label("stored"),
        )
        .where(fires_table.c.claimed < before, fires_table.c.run_uuid.is_not(None))
        .order_by(fires_table.c.claimed)
        .limit(limit)
    )
    return [
        Claim(
            row.id,
            row.schedule_id,
            row.fire_time,
            row.run_uuid,
            row.claimed,
            row.attempts,
            bool(row.stored),
        )
        for row in rows
    ]


def take_over(conn: sa.Connection, claim: Claim, now: datetime, detail: str) -> bool:
    """Claim the start of ``claim``'s run for this worker if its run is still not stored.

    One conditional write: of several workers taking it over, one changes
    the row and the others find a claim that is not the one they read.
    """
    changed = conn.execute(
        fires_table.update()
        .where(_fenced(claim), ~_run_stored())
        .values(claimed=now, attempts=fires_table.c.attempts + 1, detail=detail)
    ).rowcount
    return bool(changed == 1)


def give_up(conn: sa.Connection, claim: Claim, detail: str) -> bool:
    """Record the fire of ``claim`` as ``failed`` (no run stored); tell whether it did."""
    changed = conn.execute(
        fires_table.update()
        .where(_fenced(claim), ~_run_stored())
        .values(outcome="failed", claimed=None, detail=detail)
    ).rowcount
    return bool(changed == 1)


def clear_claim(
    conn: sa.Connection, schedule_id: int, fire_time: datetime, claimed: datetime
) -> None:
    """Clear the claim made at ``claimed`` on a fire, unless another worker took it over."""
    conn.execute(
        fires_table.update()
        .where(
            fires_table.c.schedule_id == schedule_id,
            fires_table.c.fire_time == fire_time,
            fires_table.c.claimed == claimed,
        )
        .values(claimed=None)
    )


def take_over_stale(
    store: Store, before: datetime, now: datetime, start: StartFire | None, limit: int
) -> list[Fire]:
    """Finish the fires whose worker died starting their run: those claimed before ``before``.

    A fire whose run is stored only loses its claim (the run goes on as any
    stored run); one whose run is missing is claimed again at ``now``, by
    one conditional write, and ``start`` stores and starts its run under the
    fire's uuid; after :data:`MAX_ATTEMPTS` claims, it is recorded as
    ``failed``. Without ``start``, missing runs are left to a worker that
    can start them. Return the fires started or given up.
    """
    with store.transaction("read the stale fire claims") as conn:
        claims = stale_claims(conn, before, limit)
        if not claims:
            return []
        ids = {claim.schedule_id for claim in claims}
        rows = conn.execute(sa.select(schedules_table).where(schedules_table.c.id.in_(ids)))
        schedules = {row.id: Schedule.from_row(row) for row in rows}
    done: list[Fire] = []
    for claim in claims:
        name = schedules[claim.schedule_id].name
        with store.transaction("take over a fire") as conn:
            if claim.stored:  # the worker died after it stored the run
                clear_claim(conn, claim.schedule_id, claim.fire_time, claim.claimed)
                continue
            if claim.attempts >= MAX_ATTEMPTS:
                detail = f"{claim.attempts} workers died starting its run"
                if give_up(conn, claim, detail):
                    log.error("schedule %s at %s: %s", name, iso(claim.fire_time), detail)
                    done.append(Fire(name, claim.fire_time, "failed", claim.run, detail))
                continue
            if start is None:
                continue
            detail = f"taken over from a worker that died (attempt {claim.attempts + 1})"
            if not take_over(conn, claim, now, detail):
                continue  # another worker took it over, or the run is stored now
        log.warning("schedule %s at %s: %s", name, iso(claim.fire_time), detail)
        fire = Fire(name, claim.fire_time, "started", claim.run, detail)
        done.append(start(schedules[claim.schedule_id], fire, now))
    return done
