"""Programs: a callback tree laid out flat, the form the engine's one loop runs.

A callback tree is nested lists; the engine runs it as a *program*: its
tasks and jumps in the order the tree lists them, one slot (an ``ip``) each,
with the path of every slot in the tree kept beside it. Entering and leaving
a nested list then costs nothing at run time, and a position
(``state.callback_pos``) is only built when somebody asks for it.

What makes this safe:

* The lists of a registered definition are :class:`Block` objects, lists
  that count their changes (``EDITS``) and flag every engine state, so a
  running engine lays the tree out again and goes on with the items as
  they are now.
* Any other tree (a list a ``callback_chooser`` returns, a list given to
  ``run_callbacks``) is compared with a copy of itself before each token.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._jump import JumpTask
from .errors import WorkflowError

if TYPE_CHECKING:
    from ._state import MachineState

__all__ = ["Block", "Program", "program_of"]


class _Edits:
    """How many times a :class:`Block` changed, and the states to tell."""

    __slots__ = ("count", "lock", "states")

    def __init__(self) -> None:
        self.count = 0
        #: Every engine state, by id (a state is not hashable). Engines are made
        #: in any thread: the lock keeps adding and telling apart.
        self.states: weakref.WeakValueDictionary[int, MachineState] = weakref.WeakValueDictionary()
        self.lock = threading.Lock()

    def add(self, state: MachineState) -> None:
        """Remember ``state``, to tell it when a definition changes."""
        with self.lock:
            self.states[id(state)] = state

    def changed(self) -> None:
        with self.lock:
            self.count += 1
            states = list(self.states.values())
        for state in states:
            state._attention = True


#: The one counter of changes to the lists of registered definitions.
EDITS = _Edits()


def _changes(name: str) -> Any:
    method = getattr(list, name)

    def changing(self: Block, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        EDITS.changed()
        return result

    changing.__name__ = name
    changing.__doc__ = method.__doc__
    return changing


class Block(list[Any]):
    """A list of a registered definition: a plain list that reports its changes.

    ``Callbacks`` stores every list of a definition as one, so that a task
    changing a definition while it runs is seen at once by the engine.
    """

    __slots__ = ()

    __setitem__ = _changes("__setitem__")
    __delitem__ = _changes("__delitem__")
    __iadd__ = _changes("__iadd__")
    __imul__ = _changes("__imul__")
    append = _changes("append")
    extend = _changes("extend")
    insert = _changes("insert")
    pop = _changes("pop")
    remove = _changes("remove")
    clear = _changes("clear")
    sort = _changes("sort")
    reverse = _changes("reverse")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Block, (list(self),))


class _Span:
    """One list of the tree: where each of its items starts in the program."""

    __slots__ = ("children", "starts")

    def __init__(self) -> None:
        #: ``starts[k]``: the slot where item ``k`` begins; ``starts[len]``: the
        #: slot after the list (where its parent goes on).
        self.starts: list[int] = []
        #: The span of each item that is a list, else ``None``.
        self.children: list[_Span | None] = []


class Program:
    """A callback tree laid out flat (see the module docstring).

    :ivar code: the tasks and jumps, in order.
    :ivar paths: the path of each slot in the tree.
    :ivar spans: the list each slot is an item of.
    :ivar targets: for a plain jump, the slot it goes to; else ``-1``.
    """

    __slots__ = (
        "code",
        "edits",
        "found",
        "paths",
        "root",
        "snapshot",
        "spans",
        "targets",
        "tree",
    )

    def __init__(self, tree: list[Any]) -> None:
        self.tree = tree
        self.edits = EDITS.count
        self.code: list[Any] = []
        self.paths: list[tuple[int, ...]] = []
        self.spans: list[_Span] = []
        self.targets: list[int] = []
        #: The slots :meth:`slot` found, by position (resumes ask again and again).
        self.found: dict[tuple[int, ...], int] = {}
        tracked = [True]
        self.root = self._lay_out(tree, (), tracked, set())
        #: A copy of an untracked tree, compared with it before each token.
        self.snapshot = None if tracked[0] else _copy(tree)

    def _lay_out(
        self, block: list[Any], path: tuple[int, ...], tracked: list[bool], open_ids: set[int]
    ) -> _Span:
        if block.__class__ is not Block:
            tracked[0] = False
        if id(block) in open_ids:
            raise WorkflowError(
                f"the definition holds a list inside itself at callback_pos {list(path)}",
                callback_pos=list(path),
            )
        open_ids.add(id(block))
        span = _Span()
        jumps: list[tuple[int, int, int]] = []
        for index, item in enumerate(block):
            span.starts.append(len(self.code))
            if isinstance(item, list):
                span.children.append(self._lay_out(item, (*path, index), tracked, open_ids))
                continue
            span.children.append(None)
            if item.__class__ is JumpTask and item.when is not None:
                jumps.append((len(self.code), index, item.offset))
            self.code.append(item)
            self.paths.append((*path, index))
            self.spans.append(span)
            self.targets.append(-1)
        span.starts.append(len(self.code))
        size = len(block)
        for slot, index, offset in jumps:
            target = index + offset
            self.targets[slot] = span.starts[0 if target < 0 else size if target > size else target]
        open_ids.discard(id(block))
        return span

    def valid(self, tree: list[Any]) -> bool:
        """Tell whether this program still runs ``tree`` as it is now."""
        if self.tree is not tree or self.edits != EDITS.count:
            return False
        return self.snapshot is None or self.snapshot == tree

    def slot(self, position: Iterable[int]) -> int:
        """Return the slot where a run at ``position`` (a path in the tree) goes on.

        An index past the end of its list goes on after the list, a negative
        one at the list's first item; every index but the last must lead to
        a nested list.

        :raises WorkflowError: when the position leads nowhere in the tree.
        """
        path = tuple(position)
        found = self.found.get(path)
        if found is not None:
            return found
        slot = self._find(list(path))
        if len(self.found) < 256:
            self.found[path] = slot
        return slot

    def _find(self, path: list[int]) -> int:
        span = self.root
        for depth, index in enumerate(path[:-1]):
            child = span.children[index] if 0 <= index < len(span.children) else None
            if child is None:
                raise WorkflowError(
                    f"cannot resume at callback_pos {path}: item {index} at depth {depth} "
                    "is not a nested list in this definition (did the definition change?)",
                    callback_pos=path,
                )
            span = child
        last = path[-1] if path else 0
        size = len(span.children)
        return span.starts[0 if last < 0 else size if last > size else last]

    def after(self, slot: int, offset: int) -> int:
        """Return the slot ``offset`` items away from ``slot`` in its list.

        ``1`` is the next item; the target is clamped to the list, and its
        end means the slot after the list.
        """
        span = self.spans[slot]
        target = self.paths[slot][-1] + offset
        size = len(span.children)
        return span.starts[0 if target < 0 else size if target > size else target]

    def __len__(self) -> int:
        return len(self.code)

    def __repr__(self) -> str:
        return f"<Program {len(self.code)} slots>"


def _copy(tree: list[Any]) -> list[Any]:
    return [_copy(item) if isinstance(item, list) else item for item in tree]


#: Programs of trees that are not registered definitions, by id (each program
#: keeps its tree alive, so an id is never reused while its entry exists).
_loose: dict[int, Program] = {}
_LOOSE_MAX = 64


def program_of(tree: list[Any], kept: dict[int, Program] | None = None) -> Program:
    """Return the program of ``tree``, laid out anew when the tree changed.

    :param kept: where the programs of registered definitions live (their
        ``Callbacks``); other trees share a small bounded cache.
    """
    cache = _loose if kept is None else kept
    program = cache.get(id(tree))
    if program is not None and program.valid(tree):
        return program
    program = Program(tree)
    if cache is _loose and len(_loose) >= _LOOSE_MAX:
        _loose.clear()
    cache[id(tree)] = program
    return program
