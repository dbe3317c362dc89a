"""Blocks: conditions, loops and branches laid out as Invenio ``workflow`` 2.x lays them out.

:func:`IF`, :func:`IF_NOT`, :func:`IF_ELSE`, :func:`WHILE`, :func:`FOR`,
:func:`CHOICE` and :func:`SIMPLE_MERGE` build lists to put in a definition,
their jumps made with :class:`~workflow.engine.JumpTask` items; :func:`CMP`
builds a condition for them. They are offered by
:mod:`workflow.patterns.controlflow`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from .._loop import LOOPS
from ..engine import Callbacks, GenericWorkflowEngine, JumpTask
from ..errors import WorkflowDefinitionError, WorkflowError
from ._jumps import BREAK
from ._nice_docs import Task, with_nice_docs


def _spread(branch: Any, pattern: str) -> list[Any]:
    """Return the items ``branch`` puts into a block when its items are spread in it."""
    if branch is None:
        raise WorkflowDefinitionError(f"{pattern}: the branch is None; give a task or a list")
    return list(Callbacks.cleanup_callables(branch))


def _one(branch: Any) -> Any:
    """Return ``branch`` as one item of a block: a tuple becomes a list, as one branch."""
    return list(branch) if isinstance(branch, tuple) else branch


def _items(branch: Any) -> list[Any]:
    """Return the items ``branch`` is once put in a block: a list or a tuple is one nested list.

    A tuple is one branch, as a list is (2.x spread a tuple into the block,
    so that the jumps around it landed inside it).
    """
    if isinstance(branch, tuple):
        branch = list(branch)
    return list(Callbacks.cleanup_callables((branch,)))


# -- conditions and loops -------------------------------------------------------------


@with_nice_docs
def IF(cond: Task, branch: Any, *, comment: str | None = None) -> list[Any]:
    """Build the block ``[test, branch]``: run ``branch`` when ``cond(obj, eng)`` is true.

    Otherwise the block is left. Example::

        IF(is_article, [extract_doi, check_doi])
    """

    return [JumpTask(2, cond, when=False, name="_if"), _one(branch)]


@with_nice_docs
def IF_NOT(cond: Task, branch: Any, *, comment: str | None = None) -> list[Any]:
    """Build the block ``[test, branch]``: run ``branch`` when ``cond(obj, eng)`` is false.

    Example::

        IF_NOT(has_abstract, [fetch_abstract])
    """

    return [JumpTask(2, cond, when=True, name="_if_not"), _one(branch)]


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
    return [test, *first, leave, _one(branch2)]


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


_ITERATORS = LOOPS
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
    ``eng.extra_data["_Iterators"]``, under the token's index and the loop's
    position (e.g. ``"0:[1, 0]"``), as JSON data: it survives a halt inside
    ``branch`` (each token keeps its own), and is removed when the loop
    ends, or when the token completes after a :func:`BREAK` left the loop
    early. Entering the loop anew (from the next token, or after a
    :func:`BREAK` left it) starts it over. The items and the loop's steps
    are no tasks: hooks, signals and logs see only the tasks of ``branch``.

    .. versionchanged:: 3.0
       Loops complete (2.x failed with ``KeyError: 'previous_data'``), a
       callable list source works, and each token keeps its own loop.

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
    ascending = order == "ASC"
    read = source if callable(source) else None
    key_of_item = setter if isinstance(setter, str) else ""
    set_item = None if isinstance(setter, str) else setter
    # The loop of the token and the position the engine runs now, as found by
    # the last round: (the engine's _Iterators dict, token index, state).
    # Checking both identities costs far less than building the key again.
    last: list[Any] = [None]
    # The loop's first position as text, by the position it is entered at.
    places: dict[tuple[int, ...], str] = {}

    def state_of(eng: GenericWorkflowEngine, fresh: bool) -> list[Any]:
        loops = eng.extra_data.get(_ITERATORS)
        if loops is None:
            loops = eng.extra_data[_ITERATORS] = {}
        token = eng.state._token_pos
        pos = eng.state.position
        # Keyed by the token and the position of the loop's first item.
        where = places.get(pos) if fresh else None
        if where is None:
            where = str([*pos[:-1], pos[-1] - (0 if fresh else 1)])
            if fresh and len(places) < 64:
                places[pos] = where
        key = f"{token}:{where}"
        found = None if fresh else loops.get(key)
        state: list[Any] = found if isinstance(found, list) else [0, None, None, key]
        loops[key] = state
        last[0] = (loops, token, state)
        return state

    def enter(obj: Any, eng: GenericWorkflowEngine) -> bool:
        state_of(eng, True)
        return False

    def step(obj: Any, eng: GenericWorkflowEngine) -> bool:
        seen = last[0]
        if (
            seen is not None
            and seen[0] is eng.extra_data.get(_ITERATORS)
            and seen[1] == eng.state._token_pos
        ):
            state: list[Any] = seen[2]
        else:
            state = state_of(eng, False)
        if read is None:
            items = source
        elif not cache_data:
            items = read(obj, eng)
        elif len(state) > 4:
            items = state[4]
        else:
            items = read(obj, eng)
            items = items if isinstance(items, list) else list(items)
            state.append(items)
        count = state[0]
        size = len(items)
        if count < size:
            index = count if ascending else size - 1 - count
            item = items[index]
            state[0] = count + 1
            state[1] = index
            state[2] = item
            if set_item is None:
                eng.extra_data[key_of_item] = item
            else:
                set_item(obj, eng, index, item)
            return True
        if count:
            # As with Python's for, the variable keeps the last item.
            if set_item is None:
                eng.extra_data[key_of_item] = state[2]
            else:
                set_item(obj, eng, state[1], state[2])
        loops = eng.extra_data.get(_ITERATORS)
        if loops is not None:
            loops.pop(state[3], None)
        last[0] = None
        return False

    return [
        JumpTask(1, enter, name="_for"),
        JumpTask(len(body) + 2, step, when=False, name="_for_step"),
        *body,
        JumpTask(-(len(body) + 1), name="_for_again"),
    ]


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

    def pick(obj: Any, eng: GenericWorkflowEngine) -> int:
        key = arbiter(obj, eng)
        try:
            return offsets[key]
        except (KeyError, TypeError):
            known = ", ".join(repr(known) for known in offsets) or "none"
            raise WorkflowError(
                f"CHOICE: the arbiter chose {key!r}, which names no branch (known keys: {known})",
                id_object=eng.state.token_pos,
                callback_pos=list(eng.state.callback_pos),
                task="CHOICE",
            ) from None

    return [JumpTask.choose(pick, name="_choice"), *block]


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

    start = JumpTask(1, name="_simple_merge")
    start.__doc__ = "Mark the start of the merge."
    skip_others = JumpTask(skip, name="_simple_merge_skip")
    return [start, *_items(first), skip_others, *skipped, *_items(last)]
