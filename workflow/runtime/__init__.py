"""Runs that wait: for people (``ask``), for time (``sleep``, retries) and for messages.

Everything a run waits for is a row of the database (:mod:`.waits`), never a
sleeping thread: the run is stored and its process may exit; a
:class:`Worker` fires what is due and continues the run, in any process on
any machine. Needs the ``db`` extra, as :mod:`workflow.storage` does.

.. versionadded:: 3.0
"""

from __future__ import annotations

from ._time import backoff_delay, parse_duration, parse_instant
from .patterns import ASK, RECEIVE, RETRY, SLEEP
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
    "Pass",
    "RetryPolicy",
    "Site",
    "TokenSite",
    "Wait",
    "WaitSpec",
    "Waits",
    "Worker",
    "backoff_delay",
    "parse_duration",
    "parse_instant",
    "retry_tasks",
    "wait_id",
    "wait_tasks",
]
