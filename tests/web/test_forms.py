"""The answer form made from a step's JSON schema, and the data read back from it."""

from __future__ import annotations

import pytest

from workflow.web._forms import JSON_FIELD, form_fields, read_form

SCHEMA = {
    "type": "object",
    "required": ["amount"],
    "properties": {
        "amount": {"type": "number", "title": "Amount (EUR)"},
        "count": {"type": "integer"},
        "urgent": {"type": "boolean", "description": "call the customer"},
        "channel": {"enum": ["mail", "phone", 3]},
        "note": {"type": "string"},
    },
}


def test_an_object_schema_gives_one_input_per_property() -> None:
    fields = form_fields(SCHEMA)
    assert [(f.name, f.kind, f.required) for f in fields] == [
        ("amount", "number", True),
        ("count", "integer", False),
        ("urgent", "boolean", False),
        ("channel", "choice", False),
        ("note", "string", False),
    ]
    assert fields[0].label == "Amount (EUR)"
    assert fields[2].help == "call the customer"
    assert fields[3].choices == ["mail", "phone", 3]
    assert fields[0].input_name == "field.amount"


def test_the_form_is_read_back_into_typed_data() -> None:
    form = {"field.amount": "12.5", "field.count": "3", "field.urgent": "on", "field.channel": "3"}
    assert read_form(SCHEMA, form) == {"amount": 12.5, "count": 3, "urgent": True, "channel": 3}
    assert read_form(SCHEMA, {"field.note": "hi"}) == {"urgent": False, "note": "hi"}
    with pytest.raises(ValueError, match="count: 'x' is not a whole number"):
        read_form(SCHEMA, {"field.count": "x"})
    with pytest.raises(ValueError, match=r"Amount \(EUR\): 'y' is not a number"):
        read_form(SCHEMA, {"field.amount": "y"})


def test_other_schemas_take_json_and_no_schema_takes_no_data() -> None:
    nested = {"type": "object", "properties": {"lines": {"type": "array"}}}
    for schema in (nested, {"type": "array"}, True):
        [field] = form_fields(schema)
        assert (field.kind, field.input_name) == ("json", JSON_FIELD)
    assert read_form(nested, {JSON_FIELD: '{"lines": [1]}'}) == {"lines": [1]}
    assert read_form(nested, {JSON_FIELD: " "}) is None
    with pytest.raises(ValueError, match="the answer is not valid JSON"):
        read_form(nested, {JSON_FIELD: "{"})
    assert form_fields(None) == []
    assert read_form(None, {"field.x": "1"}) is None
