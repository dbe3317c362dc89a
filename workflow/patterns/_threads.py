"""Threads: patterns running branches at once, and their queue and worker thread.

:func:`PARALLEL_SPLIT` and :func:`SYNCHRONIZE` run each branch in a thread
of its own, wait for all of them and re-raise the first failure; they are
offered by :mod:`workflow.patterns.controlflow`, whose docstring says how
several failures are reported.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..engine import GenericWorkflowEngine
from ..errors import WorkflowDefinitionError, WorkflowTimeoutError
from ._nice_docs import Task, with_nice_docs
from ._subflows import _child_engine

#: Default ``timeout`` of :func:`SYNCHRONIZE`, in seconds.
MAX_TIMEOUT = 30000


class MyTimeoutQueue(queue.Queue[Callable[[], object]]):
    """A queue of calls whose :meth:`join_with_timeout` gives up after a while."""

    def join_with_timeout(self, timeout: float | None) -> None:
        """Wait until every call put in the queue is done, at most ``timeout`` seconds.

        ``None`` waits as long as it takes.

        :raises TimeoutError: when calls are still running after ``timeout``.
        """
        with self.all_tasks_done:
            if not self.all_tasks_done.wait_for(lambda: not self.unfinished_tasks, timeout):
                raise WorkflowTimeoutError(
                    f"{self.unfinished_tasks} queued calls still running after {timeout} s"
                )

    def __repr__(self) -> str:
        return f"<MyTimeoutQueue unfinished={self.unfinished_tasks}>"


class MySpecialThread(threading.Thread):
    """A worker thread: it takes one call from ``itemq``, runs it and marks it done.

    The remaining arguments are those of :class:`threading.Thread`.
    """

    def __init__(self, itemq: MyTimeoutQueue, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.itemq = itemq

    def run(self) -> None:
        """Run one call of the queue."""
        call = self.itemq.get()
        try:
            call()
        finally:
            self.itemq.task_done()


class _Job:
    """One branch, run by a worker thread; it keeps how the branch ended."""

    def __init__(self, label: str, call: Callable[[], object]) -> None:
        self.label = label
        self.call = call
        self.error: BaseException | None = None
        self.finished = False

    def __call__(self) -> None:
        try:
            self.call()
        except BaseException as error:  # handed to the waiting thread, which re-raises it
            self.error = error
        finally:
            self.finished = True


def _run_jobs(pattern: str, jobs: Sequence[_Job], timeout: float | None) -> None:
    """Run every job in its own thread, wait for them, and re-raise the first failure."""
    calls = MyTimeoutQueue()
    for number, job in enumerate(jobs):
        calls.put(job)
        MySpecialThread(calls, name=f"{pattern}-{number}", daemon=True).start()
    try:
        calls.join_with_timeout(timeout)
    except TimeoutError:
        running = [job.label for job in jobs if not job.finished]
        raise WorkflowTimeoutError(
            f"{pattern}: {', '.join(running)} still running after the timeout of {timeout} s"
        ) from None
    failed = [job for job in jobs if job.error is not None]
    if not failed:
        return
    error = failed[0].error
    assert error is not None
    for other in failed[1:]:
        _add_note(error, f"{pattern}: {other.label} failed too: {other.error!r}")
    raise error


def _add_note(error: BaseException, note: str) -> None:
    if sys.version_info >= (3, 11):
        error.add_note(note)
    else:  # pragma: no cover - Python 3.10
        error.__dict__.setdefault("__notes__", []).append(note)


def _branch_call(branch: Any, obj: Any, eng: GenericWorkflowEngine) -> Callable[[], object]:
    """Return the call running ``branch``: a list or tuple in a child engine, a task directly."""
    if isinstance(branch, (list, tuple)):
        return functools.partial(_child_engine(eng, branch).process, [obj])
    return functools.partial(branch, obj, eng)


@with_nice_docs
def PARALLEL_SPLIT(*args: Any, comment: str | None = None) -> Task:
    """Build a task running every branch at once, each in its own engine and thread.

    Each branch (a task, or a list of tasks) runs as the definition of a new
    engine, of the calling engine's class when it needs no constructor
    argument (else :class:`~workflow.engine.GenericWorkflowEngine`), with the
    token as its only token. Branches share the token but see nothing else
    of the calling engine, so jumps stay inside a branch. A new
    :class:`threading.Lock` is put in ``extra_data['lock']`` of every
    branch's engine, for the branches to guard the token (not in the calling
    engine's: a lock is no data, and a stored run could not keep it).

    The task returns when every branch has finished. A branch's exception
    (a halt included) is re-raised by the task; see the module docstring when
    several branches fail.

    .. versionchanged:: 3.0
       Waits for the branches and re-raises their errors; 2.x returned at
       once and lost them. The calling engine's ``extra_data`` is left alone.

    Example::

        [task_a, PARALLEL_SPLIT(task_b, [task_c1, task_c2], task_d), task_e]
    """

    def _parallel_split(obj: Any, eng: GenericWorkflowEngine) -> None:
        lock = threading.Lock()
        jobs = []
        for number, branch in enumerate(args):
            child = _child_engine(eng, [branch])
            child.extra_data["lock"] = lock
            jobs.append(_Job(f"branch {number}", functools.partial(child.process, [obj])))
        _run_jobs("PARALLEL_SPLIT", jobs, None)

    return _parallel_split


@with_nice_docs
def SYNCHRONIZE(
    *args: Any, timeout: float | None = MAX_TIMEOUT, comment: str | None = None
) -> Task:
    """Build a task running all but the last argument at once, then the last one.

    Each argument but the last is a branch run once in its own thread: a task
    is called as ``task(obj, eng)`` with the calling engine, a list or tuple
    of tasks runs as the definition of a new engine with the token as its
    only token. When they have all finished, the last argument runs the same
    way in the calling thread. Never jump out of a branch.

    :param timeout: seconds to wait for the branches (``None``: no limit).
    :raises WorkflowDefinitionError: with fewer than two arguments.

    When the branches are not all done after ``timeout`` the task raises
    :class:`TimeoutError` naming the timeout and the unfinished branches (they
    go on running, in daemon threads), and the last argument does not run.
    A branch's exception is re-raised, after every branch has finished, and
    the last argument does not run either.

    .. versionchanged:: 3.0
       Each branch runs exactly once and the last argument runs; 2.x ran the
       last branch twice, then waited for the whole timeout and raised
       ``RuntimeError``.

    Example::

        [task_a, SYNCHRONIZE(task_b, [task_c1, task_c2], task_d, task_e, timeout=60)]
    """
    if len(args) < 2:
        raise WorkflowDefinitionError(
            "SYNCHRONIZE needs at least two arguments (branches, then the task run after "
            f"them); got {len(args)}"
        )
    if timeout is not None and not timeout > 0:
        raise WorkflowDefinitionError(f"SYNCHRONIZE: timeout must be > 0 or None; got {timeout!r}")
    for arg in args:
        if not (callable(arg) or isinstance(arg, (list, tuple))):
            raise WorkflowDefinitionError(
                f"SYNCHRONIZE: each argument is a task or a list of tasks; got {arg!r}"
            )
    *branches, last = args

    def _synchronize(obj: Any, eng: GenericWorkflowEngine) -> None:
        jobs = [
            _Job(f"branch {number}", _branch_call(branch, obj, eng))
            for number, branch in enumerate(branches)
        ]
        _run_jobs("SYNCHRONIZE", jobs, timeout)
        _branch_call(last, obj, eng)()

    return _synchronize
