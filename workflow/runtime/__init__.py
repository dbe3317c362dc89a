"""Runs that wait: for people (``ask``), for time (``sleep``, retries) and for messages;
and runs that cron schedules start (:mod:`.schedules`).

Everything a run waits for is a row of the database (:mod:`.waits`), never a
sleeping thread: the run is stored and its process may exit; a
:class:`Worker` fires what is due and continues the run, in any process on
any machine. Needs the ``db`` extra, as :mod:`workflow.storage` does.

The names are imported when first used, so that ``import
workflow.runtime._time`` (what validating a flow needs) does not import
SQLAlchemy.

.. versionadded:: 3.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._limits import call_with_time_limit, time_limited
from ._time import backoff_delay, parse_duration, parse_instant

if TYPE_CHECKING:
    from .patterns import ASK, RECEIVE, RETRY, SLEEP
    from .schedules import Fire, Schedule, Schedules
    from .tasks import RetryPolicy, Site, TokenSite, retry_tasks, wait_tasks
    from .waits import Answer, AnswerOutcome, Delivery, Wait, Waits, WaitSpec, wait_id
    from .worker import Pass, Worker

__all__ = [
    "ASK",
    "RECEIVE",
    "RETRY",
    "SLEEP",
    "Answer",
    "AnswerOutcome",
    "Delivery",
    "Fire",
    "Pass",
    "RetryPolicy",
    "Schedule",
    "Schedules",
    "Site",
    "TokenSite",
    "Wait",
    "WaitSpec",
    "Waits",
    "Worker",
    "backoff_delay",
    "call_with_time_limit",
    "parse_duration",
    "parse_instant",
    "retry_tasks",
    "time_limited",
    "wait_id",
    "wait_tasks",
]

#: The submodule each lazily imported name lives in.
_HOMES = {
    "ASK": "patterns",
    "RECEIVE": "patterns",
    "RETRY": "patterns",
    "SLEEP": "patterns",
    "Fire": "schedules",
    "Schedule": "schedules",
    "Schedules": "schedules",
    "RetryPolicy": "tasks",
    "Site": "tasks",
    "TokenSite": "tasks",
    "retry_tasks": "tasks",
    "wait_tasks": "tasks",
    "Answer": "waits",
    "AnswerOutcome": "waits",
    "Delivery": "waits",
    "Wait": "waits",
    "WaitSpec": "waits",
    "Waits": "waits",
    "wait_id": "waits",
    "Pass": "worker",
    "Worker": "worker",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
