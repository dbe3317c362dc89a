"""The Celery app of the Celery tests: ``celery -A tests.integrations.celery_app worker``.

Configured from the environment, which the tests set for the ``celery
worker`` processes they start (and for themselves): the broker
(``WORKFLOW_TEST_CELERY_BROKER``), the database (``WORKFLOW_TEST_CELERY_DB``),
the broker's queue (``WORKFLOW_TEST_CELERY_QUEUE``) and how long each task
pauses (``WORKFLOW_TEST_CELERY_PAUSE``, seconds).
"""

from __future__ import annotations

import os
import time
from typing import Any

from tests.runtime.queue_worker import FAN_FLOW
from workflow.integrations.celery import CeleryQueue
from workflow.runtime import SLEEP

STEPS = 5
PAUSE = float(os.environ.get("WORKFLOW_TEST_CELERY_PAUSE", "0"))


def step(index: int) -> Any:
    """Task ``index``: record itself in the token, after a pause like I/O."""

    def task(obj: Any, eng: Any) -> None:
        if PAUSE:
            time.sleep(PAUSE)
        obj.data["done"].append(index)
        obj.data["value"] = obj.data["value"] * 3 + index

    task.__name__ = f"step_{index}"
    return task


#: The tests' runs, by name: five steps; a nap of 0.2 s, then the five steps; a flow
#: whose tokens fork three items (:data:`tests.runtime.queue_worker.FAN_FLOW`).
DEFINITIONS = {
    "steps": [step(index) for index in range(STEPS)],
    "nap": [*SLEEP("nap", "PT0.2S"), *(step(index) for index in range(STEPS))],
    "fanout": FAN_FLOW.callbacks(),
}


def expected(value: int) -> dict[str, Any]:
    """The data an uninterrupted run leaves in the token that started as ``value``."""
    data: dict[str, Any] = {"value": value, "done": []}
    for index in range(STEPS):
        data["done"].append(index)
        data["value"] = data["value"] * 3 + index
    return data


def make_queue(broker: str, database: str, celery_queue: str) -> CeleryQueue:
    """The tests' :class:`CeleryQueue`: short leases and sweeps, so that lost work shows fast."""
    return CeleryQueue(
        broker,
        database,
        DEFINITIONS,
        queue="steps",
        celery_queue=celery_queue,
        lease_ttl=1.0,
        redispatch_after=1.0,
        sweep_every=0.5,
    )


queue = make_queue(
    os.environ.get("WORKFLOW_TEST_CELERY_BROKER", "redis://127.0.0.1:6379/0"),
    os.environ.get("WORKFLOW_TEST_CELERY_DB", "sqlite://"),
    os.environ.get("WORKFLOW_TEST_CELERY_QUEUE", "workflow_test_steps"),
)
app = queue.app
