"""Ctrl-C and SIGTERM while the command runs a workflow: stop cleanly, say how to go on.

While ``run`` or ``resume`` drive a run, the first SIGINT or SIGTERM asks the
engine to stop once the task that runs now returns
(:meth:`~workflow.storage.PersistentWorkflowEngine.request_stop`); a second
one abandons that task (:exc:`KeyboardInterrupt`). Either way the engine
stores the run, releases its lock and raises
:class:`~workflow.errors.WorkflowInterrupted`, which the command reports with
the ``workflow resume`` command that goes on, exiting with 130. Outside a
run, SIGTERM interrupts the command as Ctrl-C does. ``workflow worker``
stops after the run it continues on the first signal, and exits with 0.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

__all__ = ["resume_command", "stop_on_signals", "stop_worker_on_signals", "term_interrupts"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _say(text: str) -> None:
    """Write ``text`` to stderr from a signal handler: one system call, no buffer."""
    with suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))


@contextmanager
def _handlers(handler: Any) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (main() called from a thread)
        return
    previous = {signum: signal.signal(signum, handler) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def term_interrupts() -> Iterator[None]:
    """Make SIGTERM interrupt the command as Ctrl-C does (:exc:`KeyboardInterrupt`)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    with _handlers(interrupt):
        yield


@contextmanager
def stop_on_signals(engine: Any) -> Iterator[None]:
    """While ``engine`` runs: a first SIGINT/SIGTERM stops it after its task, a second at once."""
    received: list[str] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if received:
            raise KeyboardInterrupt(name)
        received.append(name)
        engine.request_stop(name)
        _say(
            f"\nworkflow: {name}: stopping after the current task "
            "(Ctrl-C again abandons it; it then runs again on resume)\n"
        )

    with _handlers(stop):
        yield


@contextmanager
def stop_worker_on_signals(worker: Any) -> Iterator[list[str]]:
    """While a worker passes: a first SIGINT/SIGTERM stops it after its run, a second at once.

    Yields the list of the signals received (their names).
    """
    received: list[str] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if received:
            raise KeyboardInterrupt(name)
        received.append(name)
        worker.stop()
        _say(
            f"\nworkflow: {name}: the worker stops after the run it continues "
            "(Ctrl-C again stops it at once)\n"
        )

    with _handlers(stop):
        yield received


def resume_command(uuid: str, imports: list[str], database: str | None) -> str:
    """The ``workflow resume`` command line that goes on with run ``uuid``.

    :param imports: the modules to give to ``--import``.
    :param database: the ``--database`` to repeat (shown without its
        password), or ``None`` when the command was not given one.
    """
    words = ["workflow", "resume", uuid]
    for module in imports:
        words += ["--import", module]
    if database is not None:
        words += ["--database", database]
    return shlex.join(words)
