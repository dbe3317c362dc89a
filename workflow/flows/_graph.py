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
from ._layout import Block, Loop, Row, Seq
from ._shape import execution_order, kind_of, names_in

__all__ = ["GraphFormat", "build", "render"]

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
    "more": ("[", "]", "note"),
}

Exit = tuple[str, str]  # (node id, label of the edge leaving it)
Label = tuple[str, ...]  # the lines of a node's label

#: The characters a label keeps as they are, besides letters and digits.
_PLAIN = frozenset(" _-.,:/@+=!?*$~^")


class _Graph:
    """The nodes and edges of a flow, and how they nest (a :data:`~._layout.Block`).

    ``limit``: the most nodes drawn; the steps after them are only counted
    (``skipped``), each with its name in ``hidden``.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.nodes: list[tuple[str, Label, str]] = []  # (id, label, shape)
        self.edges: list[tuple[str, str, str]] = []  # (from, to, label)
        self.step_nodes: dict[str, str] = {}  # step name -> its node
        self.limit = limit
        self.skipped = 0
        self.hidden: set[str] = set()

    def node(self, label: Label, shape: str, step: str | None = None) -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append((node_id, label, shape))
        if step is not None:
            self.step_nodes[step] = node_id
        return node_id

    def connect(self, exits: list[Exit], target: str) -> None:
        for source, label in exits:
            self.edges.append((source, target, label))

    def full(self) -> bool:
        return self.limit is not None and len(self.nodes) >= self.limit

    def skip(self, step: Any) -> None:
        names = names_in([step])
        self.skipped += max(1, len(names))
        self.hidden.update(names)

    def steps(self, steps: list[Any], entries: list[Exit]) -> tuple[list[Exit], Block]:
        """Draw one list of steps after ``entries``; return the list's exits and its block."""
        if not any(isinstance(step, Mapping) and step.get("needs") for step in steps):
            drawn: list[Block] = []
            for step in steps:
                if self.full():
                    self.skip(step)
                    continue
                entries, block = self.step(step, entries)
                drawn.append(block)
            return entries, Seq(tuple(drawn))
        exits: dict[str, list[Exit]] = {}
        needed: set[str] = set()
        ranks: dict[str, int] = {}
        layers: list[list[Block]] = []
        for step in execution_order(steps):  # a DAG: what a step needs is drawn before it
            if self.full():
                self.skip(step)
                continue
            needs = [name for name in step.get("needs", []) if name in exits]
            needed.update(needs)
            start = [edge for name in needs for edge in exits[name]] or entries
            exits[step["name"]], block = self.step(step, start)
            rank = ranks[step["name"]] = 1 + max((ranks[name] for name in needs), default=-1)
            if rank == len(layers):
                layers.append([])
            layers[rank].append(block)
        last = [edge for name, edges in exits.items() if name not in needed for edge in edges]
        return last, Seq(tuple(Row(tuple(layer)) for layer in layers))

    def step(self, step: Mapping[str, Any], entries: list[Exit]) -> tuple[list[Exit], Block]:
        kind = kind_of(step)
        name = str(step["name"])
        if kind == "task":
            label: Label = (name, str(step["task"]))
            retry = step.get("retry")
            if isinstance(retry, Mapping):
                label = (*label, f"retry: {retry.get('attempts')} attempts")
            node = self.node(label, "task", name)
            self.connect(entries, node)
            return [(node, "")], node
        if kind in ("ask", "sleep", "receive"):
            node = self.node((name, _waiting(step)), "wait", name)
            self.connect(entries, node)
            return [(node, "")], node
        if kind == "if":
            node = self.node((f"{name}?",), "if", name)
            self.connect(entries, node)
            exits, then = self.steps(step["then"], [(node, "then")])
            if "else" in step:
                others, otherwise = self.steps(step["else"], [(node, "else")])
                return exits + others, Seq((node, Row((then, otherwise))))
            return [*exits, (node, "else")], Seq((node, Row((then, Seq(())))))
        if kind in ("while", "for_each"):
            what = f"for each {step['as']}" if kind == "for_each" else "while"
            node = self.node((name, what), "loop", name)
            self.connect(entries, node)
            body, inside = self.steps(step["do"], [(node, "do")])
            self.connect(body, node)
            return [(node, "done")], Loop(node, inside)
        if kind == "parallel":
            node = self.node((name,), "parallel", name)
            self.connect(entries, node)
            join = self.node((f"{name} joined",), "join")
            branches = []
            for branch in step["parallel"]:
                exits, block = self.steps(branch, [(node, "")])
                self.connect(exits, join)
                branches.append(block)
            return [(join, "")], Seq((node, Row(tuple(branches)), join))
        if kind == "halt":
            spec = step["halt"] if isinstance(step["halt"], Mapping) else {}
            action = spec.get("action")
            node = self.node((name, f"halt: {action}" if action else "halt"), "halt", name)
            self.connect(entries, node)
            return [(node, "resume")], node
        node = self.node((name, f"flow {step['flow']}"), "flow", name)
        self.connect(entries, node)
        return [(node, "")], node


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


def build(body: Mapping[str, Any], *, limit: int | None = None) -> tuple[_Graph, Block]:
    """Return the graph of a validated flow body and its layout block (``start`` ... ``end``).

    With a ``limit``, the steps after the first ``limit`` nodes are left out
    and one ``more`` node before ``end`` says how many.
    """
    graph = _Graph(limit)
    start = graph.node(("start",), "edge")
    exits, steps = graph.steps(body["steps"], [(start, "")])
    blocks: list[Block] = [start, steps]
    if graph.skipped:
        more = graph.node((f"\u2026 {graph.skipped} more steps",), "more")
        graph.connect(exits, more)
        exits = [(more, "")]
        blocks.append(more)
    end = graph.node(("end",), "edge")
    graph.connect(exits, end)
    return graph, Seq((*blocks, end))


def render(body: Mapping[str, Any], format: GraphFormat = "mermaid") -> str:
    """Return the diagram of a validated flow body, as Mermaid or DOT source."""
    if format not in ("mermaid", "dot"):
        raise WorkflowValueError(f"graph format must be 'mermaid' or 'dot', not {format!r}")
    graph, _ = build(body)
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
