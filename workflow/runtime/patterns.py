"""Waiting in plain callback lists: :func:`ASK`, :func:`SLEEP`, :func:`RECEIVE`, :func:`RETRY`.

Each returns a list of tasks to put in a definition run by a
:class:`~workflow.storage.PersistentWorkflowEngine` (only a stored run can
wait). The result of the step called ``name`` is put in the token's
``extra_data[name]`` once the wait is decided, for the next tasks to read.

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..errors import WorkflowValueError
from ._time import parse_duration, parse_instant
from .tasks import RetryPolicy, TokenSite, retry_tasks, wait_tasks
from .waits import WaitSpec

__all__ = ["ASK", "RECEIVE", "RETRY", "SLEEP"]

Moment = datetime | str | Callable[[Any, Any], "datetime | str"]


def _duration(value: timedelta | str | None, what: str) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return parse_duration(value, what=what)


def _moment(value: Moment | None, obj: Any, eng: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if callable(value):
        value = value(obj, eng)
    return parse_instant(value, what=what)


def ASK(
    name: str,
    message: str,
    *,
    approvers: Sequence[str] | None = None,
    quorum: int = 1,
    reject_quorum: int = 1,
    schema: Any = None,
    timeout: timedelta | str | None = None,
    deadline: Moment | None = None,
    on_timeout: Any = None,
) -> list[Any]:
    """Wait until people decide: ``quorum`` approvals, ``reject_quorum`` rejections, or time.

    The token's ``extra_data[name]`` becomes ``{"decision": "approved" |
    "rejected" | "timed_out", "answers": [{"by", "decision", "data", "at"}],
    ...}`` (see :meth:`~workflow.runtime.Wait.result`). Answers are given
    with :meth:`~workflow.runtime.Waits.answer` or ``workflow answer``.

    :param approvers: who may answer (``None``: anyone).
    :param schema: the JSON Schema of each answer's data.
    :param timeout: how long the question stays open (``timedelta`` or
        ISO 8601 ``"PT48H"``); or ``deadline``, a time with an offset or a
        callable ``(obj, eng)`` returning one.
    :param on_timeout: ``"approve"``, ``"reject"``, ``"fail"`` or
        ``{"answer": data}``.
    """
    wait = _duration(timeout, f"step {name!r}: timeout")
    people = None if approvers is None else tuple(approvers)
    WaitSpec(
        "ask", name, message, timeout=wait, approvers=people, quorum=quorum,
        reject_quorum=reject_quorum, schema=schema, on_timeout=on_timeout,
    )  # fmt: skip

    def spec(obj: Any, eng: Any) -> WaitSpec:
        return WaitSpec(
            "ask",
            name,
            message,
            timeout=wait,
            until=_moment(deadline, obj, eng, f"step {name!r}: deadline"),
            approvers=people,
            quorum=quorum,
            reject_quorum=reject_quorum,
            schema=schema,
            on_timeout=on_timeout,
        )

    return wait_tasks(TokenSite(name, spec))


def SLEEP(
    name: str, duration: timedelta | str | None = None, *, until: Moment | None = None
) -> list[Any]:
    """Wait for a time: ``duration`` from when the token gets here, or ``until`` a time.

    The wait is a row that a ``workflow worker`` fires when it is due, by the
    database's clock; never early. ``extra_data[name]`` becomes ``{"due", "fired"}``.
    """
    if (duration is None) == (until is None):
        raise WorkflowValueError(f"SLEEP {name!r} takes a duration or until=, one of them")
    wait = _duration(duration, f"step {name!r}: duration")

    def spec(obj: Any, eng: Any) -> WaitSpec:
        return WaitSpec(
            "sleep", name, timeout=wait, until=_moment(until, obj, eng, f"step {name!r}: until")
        )

    return wait_tasks(TokenSite(name, spec))


def RECEIVE(
    name: str,
    topic: str,
    *,
    timeout: timedelta | str | None = None,
    on_timeout: str | None = None,
) -> list[Any]:
    """Wait for a message to the run on ``topic`` (sent with :meth:`Waits.send`).

    A message sent before the token gets here is kept for it.
    ``extra_data[name]`` becomes ``{"received", "topic", "data", "key",
    "at", "timed_out"}``; ``on_timeout="fail"`` fails the token instead.
    """
    wait = _duration(timeout, f"step {name!r}: timeout")
    if on_timeout not in (None, "fail"):
        raise WorkflowValueError(f"RECEIVE {name!r}: on_timeout is 'fail' or None")
    WaitSpec("receive", name, timeout=wait, topic=topic, on_timeout=on_timeout)
    return wait_tasks(
        TokenSite(
            name,
            lambda obj, eng: WaitSpec(
                "receive", name, timeout=wait, topic=topic, on_timeout=on_timeout
            ),
        )
    )


def RETRY(
    task: Callable[[Any, Any], Any],
    *,
    attempts: int,
    backoff: timedelta | str,
    max_backoff: timedelta | str | None = None,
    jitter: bool = True,
    name: str | None = None,
) -> list[Any]:
    """Try ``task`` up to ``attempts`` times; between tries the run waits in a timer row.

    The wait after the n-th failure is ``backoff * 2**(n-1)`` (at most
    ``max_backoff``), drawn between half of it and all of it with
    ``jitter``. The failed attempts are counted in the token, stored when
    it halts for the timer. After the last attempt the task's own exception
    is raised (on Python 3.11+ with a note of the attempt count).
    """
    label = str(name or getattr(task, "__name__", "task"))
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 100:
        raise WorkflowValueError(f"RETRY {label!r}: attempts is a whole number from 1 to 100")
    first = _duration(backoff, f"step {label!r}: backoff")
    assert first is not None
    policy = RetryPolicy(attempts, first, _duration(max_backoff, "max_backoff"), jitter)
    return retry_tasks(TokenSite(label), task, policy)
