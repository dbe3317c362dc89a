"""Diagrams of flows whose names and labels are hostile: they come out inert."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from workflow.flows import Flow, TaskRegistry, load_flow

#: Text that breaks out of a label, a line or a web page if it is written as it is.
HOSTILE = (
    "<script>alert(\"x\")</script> 'q' [b] {c} (d) |e| `f` #quot; &amp; %% ; \\ "
    "line\nbreak\r\t --> n0\u2028end"
)

#: One node line of each format: a generated id, a shape and a label with no quote in it.
MERMAID_OPEN = r"(\(\[|\[|\{|\{\{|\[/|\[\\|>|\[\[)"
MERMAID_CLOSE = r"(\]\)|\]|\}|\}\}|\\\]|/\]|\]\])"
MERMAID_NODE = re.compile(rf'    n\d+{MERMAID_OPEN}"(?:[^"<>&\n]|<br/>)*"{MERMAID_CLOSE}')
MERMAID_EDGE = re.compile(r"    n\d+ -->(\|\w+\|)? n\d+")
DOT_NODE = re.compile(r'    n\d+ \[label="(?:[^"\\<>&\n]|\\n|&#\d+;)*", shape=\w+\];')
DOT_EDGE = re.compile(r'    n\d+ -> n\d+( \[label="\w+"\])?;')


@pytest.fixture
def hostile_flow(registry: TaskRegistry) -> Flow:
    """A flow named after ``HOSTILE``, whose task, halt action and called flow are named so too."""
    registry.register(HOSTILE, lambda context, params: {})
    body = {
        "name": f"top {HOSTILE}",
        "steps": [
            {"name": "work", "task": HOSTILE},
            {"name": "ask", "halt": {"message": HOSTILE, "action": HOSTILE}},
            {"name": "sub", "flow": HOSTILE},
        ],
    }
    child = {"name": "child", "steps": [{"name": "k", "task": "echo"}]}
    return load_flow(body, registry=registry, definitions=lambda name, version: child)


def mermaid_unescape(text: str) -> str:
    return re.sub(r"#(\d+);", lambda match: chr(int(match.group(1))), text)


def test_mermaid_lines_keep_their_shape_whatever_the_names(hostile_flow: Flow) -> None:
    lines = hostile_flow.graph("mermaid").splitlines()
    assert lines[0] == "flowchart TD"
    nodes = [line for line in lines[1:] if MERMAID_NODE.fullmatch(line)]
    edges = [line for line in lines[1:] if MERMAID_EDGE.fullmatch(line)]
    assert len(nodes) == 5  # start, the three steps, end
    assert len(nodes) + len(edges) == len(lines) - 1
    for forbidden in ("<script", '"x"', "-->  n0", "\r", "`", "[b]"):
        assert forbidden not in "\n".join(nodes)


def test_mermaid_labels_read_back_as_the_names(hostile_flow: Flow) -> None:
    labels = [line.split('"')[1] for line in hostile_flow.graph("mermaid").splitlines()[1:6]]
    task_label = [mermaid_unescape(part) for part in labels[1].split("<br/>")]
    assert task_label == ["work", HOSTILE]
    assert mermaid_unescape(labels[2].split("<br/>")[1]) == f"halt: {HOSTILE}"
    assert mermaid_unescape(labels[3].split("<br/>")[1]) == f"flow {HOSTILE}"


def test_dot_lines_keep_their_shape_whatever_the_names(hostile_flow: Flow) -> None:
    lines = hostile_flow.graph("dot").splitlines()
    assert re.fullmatch(r'digraph "(?:[^"\\<>&\n]|&#\d+;)*" \{', lines[0])
    assert lines[1] == "    rankdir=TB;"
    assert lines[-1] == "}"
    body = lines[2:-1]
    nodes = [line for line in body if DOT_NODE.fullmatch(line)]
    edges = [line for line in body if DOT_EDGE.fullmatch(line)]
    assert (len(nodes), len(nodes) + len(edges)) == (5, len(body))


def test_dot_labels_read_back_as_the_names(hostile_flow: Flow) -> None:
    lines = hostile_flow.graph("dot").splitlines()
    title = lines[0].split('"')[1]
    assert html.unescape(title) == f"top {HOSTILE}"
    task = lines[3].split('"')[1].split("\\n")
    assert [html.unescape(part) for part in task] == ["work", HOSTILE]


@pytest.mark.parametrize("format", ["mermaid", "dot"])
def test_plain_names_are_written_as_they_are(registry: TaskRegistry, format: Any) -> None:
    registry.register("images.resize-2x", lambda context, params: {})
    body = {"name": "plain", "steps": [{"name": "a_1", "task": "images.resize-2x"}]}
    text = load_flow(body, registry=registry).graph(format)
    assert "a_1" in text
    assert "images.resize-2x" in text
