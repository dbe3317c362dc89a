"""A queue worker process for the chaos tests: ``python tests/runtime/queue_worker.py URL QUEUE``.

Runs a :class:`~workflow.runtime.Worker` on the work queue ``QUEUE`` with
the definitions of :data:`DEFINITIONS` until it is killed (the tests send
SIGKILL) or the file named by ``--stop`` exists.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

STEPS = 5


def step(index: int) -> Any:
    """Task ``index``: record itself in the token, after a little I/O-like pause."""

    def task(obj: Any, eng: Any) -> None:
        time.sleep(0.01)
        obj.data["done"].append(index)
        obj.data["value"] = obj.data["value"] * 3 + index

    task.__name__ = f"step_{index}"
    return task


def _scaled(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.01)
    return {"value": params["value"] * params["by"] + params.get("plus", 0)}


def _fan_flow() -> Any:
    """A flow whose tokens fork three items, each running two tasks, then join."""
    from workflow.flows import TaskRegistry, load_flow

    tasks = TaskRegistry(entry_point_group=None)
    tasks.register("scaled", _scaled)
    scaled = "scaled"
    body = {
        "name": "fanout",
        "steps": [
            {"name": "start", "task": scaled, "params": {"value": "@_input", "by": 2}},
            {
                "name": "items",
                "for_each": [1, 2, 3],
                "as": "k",
                "parallel": True,
                "do": [
                    {"name": "a", "task": scaled, "params": {"value": "@start.value", "by": "@k"}},
                    {
                        "name": "b",
                        "task": scaled,
                        "params": {"value": "@a.value", "by": 3, "plus": 1},
                    },
                ],
            },
            {"name": "end", "task": scaled, "params": {"value": "@items.2.b.value", "by": 5}},
        ],
    }
    return load_flow(body, registry=tasks)


FAN_FLOW = _fan_flow()

#: The chaos runs' definitions, by the run's name.
DEFINITIONS = {"chaos": [step(index) for index in range(STEPS)], "fanout": FAN_FLOW.callbacks()}


def expected(value: int) -> dict[str, Any]:
    """The data an uninterrupted run leaves in the token that started as ``value``."""
    data: dict[str, Any] = {"value": value, "done": []}
    for index in range(STEPS):
        data["done"].append(index)
        data["value"] = data["value"] * 3 + index
    return data


def expected_fanout(value: int) -> dict[str, Any]:
    """The context an uninterrupted in-process run leaves in the token that started as ``value``."""
    from workflow.engine import GenericWorkflowEngine

    engine = GenericWorkflowEngine()
    engine.callbacks.replace(FAN_FLOW.callbacks())
    context: dict[str, Any] = FAN_FLOW.new_context(value)
    engine.process([context])
    return context


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queue")
    parser.add_argument("--stop", type=Path, required=True)
    parser.add_argument("--lease-ttl", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)

    from workflow.runtime import Worker
    from workflow.storage import Store

    store = Store(args.url)
    worker = Worker(
        store,
        DEFINITIONS,
        queue=args.queue,
        concurrency=args.concurrency,
        lease_ttl=args.lease_ttl,
        poll=0.05,
    )
    print(f"worker {os.getpid()} ready", flush=True)
    worker.run(until=args.stop.exists)
    store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
