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

from ..engine import Callbacks, GenericWorkflowEngine, JumpTask
from ..errors import WorkflowDefinitionError, WorkflowError
from ._jumps import BREAK
from ._nice_docs import Task, with_nice_docs


def _spread(branch: Any, pattern: str) -> list[Any]:
    """Return the items ``branch`` puts into a block when its items are spread in it."""
    if branch is None:
        raise WorkflowDefinitionError(f"{pattern}: the branch is None; give a task or a list")
    return list(Callbacks.cleanup_callables(branch))


def _items(branch: Any) -> list[Any]:
    """Return the items ``branch`` is once put in a block: a list stays one nested item."""
    return list(Callbacks.cleanup_callables((branch,)))


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
