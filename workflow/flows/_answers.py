"""The shape of an answer: JSON Schemas that a halt step's answer must match.

A halt step may declare ``schema``, the JSON Schema (draft 2020-12) of the
answer it expects. :func:`schema_problems` checks a schema when its flow is
validated; :func:`answer_problem` checks an answer against it before the
answer is recorded. Both import :mod:`jsonschema` (the ``schema`` extra) only
when a flow has a schema, so flows without one need nothing installed.

.. versionadded:: 3.0
"""

from __future__ import annotations

from typing import Any

from ..errors import WorkflowImportError
from ._limits import MAX_SCHEMA_VALUES, key_path

__all__ = ["INSTALL_HINT", "answer_problem", "answer_spec_problems", "schema_problems"]

#: How to install what checking a schema needs.
INSTALL_HINT = "pip install 'workflow-ng[schema]'"

#: The only dialect of JSON Schema an answer schema may name in ``$schema``.
DIALECT = "https://json-schema.org/draft/2020-12/schema"

_REFERENCE_KEYS = ("$ref", "$dynamicRef")


def _validator_class() -> Any:
    """Return jsonschema's draft 2020-12 validator class, or say what to install."""
    try:
        from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
    except ImportError as exc:
        raise WorkflowImportError(
            f"checking answers against a schema needs jsonschema: {INSTALL_HINT}"
        ) from exc
    return Draft202012Validator


def schema_problems(schema: object) -> list[tuple[str, str]]:
    """Return ``(json_path, message)`` for each reason ``schema`` cannot check answers.

    A schema is a JSON object (or ``true``/``false``) of at most
    :data:`~workflow.flows.MAX_SCHEMA_VALUES` values, valid for draft
    2020-12, whose references (``$ref``) point inside it (``#...``): an
    answer is never checked against anything fetched from elsewhere. The
    paths are relative to the schema (``$`` is the schema itself).

    :raises ~workflow.errors.WorkflowImportError: when jsonschema is not
        installed, naming the extra.
    """
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [("$", f"a schema is a JSON object (or true or false), not {_kind(schema)}")]
    problems: list[tuple[str, str]] = []
    count = 0
    stack: list[tuple[object, str]] = [(schema, "$")]
    while stack:
        value, path = stack.pop()
        count += 1
        if count > MAX_SCHEMA_VALUES:
            return [("$", f"a schema may hold at most {MAX_SCHEMA_VALUES} values")]
        if isinstance(value, dict):
            for key in _REFERENCE_KEYS:
                target = value.get(key)
                if isinstance(target, str) and not target.startswith("#"):
                    message = f"{key} {target!r} points outside the schema; only '#...' may"
                    problems.append((key_path(path, key), message))
            stack.extend((child, key_path(path, key)) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(value))
    dialect = schema.get("$schema", DIALECT)
    if dialect != DIALECT:
        problems.append(
            (key_path("$", "$schema"), f"answers are checked with draft 2020-12 ({DIALECT!r})")
        )
    if problems:
        return problems
    validator = _validator_class()
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

    try:
        validator.check_schema(schema)
    except SchemaError as exc:
        return [(_path(exc.absolute_path), f"not a valid JSON Schema: {exc.message}")]
    try:  # a trial answer: a reference to nowhere, or one going round in circles, fails now
        for _ in validator(schema).iter_errors(None):
            pass
    except Exception as exc:
        return [("$", f"the schema cannot check answers: {type(exc).__name__}: {exc}")]
    return []


def answer_spec_problems(spec: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """Return ``(json_path, message)`` for the ``schema`` and ``default`` of a halt object.

    The schema must be one :func:`schema_problems` accepts and the default,
    when both are there, must match it. Without jsonschema installed, a
    schema is an error that names the extra to install.

    :param where: the JSON path of the halt object.
    """
    if "schema" not in spec:
        return []
    at = key_path(where, "schema")
    try:
        problems = schema_problems(spec["schema"])
    except ImportError:
        return [(at, f"a schema needs the jsonschema package: {INSTALL_HINT}")]
    if problems:
        return [(at + path[1:], message) for path, message in problems]
    if "default" in spec:
        problem = answer_problem(spec["schema"], spec["default"])
        if problem is not None:
            path, message = problem
            where_default = key_path(where, "default") + path[1:]
            return [(where_default, f"the default does not match the schema: {message}")]
    return []


def answer_problem(schema: object, answer: Any) -> tuple[str, str] | None:
    """Return ``(json_path, message)``: why ``answer`` does not match ``schema``; or ``None``.

    ``schema`` is one that :func:`schema_problems` accepted. When several
    parts of the answer are wrong, the message names the most relevant one
    (jsonschema's ``best_match``), at its path in the answer: ``$`` is the
    answer itself, ``$.note`` its key ``note``.

    :raises ~workflow.errors.WorkflowImportError: when jsonschema is not
        installed, naming the extra.
    """
    validator_class = _validator_class()
    from jsonschema.exceptions import best_match

    try:
        error = best_match(validator_class(schema).iter_errors(answer))
    except Exception as exc:  # a reference the schema check could not see fail
        return "$", f"the schema cannot check it: {type(exc).__name__}: {exc}"
    if error is None:
        return None
    return _path(error.absolute_path), error.message


def _path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else key_path(path, part)
    return path


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names = {list: "a list", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")
