"""Workflow definitions: callback trees registered under keys."""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._jump import JumpTask
from .errors import BreakFromThisLoop, JumpCall, WorkflowDefinitionError

if TYPE_CHECKING:
    from .engine import GenericWorkflowEngine

__all__ = ["Callbacks"]

#: A compiled list: ``runner(eng, obj, depth, pos)`` runs the list it was made
#: from exactly as ``eng._run_plain(block, obj, depth, pos)`` does.
Runner = Callable[["GenericWorkflowEngine", Any, int, list[int]], None]


class Callbacks:
    """The definitions one engine can run, each a callback tree under a key.

    A callback tree is a list whose items are tasks (``task(obj, eng)``) or
    nested lists. While a definition is added it is normalised by
    :meth:`cleanup_callables`: lists stay nested, tuples are flattened into the
    surrounding list and ``None`` items are dropped. The default key is ``'*'``.
    """

    def __init__(self) -> None:
        self._definitions: dict[str, list[Any]] = {}
        #: The runners compiled from the registered lists, by ``id()`` of the
        #: list (each runner holds its list, so the id stays its own).
        self._runners: dict[int, Runner] = {}

    def get(self, key: str | None = "*") -> Any:
        """Return the callback tree registered under ``key``.

        A falsy ``key`` (``None``, ``''``) returns the dict of all definitions.

        :raises KeyError: when nothing is registered under ``key``.
        """
        if not key:
            return self._definitions
        try:
            return self._definitions[key]
        except KeyError:
            raise KeyError(
                f"No workflow is registered for the key: {key}. Register one with "
                f"eng.callbacks.add_many(definition, key={key!r}) or pick another key "
                "in callback_chooser()."
            ) from None

    def add(self, func: Any, key: str = "*") -> None:
        """Append one task, or one nested list, to the definition under ``key``.

        ``None`` is ignored; the key is created on first use.
        """
        if func is None:
            return
        items = list(self.cleanup_callables([func]))
        self._runners.clear()
        self._definitions.setdefault(key, []).extend(items)

    def add_many(self, list_or_tuple: Any, key: str = "*") -> None:
        """Append every item of ``list_or_tuple`` (or one single task) under ``key``."""
        items = list(self.cleanup_callables(list_or_tuple))
        self._runners.clear()
        self._definitions.setdefault(key, []).extend(items)

    @classmethod
    def cleanup_callables(cls, callbacks: Any) -> Iterator[Any]:
        """Yield the normalised items of a definition.

        Lists stay nested (and are cleaned in turn), tuples are flattened into
        the surrounding list, ``None`` is dropped, and a single callable yields
        itself.

        :raises WorkflowDefinitionError: for an item that is neither a
            callable, a list, a tuple nor ``None``.
        """
        if callable(callbacks) and not isinstance(callbacks, (list, tuple)):
            yield callbacks
            return
        if not isinstance(callbacks, (list, tuple)):
            raise WorkflowDefinitionError(
                "a workflow definition must be a list of tasks, got "
                f"{type(callbacks).__name__}: {callbacks!r}"
            )
        for index, item in enumerate(callbacks):
            if item is None:
                continue
            if isinstance(item, list):
                yield list(cls.cleanup_callables(item))
            elif isinstance(item, tuple):
                yield from cls.cleanup_callables(item)
            elif callable(item):
                yield item
            else:
                raise WorkflowDefinitionError(
                    f"item {index} of a workflow definition is not a task: "
                    f"{type(item).__name__} {item!r} (a task is a callable "
                    "task(obj, eng); nested blocks are lists)"
                )

    def clear(self, key: str = "*") -> None:
        """Remove the definition under ``key``; no error if there is none."""
        self._runners.clear()
        self._definitions.pop(key, None)

    def clear_all(self) -> None:
        """Remove every definition."""
        self._runners.clear()
        self._definitions.clear()

    def empty(self) -> bool:
        """Return whether no key is registered at all."""
        return not self._definitions

    def replace(self, funcs: Any, key: str = "*") -> None:
        """Replace the definition under ``key`` with ``funcs``."""
        items = list(self.cleanup_callables(funcs))
        self._runners.clear()
        self._definitions[key] = items

    def _runner(self, tree: list[Any], build: bool = True) -> Runner | None:
        """Return the compiled runner of ``tree``, or ``None`` to interpret it.

        Only the registered definitions are compiled: a list built anew for
        each token (by a ``callback_chooser``) would cost a compilation per
        token and grow the cache without bound. With ``build`` false, only an
        existing runner is returned.
        """
        runner = self._runners.get(id(tree))
        if runner is None:
            if not build or not any(
                tree is registered for registered in self._definitions.values()
            ):
                return None
            runner = _compile(tree, self._runners, self._stale, set())
        return runner

    def _stale(
        self, eng: GenericWorkflowEngine, block: list[Any], obj: Any, depth: int, pos: list[int]
    ) -> None:
        """Run a list changed in place since it was compiled; compile again on next use."""
        self._runners.clear()
        eng._run_plain(block, obj, depth, pos)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{key!r}: {len(tree)} items" for key, tree in self._definitions.items())
        return f"<Callbacks {{{sizes}}}>"


# -- compiled lists -------------------------------------------------------------------
#
# The engine's interpreter (``GenericWorkflowEngine._run_plain``) looks at each
# item when it gets there: is it a nested list, a JumpTask, a task? For the
# registered definitions that work is done once: each list becomes a function
# whose body has one ``if i == k:`` branch per item, specialised for its kind.
# Running in sequence, each branch falls through into the next one; a jump
# backwards falls off the end of the chain and the ``while`` starts it again.
# The position is kept exactly as the interpreter keeps it (``pos[depth]`` is
# the running item while it runs, read back after each task), so what tasks,
# receivers and a halt see does not change.
#
# The source depends only on the kinds of the items (the list's *shape*), so
# it is compiled once per shape and per process; each list gets a closure over
# its own items. A runner checks at its start that its list still holds the
# items it was made from (a C-level comparison of two short lists), and hands
# over to the interpreter when somebody changed it in place.

#: Lists longer than this are interpreted: the chain of branches would be long.
MAX_COMPILED_ITEMS = 256
#: Bound of the cache of compiled shapes (cleared when full).
MAX_SHAPES = 512

_TASK, _JUMP, _LIST = "t", "j", "l"

_HEAD = """\
def make(BLOCK, SNAP, STALE, {items}):
    def run(eng, obj, depth, pos):
        if BLOCK != SNAP:
            return STALE(eng, BLOCK, obj, depth, pos)
        i = pos[depth]
        while True:
            try:
                while i < {n}:
"""
_BRANCH = {
    _TASK: """\
                    if i == {k}:
                        x{k}(obj, eng)
                        i = pos[depth] + 1
                        pos[depth] = i
""",
    _JUMP: """\
                    if i == {k}:
                        cond = x{k}.cond
                        if cond is None or (not cond(obj, eng)) is not x{k}.when:
                            i = {k} + x{k}.offset
                            if i < 0:
                                i = 0
                            pos[depth] = i
                            continue
                        i = pos[depth] + 1
                        pos[depth] = i
""",
    _LIST: """\
                    if i == {k}:
                        pos.append(0)
                        x{k}(eng, obj, depth + 1, pos)
                        pos.pop()
                        i = pos[depth] + 1
                        pos[depth] = i
""",
}
# A position no branch matches (a task wrote a negative index or a non-int
# into callback_pos) goes to the interpreter, which does what it always did.
_TAIL = """\
                    if i < 0 or i.__class__ is not int:
                        return eng._run_plain(BLOCK, obj, depth, pos)
                pos[depth] = {last}
                return
            except JumpCall as jump:
                i = pos[depth] + jump.args[0]
                i = 0 if i < 0 else {n} if i > {n} else i
                pos[depth] = i
            except BreakFromThisLoop:
                return
    return run
"""

_shapes: dict[str, Callable[..., Runner]] = {}


def _maker(shape: str) -> Callable[..., Runner]:
    """Return the function making runners for lists of this shape (compiled once)."""
    make = _shapes.get(shape)
    if make is None:
        n = len(shape)
        source = _HEAD.format(items=", ".join(f"x{k}" for k in range(n)), n=n)
        source += "".join(_BRANCH[kind].format(k=k) for k, kind in enumerate(shape))
        source += _TAIL.format(n=n, last=n - 1)
        filename = f"<workflow list {shape}>"
        # Tracebacks through a runner show its lines, like those of a real file.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {"JumpCall": JumpCall, "BreakFromThisLoop": BreakFromThisLoop}
        exec(compile(source, filename, "exec"), namespace)
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        make = _shapes[shape] = namespace["make"]
    return make


def _interpreted(block: list[Any]) -> Runner:
    """Return a runner that leaves ``block`` to the interpreter."""

    def run(eng: GenericWorkflowEngine, obj: Any, depth: int, pos: list[int]) -> None:
        eng._run_plain(block, obj, depth, pos)

    return run


def _compile(
    block: list[Any], runners: dict[int, Runner], stale: Callable[..., None], open_lists: set[int]
) -> Runner:
    """Compile ``block`` and the lists nested in it into ``runners``; return its runner."""
    runner = runners.get(id(block))
    if runner is not None:
        return runner
    if not block or len(block) > MAX_COMPILED_ITEMS or id(block) in open_lists:
        # Empty and very long lists, and a list nested in itself, are interpreted.
        runner = _interpreted(block)
    else:
        open_lists.add(id(block))
        shape = []
        items: list[Any] = []
        for item in block:
            kind = item.__class__
            if kind is list:
                shape.append(_LIST)
                items.append(_compile(item, runners, stale, open_lists))
            else:
                shape.append(_JUMP if kind is JumpTask else _TASK)
                items.append(item)
        open_lists.discard(id(block))
        runner = _maker("".join(shape))(block, list(block), stale, *items)
    runners[id(block)] = runner
    return runner
