"""What a schedule and a fire are, and how a fire's run is stored and started.

The shapes :mod:`workflow.runtime.schedules` reads and writes: the policies'
words, :class:`Schedule` and :class:`Fire` (a row each), the uuid of a fire's
run, and :func:`start_run`, which a :class:`~workflow.runtime.Worker` uses to
start it.

.. versionadded:: 3.0
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ..engine_db import WorkflowStatus
from ..errors import WorkflowNotFoundError, WorkflowValueError
from ..storage.store import Store

__all__ = [
    "ACTIVE_STATUSES",
    "CATCH_UPS",
    "MAX_FIRES",
    "MAX_NAME_LENGTH",
    "MAX_TOKENS",
    "OUTCOMES",
    "OVERLAPS",
    "CatchUp",
    "Fire",
    "Overlap",
    "Schedule",
    "Start",
    "check_choice",
    "check_name",
    "fire_run_uuid",
    "flow_run",
    "iso",
    "start_run",
]

#: What a fire does while the previous run of its schedule is active.
OVERLAPS = ("skip", "queue", "allow")
#: What a worker does with fire times it sees late.
CATCH_UPS = ("none", "latest", "all")
#: What became of a fire time.
OUTCOMES = ("started", "queued", "skipped_overlap", "skipped_catchup", "missed", "failed")
#: The most fire times one call decides (a backfill may ask for no more).
MAX_FIRES = 1000
#: The most input records a schedule keeps.
MAX_TOKENS = 1000
#: The longest name or flow reference.
MAX_NAME_LENGTH = 255

Overlap = Literal["skip", "queue", "allow"]
CatchUp = Literal["none", "latest", "all"]

#: Starts the run of a fire: ``start(schedule, run_uuid, fire_time)``.
Start = Callable[["Schedule", str, datetime], Any]

#: The statuses of a run that is still active (for the overlap policies).
ACTIVE_STATUSES = (
    WorkflowStatus.NEW.value,
    WorkflowStatus.RUNNING.value,
    WorkflowStatus.HALTED.value,
    WorkflowStatus.WAITING.value,
)
_NAMESPACE = _uuid.UUID("0b9e6a4c-6d0e-4f55-9a37-2c1e4f8d7b21")


def fire_run_uuid(schedule: str, fire_time: datetime) -> str:
    """Return the uuid of the run that schedule ``schedule`` starts at ``fire_time``."""
    return str(_uuid.uuid5(_NAMESPACE, f"{schedule}\x1f{fire_time.isoformat()}"))


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored (times naive UTC)."""

    name: str
    cron: str
    timezone: str
    flow: str
    tokens: list[Any]
    overlap: str
    catch_up: str
    catch_up_window: timedelta
    paused: bool
    next_fire_at: datetime
    created: datetime
    updated: datetime
    id: int = field(default=0, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> Schedule:
        """Build a schedule from a row of ``wf_schedule``."""
        return cls(
            name=row.name,
            cron=row.cron,
            timezone=row.timezone,
            flow=row.flow,
            tokens=list(row.tokens or []),
            overlap=row.overlap,
            catch_up=row.catch_up,
            catch_up_window=timedelta(seconds=row.catch_up_window),
            paused=bool(row.paused),
            next_fire_at=row.next_fire_at,
            created=row.created,
            updated=row.updated,
            id=row.id,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the schedule as JSON values (times ISO 8601 with ``Z``)."""
        return {
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "flow": self.flow,
            "tokens": self.tokens,
            "overlap": self.overlap,
            "catch_up": self.catch_up,
            "catch_up_window": self.catch_up_window.total_seconds(),
            "paused": self.paused,
            "next_fire_at": iso(self.next_fire_at),
            "created": iso(self.created),
            "updated": iso(self.updated),
        }


@dataclass(frozen=True)
class Fire:
    """What became of one fire time of a schedule."""

    schedule: str
    fire_time: datetime
    outcome: str
    run: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the fire as JSON values."""
        return {
            "schedule": self.schedule,
            "fire_time": iso(self.fire_time),
            "outcome": self.outcome,
            "run": self.run,
            "detail": self.detail,
        }


def iso(moment: datetime | None) -> str | None:
    """A naive UTC time as ISO 8601 with ``Z``, or ``None``."""
    return None if moment is None else moment.isoformat() + "Z"


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a name that fits the columns, else raise naming ``what``."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        raise WorkflowValueError(
            f"{what} must be a non-empty string of at most {MAX_NAME_LENGTH} characters, "
            f"not {value!r}"
        )
    if any(ord(char) < 32 for char in value):
        raise WorkflowValueError(f"{what} {value!r} holds a control character")
    return value


def check_choice(value: object, choices: tuple[str, ...], what: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming ``what``."""
    if value not in choices:
        raise WorkflowValueError(f"{what} is one of {', '.join(choices)}, not {value!r}")
    return str(value)


def flow_run(schedule: Schedule, store: Store) -> dict[str, Any]:
    """Return how a fire of ``schedule`` is stored: the keyword arguments of
    :meth:`~workflow.storage.PersistentWorkflowEngine.with_name` and the tokens.

    ``def:NAME[@VERSION]`` runs the stored definition (its latest enabled
    version at the fire time unless one is named) over ``{"_input": record}``
    tokens, as ``workflow run def:NAME`` does; ``module:attribute`` runs that
    callback list over the records; any other name is a run name that the
    worker's definitions know.
    """
    ref = schedule.flow
    extra: dict[str, Any] = {"schedule": schedule.name}
    kwargs: dict[str, Any] = {"name": ref, "extra_data": extra}
    tokens: list[Any] = list(schedule.tokens)
    if ref.startswith("def:"):
        from ..storage import Definitions

        name, at, version = ref[len("def:") :].partition("@")
        if not name or (at and not version.isdigit()):
            raise WorkflowValueError(f"schedule {schedule.name!r}: {ref} is not def:NAME[@VERSION]")
        definition = Definitions(store).get(name, int(version) if at else None)
        kwargs.update(
            name=definition.name,
            definition_name=definition.name,
            definition_version=definition.version,
        )
        extra["cli"] = {"target": None, "imports": [], "checkpoint": "token"}
        tokens = [{"_input": record} for record in tokens]
    elif ":" in ref:
        extra["cli"] = {"target": ref, "imports": [], "checkpoint": "token"}
    return {"kwargs": kwargs, "tokens": tokens}


def start_run(
    store: Store,
    definitions: Callable[[Any], Any] | Mapping[str, Any],
    schedule: Schedule,
    run_uuid: str,
    fire_time: datetime,
) -> None:
    """Store the run of a fire with the uuid ``run_uuid`` and process its tokens here.

    A run stored already (a crash after it was stored) is left to go on as
    any stored run does.
    """
    from ..storage.persistent import PersistentWorkflowEngine

    shape = flow_run(schedule, store)
    shape["kwargs"]["extra_data"]["fire_time"] = iso(fire_time)
    engine = PersistentWorkflowEngine.with_name(store=store, uuid=run_uuid, **shape["kwargs"])
    if not engine.created:
        return
    if callable(definitions):
        callbacks = definitions(engine)
    else:
        try:
            callbacks = definitions[engine.name]
        except KeyError:
            raise WorkflowNotFoundError(
                f"the worker has no definition for runs called {engine.name!r}"
            ) from None
    engine.callbacks.replace(callbacks)
    engine.process(shape["tokens"], stop_on_error=False, stop_on_halt=False)
