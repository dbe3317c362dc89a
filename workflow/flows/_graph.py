"""Diagrams of a flow: Mermaid flowcharts and Graphviz DOT.

Node ids are generated (``n0``, ``n1``, ...); the text of a flow (names of
steps, tasks and called flows, halt actions) appears only inside quoted
labels, where every character but letters, digits and a few harmless
punctuation marks is written as a character code: ``#34;`` in Mermaid,
``&#34;`` in DOT. No name can end a label or a line, or put markup into the
page that shows the diagram, and the diagram still reads as the names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..errors import WorkflowValueError
from ._shape import execution_order, kind_of

__all__ = ["GraphFormat", "render"]

GraphFormat = Literal["mermaid", "dot"]

#: Node shapes per kind: (Mermaid opening, Mermaid closing, DOT shape).
SHAPES: dict[str, tuple[str, str, str]] = {
    "edge": ("([", "])", "oval"),
    "task": ("[", "]", "box"),
    "if": ("{", "}", "diamond"),
    "loop": ("{{", "}}", "hexagon"),
    "parallel": ("[/", "\\]", "trapezium"),
    "join": ("[\\", "/]", "invtrapezium"),
    "halt": (">", "]", "octagon"),
    "flow": ("[[", "]]", "component"),
    "wait": ("[/", "/]", "parallelogram"),
}

Exit = tuple[str, str]  # (node id, label of the edge leaving it)
Label = tuple[str, ...]  # the lines of a node's label

#: The characters a label keeps as they are, besides letters and digits.
_PLAIN = frozenset(" _-.,:/@+=!?*$~^")


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[tuple[str, Label, str]] = []  # (id, label, shape)
        self.edges: list[tuple[str, str, str]] = []  # (from, to, label)

    def node(self, label: Label, shape: str) -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append((node_id, label, shape))
        return node_id

    def connect(self, exits: list[Exit], target: str) -> None:
        for source, label in exits:
            self.edges.append((source, target, label))

    def steps(self, steps: list[Any], entries: list[Exit]) -> list[Exit]:
        """Draw one list of steps after ``entries``; return the list's exits."""
        if not any(isinstance(step, Mapping) and step.get("needs") for step in steps):
            for step in steps:
                entries = self.step(step, entries)
            return entries
        exits: dict[str, list[Exit]] = {}
        needed: set[str] = set()
        for step in execution_order(steps):  # a DAG: what a step needs is drawn before it
            needs = [name for name in step.get("needs", []) if name in exits]
            needed.update(needs)
            start = [edge for name in needs for edge in exits[name]] or entries
            exits[step["name"]] = self.step(step, start)
        return [edge for name, edges in exits.items() if name not in needed for edge in edges]

    def step(self, step: Mapping[str, Any], entries: list[Exit]) -> list[Exit]:
        kind = kind_of(step)
        name = str(step["name"])
        if kind == "task":
            label: Label = (name, str(step["task"]))
            retry = step.get("retry")
            if isinstance(retry, Mapping):
                label = (*label, f"retry: {retry.get('attempts')} attempts")
            node = self.node(label, "task")
            self.connect(entries, node)
            return [(node, "")]
        if kind in ("ask", "sleep", "receive"):
            node = self.node((name, _waiting(step)), "wait")
            self.connect(entries, node)
            return [(node, "")]
        if kind == "if":
            node = self.node((f"{name}?",), "if")
            self.connect(entries, node)
            exits = self.steps(step["then"], [(node, "then")])
            if "else" in step:
                return exits + self.steps(step["else"], [(node, "else")])
            return [*exits, (node, "else")]
        if kind in ("while", "for_each"):
            what = f"for each {step['as']}" if kind == "for_each" else "while"
            node = self.node((name, what), "loop")
            self.connect(entries, node)
            body = self.steps(step["do"], [(node, "do")])
            self.connect(body, node)
            return [(node, "done")]
        if kind == "parallel":
            node = self.node((name,), "parallel")
            self.connect(entries, node)
            join = self.node((f"{name} joined",), "join")
            for branch in step["parallel"]:
                self.connect(self.steps(branch, [(node, "")]), join)
            return [(join, "")]
        if kind == "halt":
            spec = step["halt"] if isinstance(step["halt"], Mapping) else {}
            action = spec.get("action")
            node = self.node((name, f"halt: {action}" if action else "halt"), "halt")
            self.connect(entries, node)
            return [(node, "resume")]
        node = self.node((name, f"flow {step['flow']}"), "flow")
        self.connect(entries, node)
        return [(node, "")]


def _waiting(step: Mapping[str, Any]) -> str:
    """Return what a waiting step waits for, in a few words."""
    if "ask" in step:
        spec = step["ask"]
        approvers = spec.get("approvers")
        quorum = spec.get("quorum", 1)
        if approvers is None:
            return "ask anyone"
        names = [str(name) for name in approvers]
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return f"ask {quorum} of {', '.join(names[:3])}{more}"
    if "sleep" in step:
        spec = step["sleep"]
        if isinstance(spec, Mapping):
            return f"sleep until {spec['until']}" if "until" in spec else f"sleep {spec['for']}"
        return f"sleep {spec}"
    timeout = f" for {step['timeout']}" if "timeout" in step else ""
    return f"receive {step['receive']}{timeout}"


def render(body: Mapping[str, Any], format: GraphFormat = "mermaid") -> str:
    """Return the diagram of a validated flow body, as Mermaid or DOT source."""
    if format not in ("mermaid", "dot"):
        raise WorkflowValueError(f"graph format must be 'mermaid' or 'dot', not {format!r}")
    graph = _Graph()
    start = graph.node(("start",), "edge")
    exits = graph.steps(body["steps"], [(start, "")])
    end = graph.node(("end",), "edge")
    graph.connect(exits, end)
    if format == "mermaid":
        return _mermaid(graph)
    return _dot(graph, str(body["name"]))


def _coded(text: str, code: str) -> str:
    """Return ``text`` with each character outside :data:`_PLAIN` as ``code % ord(char)``."""
    return "".join(
        char if (char.isalnum() and char.isprintable()) or char in _PLAIN else code % ord(char)
        for char in text
    )


def _mermaid(graph: _Graph) -> str:
    lines = ["flowchart TD"]
    for node_id, label, shape in graph.nodes:
        opening, closing, _ = SHAPES[shape]
        text = "<br/>".join(_coded(line, "#%d;") for line in label)
        lines.append(f'    {node_id}{opening}"{text}"{closing}')
    for source, target, edge in graph.edges:
        arrow = f"-->|{edge}|" if edge else "-->"
        lines.append(f"    {source} {arrow} {target}")
    return "\n".join(lines) + "\n"


def _dot_text(lines: Label) -> str:
    return '"' + "\\n".join(_coded(line, "&#%d;") for line in lines) + '"'


def _dot(graph: _Graph, name: str) -> str:
    lines = [f"digraph {_dot_text((name,))} {{", "    rankdir=TB;"]
    for node_id, label, shape in graph.nodes:
        lines.append(f"    {node_id} [label={_dot_text(label)}, shape={SHAPES[shape][2]}];")
    for source, target, edge in graph.edges:
        extra = f" [label={_dot_text((edge,))}]" if edge else ""
        lines.append(f"    {source} -> {target}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"
