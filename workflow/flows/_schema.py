"""The JSON Schema of flow definitions, shipped as ``workflow/flows/schema.json``."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["schema"]


@cache
def _text() -> str:
    return files(__package__).joinpath("schema.json").read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of flow definitions, for editors and linters.

    The schema checks shapes only; :func:`~workflow.flows.load_flow` checks
    everything it does and what a schema cannot (registered tasks, references,
    cycles), and names each error.

    .. versionadded:: 3.0
    """
    loaded: dict[str, Any] = json.loads(_text())
    return loaded
