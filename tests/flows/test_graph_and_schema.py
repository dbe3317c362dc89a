"""Diagrams of flows, and the JSON Schema shipped with the package."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from workflow.flows import TaskRegistry, load_flow, schema

from .test_validation import VALID

SMALL = {
    "name": 'say "hi"',
    "steps": [
        {"name": "fetch", "task": "echo"},
        {"name": "ok", "if": "@fetch.ok", "then": [{"name": "keep", "task": "echo"}]},
        {"name": "ask", "halt": {"action": "review"}},
    ],
}


def test_mermaid_draws_every_step_and_the_branches(registry: TaskRegistry) -> None:
    text = load_flow(SMALL, registry=registry).graph()
    assert text == (
        "flowchart TD\n"
        '    n0(["start"])\n'
        '    n1["fetch<br/>echo"]\n'
        '    n2{"ok?"}\n'
        '    n3["keep<br/>echo"]\n'
        '    n4>"ask<br/>halt: review"]\n'
        '    n5(["end"])\n'
        "    n0 --> n1\n"
        "    n1 --> n2\n"
        "    n2 -->|then| n3\n"
        "    n3 --> n4\n"
        "    n2 -->|else| n4\n"
        "    n4 -->|resume| n5\n"
    )


def test_dot_escapes_names_and_labels_edges(registry: TaskRegistry) -> None:
    text = load_flow(SMALL, registry=registry).graph("dot")
    assert text.splitlines()[:3] == [
        'digraph "say &#34;hi&#34;" {',
        "    rankdir=TB;",
        '    n0 [label="start", shape=oval];',
    ]
    assert '    n1 [label="fetch\\necho", shape=box];' in text
    assert '    n2 -> n3 [label="then"];' in text
    assert text.endswith("}\n")


def test_loops_parallel_dags_and_calls_are_drawn(registry: TaskRegistry) -> None:
    body = {
        "name": "all",
        "steps": [
            {"name": "each", "for_each": [1], "as": "x", "do": [{"name": "a", "task": "echo"}]},
            {
                "name": "split",
                "parallel": [[{"name": "b", "task": "echo"}], [{"name": "c", "task": "echo"}]],
            },
            {"name": "d", "task": "echo", "needs": ["e"]},
            {"name": "e", "task": "echo"},
            {"name": "sub", "flow": "child"},
        ],
    }
    child = {"name": "child", "steps": [{"name": "k", "task": "echo"}]}
    text = load_flow(body, registry=registry, definitions=lambda n, v: child).graph()
    assert '{{"each<br/>for each x"}}' in text
    assert '[/"split"\\]' in text
    assert '[\\"split joined"/]' in text
    assert '[["sub<br/>flow child"]]' in text
    lines = text.splitlines()
    node = {
        line.split('"')[1].split("<br/>")[0]: line.split('"')[0].strip().rstrip("([{/\\>")
        for line in lines
        if '"' in line
    }
    assert f"    {node['a']} --> {node['each']}" in lines  # the loop goes back
    # A list with needs is drawn as its dependencies: what needs nothing starts it.
    assert f"    {node['start']} --> {node['split']}" in lines
    assert f"    {node['e']} --> {node['d']}" in lines
    assert f"    {node['each']} -->|done| {node['end']}" in lines
    assert f"    {node['d']} --> {node['end']}" in lines


def test_an_unknown_graph_format_is_refused(registry: TaskRegistry) -> None:
    with pytest.raises(ValueError, match="'svg'"):
        load_flow(SMALL, registry=registry).graph("svg")  # type: ignore[arg-type]


def test_the_shipped_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema() == schema()
    assert schema() is not schema()


@pytest.mark.parametrize(
    "body",
    [
        VALID,
        SMALL,
        {
            "procedures": [
                {"name": "step1", "mod": "common.Kt", "method": "prt", "params": {"msg": "hello"}}
            ]
        },
    ],
)
def test_valid_flows_match_the_schema(body: dict[str, Any]) -> None:
    jsonschema.validate(body, schema())


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "steps": []},
        {"name": "x", "steps": [{"name": "a"}]},
        {"name": "x", "steps": [{"name": "a", "task": "t", "then": []}]},
        {
            "name": "x",
            "steps": [{"name": "a", "if": {"==": [1]}, "then": [{"name": "b", "task": "t"}]}],
        },
        {"procedures": [{"name": "s", "mod": "m"}]},
    ],
)
def test_wrong_shapes_fail_the_schema_too(body: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema())
