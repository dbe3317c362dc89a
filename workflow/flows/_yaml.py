"""Reading YAML flow files: PyYAML's safe loader, without aliases and with a depth limit.

Importing this module imports PyYAML, so :mod:`workflow.flows._load` imports
it only for a YAML file.

An alias (``*name``) repeats the value its anchor (``&name``) marks. Nine
lines of aliases to aliases can stand for hundreds of millions of values (the
"billion laughs"), which every later walk over the flow would visit, so a
flow file may not use them at all: an anchor alone is harmless and allowed.
"""

from __future__ import annotations

from typing import Any, NoReturn

import yaml
from yaml.composer import ComposerError
from yaml.error import Mark
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    NodeEvent,
)

from ._limits import MAX_DOCUMENT_DEPTH, MAX_DOCUMENT_VALUES

__all__ = ["YAMLError", "load_yaml"]

YAMLError = yaml.YAMLError


class _FlowLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases and documents nested too deep.

    The composer takes every event through :meth:`get_event` before it
    builds a node (and it builds nested collections recursively), so both
    are refused there, before any harm is done.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values = 0

    def get_event(self) -> Any:
        event = super().get_event()  # type: ignore[no-untyped-call]
        if isinstance(event, NodeEvent):
            self._values += 1
            if self._values > MAX_DOCUMENT_VALUES:  # stop reading early: PyYAML is slow
                _refuse(f"the document has more than {MAX_DOCUMENT_VALUES} values", event)
        if isinstance(event, AliasEvent):
            _refuse("flow files cannot use aliases (*name); write the value out", event)
        if isinstance(event, CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_DOCUMENT_DEPTH:
                message = f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"
                _refuse(message, event)
        elif isinstance(event, CollectionEndEvent):
            self._depth -= 1
        return event


def _refuse(problem: str, event: Event) -> NoReturn:
    mark = event.start_mark if isinstance(event.start_mark, Mark) else None
    raise ComposerError(None, None, problem, mark)


def load_yaml(text: str) -> Any:
    """Return the data of one YAML document, as :func:`yaml.safe_load` does.

    :raises yaml.YAMLError: for a syntax error, an alias, a document nested
        deeper than :data:`~workflow.flows.MAX_DOCUMENT_DEPTH`, or one of more
        than :data:`~workflow.flows.MAX_DOCUMENT_VALUES` values.
    """
    loader = _FlowLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
