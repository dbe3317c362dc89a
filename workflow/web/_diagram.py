"""The diagram of a flow run: its flow's graph, each token marked where it is.

The graph is the one ``workflow graph`` draws (:func:`workflow.flows._graph.build`),
laid out by :func:`workflow.flows._layout.layout` and drawn as inline SVG
(:mod:`._svg`). A run of Python callbacks has no flow graph; its page says
so. A stored body the graph cannot be drawn from gets today's list of steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from workflow.flows._graph import build
from workflow.flows._layout import layout

from ._svg import STATES, svg

__all__ = ["MAX_NODES", "Diagram", "flow_diagram", "no_diagram", "token_marks"]

#: The most nodes a diagram draws; the steps after them are counted in one node.
MAX_NODES = 150
#: The most tokens the diagram's ``aria-label`` names.
SUMMARY_TOKENS = 10

#: The keys of a flow step that say what kind of step it is, in the order they are looked for.
_KINDS = ("ask", "sleep", "receive", "halt", "task", "call", "if", "switch", "for", "parallel")

Mark = tuple[int, str]  # (token position, state)


@dataclass
class Diagram:
    """What a run's page shows of its flow: the SVG, or why there is none and a list of steps."""

    #: The SVG element, or ``None`` when there is no graph.
    svg: Markup | None = None
    #: Why there is no graph, or what it leaves out, in a sentence.
    note: str | None = None
    #: The flow's steps with their tokens (when the graph could not be drawn).
    steps: list[dict[str, Any]] = field(default_factory=list)
    #: How many tokens are in each state, for the legend: ``[(state, count)]``.
    legend: list[tuple[str, int]] = field(default_factory=list)
    #: The tokens the diagram cannot place, each in a sentence.
    elsewhere: list[str] = field(default_factory=list)


@dataclass
class Marks:
    """Where a run's tokens are: at named steps, at the start, at the end, or unknown."""

    steps: dict[str, list[Mark]] = field(default_factory=dict)
    start: list[Mark] = field(default_factory=list)
    end: list[Mark] = field(default_factory=list)
    elsewhere: list[tuple[int, str, str | None]] = field(default_factory=list)

    def count(self) -> list[tuple[str, int]]:
        every = [*self.start, *self.end, *(m for ms in self.steps.values() for m in ms)]
        every += [(position, state) for position, state, _ in self.elsewhere]
        return [(s, n) for s in STATES if (n := sum(1 for _, st in every if st == s))]


def token_marks(run: Mapping[str, Any]) -> Marks:
    """Return where the tokens of ``run`` (as the API shows it) are.

    A token is at the step it waits at, halted at or failed in; a new one at
    the start, a completed one at the end. A running token, or one halted
    or failed outside any named step, is ``elsewhere``.
    """
    marks = Marks()
    waiting = {
        int(wait["token"]): str(wait["step"])
        for wait in run.get("waits", [])
        if wait.get("phase") == "waiting"
    }
    for token in run.get("tokens", []):
        position, status = int(token["position"]), str(token.get("status"))
        halted = token.get("halted") if isinstance(token.get("halted"), dict) else {}
        if position in waiting:
            marks.steps.setdefault(waiting[position], []).append((position, "waiting"))
        elif status in ("HALTED", "WAITING"):
            state = "waiting" if status == "WAITING" else "halted"
            if halted.get("step"):
                marks.steps.setdefault(str(halted["step"]), []).append((position, state))
            else:
                marks.elsewhere.append((position, state, halted.get("message")))
        elif status == "ERROR":
            if token.get("step"):
                marks.steps.setdefault(str(token["step"]), []).append((position, "failed"))
            else:
                marks.elsewhere.append((position, "failed", token.get("error")))
        elif token.get("branch_of") and status in ("COMPLETED", "INITIAL"):
            continue  # a parallel step's branch that has not started or has joined
        elif status == "COMPLETED":
            marks.end.append((position, "completed"))
        elif status == "INITIAL":
            marks.start.append((position, "new"))
        else:
            marks.elsewhere.append((position, "running", None))
    return marks


def _elsewhere(marks: Marks) -> list[str]:
    said = []
    for position, state, why in marks.elsewhere:
        if state == "running":
            said.append(f"Token {position} is running: its step shows once it stops.")
        else:
            said.append(
                f"Token {position} {state} outside a flow step" + (f": {why}" if why else ".")
            )
    return said


def _steps(steps: Any, marks: dict[str, list[Mark]]) -> list[dict[str, Any]]:
    """The flow's steps as a list, nested steps included (when there is no graph)."""
    if not isinstance(steps, list):
        return []
    shown = []
    for step in steps:
        if not isinstance(step, dict):
            continue
        name = str(step.get("name", "?"))
        nested = []
        for key, value in step.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                nested.append({"branch": str(key), "steps": _steps(value, marks)})
        kind = next((key for key in _KINDS if key in step), "step")
        shown.append({"name": name, "kind": kind, "tokens": marks.get(name, []), "nested": nested})
    return shown


def no_diagram(run: Mapping[str, Any], why: str) -> Diagram:
    """Return the diagram of a run that has no flow graph: ``why``, and the legend."""
    marks = token_marks(run)
    return Diagram(note=why, legend=marks.count(), elsewhere=_elsewhere(marks))


def flow_diagram(body: Mapping[str, Any], run: Mapping[str, Any]) -> Diagram:
    """Return the diagram of the flow ``body`` with the tokens of ``run`` marked.

    At most :data:`MAX_NODES` nodes are drawn; the rest of the flow is one
    node that says how many steps it holds (and carries their tokens).
    """
    marks = token_marks(run)
    name = str(body.get("name", "?"))
    try:
        graph, block = build(body, limit=MAX_NODES)
        drawn = layout(block, graph.edges)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        why = f"The graph of flow {name} could not be drawn ({type(exc).__name__}: {exc})"
        return Diagram(
            note=f"{why}; its steps are listed instead.",
            steps=_steps(body.get("steps"), marks.steps),
            legend=marks.count(),
            elsewhere=_elsewhere(marks),
        )
    start, end = graph.nodes[0][0], graph.nodes[-1][0]
    more = graph.nodes[-2][0] if graph.skipped else None
    at: dict[str, list[Mark]] = {start: list(marks.start), end: list(marks.end)}
    lost = []
    for step, found in marks.steps.items():
        node = graph.step_nodes.get(step) or (more if step in graph.hidden else None)
        if node is None:
            lost += [
                (position, state, f"at step {step!r}, which the flow has not")
                for position, state in found
            ]
        else:
            at.setdefault(node, []).extend(found)
    marks.elsewhere += lost
    steps = len(graph.step_nodes) + graph.skipped
    placed = [
        f"token {position} {state} at {label[0]}"
        for node_id, label, _ in graph.nodes
        for position, state in at.get(node_id, [])
    ]
    if len(placed) > SUMMARY_TOKENS:
        placed[SUMMARY_TOKENS:] = [f"and {len(placed) - SUMMARY_TOKENS} more tokens"]
    summary = f"Diagram of flow {name}, {steps} steps" + (
        f": {', '.join(placed)}" if placed else ""
    )
    note = None
    if graph.skipped:
        note = f"The diagram shows the first {MAX_NODES} nodes; {graph.skipped} more steps follow."
    return Diagram(
        svg=Markup(svg(drawn, graph.nodes, at, summary=summary)),
        note=note,
        legend=marks.count(),
        elsewhere=_elsewhere(marks),
    )
