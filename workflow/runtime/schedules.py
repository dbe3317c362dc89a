"""Cron schedules that start runs, each fire time at most once, whatever the number of workers.

A schedule (a row of ``wf_schedule``) says what to run (``flow``: a stored
definition ``def:NAME[@VERSION]``, a ``module:attribute`` or a run name the
worker's definitions know), over which input records, on which cron
expression read in which time zone. Its ``next_fire_at`` is the next fire
time not yet decided. :meth:`Schedules.fire_due` decides each due fire time
in one transaction:

1. ``UPDATE wf_schedule SET next_fire_at = <the next one> WHERE id = ? AND
   next_fire_at = <this one>``: of several workers, one moves the schedule on;
2. it inserts the fire's row, unique per (schedule, fire time), if no row
   holds that time (a backfill or a trigger may have written it): the
   worker whose insert wrote a row is the only one that starts the run.

The run is then started in the firing process, as ``workflow run`` starts
one: stored with a uuid derived from the schedule and the fire time
(:func:`fire_run_uuid`), so that starting it twice finds the stored run, and
processed at once. Tokens that wait go on with any worker later. The fire's
row is *claimed* by the worker that starts the run until the run is stored:
a claim older than ``lease`` is a worker that died in between, and a later
worker takes the start over (:mod:`workflow.runtime._fire_claims`).

Overlap (a fire while the previous run of the schedule is still active:
new, running, halted or waiting): ``skip`` records ``skipped_overlap``,
``queue`` records ``queued`` and starts it once the previous run is no
longer active, ``allow`` starts it anyway.

Catch-up (fire times older than ``grace`` when a worker sees them, after
every worker was down): ``none`` records each as ``missed``; ``latest``
starts the most recent within the window and records the others as
``skipped_catchup``; ``all`` starts each within the window. Times before the
window are ``missed``. No fire time passes without a row.

>>> from datetime import datetime
>>> from workflow.storage import Store
>>> from workflow.runtime import Schedules
>>> store = Store("sqlite://"); store.create_all()
>>> schedules = Schedules(store)
>>> monday = datetime(2026, 12, 7, 4, 0)  # naive UTC
>>> schedules.add("report", cron="0 6 * * 1-5", timezone="Europe/Berlin",
...               flow="report", now=monday).next_fire_at
datetime.datetime(2026, 12, 7, 5, 0)
>>> started = []
>>> fired = schedules.fire_due(
...     now=datetime(2026, 12, 7, 5, 0, 0, 300000),
...     start=lambda schedule, run, at: started.append(at))
>>> [(fire.outcome, fire.fire_time) for fire in fired]
[('started', datetime.datetime(2026, 12, 7, 5, 0))]
>>> schedules.fire_due(now=datetime(2026, 12, 7, 5, 0, 1), start=started.append)
[]

.. versionadded:: 3.0
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import StorageError, WorkflowNotFoundError, WorkflowValueError
from ..storage.models import ScheduleFireRecord, ScheduleRecord
from ..storage.run_rows import workflows
from ..storage.store import Store
from ._cron import check_cron, check_timezone, fire_times, next_fire
from ._fire_claims import clear_claim, take_over_stale
from ._schedule_shapes import (
    ACTIVE_STATUSES,
    CATCH_UPS,
    MAX_FIRES,
    MAX_TOKENS,
    OUTCOMES,
    OVERLAPS,
    CatchUp,
    Fire,
    Overlap,
    Schedule,
    Start,
    check_choice,
    check_name,
    fire_run_uuid,
    flow_run,
    iso,
    start_run,
)

__all__ = [
    "CATCH_UPS",
    "MAX_FIRES",
    "OUTCOMES",
    "OVERLAPS",
    "Fire",
    "Schedule",
    "Schedules",
    "Start",
    "fire_run_uuid",
    "flow_run",
    "start_run",
]

log = logging.getLogger(__name__)

for _public in (Fire, Schedule, fire_run_uuid, flow_run, start_run):
    _public.__module__ = __name__  # reprs, docs and tracebacks name the public module

schedules_table = cast(sa.Table, ScheduleRecord.__table__)
fires_table = cast(sa.Table, ScheduleFireRecord.__table__)


class Schedules:
    """Add, change and fire the schedules of a database.

    :param store: the database.
    :param grace: how late a fire time may be seen and still be on time;
        older ones are caught up by the schedule's catch-up policy.
    :param lease: how long the worker that won a fire time may take to store
        its run, by the database's clock (whatever ``now`` a call is given);
        after that, a worker that finds the run missing takes the start over
        (the first worker died, or stalled).

    .. versionchanged:: 3.0
       Added ``lease``: a fire whose worker died before its run was stored
       is started by a later worker, under the same run uuid.
    """

    def __init__(
        self,
        store: Store,
        *,
        grace: timedelta = timedelta(seconds=60),
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise WorkflowValueError(f"lease must be a positive duration, not {lease!r}")
        self.store = store
        self.grace = grace
        self.lease = lease
        self._looked: float | None = None  # when fire_due last looked for stale claims

    def __repr__(self) -> str:
        return f"<Schedules {self.store!r}>"

    # -- what a schedule is -----------------------------------------------------

    def add(
        self,
        name: str,
        *,
        cron: str,
        flow: str,
        timezone: str = "UTC",
        tokens: Iterable[Any] | None = None,
        overlap: Overlap = "skip",
        catch_up: CatchUp = "none",
        catch_up_window: timedelta = timedelta(days=1),
        replace: bool = False,
        now: datetime | None = None,
    ) -> Schedule:
        """Store a schedule; its first fire time is the first after ``now`` (the database's).

        :param tokens: the input records, one token each (default: one ``{}``).
        :param replace: change the schedule called ``name`` if there is one
            (its fire times are computed again from ``now``; its history stays).
        :raises WorkflowValueError: naming the field that is wrong, or when a
            schedule called ``name`` exists and ``replace`` is false.
        """
        check_name(name, "a schedule's name")
        where = f"schedule {name!r}"
        check_cron(cron, what=f"{where}: cron")
        check_timezone(timezone, what=f"{where}: timezone")
        check_name(flow, f"{where}: flow")
        check_choice(overlap, OVERLAPS, f"{where}: overlap")
        check_choice(catch_up, CATCH_UPS, f"{where}: catch_up")
        if not isinstance(catch_up_window, timedelta) or catch_up_window <= timedelta(0):
            raise WorkflowValueError(f"{where}: catch_up_window must be a positive duration")
        records = [{}] if tokens is None else list(tokens)
        if not records or len(records) > MAX_TOKENS:
            raise WorkflowValueError(f"{where}: give from 1 to {MAX_TOKENS} input records")
        moment = self.store.now() if now is None else now
        values = {
            "cron": cron,
            "timezone": timezone,
            "flow": flow,
            "tokens": records,
            "overlap": overlap,
            "catch_up": catch_up,
            "catch_up_window": max(1, int(catch_up_window.total_seconds())),
            "paused": False,
            "next_fire_at": next_fire(cron, timezone, moment),
            "updated": moment,
        }
        try:
            with self.store.transaction("store a schedule") as conn:
                changed = 0
                if replace:
                    changed = conn.execute(
                        schedules_table.update()
                        .where(schedules_table.c.name == name)
                        .values(**values)
                    ).rowcount
                if not changed:
                    conn.execute(
                        schedules_table.insert().values(name=name, created=moment, **values)
                    )
        except StorageError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise WorkflowValueError(
                    f"a schedule called {name!r} exists: remove it first, or replace it"
                ) from None
            raise
        return self.get(name)

    def get(self, name: str) -> Schedule:
        """Return the schedule called ``name``.

        :raises WorkflowNotFoundError: when there is none.
        """
        with self.store.transaction("read a schedule") as conn:
            row = conn.execute(
                sa.select(schedules_table).where(schedules_table.c.name == name)
            ).first()
        if row is None:
            raise WorkflowNotFoundError(f"no schedule is called {name!r}")
        return Schedule.from_row(row)

    def list(self) -> builtins.list[Schedule]:
        """Return every schedule, by name."""
        with self.store.transaction("list the schedules") as conn:
            rows = conn.execute(sa.select(schedules_table).order_by(schedules_table.c.name))
            return [Schedule.from_row(row) for row in rows]

    def pause(self, name: str) -> Schedule:
        """Stop firing ``name`` until :meth:`resume`; return it."""
        return self._set(name, paused=True)

    def resume(self, name: str, *, now: datetime | None = None) -> Schedule:
        """Fire ``name`` again from its first fire time after ``now``; return it.

        The times it was paused for are not fire times: no row records them.
        """
        schedule = self.get(name)
        moment = self.store.now() if now is None else now
        return self._set(
            name, paused=False, next_fire_at=next_fire(schedule.cron, schedule.timezone, moment)
        )

    def _set(self, name: str, **values: Any) -> Schedule:
        with self.store.transaction("change a schedule") as conn:
            changed = conn.execute(
                schedules_table.update()
                .where(schedules_table.c.name == name)
                .values(updated=self.store.now(), **values)
            ).rowcount
        if not changed:
            raise WorkflowNotFoundError(f"no schedule is called {name!r}")
        return self.get(name)

    def remove(self, name: str) -> None:
        """Delete the schedule ``name`` and its history (the runs it started stay).

        :raises WorkflowNotFoundError: when there is none.
        """
        schedule = self.get(name)
        with self.store.transaction("remove a schedule") as conn:
            conn.execute(fires_table.delete().where(fires_table.c.schedule_id == schedule.id))
            conn.execute(schedules_table.delete().where(schedules_table.c.id == schedule.id))

    def fires(self, name: str, *, limit: int = 100) -> builtins.list[Fire]:
        """Return the latest ``limit`` fires of ``name``, the oldest first."""
        schedule = self.get(name)
        query = (
            sa.select(fires_table)
            .where(fires_table.c.schedule_id == schedule.id)
            .order_by(fires_table.c.fire_time.desc())
            .limit(limit)
        )
        with self.store.transaction("read the fires of a schedule") as conn:
            rows = list(conn.execute(query))
        return [_fire(name, row) for row in reversed(rows)]

    def next_due(self) -> datetime | None:
        """Return the earliest next fire time of the schedules not paused (naive UTC)."""
        query = sa.select(sa.func.min(schedules_table.c.next_fire_at)).where(
            schedules_table.c.paused.is_(False)
        )
        with self.store.transaction("read the next fire time") as conn:
            return cast(datetime | None, conn.execute(query).scalar())

    # -- firing ------------------------------------------------------------------

    def fire_due(
        self, *, now: datetime | None = None, start: Start | None = None, limit: int = MAX_FIRES
    ) -> builtins.list[Fire]:
        """Decide every fire time that is due at ``now``; start the runs this call won.

        :param now: the time (naive UTC) to judge by; default: the database's.
        :param start: ``start(schedule, run_uuid, fire_time)`` starts a run
            (a :class:`~workflow.runtime.Worker` passes its own); without
            one, a fire is recorded but no run starts.
        :param limit: the most fire times decided by this call.
        :return: the fires this call recorded, in order.
        """
        moment = self.store.now() if now is None else now
        done: builtins.list[Fire] = []
        looked = time.monotonic()
        if self._looked is None or looked - self._looked >= self.lease.total_seconds() / 4:
            self._looked = looked  # a few times a lease: most passes make one query
            started = None if start is None else partial(self._started, start=start)
            clock = self.store.now()  # claims are judged by the database's clock, as locks are
            done += take_over_stale(self.store, clock - self.lease, clock, started, limit)
        query = (  # one query when nothing is due: the pass of every worker makes it
            sa.select(schedules_table)
            .where(
                schedules_table.c.paused.is_(False),
                sa.or_(
                    schedules_table.c.next_fire_at <= moment,
                    schedules_table.c.overlap == "queue",
                ),
            )
            .order_by(schedules_table.c.next_fire_at)
            .limit(limit)
        )
        with self.store.transaction("read the due schedules") as conn:
            due = [Schedule.from_row(row) for row in conn.execute(query)]
        queueing = [schedule for schedule in due if schedule.overlap == "queue"]
        if queueing:
            done += self._start_queued(queueing, start)
        for schedule in due:
            if schedule.next_fire_at > moment:
                continue
            plan = self._plan(schedule, moment, limit - len(done))
            # Without an overlap to judge, the due times are decided together.
            batches = [plan] if schedule.overlap == "allow" else [[item] for item in plan]
            for batch in batches:
                claimed = self.store.now() if start is not None else None
                fires = self._decide(schedule, batch, moment, claimed)
                if fires is None:  # another worker decided these times: it goes on from there
                    break
                done += [self._started(schedule, fire, claimed, start=start) for fire in fires]
        return done

    def _plan(
        self, schedule: Schedule, now: datetime, limit: int
    ) -> builtins.list[tuple[datetime, str]]:
        """The due fire times of ``schedule`` and what catch-up makes of each."""
        times: builtins.list[datetime] = [schedule.next_fire_at]
        for moment in fire_times(schedule.cron, schedule.timezone, schedule.next_fire_at):
            if moment > now or len(times) >= max(1, limit):
                break
            times.append(moment)
        late = [moment for moment in times if now - moment > self.grace]
        window = [moment for moment in late if now - moment <= schedule.catch_up_window]
        plan: builtins.list[tuple[datetime, str]] = []
        for moment in times:
            if moment not in late:
                plan.append((moment, "started"))
            elif schedule.catch_up == "none" or moment not in window:
                plan.append((moment, "missed"))
            elif schedule.catch_up == "latest" and moment != window[-1]:
                plan.append((moment, "skipped_catchup"))
            else:
                plan.append((moment, "started"))
        return plan

    def _decide(
        self,
        schedule: Schedule,
        planned: builtins.list[tuple[datetime, str]],
        now: datetime,
        claimed: datetime | None,
    ) -> builtins.list[Fire] | None:
        """Move the schedule past the ``planned`` fire times and record them, in one transaction.

        Returns the fires recorded (a time that has a row already, from a
        backfill or a trigger, is left as it is), or None when another
        worker moved the schedule first. The fires to start are claimed at
        ``claimed`` (the database's time; None: no run is started here).
        """
        following = next_fire(schedule.cron, schedule.timezone, planned[-1][0])
        fires: builtins.list[Fire] = []
        with self.store.transaction("fire a schedule") as conn:
            moved = conn.execute(
                schedules_table.update()
                .where(
                    schedules_table.c.id == schedule.id,
                    schedules_table.c.next_fire_at == planned[0][0],
                    schedules_table.c.paused.is_(False),
                )
                .values(next_fire_at=following)
            ).rowcount
            if moved != 1:
                return None
            for fire_time, planned_outcome in planned:
                outcome, detail = planned_outcome, None
                if outcome == "started" and schedule.overlap != "allow":
                    previous = self._active_run(conn, schedule.id)
                    if previous is not None:
                        outcome = "skipped_overlap" if schedule.overlap == "skip" else "queued"
                        detail = f"run {previous} is still active"
                run = fire_run_uuid(schedule.name, fire_time) if outcome in _RUNS else None
                fire = Fire(schedule.name, fire_time, outcome, run, detail)
                if self._insert(conn, schedule.id, fire, now, claimed):
                    fires.append(fire)
        return fires

    def _insert(
        self,
        conn: sa.Connection,
        schedule_id: int,
        fire: Fire,
        now: datetime,
        claimed: datetime | None,
    ) -> bool:
        """Insert ``fire``'s row unless its time has one; return whether it did.

        A fire that starts its run now is claimed at ``claimed``.
        """
        starts = fire.outcome == "started" and claimed is not None
        values = {
            "schedule_id": schedule_id,
            "fire_time": fire.fire_time,
            "run_uuid": fire.run,
            "outcome": fire.outcome,
            "detail": fire.detail,
            "created": now,
            "claimed": claimed if starts else None,
            "attempts": 1 if starts else 0,
        }
        dialect = conn.dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (
                insert(fires_table)
                .values(values)
                .on_conflict_do_nothing()
                .returning(fires_table.c.id)
            )
            return conn.execute(statement).first() is not None
        # MariaDB, MySQL: IGNORE makes the duplicate key a warning, and no row is written.
        ignore = fires_table.insert().prefix_with("IGNORE").values(values)
        return bool(conn.execute(ignore).rowcount == 1)

    def _active_run(self, conn: sa.Connection, schedule_id: int) -> str | None:
        """The uuid of the latest started run of the schedule if it is still active."""
        latest = conn.execute(
            sa.select(fires_table.c.run_uuid)
            .where(fires_table.c.schedule_id == schedule_id, fires_table.c.outcome == "started")
            .order_by(fires_table.c.fire_time.desc())
            .limit(1)
        ).scalar()
        if latest is None:
            return None
        status = conn.execute(
            sa.select(workflows.c.status).where(workflows.c.uuid == latest)
        ).scalar()
        return cast(str, latest) if status in ACTIVE_STATUSES else None

    def _start_queued(
        self, queueing: builtins.list[Schedule], start: Start | None
    ) -> builtins.list[Fire]:
        """Start the oldest queued fire of each of ``queueing`` whose previous run is over."""
        done: builtins.list[Fire] = []
        for schedule in queueing:
            with self.store.transaction("start a queued fire") as conn:
                row = conn.execute(
                    sa.select(fires_table)
                    .where(
                        fires_table.c.schedule_id == schedule.id,
                        fires_table.c.outcome == "queued",
                    )
                    .order_by(fires_table.c.fire_time)
                    .limit(1)
                ).first()
                if row is None or self._active_run(conn, schedule.id) is not None:
                    continue
                claimed = self.store.now() if start is not None else None
                won = conn.execute(
                    fires_table.update()
                    .where(fires_table.c.id == row.id, fires_table.c.outcome == "queued")
                    .values(
                        outcome="started",
                        detail=None,
                        claimed=claimed,
                        attempts=fires_table.c.attempts + int(claimed is not None),
                    )
                ).rowcount
            if won == 1:
                fire = Fire(schedule.name, row.fire_time, "started", row.run_uuid)
                done.append(self._started(schedule, fire, claimed, start=start))
        return done

    def _started(
        self, schedule: Schedule, fire: Fire, claimed: datetime | None, *, start: Start | None
    ) -> Fire:
        """Start the run of ``fire`` if it is to start, then clear its claim made at ``claimed``.

        A failure to start it is recorded (``failed``, with why).
        """
        if fire.outcome != "started" or start is None or fire.run is None:
            return fire
        try:
            start(schedule, fire.run, fire.fire_time)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"[:1000]
            log.error("schedule %s could not start run %s: %s", schedule.name, fire.run, detail)
            with self.store.transaction("record a failed fire") as conn:
                conn.execute(
                    fires_table.update()
                    .where(
                        fires_table.c.schedule_id == schedule.id,
                        fires_table.c.fire_time == fire.fire_time,
                    )
                    .values(outcome="failed", detail=detail, claimed=None)
                )
            return Fire(fire.schedule, fire.fire_time, "failed", fire.run, detail)
        if claimed is not None:
            with self.store.transaction("clear a fire's claim") as conn:
                clear_claim(conn, schedule.id, fire.fire_time, claimed)
        return fire

    # -- by hand -------------------------------------------------------------------

    def trigger(
        self, name: str, *, start: Start | None = None, now: datetime | None = None
    ) -> Fire:
        """Start a run of ``name`` now, whatever its cron, overlap and pause say."""
        schedule = self.get(name)
        moment = self.store.now() if now is None else now
        fire = Fire(name, moment, "started", fire_run_uuid(name, moment), "triggered")
        claimed = self.store.now() if start is not None else None
        with self.store.transaction("trigger a schedule") as conn:
            if not self._insert(conn, schedule.id, fire, moment, claimed):
                raise WorkflowValueError(f"schedule {name!r} fired at {iso(moment)} already")
        return self._started(schedule, fire, claimed, start=start)

    def backfill(
        self,
        name: str,
        since: datetime,
        until: datetime,
        *,
        start: Start | None = None,
        now: datetime | None = None,
    ) -> builtins.list[Fire]:
        """Start a run for each fire time of ``name`` from ``since`` to ``until`` (inclusive).

        Fire times that have a row already (fired, skipped, missed) are left
        as they are; the fires returned are those this call recorded.

        :raises WorkflowValueError: when the range holds more than
            :data:`MAX_FIRES` fire times, or ends before it starts.
        """
        schedule = self.get(name)
        if until < since:
            raise WorkflowValueError(f"schedule {name!r}: the backfill ends before it starts")
        times: builtins.list[datetime] = []
        for moment in fire_times(schedule.cron, schedule.timezone, since - timedelta(seconds=1)):
            if moment > until:
                break
            if len(times) == MAX_FIRES:
                raise WorkflowValueError(
                    f"schedule {name!r}: a backfill starts at most {MAX_FIRES} runs; "
                    "give a shorter range"
                )
            times.append(moment)
        moment = self.store.now() if now is None else now
        done: builtins.list[Fire] = []
        for fire_time in times:
            claimed = self.store.now() if start is not None else None
            fire = Fire(name, fire_time, "started", fire_run_uuid(name, fire_time), "backfill")
            with self.store.transaction("backfill a schedule") as conn:
                if not self._insert(conn, schedule.id, fire, moment, claimed):
                    continue
            done.append(self._started(schedule, fire, claimed, start=start))
        return done


#: The outcomes whose fire has a run (started now, or later).
_RUNS = ("started", "queued")


def _fire(name: str, row: Any) -> Fire:
    return Fire(name, row.fire_time, row.outcome, row.run_uuid, row.detail)
