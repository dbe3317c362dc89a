"""The layout of a flow's diagram: boxes apart, edges that join two nodes and cross none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow.flows import TaskRegistry, load_flow
from workflow.flows._graph import build
from workflow.flows._layout import Box, Layout, layout

#: A flow with every kind of step, nested: if with and without else, loops, parallel, waits.
EVERY_KIND: dict[str, Any] = {
    "name": "every-kind",
    "steps": [
        {"name": "fetch", "task": "echo"},
        {
            "name": "check",
            "if": "@fetch.ok",
            "then": [
                {"name": "approve", "ask": {"message": "ok?", "approvers": ["alice"]}},
                {"name": "pay", "task": "echo", "retry": {"attempts": 3, "backoff": "PT1S"}},
            ],
        },
        {
            "name": "each",
            "for_each": "@fetch.items",
            "as": "item",
            "do": [{"name": "work", "task": "echo"}, {"name": "rest", "sleep": "PT1H"}],
        },
        {
            "name": "fan",
            "parallel": [
                [{"name": "a", "task": "echo"}],
                [
                    {"name": "b", "task": "echo"},
                    {
                        "name": "again",
                        "while": "@b.more",
                        "max_iterations": 3,
                        "do": [
                            {
                                "name": "which",
                                "if": "@b.x",
                                "then": [{"name": "left", "task": "echo"}],
                                "else": [{"name": "right", "flow": "child"}],
                            }
                        ],
                    },
                ],
            ],
        },
        {"name": "stop", "halt": {"action": "review"}},
        {"name": "last", "task": "echo"},
    ],
}

#: Steps that wait for others (``needs``): a graph, not a list.
NEEDS: dict[str, Any] = {
    "name": "needs",
    "steps": [
        {"name": "a", "task": "echo"},
        {"name": "b", "task": "echo"},
        {"name": "c", "task": "echo", "needs": ["a", "b"]},
        {"name": "d", "task": "echo", "needs": ["a"]},
        {"name": "e", "task": "echo", "needs": ["c", "a"]},
    ],
}


def long_flow(steps: int) -> dict[str, Any]:
    """A flow of ``steps`` tasks, every tenth an ``if`` with a task on each side."""
    body: list[dict[str, Any]] = []
    for index in range(steps):
        if index % 10 == 9:
            then = [{"name": f"yes{index}", "task": "echo"}]
            other = [{"name": f"no{index}", "task": "echo"}]
            body.append({"name": f"s{index}", "if": "@s0.x", "then": then, "else": other})
        else:
            body.append({"name": f"s{index}", "task": "echo"})
    return {"name": "long", "steps": body}


def on_side(point: tuple[float, float], box: Box) -> bool:
    """Tell whether ``point`` lies on the outline of ``box``."""
    x, y = point
    inside_x, inside_y = box.x <= x <= box.right, box.y <= y <= box.bottom
    return (inside_x and y in (box.y, box.bottom)) or (inside_y and x in (box.x, box.right))


def crosses(start: tuple[float, float], end: tuple[float, float], box: Box) -> bool:
    """Tell whether the straight segment from ``start`` to ``end`` enters the inside of ``box``."""
    (ax, ay), (bx, by) = start, end
    if ax == bx:
        return box.x < ax < box.right and min(ay, by) < box.bottom and max(ay, by) > box.y
    return box.y < ay < box.bottom and min(ax, bx) < box.right and max(ax, bx) > box.x


def check(body: Mapping[str, Any], *, limit: int | None = None) -> Layout:
    """Lay ``body`` out and assert the layout's promises; return it."""
    graph, block = build(body, limit=limit)
    drawn = layout(block, graph.edges)
    ids = [node_id for node_id, _, _ in graph.nodes]
    assert sorted(drawn.boxes) == sorted(ids), "every node is placed, once"
    boxes = sorted(drawn.boxes.items(), key=lambda item: (item[1].y, item[1].x))
    for index, (name, box) in enumerate(boxes):
        assert box.x >= 0, name
        assert box.y >= 0, name
        assert box.right <= drawn.width, name
        assert box.bottom <= drawn.height, name
        for other, seen in boxes[index + 1 :]:
            if seen.y >= box.bottom:
                break
            assert not box.overlaps(seen), (name, other)
    assert len(drawn.routes) == len(graph.edges)
    for route in drawn.routes:
        assert on_side(route.points[0], drawn.boxes[route.source]), route
        assert on_side(route.points[-1], drawn.boxes[route.target]), route
        pairs = list(zip(route.points, route.points[1:], strict=False))
        for start, end in pairs:
            assert start[0] == end[0] or start[1] == end[1], route  # across or down, never slanted
            assert all(0 <= v <= max(drawn.width, drawn.height) for v in (*start, *end)), route
            for name, box in drawn.boxes.items():
                assert not crosses(start, end, box), (route, name)
    return drawn


def test_every_kind_of_step_is_laid_out_without_overlap_and_edges_cross_no_node() -> None:
    drawn = check(EVERY_KIND)
    boxes = drawn.boxes
    graph, _ = build(EVERY_KIND)
    at = graph.step_nodes
    # A sequence runs downwards, in one column.
    assert boxes[at["fetch"]].y < boxes[at["check"]].y < boxes[at["approve"]].y
    assert boxes[at["fetch"]].cx == boxes[at["check"]].cx
    # The branches of a parallel stand side by side, joined below both.
    assert boxes[at["a"]].y == boxes[at["b"]].y
    assert boxes[at["a"]].right < boxes[at["b"]].x
    join = next(node for node, label, _ in graph.nodes if label == ("fan joined",))
    assert boxes[join].y > boxes[at["right"]].y
    # then and else side by side under their decision.
    assert boxes[at["left"]].y == boxes[at["right"]].y > boxes[at["which"]].y


def test_a_loop_has_an_edge_back_up_and_labelled_ways_out() -> None:
    drawn = check(EVERY_KIND)
    graph, _ = build(EVERY_KIND)
    loop = graph.step_nodes["each"]
    back = [r for r in drawn.routes if r.target == loop and r.source == graph.step_nodes["rest"]]
    assert len(back) == 1
    assert back[0].points[-1][1] < back[0].points[0][1]  # it climbs
    labels = {r.label for r in drawn.routes if r.source == loop}
    assert labels == {"do", "done"}
    decision = graph.step_nodes["check"]
    assert {r.label for r in drawn.routes if r.source == decision} == {"then", "else"}
    assert all(r.label_at is not None for r in drawn.routes if r.label)


def test_steps_with_needs_stand_in_layers_under_what_they_need() -> None:
    drawn = check(NEEDS)
    graph, _ = build(NEEDS)
    box = {name: drawn.boxes[node] for name, node in graph.step_nodes.items()}
    assert box["a"].y == box["b"].y < box["c"].y == box["d"].y < box["e"].y


def test_a_flow_of_500_steps_draws_the_first_nodes_and_counts_the_rest() -> None:
    body = long_flow(500)
    drawn = check(body, limit=150)
    graph, _ = build(body, limit=150)
    assert len(drawn.boxes) <= 150 + 3  # the nodes, the "more" node and the end
    more = [label for _, label, shape in graph.nodes if shape == "more"]
    assert more == [(f"\u2026 {graph.skipped} more steps",)]
    assert len(graph.step_nodes) + graph.skipped == 600  # 500 steps, 2 in each of 50 ifs
    assert "s499" in graph.hidden
    check(body)  # without a limit every step is placed, still apart


def test_the_mermaid_diagram_of_a_flow_is_unchanged_by_the_layout_blocks(
    registry: TaskRegistry,
) -> None:
    child = {"name": "child", "version": 1, "steps": [{"name": "x", "task": "echo"}]}
    flow = load_flow(EVERY_KIND, registry=registry, definitions=lambda name, version: child)
    lines = flow.graph("mermaid").splitlines()
    assert lines[1] == '    n0(["start"])'
    assert lines[19] == '    n18(["end"])'  # every node once, the end last
    assert "    n2 -->|else| n5" in lines  # an if without else goes on past its then
    assert "    n7 --> n5" in lines  # a loop's body goes back to it
