"""``workflow validate``, ``run`` and ``graph`` on hostile flow files: exit 2, or inert output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workflow.cli import ExitCode
from workflow.flows import MAX_DOCUMENT_DEPTH, MAX_NESTING, MAX_VALUE_DEPTH

from ..flows.test_limits import ALIAS_BOMB


def nested(depth: int) -> dict[str, Any]:
    step: dict[str, Any] = {"name": "s1", "task": "cli_double"}
    for level in range(2, depth + 1):
        step = {"name": f"s{level}", "if": True, "then": [step]}
    return {"name": "deep", "steps": [step]}


def params(depth: int) -> str:
    """The text of a flow whose parameters nest ``depth`` levels (too deep for json.dumps)."""
    value = '{"a": ' * depth + "1" + "}" * depth
    return f'{{"name": "p", "steps": [{{"name": "s", "task": "cli_double", "params": {value}}}]}}'


def chain(length: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"name": f"s{i}", "task": "cli_double", "needs": [f"s{i + 1}"]} for i in range(length - 1)
    ]
    steps.append({"name": f"s{length - 1}", "task": "cli_double"})
    return {"name": "chain", "steps": steps}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (nested(MAX_NESTING + 1), f"steps are nested more than {MAX_NESTING} levels deep"),
        (nested(300), f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"),
        (params(600), f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run", "graph"])
def test_flows_past_the_limits_exit_2_naming_the_problem(
    cli: Any, body: dict[str, Any] | str, message: str, command: str
) -> None:
    Path("hostile.json").write_text(body if isinstance(body, str) else json.dumps(body))
    result = cli(command, "hostile.json")
    assert result.code == ExitCode.USAGE
    assert message in result.out + result.err
    assert "Traceback" not in result.out + result.err


@pytest.mark.parametrize("kind", ["if", "parallel", "for_each"])
def test_a_flow_at_every_limit_validates_runs_and_draws(cli: Any, kind: str) -> None:
    value: Any = "@_input.n"
    for _ in range(MAX_VALUE_DEPTH - 1):
        value = [value]
    step: dict[str, Any] = {"name": "s1", "task": "cli_double", "params": {"deep": value}}
    for level in range(2, MAX_NESTING + 1):
        name = f"s{level}"
        if kind == "if":
            step = {"name": name, "if": True, "then": [step]}
        elif kind == "parallel":
            step = {"name": name, "parallel": [[step]]}
        else:
            step = {"name": name, "for_each": [1], "as": f"v{level}", "do": [step]}
    Path("limits.json").write_text(json.dumps({"name": "limits", "steps": [step]}))
    assert cli("validate", "limits.json").code == ExitCode.OK
    assert cli("graph", "limits.json", "--format", "dot").code == ExitCode.OK
    assert cli("run", "limits.json", "--tokens", "in.jsonl").code == ExitCode.OK


def test_a_long_needs_chain_validates_runs_and_draws(cli: Any) -> None:
    Path("chain.json").write_text(json.dumps(chain(520)))
    assert cli("validate", "chain.json").code == ExitCode.OK
    assert cli("graph", "chain.json").out.count(" --> ") == 521
    assert cli("run", "chain.json").code == ExitCode.OK


def test_a_yaml_alias_bomb_exits_2_at_once(cli: Any) -> None:
    pytest.importorskip("yaml")
    Path("bomb.yaml").write_text(ALIAS_BOMB)
    for command in ("validate", "run", "graph"):
        result = cli(command, "bomb.yaml")
        assert result.code == ExitCode.USAGE
        assert "flow files cannot use aliases (*name)" in result.out + result.err


@pytest.mark.parametrize("format", ["mermaid", "dot"])
def test_graph_writes_hostile_names_inert(cli: Any, format: str) -> None:
    hostile = '<script>alert("x")</script>\n"]--> n0'
    body = {
        "name": hostile,
        "steps": [
            {"name": "calc", "task": "cli_double"},
            {"name": "ask", "halt": {"message": hostile, "action": hostile}},
        ],
    }
    Path("hostile.json").write_text(json.dumps(body))
    result = cli("graph", "hostile.json", "--format", format)
    assert result.code == ExitCode.OK
    assert "<script" not in result.out
    assert "alert" in result.out
    assert len(result.out.splitlines()) == (8 if format == "mermaid" else 10)
