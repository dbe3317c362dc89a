"""Stored definitions: versions, checksums, enabling, soft deletes and listing.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.errors import (
    DefinitionDisabledError,
    DefinitionNotFoundError,
    StorageError,
    WorkflowNotFoundError,
)
from workflow.storage import Definition, DefinitionRecord, Definitions, Store
from workflow.storage.definitions import checksum
from workflow.storage.models import utcnow

FLOW = {"name": "greet", "steps": [{"call": "hello"}, {"call": "bye"}]}
CHANGED = {"name": "greet", "steps": [{"call": "hello"}]}


@pytest.fixture
def definitions(store: Store) -> Definitions:
    return Definitions(store)


def sha256_of_canonical_json(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# -- put --------------------------------------------------------------------------------


def test_put_stores_version_one_with_the_checksum_of_the_canonical_json(
    definitions: Definitions,
) -> None:
    before = utcnow()
    stored = definitions.put("greet", FLOW)
    assert (stored.name, stored.version, stored.body) == ("greet", 1, FLOW)
    assert stored.checksum == sha256_of_canonical_json(FLOW)
    assert len(stored.checksum) == 64
    assert (stored.enabled, stored.deleted) == (True, False)
    assert stored.created.tzinfo is None
    assert before - timedelta(seconds=1) <= stored.created == stored.updated <= utcnow()
    assert definitions.get("greet") == stored


def test_put_of_the_same_body_returns_the_stored_version_unchanged(
    definitions: Definitions,
) -> None:
    first = definitions.put("greet", FLOW)
    reordered = dict(reversed(list(FLOW.items())))  # same JSON object, other key order
    again = definitions.put("greet", reordered)
    assert again == first
    assert again.updated == first.updated
    assert [d.version for d in definitions.versions("greet")] == [1]


def test_put_of_a_changed_body_stores_the_next_version(definitions: Definitions) -> None:
    definitions.put("greet", FLOW)
    second = definitions.put("greet", CHANGED)
    assert (second.version, second.body) == (2, CHANGED)
    assert second.checksum == checksum(CHANGED) != checksum(FLOW)
    # Going back to the first body is a change too: it becomes version 3.
    third = definitions.put("greet", FLOW)
    assert (third.version, third.checksum) == (3, checksum(FLOW))
    assert definitions.get("greet") == third


def test_put_compares_with_the_latest_version_even_when_disabled(
    definitions: Definitions,
) -> None:
    definitions.put("greet", FLOW)
    definitions.disable("greet")
    again = definitions.put("greet", FLOW)
    assert (again.version, again.enabled) == (1, False)


def test_put_keeps_non_ascii_text_and_nested_values(definitions: Definitions) -> None:
    body = {"title": "Überprüfung ✓", "nested": {"b": [1, 2.5, None, True], "a": {}}}
    stored = definitions.put("unicode", body)
    assert stored.checksum == sha256_of_canonical_json(body)
    assert definitions.get("unicode").body == body


def test_put_returns_a_copy_of_the_body(definitions: Definitions) -> None:
    body: dict[str, Any] = {"steps": ["a"]}
    stored = definitions.put("copied", body)
    body["steps"].append("b")
    assert stored.body == {"steps": ["a"]}
    assert definitions.get("copied").body == {"steps": ["a"]}


def test_names_are_versioned_independently(definitions: Definitions) -> None:
    definitions.put("a", FLOW)
    definitions.put("a", CHANGED)
    assert definitions.put("b", FLOW).version == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "must be a dict"),
        ({"when": {1, 2}}, "is not plain JSON"),
        ({"x": float("nan")}, "is not plain JSON"),
    ],
    ids=["list", "set", "nan"],
)
def test_put_refuses_a_body_that_is_not_a_plain_json_object(
    definitions: Definitions, body: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        definitions.put("bad", body)
    assert definitions.versions("bad") == []


@pytest.mark.parametrize("name", ["", "x" * 256, None])
def test_put_refuses_a_missing_or_too_long_name(definitions: Definitions, name: Any) -> None:
    with pytest.raises(ValueError, match="name"):
        definitions.put(name, FLOW)


def test_concurrent_puts_of_different_bodies_get_distinct_versions(
    db_url: str, store: Store
) -> None:
    bodies = [{"steps": [f"step {i}"]} for i in range(6)]
    stores = [Store(db_url) for _ in bodies]
    barrier = threading.Barrier(len(bodies))
    results: list[Definition] = []
    failures: list[BaseException] = []

    def put(own: Store, body: dict[str, Any]) -> None:
        try:
            barrier.wait()
            results.append(Definitions(own).put("raced", body))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=put, args=pair) for pair in zip(stores, bodies, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for own in stores:
        own.dispose()

    assert failures == []
    assert sorted(d.version for d in results) == list(range(1, len(bodies) + 1))
    stored = {d.version: d.body for d in Definitions(store).versions("raced")}
    assert stored == {d.version: d.body for d in results}


def test_put_raises_storage_error_when_the_table_is_missing(store: Store) -> None:
    DefinitionRecord.__table__.drop(store.engine)  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="wf_definition") as info:
        Definitions(store).put("greet", FLOW)
    assert info.value.operation == "put definition"
    assert isinstance(info.value.__cause__, sa.exc.DBAPIError)


# -- get --------------------------------------------------------------------------------


def test_get_by_version_after_a_newer_one_is_published(definitions: Definitions) -> None:
    first = definitions.put("greet", FLOW)
    second = definitions.put("greet", CHANGED)
    assert definitions.get("greet") == second
    assert definitions.get("greet", 1) == first
    assert definitions.get("greet", 1).body == FLOW
    assert definitions.get("greet", 2) == second


def test_get_without_a_version_skips_disabled_versions(definitions: Definitions) -> None:
    first = definitions.put("greet", FLOW)
    definitions.put("greet", CHANGED)
    definitions.disable("greet", 2)
    assert definitions.get("greet") == first


def test_get_of_an_explicit_disabled_version_returns_it(definitions: Definitions) -> None:
    definitions.put("greet", FLOW)
    definitions.put("greet", CHANGED)
    definitions.disable("greet")
    started_with = definitions.get("greet", 1)
    assert (started_with.version, started_with.enabled, started_with.body) == (1, False, FLOW)


def test_get_when_every_version_is_disabled_raises_definition_disabled(
    definitions: Definitions,
) -> None:
    definitions.put("greet", FLOW)
    definitions.put("greet", CHANGED)
    definitions.disable("greet")
    with pytest.raises(DefinitionDisabledError, match=r"'greet' is disabled.*version 2") as info:
        definitions.get("greet")
    assert info.value.definition_name == "greet"
    assert info.value.operation == "get definition"
    assert not isinstance(info.value, LookupError)


def test_get_of_an_unknown_name_raises_definition_not_found(definitions: Definitions) -> None:
    with pytest.raises(DefinitionNotFoundError, match="no stored definition is called 'nope'"):
        definitions.get("nope")


def test_get_of_an_unknown_version_names_the_name_and_version(
    definitions: Definitions,
) -> None:
    definitions.put("greet", FLOW)
    with pytest.raises(LookupError, match="'greet' has no version 7") as info:
        definitions.get("greet", 7)
    error = info.value
    assert isinstance(error, DefinitionNotFoundError)
    assert isinstance(error, WorkflowNotFoundError)
    assert (error.definition_name, error.definition_version) == ("greet", 7)


def test_enable_brings_a_disabled_version_back_for_new_runs(definitions: Definitions) -> None:
    definitions.put("greet", FLOW)
    definitions.put("greet", CHANGED)
    definitions.disable("greet")
    [enabled] = definitions.enable("greet", 1)
    assert (enabled.version, enabled.enabled) == (1, True)
    assert definitions.get("greet").version == 1
    assert [d.version for d in definitions.enable("greet")] == [1, 2]
    assert definitions.get("greet").version == 2


def test_disable_and_enable_update_the_timestamp_and_return_the_versions(
    definitions: Definitions,
) -> None:
    stored = definitions.put("greet", FLOW)
    [disabled] = definitions.disable("greet", 1)
    assert (disabled.enabled, disabled.body, disabled.created) == (False, FLOW, stored.created)
    assert disabled.updated >= stored.updated
    assert definitions.get("greet", 1) == disabled


# -- delete -----------------------------------------------------------------------------


def test_a_deleted_version_is_not_found_even_by_version(definitions: Definitions) -> None:
    definitions.put("greet", FLOW)
    second = definitions.put("greet", CHANGED)
    [deleted] = definitions.delete("greet", 1)
    assert deleted.deleted
    with pytest.raises(DefinitionNotFoundError, match="'greet' has no version 1"):
        definitions.get("greet", 1)
    assert definitions.get("greet") == second
    assert definitions.versions("greet") == [second]


def test_deleting_every_version_makes_the_name_unknown(definitions: Definitions) -> None:
    definitions.put("greet", FLOW)
    definitions.put("greet", CHANGED)
    assert [d.version for d in definitions.delete("greet")] == [1, 2]
    with pytest.raises(DefinitionNotFoundError, match="no stored definition is called 'greet'"):
        definitions.get("greet")
    assert definitions.versions("greet") == []
    assert definitions.list() == []


def test_putting_a_deleted_name_goes_on_after_the_highest_version_ever_used(
    definitions: Definitions,
) -> None:
    definitions.put("greet", FLOW)
    definitions.put("greet", CHANGED)
    definitions.delete("greet")
    again = definitions.put("greet", FLOW)  # the same body as the deleted version 1
    assert (again.version, again.enabled, again.deleted) == (3, True, False)
    assert [d.version for d in definitions.versions("greet")] == [3]


def test_putting_the_body_of_a_deleted_latest_version_stores_a_new_one(
    definitions: Definitions,
) -> None:
    definitions.put("greet", FLOW)
    definitions.put("greet", CHANGED)
    definitions.delete("greet", 2)
    assert definitions.put("greet", FLOW).version == 1  # the latest left has this body
    assert definitions.put("greet", CHANGED).version == 3


@pytest.mark.parametrize("method", ["disable", "enable", "delete"])
@pytest.mark.parametrize("version", [None, 1, 9])
def test_changing_a_missing_or_deleted_version_raises_definition_not_found(
    definitions: Definitions, method: str, version: int | None
) -> None:
    definitions.put("kept", FLOW)
    definitions.put("gone", FLOW)
    definitions.delete("gone")
    for name in ("never stored", "gone"):
        with pytest.raises(DefinitionNotFoundError, match=repr(name)) as info:
            getattr(definitions, method)(name, version)
        assert info.value.definition_version == version
        assert info.value.operation == f"{method} definition"
    if version != 9:
        getattr(definitions, method)("kept", version)


# -- listing ----------------------------------------------------------------------------


def names_and_versions(found: list[Definition]) -> list[tuple[str, int]]:
    return [(d.name, d.version) for d in found]


@pytest.fixture
def catalogue(definitions: Definitions) -> Definitions:
    """b: v1, v2 (disabled); a: v1; c: v1 (disabled); d: v1 (deleted); e: v1, v2 (deleted)."""
    definitions.put("b", FLOW)
    definitions.put("b", CHANGED)
    definitions.disable("b", 2)
    definitions.put("a", FLOW)
    definitions.put("c", FLOW)
    definitions.disable("c")
    definitions.put("d", FLOW)
    definitions.delete("d")
    definitions.put("e", FLOW)
    definitions.put("e", CHANGED)
    definitions.delete("e", 2)
    return definitions


def test_list_gives_the_latest_version_of_each_name_sorted_by_name(
    catalogue: Definitions,
) -> None:
    found = catalogue.list()
    assert names_and_versions(found) == [("a", 1), ("b", 2), ("c", 1), ("e", 1)]
    assert [d.enabled for d in found] == [True, False, False, True]
    assert found[0].body == FLOW


def test_list_without_disabled_gives_what_new_runs_use(catalogue: Definitions) -> None:
    found = catalogue.list(include_disabled=False)
    assert names_and_versions(found) == [("a", 1), ("b", 1), ("e", 1)]
    assert found == [catalogue.get(d.name) for d in found]


def test_list_with_deleted_includes_deleted_versions(catalogue: Definitions) -> None:
    found = catalogue.list(include_deleted=True)
    assert names_and_versions(found) == [("a", 1), ("b", 2), ("c", 1), ("d", 1), ("e", 2)]
    assert [d.deleted for d in found] == [False, False, False, True, True]
    enabled = catalogue.list(include_disabled=False, include_deleted=True)
    assert names_and_versions(enabled) == [("a", 1), ("b", 1), ("d", 1), ("e", 2)]


def test_list_of_an_empty_store_is_empty(definitions: Definitions) -> None:
    assert definitions.list() == []


def test_versions_lists_the_versions_not_deleted_oldest_first(catalogue: Definitions) -> None:
    assert names_and_versions(catalogue.versions("b")) == [("b", 1), ("b", 2)]
    assert [d.enabled for d in catalogue.versions("b")] == [True, False]
    assert names_and_versions(catalogue.versions("e")) == [("e", 1)]
    assert catalogue.versions("d") == catalogue.versions("never stored") == []


# -- values -----------------------------------------------------------------------------


def test_definition_and_definitions_have_a_useful_repr(definitions: Definitions) -> None:
    stored = definitions.put("greet", FLOW)
    assert repr(stored) == f"<Definition 'greet' v1 enabled {stored.checksum[:12]}>"
    [disabled] = definitions.disable("greet")
    assert repr(disabled).startswith("<Definition 'greet' v1 disabled ")
    [deleted] = definitions.delete("greet")
    assert repr(deleted).startswith("<Definition 'greet' v1 deleted ")
    assert repr(definitions) == f"<Definitions in {definitions.store!r}>"


def test_the_stored_rows_map_to_definition_records(store: Store) -> None:
    Definitions(store).put("greet", FLOW)
    with store.session() as session:
        [record] = session.scalars(sa.select(DefinitionRecord)).all()
        assert repr(record) == "<DefinitionRecord 'greet' v1>"
        assert (record.body, record.checksum, record.enabled) == (FLOW, checksum(FLOW), True)


def test_a_definition_is_frozen(definitions: Definitions) -> None:
    stored = definitions.put("greet", FLOW)
    with pytest.raises(AttributeError):
        stored.version = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "error",
    [
        DefinitionNotFoundError(
            "no such", definition_name="a", definition_version=2, operation="get definition"
        ),
        DefinitionDisabledError("disabled", definition_name="a", operation="get definition"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_definition_errors_survive_a_pickle_round_trip(error: StorageError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
