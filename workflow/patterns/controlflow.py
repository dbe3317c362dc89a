"""Control-flow patterns: factories of tasks and blocks for workflow definitions.

A pattern is an ordinary factory: it returns a task (a callable
``task(obj, eng)``) or a block (a list to put in a definition) built only on
the engine's public API, so you can write your own the same way. Blocks are
laid out as in Invenio ``workflow`` 2.x, so halted runs keep their
``callback_pos``; the jumps inside a block are counted after tuples have been
flattened into it, and made with :class:`~workflow.engine.JumpTask` items,
which the engine runs without a call of their own.

Patterns that run branches in threads (:func:`PARALLEL_SPLIT`,
:func:`SYNCHRONIZE`) wait for all of them and re-raise the first failure of
a branch (in branch order) in the calling task; the failures of the other
branches are attached to it as notes (:meth:`BaseException.add_note`; on
Python 3.10 the ``__notes__`` attribute, which tracebacks do not show there).
"""

from __future__ import annotations

import functools
import operator
import queue
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from ..engine import Callbacks, GenericWorkflowEngine, JumpTask
from ..errors import JumpTokenBack, JumpTokenForward, WorkflowDefinitionError, WorkflowError
from .utils import Task, _child_engine, with_nice_docs

__all__ = [
    "BREAK",
    "CHOICE",
    "CMP",
    "FOR",
    "HALT",
    "IF",
    "IF_ELSE",
    "IF_NOT",
    "MAX_TIMEOUT",
    "OBJ_JUMP_BWD",
    "OBJ_JUMP_FWD",
    "OBJ_NEXT",
    "PARALLEL_SPLIT",
    "SIMPLE_MERGE",
    "STOP",
    "SYNCHRONIZE",
    "TASK_JUMP_BWD",
    "TASK_JUMP_FWD",
    "TASK_JUMP_IF",
    "WHILE",
    "MySpecialThread",
    "MyTimeoutQueue",
]

#: Default ``timeout`` of :func:`SYNCHRONIZE`, in seconds.
MAX_TIMEOUT = 30000


def _spread(branch: Any, pattern: str) -> list[Any]:
    """Return the items ``branch`` puts into a block when its items are spread in it."""
    if branch is None:
        raise WorkflowDefinitionError(f"{pattern}: the branch is None; give a task or a list")
    return list(Callbacks.cleanup_callables(branch))


def _items(branch: Any) -> list[Any]:
    """Return the items ``branch`` is once put in a block: a list stays one nested item."""
    return list(Callbacks.cleanup_callables((branch,)))


# -- jumps and transitions ----------------------------------------------------------


@with_nice_docs
def TASK_JUMP_BWD(step: int = -1, *, comment: str | None = None) -> Task:
    """Build a task going back in the current block: ``eng.jump_call(step)``.

    ``TASK_JUMP_BWD(-1)`` runs the previous task again. Example (``fetch``
    runs again while ``failed`` holds)::

        [fetch, TASK_JUMP_IF(succeeded, 2), TASK_JUMP_BWD(-2), store]
    """

    def _task_jump_bwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.jump_call(step)

    return _task_jump_bwd


@with_nice_docs
def TASK_JUMP_FWD(step: int = 1, *, comment: str | None = None) -> Task:
    """Build a task going ``step`` tasks forward in the current block.

    ``TASK_JUMP_FWD(1)`` is the plain next task, ``TASK_JUMP_FWD(2)`` skips
    one. Example (``draft_only`` never runs)::

        [parse, TASK_JUMP_FWD(2), draft_only, publish]
    """

    def _task_jump_fwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.jump_call(step)

    return _task_jump_fwd


@with_nice_docs
def TASK_JUMP_IF(cond: Task, step: int, *, comment: str | None = None) -> Task:
    """Build a task jumping ``step`` tasks (back when negative) if ``cond(obj, eng)`` is true.

    Otherwise the next task runs. Example::

        [TASK_JUMP_IF(is_draft, 2), publish, archive]
    """

    def _task_jump_if(obj: Any, eng: GenericWorkflowEngine) -> None:
        if cond(obj, eng):
            eng.jump_call(step)

    return _task_jump_if


@with_nice_docs
def BREAK(*, comment: str | None = None) -> Task:
    """Build a task leaving the innermost block; the block's parent goes on after it.

    Example::

        WHILE(has_pages, [fetch_page, IF(is_last_page, [BREAK()])])
    """

    def _break(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.break_current_loop()

    return _break


@with_nice_docs
def STOP(*, comment: str | None = None) -> Task:
    """Build a task stopping the engine (:meth:`~workflow.engine.GenericWorkflowEngine.stop`).

    Example::

        [IF(is_sentinel, [STOP()]), process_record]
    """

    def _stop(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.stop()

    return _stop


@with_nice_docs
def HALT(*, comment: str | None = None) -> Task:
    """Build a task halting the engine (:meth:`~workflow.engine.GenericWorkflowEngine.halt`).

    The run can then be resumed with ``eng.restart(...)``. Example::

        [IF(needs_review, [HALT()]), publish]
    """

    def _halt(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.halt()

    return _halt


@with_nice_docs
def OBJ_NEXT(*, comment: str | None = None) -> Task:
    """Build a task leaving the current token; the next token starts at its first task.

    .. versionchanged:: 3.0
       Calls :meth:`~workflow.engine.GenericWorkflowEngine.continue_next_token`;
       2.x only left the innermost block, which was not the next token
       inside a nested block.

    Example::

        [IF(is_duplicate, [OBJ_NEXT()]), store]
    """

    def _obj_next(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.continue_next_token()

    return _obj_next


def _check_step(pattern: str, step: Any) -> None:
    if type(step) is not int:
        raise WorkflowDefinitionError(f"{pattern}: step must be an int; got {step!r}")


@with_nice_docs
def OBJ_JUMP_FWD(step: int = 1, *, comment: str | None = None) -> Task:
    """Build a task going on with the token ``step`` places forward.

    ``1`` is the next token; past the last token the run ends. It raises
    :class:`~workflow.errors.JumpTokenForward`, so a transition handler of
    that name sees it. Example::

        [IF(is_batch_header, [OBJ_JUMP_FWD(2)]), process]
    """
    _check_step("OBJ_JUMP_FWD", step)

    def _obj_jump_fwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        raise JumpTokenForward(step)

    return _obj_jump_fwd


@with_nice_docs
def OBJ_JUMP_BWD(step: int = -1, *, comment: str | None = None) -> Task:
    """Build a task going on with the token ``abs(step)`` places back.

    ``-1`` is the previous token, ``0`` runs the current one again; the first
    token is as far back as it goes. It raises
    :class:`~workflow.errors.JumpTokenBack`. Example::

        [update, IF(needs_another_pass, [OBJ_JUMP_BWD(-1)])]
    """
    _check_step("OBJ_JUMP_BWD", step)

    def _obj_jump_bwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        raise JumpTokenBack(step)

    return _obj_jump_bwd


# -- conditions and loops -------------------------------------------------------------


@with_nice_docs
def IF(cond: Task, branch: Any, *, comment: str | None = None) -> list[Any]:
    """Build the block ``[test, branch]``: run ``branch`` when ``cond(obj, eng)`` is true.

    Otherwise the block is left. Example::

        IF(is_article, [extract_doi, check_doi])
    """

    return [JumpTask(2, cond, when=False, name="_if"), branch]


@with_nice_docs
def IF_NOT(cond: Task, branch: Any, *, comment: str | None = None) -> list[Any]:
    """Build the block ``[test, branch]``: run ``branch`` when ``cond(obj, eng)`` is false.

    Example::

        IF_NOT(has_abstract, [fetch_abstract])
    """

    return [JumpTask(2, cond, when=True, name="_if_not"), branch]


@with_nice_docs
def IF_ELSE(cond: Task, branch1: Any, branch2: Any, *, comment: str | None = None) -> list[Any]:
    """Build the block ``[test, branch1, BREAK(), branch2]``: run one branch of two.

    ``branch1`` runs when ``cond(obj, eng)`` is true, ``branch2`` otherwise.

    :raises WorkflowDefinitionError: when a branch is ``None``.

    Example::

        IF_ELSE(is_valid, [store], [report_error, HALT()])
    """
    if branch1 is None or branch2 is None:
        raise WorkflowDefinitionError("IF_ELSE needs two branches; give [] for an empty one")
    first = _items(branch1)
    to_second = len(first) + 2

    test = JumpTask(to_second, cond, when=False, name="_if_else")
    leave = JumpTask(2, name="_break")  # leaves the block, as BREAK() would
    leave.__doc__ = BREAK().__doc__
    return [test, *first, leave, branch2]


@with_nice_docs
def WHILE(cond: Task, branch: Any, *, comment: str | None = None) -> list[Any]:
    """Build the block ``[test, *branch, jump back]``: run ``branch`` while ``cond`` holds.

    ``cond(obj, eng)`` is tested before each round; a :func:`BREAK` in
    ``branch`` leaves the loop. Example::

        WHILE(lambda obj, eng: obj["pages_left"], [fetch_next_page])
    """
    body = _spread(branch, "WHILE")
    leave = len(body) + 2

    test = JumpTask(leave, cond, when=False, name="_while")
    again = JumpTask(-(len(body) + 1), name="_while_again")
    return [test, *body, again]


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "==": operator.eq,
    "gt": operator.gt,
    ">": operator.gt,
    "gte": operator.ge,
    ">=": operator.ge,
    "lt": operator.lt,
    "<": operator.lt,
    "lte": operator.le,
    "<=": operator.le,
    "in": operator.contains,  # "b in a"
}


class _Comparison:
    """The task :func:`CMP` builds."""

    #: invenio-workflows leaves tasks with a true ``hide`` out of the task history.
    hide = True

    def __init__(self, a: Any, b: Any, op: str) -> None:
        self.a = a
        self.b = b
        self.op = op
        self.__name__ = "CMP"
        self._compare = _COMPARISONS[op]

    def __call__(self, obj: Any, eng: Any) -> Any:
        return self._compare(_value(self.a, obj, eng), _value(self.b, obj, eng))

    def __repr__(self) -> str:
        return f"CMP({self.a!r}, {self.b!r}, {self.op!r})"


def _value(value: Any, obj: Any, eng: Any) -> Any:
    while callable(value):
        value = value(obj, eng)
    return value


@with_nice_docs
def CMP(a: Any, b: Any, op: str, *, comment: str | None = None) -> Task:
    """Build a task returning the comparison of ``a`` and ``b``, for conditions.

    ``a`` and ``b`` are values, or callables ``(obj, eng)``, called again as
    long as they return a callable. ``op`` is one of ``eq gt gte lt lte``,
    ``== > >= < <=``, or ``in`` (true when ``b in a``). The task has
    ``hide = True``.

    :raises WorkflowDefinitionError: for an unknown ``op``.

    Example::

        IF_ELSE(CMP(lambda obj, eng: obj, [0, 1, 0, 1], "<"), [again], [done])
    """
    if op not in _COMPARISONS:
        raise WorkflowDefinitionError(
            f"CMP: unknown operator {op!r}; use one of {' '.join(_COMPARISONS)}"
        )
    return _Comparison(a, b, op)


_ITERATORS = "_Iterators"
_ORDERS = ("ASC", "DSC")


@with_nice_docs
def FOR(
    get_list_function: Any,
    setter: str | Callable[[Any, Any, int, Any], Any],
    branch: Any,
    cache_data: bool = False,
    order: str = "ASC",
    *,
    comment: str | None = None,
) -> list[Any]:
    """Build the block ``[next item, *branch, jump back]``: run ``branch`` for each item.

    :param get_list_function: the items: a sequence, or a callable
        ``get_list_function(obj, eng)`` returning them.
    :param setter: where the current item goes: a key of ``eng.extra_data``,
        or a callable ``setter(obj, eng, index, item)``.
    :param branch: the tasks of the loop body.
    :param cache_data: read the items once, when the loop starts; otherwise
        they are read again before each round and the loop goes on by index.
    :param order: ``'ASC'`` from the first item, ``'DSC'`` from the last.

    As with Python's ``for``, the variable keeps the last item after the loop
    (the setter receives it once more) and an empty list runs ``branch``
    zero times. The loop's progress lives in
    ``eng.extra_data["_Iterators"][str(callback_pos)]``: it survives a halt
    inside ``branch``, and is removed when the loop ends. Entering the loop
    anew (from the next token, or after a :func:`BREAK` left it) starts it
    over.

    .. versionchanged:: 3.0
       Loops complete (2.x failed with ``KeyError: 'previous_data'``) and a
       callable list source works.

    Example::

        FOR(lambda obj, eng: obj["authors"], "author", [normalise_author])
    """
    if order not in _ORDERS:
        raise WorkflowDefinitionError(f"FOR: order must be 'ASC' or 'DSC'; got {order!r}")
    if not (isinstance(setter, str) or callable(setter)):
        raise WorkflowDefinitionError(
            f"FOR: setter must be a key of eng.extra_data or a callable; got {setter!r}"
        )
    source = get_list_function
    if not (callable(source) or isinstance(source, Sequence)):
        if not isinstance(source, Iterable):
            raise WorkflowDefinitionError(
                f"FOR: the items must be a sequence or a callable (obj, eng); got {source!r}"
            )
        source = list(source)
    body = _spread(branch, "FOR")
    back = -(len(body) + 1)

    def read_items(obj: Any, eng: GenericWorkflowEngine) -> Sequence[Any]:
        items = source(obj, eng) if callable(source) else source
        return items if isinstance(items, Sequence) else list(items)

    def assign(obj: Any, eng: GenericWorkflowEngine, index: int, item: Any) -> None:
        if isinstance(setter, str):
            eng.extra_data[setter] = item
        else:
            setter(obj, eng, index, item)

    def _for(obj: Any, eng: GenericWorkflowEngine) -> None:
        loops = eng.extra_data.setdefault(_ITERATORS, {})
        key = str(eng.state.callback_pos)
        loop = loops.get(key)
        if loop is None or not loop.get("next"):
            loop = {"step": 0}
        if not cache_data:
            items = read_items(obj, eng)
        elif "value" in loop:
            items = loop["value"]
        else:
            items = loop["value"] = list(read_items(obj, eng))
        step = loop["step"]
        if step < len(items):
            index = step if order == "ASC" else len(items) - 1 - step
            item = items[index]
            assign(obj, eng, index, item)
            loop.update(step=step + 1, next=False, previous_index=index, previous_data=item)
            loops[key] = loop
            return
        if step:
            assign(obj, eng, loop["previous_index"], loop["previous_data"])
        loops.pop(key, None)
        eng.break_current_loop()

    def _for_again(obj: Any, eng: GenericWorkflowEngine) -> None:
        pos = eng.state.callback_pos
        loop = eng.extra_data.get(_ITERATORS, {}).get(str([*pos[:-1], pos[-1] + back]))
        if loop is not None:
            loop["next"] = True
        eng.jump_call_later(back)

    return [_for, *body, _for_again]


# -- branches ---------------------------------------------------------------------------


@with_nice_docs
def CHOICE(
    arbiter: Task,
    *predicates: Sequence[Any],
    comment: str | None = None,
    **kwpredicates: Any,
) -> list[Any]:
    """Build a block running the one branch whose key ``arbiter(obj, eng)`` returns.

    :param predicates: ``(key, task, ...)`` tuples: a key and its branch.
    :param kwpredicates: ``key=branch`` pairs, for string keys.
    :raises WorkflowDefinitionError: for a malformed or repeated key.

    When the arbiter returns a key that names no branch, the task raises
    :class:`~workflow.errors.WorkflowError` naming the key and the known ones.

    .. versionchanged:: 3.0
       A branch of several tasks runs whole (2.x jumped to the wrong place).

    Example::

        CHOICE(get_format, ("xml", parse_xml, validate_xml), json=[parse_json])
    """
    branches: list[tuple[Hashable, list[Any]]] = []
    for predicate in predicates:
        if not isinstance(predicate, (tuple, list)) or not predicate:
            raise WorkflowDefinitionError(
                f"CHOICE: a positional branch is a tuple (key, task, ...); got {predicate!r}"
            )
        key, *tasks = predicate
        branches.append((key, list(Callbacks.cleanup_callables(tuple(tasks)))))
    branches += [(key, _items(branch)) for key, branch in kwpredicates.items()]

    block: list[Any] = []
    offsets: dict[Hashable, int] = {}
    for key, items in branches:
        if key in offsets:
            raise WorkflowDefinitionError(f"CHOICE: the key {key!r} names two branches")
        offsets[key] = len(block) + 1
        block += [*items, BREAK()]

    def _choice(obj: Any, eng: GenericWorkflowEngine) -> None:
        key = arbiter(obj, eng)
        try:
            offset = offsets[key]
        except (KeyError, TypeError):
            known = ", ".join(repr(known) for known in offsets) or "none"
            raise WorkflowError(
                f"CHOICE: the arbiter chose {key!r}, which names no branch (known keys: {known})",
                id_object=eng.state.token_pos,
                callback_pos=list(eng.state.callback_pos),
                task="CHOICE",
            ) from None
        eng.jump_call_later(offset)

    return [_choice, *block]


@with_nice_docs
def SIMPLE_MERGE(*args: Any, comment: str | None = None) -> list[Any]:
    """Build a block running the first branch, then the last one; the others never run.

    This is the sequential form of the "simple merge" of two or more
    branches: the first branch wins and the merge point (the last argument)
    runs once after it.

    :raises WorkflowDefinitionError: with fewer than two arguments.

    Example::

        SIMPLE_MERGE(fast_path, slow_path, save)
    """
    if len(args) < 2:
        raise WorkflowDefinitionError(
            f"SIMPLE_MERGE needs at least two arguments (branches, then the merge); got {len(args)}"
        )
    first, *others, last = args
    skipped = [item for branch in others for item in _items(branch)]
    skip = len(skipped) + 1

    def _simple_merge(obj: Any, eng: GenericWorkflowEngine) -> None:
        """Mark the start of the merge."""

    def _simple_merge_skip(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.jump_call_later(skip)

    return [_simple_merge, *_items(first), _simple_merge_skip, *skipped, *_items(last)]


# -- threads ------------------------------------------------------------------------------


class MyTimeoutQueue(queue.Queue[Callable[[], object]]):
    """A queue of calls whose :meth:`join_with_timeout` gives up after a while."""

    def join_with_timeout(self, timeout: float | None) -> None:
        """Wait until every call put in the queue is done, at most ``timeout`` seconds.

        ``None`` waits as long as it takes.

        :raises TimeoutError: when calls are still running after ``timeout``.
        """
        with self.all_tasks_done:
            if not self.all_tasks_done.wait_for(lambda: not self.unfinished_tasks, timeout):
                raise TimeoutError(
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
        raise TimeoutError(
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
    :class:`threading.Lock` is put in ``extra_data['lock']`` of the calling
    engine and of every branch's engine, for the branches to guard the token.

    The task returns when every branch has finished. A branch's exception
    (a halt included) is re-raised by the task; see the module docstring when
    several branches fail.

    .. versionchanged:: 3.0
       Waits for the branches and re-raises their errors; 2.x returned at
       once and lost them.

    Example::

        [task_a, PARALLEL_SPLIT(task_b, [task_c1, task_c2], task_d), task_e]
    """

    def _parallel_split(obj: Any, eng: GenericWorkflowEngine) -> None:
        lock = threading.Lock()
        eng.extra_data["lock"] = lock
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
