"""Stored data never turns into something else, and a corrupted column is named, not raised.

A dict of the user's with the codec's ``__workflow_type__`` key is stored
escaped and loads back as the same dict, never as a registered type. JSON
nested deeper than the codec allows, lone surrogates, NaN keys and huge ints
are refused when saved, with the path (``test_unstorable.py`` runs them
through every write of a run). Text that is no JSON loads as an
:class:`~workflow.storage.codec.UnreadableValue`, which ``resume()`` and
``from_uuid()`` refuse naming the workflow, the token and the column.
"""

from __future__ import annotations

import decimal
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.errors import StoredRunError, TokenEncodingError, WorkflowValueError
from workflow.storage import JSONCodec, PersistentWorkflowEngine, Store, Token
from workflow.storage.codec import MAX_DEPTH, UnreadableValue


def decimal_codec(**options: Any) -> JSONCodec:
    codec = JSONCodec(**options)
    codec.register(decimal.Decimal, "decimal", str, decimal.Decimal)
    return codec


MIMICS = [
    {"__workflow_type__": "decimal", "value": "1.5"},
    {"__workflow_type__": "decimal", "value": "not a number"},
    {"__workflow_type__~": "decimal", "value": "2"},
    {"__workflow_type__~~": 1, "__workflow_type__": "x", "value": None},
    {"outer": [{"__workflow_type__": "decimal", "value": "3"}], "d": decimal.Decimal("4")},
]


@pytest.mark.parametrize("data", MIMICS, ids=range(len(MIMICS)))
def test_data_that_mimics_a_type_envelope_loads_as_the_data_it_is(data: Any) -> None:
    codec = decimal_codec()
    assert codec.loads(codec.dumps(data)) == data


def test_registered_types_still_load_as_their_type() -> None:
    codec = decimal_codec()
    value = {"price": decimal.Decimal("9.99"), "keys": {"__workflow_type__": "decimal"}}
    loaded = codec.loads(codec.dumps(value))
    assert loaded == value
    assert isinstance(loaded["price"], decimal.Decimal)
    assert codec.loads(b'{"__workflow_type__":"decimal","value":"1"}') == decimal.Decimal("1")


def test_a_stored_envelope_lookalike_is_not_decoded(tmp_path: Any) -> None:
    # The audit's probe: an input record crafted as an envelope made the decoder
    # raise decimal.InvalidOperation on load.
    codec = decimal_codec()
    store = Store(Store.create_engine(f"sqlite:///{tmp_path}/w.sqlite", codec=codec), codec=codec)
    store.create_all()
    crafted = {"__workflow_type__": "decimal", "value": "not a number"}
    eng = PersistentWorkflowEngine.with_name("crafted", store=store, definition=[keep])
    eng.process([crafted])
    assert [token.data for token in eng.load_tokens()] == [crafted]
    store.dispose()


def keep(obj: Token, eng: PersistentWorkflowEngine) -> None:
    """A task that changes nothing."""


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_the_nesting_limit_is_the_codecs() -> None:
    assert JSONCodec().dumps(nested(MAX_DEPTH)).count("{") == MAX_DEPTH
    with pytest.raises(TokenEncodingError, match=r"nested deeper than 31 levels"):
        JSONCodec().dumps(nested(MAX_DEPTH + 1))
    assert JSONCodec(max_depth=120).loads(JSONCodec(max_depth=120).dumps(nested(120)))
    with pytest.raises(TokenEncodingError, match=r"^cannot store \$\.a\.a.*…"):
        JSONCodec(max_depth=120).dumps(nested(5000))


@pytest.mark.parametrize("bad", [0, 201, 1.5, "31", True])
def test_a_codec_refuses_a_nesting_limit_it_cannot_keep(bad: Any) -> None:
    with pytest.raises(WorkflowValueError, match="max_depth"):
        JSONCodec(max_depth=bad)


def test_text_that_is_no_json_loads_as_an_unreadable_value() -> None:
    loaded = JSONCodec().loads("{not json")
    assert isinstance(loaded, UnreadableValue)
    assert loaded.text == "{not json"
    assert "Expecting property name" in loaded.error
    assert repr(loaded).startswith("<unreadable JSON '{not json'")
    assert isinstance(JSONCodec().loads(b"[" * 100_000), UnreadableValue)


def halted(store: Store) -> PersistentWorkflowEngine:
    def halt_on_one(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 1 and not eng.extra_data.get("go"):
            eng.halt("wait")

    eng = PersistentWorkflowEngine.with_name("corrupt", store=store, definition=[halt_on_one])
    with pytest.raises(Exception, match="wait"):
        eng.process([{"i": 0}, {"i": 1}, {"i": 2}])
    return eng


def corrupt(store: Store, table: str, column: str, where: str) -> None:
    # SQLite alone lets a JSON column hold text that is no JSON: PostgreSQL's
    # json type and MariaDB's JSON_VALID check refuse it.
    with store.sql_engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET {column} = '{{broken' WHERE {where}"))


@pytest.mark.parametrize("column", ["data", "extra_data", "callback_pos"])
def test_resume_names_a_token_column_that_is_no_json(tmp_path: Any, column: str) -> None:
    store = Store(f"sqlite:///{tmp_path}/w.sqlite")
    store.create_all()
    eng = halted(store)
    corrupt(store, "wf_token", column, f"workflow_uuid = '{eng.uuid}' AND position = 2")
    later = PersistentWorkflowEngine.from_uuid(eng.uuid, store=store, definition=[keep])
    with pytest.raises(StoredRunError, match=f"token 2 cannot be read: its {column} column"):
        later.resume()
    assert store.workflow(eng.uuid)["lock_owner"] is None
    store.dispose()


@pytest.mark.parametrize("column", ["extra_data", "callback_pos"])
def test_an_engine_refuses_a_run_row_that_is_no_json(tmp_path: Any, column: str) -> None:
    store = Store(f"sqlite:///{tmp_path}/w.sqlite")
    store.create_all()
    eng = halted(store)
    corrupt(store, "wf_workflow", column, f"uuid = '{eng.uuid}'")
    with pytest.raises(StoredRunError, match=f"its stored {column} cannot be read") as caught:
        PersistentWorkflowEngine.from_uuid(eng.uuid, store=store)
    assert caught.value.workflow == eng.uuid
    store.dispose()
