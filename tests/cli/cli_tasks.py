"""Tasks the CLI tests run: flow tasks (registered by importing this module) and callback lists.

Import it with ``--import tests.cli.cli_tasks`` (the subprocess tests put the
repository on ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from workflow.flows import task


@task("cli_double")
def cli_double(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Double the input record's ``n``."""
    return {"value": context["_input"].get("n", 0) * 2}


@task("cli_publish")
def cli_publish(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Publish when the halt step's answer approves, else reject."""
    return {"published": bool(context["approve"]["approved"])}


def mark(obj: Any, eng: Any) -> None:
    """Record that the token went through; halt or fail when its data asks to."""
    obj.data["seen"] = obj.data.get("seen", 0) + 1
    if obj.data.get("halt") and not obj.data.get("approved"):
        eng.halt("needs a person", action="approve")
    if obj.data.get("fail"):
        raise KeyError("boom")


def finish(obj: Any, eng: Any) -> None:
    """The last task."""
    obj.data["done"] = True


#: A Python callback list.
definition = [mark, finish]


class InvenioStyle:
    """An Invenio 2.x workflow class: its ``workflow`` attribute is the callback list."""

    workflow: ClassVar[list[Any]] = [mark, finish]


not_a_list = 42
empty: list[Any] = []


def nap(obj: Any, eng: Any) -> None:
    """Take a moment, so that other processes resuming the run meet it while it runs."""
    obj.data["naps"] = obj.data.get("naps", 0) + 1
    time.sleep(0.5)


def flaky(obj: Any, eng: Any) -> None:
    """Count the tries; fail while a file called ``broken`` is in the working directory."""
    obj.data["tries"] = obj.data.get("tries", 0) + 1
    if os.path.exists("broken"):
        raise RuntimeError("broken")


#: A callback list that takes half a second per token after its halt, and may fail.
slow = [mark, nap, flaky, finish]


def record_lease(obj: Any, eng: Any) -> None:
    """Record how many seconds the run's lock has left, as the database sees it."""
    row = eng.storage.workflow(eng.uuid)
    obj.data = {"lease": (row["lock_expires"] - eng.storage.now()).total_seconds()}


#: A callback list that looks at its own lock.
lease_probe = [record_lease]


@task("cli_slow_step")
def cli_slow_step(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Add 1 to ``params["of"]`` (or to the input's ``n``) after a moment.

    Each call appends ``<n> <step>`` to ``calls.log`` in the working
    directory, outside the database, so that a test can count the calls.
    """
    n = context["_input"]["n"]
    with open("calls.log", "a", encoding="utf-8") as calls:
        calls.write(f"{n} {params['step']}\n")
    time.sleep(0.01)
    return {"value": params.get("of", n) + 1}


def wait_for_go(obj: Any, eng: Any) -> None:
    """The first call writes ``started`` in the working directory, then waits for ``go``."""
    obj.data["calls"] = obj.data.get("calls", 0) + 1
    if not os.path.exists("started"):
        with open("started", "w", encoding="utf-8"):
            pass
        deadline = time.monotonic() + 60
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.01)


#: A callback list whose first task waits for the test to signal the process.
signal_run = [wait_for_go, finish]
#: A callback list whose middle task fails while a file called ``broken`` exists.
fragile = [mark, flaky, finish]


@task("cli_flaky")
def cli_flaky(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Count the tries in a file; fail while a file called ``broken`` exists."""
    with open("tries.log", "a", encoding="utf-8") as tries:
        tries.write("try\n")
    if os.path.exists("broken"):
        raise RuntimeError("broken")
    return {"ok": True}
