"""The answer form of an ``ask`` step, generated from the step's JSON schema.

An object schema whose properties are strings, numbers, integers or
booleans becomes one input per property (a select for an ``enum``); any
other schema becomes one JSON text area. What a person submits is read
back into the data the schema checks (the runtime checks it again: the form
only helps).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import WorkflowValueError

__all__ = ["Field", "form_fields", "read_form"]

_SIMPLE = ("string", "integer", "number", "boolean")
#: The name of the text area of a schema the form cannot break into fields.
JSON_FIELD = "data_json"


@dataclass(frozen=True)
class Field:
    """One input of the form."""

    name: str
    kind: str
    label: str
    required: bool = False
    choices: list[Any] = field(default_factory=list)
    help: str = ""

    @property
    def input_name(self) -> str:
        """The form's name of the input (``field.NAME``, or the JSON text area)."""
        return JSON_FIELD if self.kind == "json" else f"field.{self.name}"


def form_fields(schema: Any) -> list[Field]:
    """Return the inputs that let a person give data ``schema`` accepts (``[]``: no data)."""
    if schema is None:
        return []
    if not isinstance(schema, Mapping):
        return [Field("data", "json", "Answer (JSON)", required=True)]
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, Mapping):
        return [Field("data", "json", "Answer (JSON)", required=True)]
    required = set(schema.get("required") or [])
    fields = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, Mapping) else {}
        kind = spec.get("type")
        choices = spec.get("enum")
        if kind not in _SIMPLE and not isinstance(choices, list):
            return [Field("data", "json", "Answer (JSON)", required=True)]
        fields.append(
            Field(
                name=str(name),
                kind="choice" if isinstance(choices, list) else str(kind),
                label=str(spec.get("title") or name),
                required=name in required,
                choices=list(choices) if isinstance(choices, list) else [],
                help=str(spec.get("description") or ""),
            )
        )
    return fields


def read_form(schema: Any, form: Mapping[str, str]) -> Any:
    """Return the data of a submitted form.

    :raises ValueError: naming the field whose text is not of its type.
    """
    fields = form_fields(schema)
    if not fields:
        return None
    if fields[0].kind == "json":
        given = form.get(JSON_FIELD, "").strip()
        try:
            return json.loads(given) if given else None
        except ValueError as exc:
            raise WorkflowValueError(f"the answer is not valid JSON: {exc}") from None
    data: dict[str, Any] = {}
    for item in fields:
        text = form.get(item.input_name)
        if item.kind == "boolean":
            data[item.name] = text is not None
            continue
        if text is None or text == "":
            continue
        if item.kind == "choice":
            matching = [choice for choice in item.choices if str(choice) == text]
            data[item.name] = matching[0] if matching else text
        elif item.kind == "integer":
            try:
                data[item.name] = int(text)
            except ValueError:
                raise WorkflowValueError(f"{item.label}: {text!r} is not a whole number") from None
        elif item.kind == "number":
            try:
                data[item.name] = float(text)
            except ValueError:
                raise WorkflowValueError(f"{item.label}: {text!r} is not a number") from None
        else:
            data[item.name] = text
    return data
