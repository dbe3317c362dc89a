"""Where each node of a flow's diagram goes: a layered layout, top to bottom, on rows.

A flow nests: a sequence runs downwards, the branches of an ``if`` or a
``parallel`` stand side by side under the step that splits them, a loop's
body hangs under the loop with a lane on each side (the way out on the
left, the way back on the right). :func:`layout` places each node of such
a :data:`Block` and routes each edge.

Every node has the same size, so nodes stand on rows a fixed height apart
and the gap between two rows holds no node. An edge leaves a node at the
middle of its bottom side, runs across in the gap below it, down a lane no
node stands in, across in the gap above its target, and into the middle of
the target's top side. A loop is left from its left side, down its left-hand
lane; an edge back to a loop turns nearer its node, then climbs the loop's
right-hand lane into the loop's right side. No edge crosses a node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = ["Block", "Box", "Layout", "Loop", "Route", "Row", "Seq", "layout"]

#: The size of every node, the gaps between them and the lanes of loops, in pixels.
NODE_WIDTH = 176.0
NODE_HEIGHT = 52.0
GAP_X = 24.0
GAP_Y = 40.0
LANE = 36.0
PAD = 16.0
#: How far a lane keeps from a node.
CLEARANCE = 8.0
#: How far under its node an edge back to a loop turns (edges forward turn half a gap under).
BACK = 10.0


@dataclass(frozen=True)
class Seq:
    """Blocks one under the other."""

    items: tuple[Block, ...]


@dataclass(frozen=True)
class Row:
    """Blocks side by side, their tops on one row (the branches of a step)."""

    parts: tuple[Block, ...]


@dataclass(frozen=True)
class Loop:
    """A loop's node with its body under it, between the loop's two lanes."""

    head: str
    body: Block


#: A node (its id), or blocks arranged as above.
Block: TypeAlias = str | Seq | Row | Loop


@dataclass(frozen=True)
class Box:
    """Where a node stands: its top left corner, its size and its row."""

    x: float
    y: float
    row: int
    width: float = NODE_WIDTH
    height: float = NODE_HEIGHT

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2

    def overlaps(self, other: Box) -> bool:
        """Tell whether the two boxes share any point."""
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )


@dataclass(frozen=True)
class Route:
    """The line of one edge: its points, first on ``source`` and last on ``target``."""

    source: str
    target: str
    label: str
    points: tuple[tuple[float, float], ...]
    #: Where the label's text starts (its baseline), when there is a label.
    label_at: tuple[float, float] | None = None


@dataclass
class Layout:
    """The placed diagram: its size, a :class:`Box` per node and a :class:`Route` per edge."""

    width: float
    height: float
    boxes: dict[str, Box]
    routes: list[Route] = field(default_factory=list)


class _Placer:
    def __init__(self) -> None:
        self.sizes: dict[int, tuple[float, int]] = {}
        self.boxes: dict[str, Box] = {}
        self.lanes: dict[str, tuple[float, float]] = {}  # loop node -> (way out, way back)

    def size(self, block: Block) -> tuple[float, int]:
        """Return the width of ``block`` and the rows it takes."""
        known = self.sizes.get(id(block))
        if known is not None:
            return known
        found: tuple[float, int]
        if isinstance(block, str):
            found = (NODE_WIDTH, 1)
        elif isinstance(block, Seq):
            inner = [self.size(item) for item in block.items]
            found = (max((w for w, _ in inner), default=LANE), sum(r for _, r in inner))
        elif isinstance(block, Row):
            inner = [self.size(part) for part in block.parts]
            width = sum(w for w, _ in inner) + GAP_X * (len(inner) - 1)
            found = (width if inner else LANE, max((r for _, r in inner), default=0))
        else:
            width, rows = self.size(block.body)
            found = (max(NODE_WIDTH, width) + 2 * LANE, 1 + rows)
        self.sizes[id(block)] = found
        return found

    def place(self, block: Block, left: float, row: int, room: float) -> None:
        """Place ``block`` from ``row`` down, centred in ``room`` pixels from ``left``."""
        width, _ = self.size(block)
        left += (room - width) / 2
        if isinstance(block, str):
            self.boxes[block] = Box(left, PAD + row * (NODE_HEIGHT + GAP_Y), row)
        elif isinstance(block, Seq):
            for item in block.items:
                self.place(item, left, row, width)
                row += self.size(item)[1]
        elif isinstance(block, Row):
            for part in block.parts:
                part_width = self.size(part)[0]
                self.place(part, left, row, part_width)
                left += part_width + GAP_X
        else:
            self.place(block.head, left, row, width)
            self.lanes[block.head] = (left + LANE / 2, left + width - LANE / 2)
            self.place(block.body, left + LANE, row + 1, width - 2 * LANE)


class _Router:
    def __init__(self, boxes: dict[str, Box], lanes: dict[str, tuple[float, float]], width: float):
        self.boxes = boxes
        self.lanes = lanes
        self.width = width
        self.rows: dict[int, list[Box]] = {}
        for box in boxes.values():
            self.rows.setdefault(box.row, []).append(box)

    def blocked(self, first: int, last: int) -> list[tuple[float, float]]:
        """Return the spans of x that nodes of rows ``first`` to ``last`` take, merged, sorted."""
        spans = sorted(
            (box.x - CLEARANCE, box.right + CLEARANCE)
            for row in range(first, last + 1)
            for box in self.rows.get(row, ())
        )
        merged: list[tuple[float, float]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def lane(self, candidates: Iterable[float], first: int, last: int, near: float) -> float:
        """Return an x that no node of rows ``first`` to ``last`` covers, a candidate if one is."""
        spans = self.blocked(first, last)
        for x in candidates:
            if not any(start < x < end for start, end in spans):
                return x
        best, distance = PAD / 2, float("inf")
        edges = [0.0] + [x for span in spans for x in span] + [self.width]
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if end - start < 2:
                continue
            if start > 0 and end < self.width:
                x = (start + end) / 2
            else:
                x = min(max(near, start + min(LANE / 2, (end - start) / 2)), end - 1)
            if abs(x - near) < distance:
                best, distance = x, abs(x - near)
        return best

    def route(self, source: str, target: str, label: str) -> Route:
        s, t = self.boxes[source], self.boxes[target]
        points: list[tuple[float, float]]
        if t.row <= s.row:  # back to a loop: up its right-hand lane, into its right side
            lane = self.lanes[target][1] if target in self.lanes else self.width - PAD / 2
            below = s.bottom + BACK
            points = [(s.cx, s.bottom), (s.cx, below), (lane, below), (lane, t.cy), (t.right, t.cy)]
            label_at = (s.cx + 4, below + 13) if label else None
            return Route(source, target, label, _simplified(points), label_at)
        above = t.y - GAP_Y / 2
        if source in self.lanes and label == "done":  # out of a loop: down its left-hand lane
            lane = self.lanes[source][0]
            points = [(s.x, s.cy), (lane, s.cy), (lane, above), (t.cx, above), (t.cx, t.y)]
            return Route(source, target, label, _simplified(points), (lane + 4, s.bottom + 13))
        below = s.bottom + GAP_Y / 2
        if t.row == s.row + 1:
            lane = t.cx
        else:
            lane = self.lane([s.cx, t.cx], s.row + 1, t.row - 1, (s.cx + t.cx) / 2)
        points = [
            (s.cx, s.bottom),
            (s.cx, below),
            (lane, below),
            (lane, above),
            (t.cx, above),
            (t.cx, t.y),
        ]
        label_at = (lane + 4, below + 13) if label else None
        return Route(source, target, label, _simplified(points), label_at)


def _simplified(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Drop repeated points and the middle of three points on one line."""
    kept: list[tuple[float, float]] = []
    for point in points:
        if kept and point == kept[-1]:
            continue
        if len(kept) >= 2:
            (ax, ay), (bx, by) = kept[-2], kept[-1]
            if (ax == bx == point[0]) or (ay == by == point[1]):
                kept[-1] = point
                continue
        kept.append(point)
    return tuple(kept)


def layout(block: Block, edges: Iterable[tuple[str, str, str]]) -> Layout:
    """Place the nodes of ``block`` and route ``edges`` (``(source, target, label)``) between them.

    Each node of ``block`` appears in it once; every edge joins two of them.
    """
    placer = _Placer()
    width, rows = placer.size(block)
    width += 2 * PAD
    placer.place(block, PAD, 0, width - 2 * PAD)
    height = 2 * PAD + rows * NODE_HEIGHT + max(0, rows - 1) * GAP_Y
    router = _Router(placer.boxes, placer.lanes, width)
    routes = [router.route(source, target, label) for source, target, label in edges]
    return Layout(width, height, placer.boxes, routes)
