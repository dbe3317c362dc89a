"""Callbacks: definitions under keys; lists nest, tuples flatten, None drops."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.engine import Callbacks
from workflow.errors import WorkflowDefinitionError


def a(obj: Any, eng: Any) -> None: ...
def b(obj: Any, eng: Any) -> None: ...
def c(obj: Any, eng: Any) -> None: ...


def test_lists_nest_tuples_flatten_and_none_is_dropped() -> None:
    callbacks = Callbacks()
    callbacks.add_many([a, None, (b, (c, None)), [a, (b,), [c, None]]])
    assert callbacks.get() == [a, b, c, [a, b, [c]]]


def test_add_appends_one_item_and_ignores_none() -> None:
    callbacks = Callbacks()
    callbacks.add(a)
    callbacks.add(None)
    callbacks.add([b, c])
    assert callbacks.get("*") == [a, [b, c]]


def test_add_many_accepts_a_single_callable() -> None:
    callbacks = Callbacks()
    callbacks.add_many(a)
    assert callbacks.get() == [a]


def test_a_missing_key_raises_a_friendly_key_error() -> None:
    with pytest.raises(KeyError, match="No workflow is registered for the key: other"):
        Callbacks().get("other")


@pytest.mark.parametrize("key", [None, ""])
def test_a_falsy_key_returns_every_definition(key: Any) -> None:
    callbacks = Callbacks()
    callbacks.add(a, key="x")
    assert callbacks.get(key) == {"x": [a]}


def test_clear_replace_and_empty() -> None:
    callbacks = Callbacks()
    assert callbacks.empty()
    callbacks.add_many([a, b])
    callbacks.add(c, key="other")
    callbacks.replace([c], key="*")
    assert callbacks.get() == [c]
    callbacks.clear()
    callbacks.clear("absent")
    assert not callbacks.empty()
    callbacks.clear_all()
    assert callbacks.empty()


def test_replace_keeps_the_old_definition_when_the_new_one_is_bad() -> None:
    callbacks = Callbacks()
    callbacks.replace([a])
    with pytest.raises(WorkflowDefinitionError):
        callbacks.replace([b, 42])
    assert callbacks.get() == [a]


@pytest.mark.parametrize("bad", [42, "abc", {"a": 1}])
def test_a_definition_that_is_not_a_list_is_refused(bad: Any) -> None:
    with pytest.raises(WorkflowDefinitionError, match="must be a list of tasks"):
        Callbacks().add_many(bad)


def test_repr_lists_the_keys() -> None:
    callbacks = Callbacks()
    callbacks.add_many([a, b])
    assert repr(callbacks) == "<Callbacks {'*': 2 items}>"
