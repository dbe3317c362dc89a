"""Run a stored workflow in a process of its own, for ``test_locking.py``.

Usage::

    python tests/storage/lock_worker.py URL UUID [--tokens N] [--lock-ttl SECONDS]
        [--lock-wait SECONDS]

With ``--tokens`` the worker processes ``N`` new tokens, otherwise it resumes the
stored run. The workflow's ``extra_data`` steers the tasks of :data:`DEFINITION`:

* ``calls``: a file where every run of :func:`record` appends ``<pid> <token>``;
* ``hold_at`` and ``gate``: on that token, :func:`hold` prints ``holding <owner>``
  (the engine holds the lock then) and waits until the file ``gate`` exists;
* ``halt_at``: on that token, :func:`halt_here` halts the run.

The worker prints one last line: ``finished``, ``halted <message>`` or
``locked <owner>`` (exit status 3).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from workflow.errors import HaltProcessing, WorkflowLockedError
from workflow.storage import PersistentWorkflowEngine, Store

#: How long :func:`hold` waits for its gate before it gives up (a test went wrong).
GATE_TIMEOUT = 30.0


def record(obj: Any, eng: Any) -> None:
    """Log this call in the ``calls`` file and count it in the token's data."""
    with open(eng.extra_data["calls"], "a", encoding="utf-8") as calls:
        calls.write(f"{os.getpid()} {obj.position}\n")
    obj.data["calls"] = obj.data.get("calls", 0) + 1


def hold(obj: Any, eng: Any) -> None:
    """On the ``hold_at`` token, announce the lock holder and wait for the gate file."""
    gate = Path(eng.extra_data["gate"])
    if obj.position != eng.extra_data.get("hold_at") or gate.exists():
        return
    print(f"holding {eng.owner}", flush=True)
    deadline = time.monotonic() + GATE_TIMEOUT
    while not gate.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gate {gate} never opened")
        time.sleep(0.01)


def halt_here(obj: Any, eng: Any) -> None:
    """Halt on the ``halt_at`` token (a resumed run goes on after this task)."""
    if obj.position == eng.extra_data.get("halt_at"):
        eng.halt("waiting for the next process")


DEFINITION = [record, hold, halt_here]


def main(argv: list[str] | None = None) -> int:
    """Run the workflow named on the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("uuid")
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--lock-ttl", type=float, default=60.0)
    parser.add_argument("--lock-wait", type=float, default=0.0)
    args = parser.parse_args(argv)
    store = Store(args.url, lock_ttl=args.lock_ttl)
    try:
        eng = PersistentWorkflowEngine.from_uuid(
            args.uuid, store=store, definition=DEFINITION, lock_wait=args.lock_wait
        )
        if args.tokens is None:
            eng.resume()
        else:
            eng.process([{} for _ in range(args.tokens)])
    except HaltProcessing as halt:
        print(f"halted {halt}", flush=True)
        return 0
    except WorkflowLockedError as error:
        print(f"locked {error.owner}", flush=True)
        return 3
    finally:
        store.dispose()
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
