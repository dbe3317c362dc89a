"""Workflow definitions: callback trees registered under keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._program import Block, Program
from .errors import WorkflowDefinitionError, WorkflowKeyError

__all__ = ["Callbacks"]


class Callbacks:
    """The definitions one engine can run, each a callback tree under a key.

    A callback tree is a list whose items are tasks (``task(obj, eng)``) or
    nested lists. While a definition is added it is normalised by
    :meth:`cleanup_callables`: lists stay nested, tuples are flattened into the
    surrounding list and ``None`` items are dropped. The default key is ``'*'``.
    """

    def __init__(self) -> None:
        self._definitions: dict[str, list[Any]] = {}
        #: Counts the changes made through this object (engines use it to
        #: tell that the definition they ran is no longer the registered one).
        self._version = 0
        #: The programs of the registered trees, by ``id()`` of the tree
        #: (each program keeps its tree alive); emptied on every change.
        self._programs: dict[int, Program] = {}

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
            raise WorkflowKeyError(
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
        self._changed()
        self._definitions.setdefault(key, Block()).extend(items)

    def add_many(self, list_or_tuple: Any, key: str = "*") -> None:
        """Append every item of ``list_or_tuple`` (or one single task) under ``key``."""
        items = list(self.cleanup_callables(list_or_tuple))
        self._changed()
        self._definitions.setdefault(key, Block()).extend(items)

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
                yield Block(cls.cleanup_callables(item))
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
        self._changed()
        self._definitions.pop(key, None)

    def clear_all(self) -> None:
        """Remove every definition."""
        self._changed()
        self._definitions.clear()

    def empty(self) -> bool:
        """Return whether no key is registered at all."""
        return not self._definitions

    def replace(self, funcs: Any, key: str = "*") -> None:
        """Replace the definition under ``key`` with ``funcs``."""
        items = list(self.cleanup_callables(funcs))
        self._changed()
        self._definitions[key] = Block(items)

    def _changed(self) -> None:
        """Note a change: engines see a new version; the programs are laid out anew."""
        self._version += 1
        self._programs.clear()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{key!r}: {len(tree)} items" for key, tree in self._definitions.items())
        return f"<Callbacks {{{sizes}}}>"
