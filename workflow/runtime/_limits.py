"""Time limits of tasks: interrupt a task that runs too long.

Python cannot stop a thread from outside; what can be done is done:

- in the main thread (``workflow run``, a ``workflow worker`` without
  ``--concurrency``, most scripts), a ``SIGALRM`` timer interrupts the task
  wherever it is, also in a blocking call (``time.sleep``, a socket read);
- in any other thread (a worker's ``--concurrency`` threads, your own), the
  task runs to its end, and then fails if it ran past its limit: what it
  returned is not used. (Raising into another thread, as some libraries do,
  can leave a lock of the interpreter held forever: we do not.)

Either way the attempt fails with :class:`~workflow.errors.TaskTimeLimitError`,
which a ``retry`` retries like any failure. Give network calls their own
timeouts too: they are what a limit cannot always cut short.

Nothing here imports SQLAlchemy.

.. versionadded:: 3.0
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from ..errors import TaskTimeLimitError, WorkflowValueError

__all__ = ["call_with_time_limit", "time_limited"]

T = TypeVar("T")

#: The longest time limit (a day): a longer one is surely a mistake.
MAX_TIME_LIMIT = 86400.0


def check_limit(seconds: object) -> float:
    """Return ``seconds`` as a float if it can be a time limit, else raise."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= MAX_TIME_LIMIT
        or math.isnan(seconds)
    ):
        raise WorkflowValueError(
            f"a time limit is a number of seconds above 0 and at most a day, not {seconds!r}"
        )
    return float(seconds)


class _Timer:
    """One armed limit: fires at most once, and never after the call it limits returned."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = False
        self.fired = False

    def fire(self) -> bool:
        with self.lock:
            if self.finished:
                return False
            self.fired = True
            return True

    def finish(self) -> bool:
        """Mark the call returned; tell whether the limit fired meanwhile."""
        with self.lock:
            self.finished = True
            return self.fired


def _can_use_alarm() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN)
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )


def call_with_time_limit(seconds: float, func: Callable[..., T], *args: Any, name: str = "") -> T:
    """Call ``func(*args)``; fail with :class:`TaskTimeLimitError` once it ran ``seconds``.

    In the main thread the call is interrupted then; in another thread it
    fails when it returns (see the module's documentation).

    :param name: the task's name, for the error.
    """
    limit = check_limit(seconds)
    timer = _Timer()
    shown = f"task {name!r}" if name else "the task"
    message = f"{shown} ran past its time limit of {limit:g} s"
    if _can_use_alarm():

        def alarm(signum: int, frame: Any) -> None:
            if timer.fire():
                raise TaskTimeLimitError(
                    f"{message} and was interrupted", limit=limit, task=name or None
                )

        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return func(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            timer.finish()
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
    started = time.monotonic()
    result = func(*args)
    took = time.monotonic() - started
    if took > limit:
        raise TaskTimeLimitError(
            f"{message} (it took {took:.3g} s; in this thread it could not be interrupted, "
            "so what it returned is not used)",
            limit=limit,
            task=name or None,
        )
    return result


def time_limited(seconds: float, task: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Return ``task`` (a callback ``(obj, eng)``) interrupted after ``seconds``.

    >>> import time
    >>> from workflow.engine import GenericWorkflowEngine
    >>> from workflow.runtime import time_limited
    >>> def slow(obj, eng):
    ...     time.sleep(5)
    >>> eng = GenericWorkflowEngine()
    >>> eng.callbacks.replace([time_limited(0.1, slow)])
    >>> eng.process([{}])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workflow.errors.TaskTimeLimitError: task 'slow' ran past its time limit of 0.1 s and was ...
    """
    limit = check_limit(seconds)
    name = getattr(task, "__name__", "") or type(task).__name__

    @wraps(task)
    def limited(obj: Any, eng: Any) -> Any:
        return call_with_time_limit(limit, task, obj, eng, name=name)

    return limited
