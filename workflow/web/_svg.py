"""A flow's diagram as inline SVG: its laid-out graph, each token's place marked.

The SVG is made here, as text, from a :class:`~workflow.flows._layout.Layout`;
it needs no script and no asset, and page.css gives it its colours (the
page's Content-Security-Policy allows no inline style). Every text of a
flow (step, task and flow names, messages) is escaped, with the characters
that are not printable replaced, before it enters the markup.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping, Sequence

from workflow.flows._layout import Box, Layout

__all__ = ["STATES", "svg"]

#: The states a token is marked with, in the order the legend and badges show them.
STATES = ("new", "running", "waiting", "halted", "failed", "completed")
#: The most characters of a node's name and of its second line (wide characters count 2).
NAME_FIT = 21
DETAIL_FIT = 26
DECISION_FIT = 15
#: The most tokens a node's title lists.
TITLE_TOKENS = 20


def text(value: object) -> str:
    """Return ``value`` as text safe in SVG markup: escaped, unprintable characters replaced."""
    shown = "".join(
        char if char.isprintable() or char == "\n" else "\N{REPLACEMENT CHARACTER}"
        for char in str(value)
    )
    return html.escape(shown, quote=True)


def fit(value: str, room: int) -> str:
    """Return ``value`` cut to ``room`` columns (a wide character takes 2) with an ellipsis."""
    used = 0
    for index, char in enumerate(value):
        used += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if used > room:
            return value[: max(0, index - 1)] + "\N{HORIZONTAL ELLIPSIS}"
    return value


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _shape(kind: str, box: Box) -> str:
    """Return the outline of a node of ``kind`` in ``box``."""
    x, y, w, h, cx, cy = box.x, box.y, box.width, box.height, box.cx, box.cy
    rect = f'x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}"'
    corners: list[tuple[float, float]]
    if kind == "edge":
        return f'<rect class="outline" {rect} rx="{_n(h / 2)}"/>'
    if kind in ("task", "more"):
        return f'<rect class="outline" {rect} rx="6"/>'
    if kind == "flow":
        sides = f"M{_n(x + 9)},{_n(y)}v{_n(h)}M{_n(x + w - 9)},{_n(y)}v{_n(h)}"
        sides = f'<path class="inner" d="{sides}"/>'
        return f'<rect class="outline" {rect} rx="2"/>{sides}'
    if kind == "if":
        corners = [(x, cy), (cx, y), (x + w, cy), (cx, y + h)]
    elif kind == "loop":
        corners = [
            (x, cy),
            (x + 14, y),
            (x + w - 14, y),
            (x + w, cy),
            (x + w - 14, y + h),
            (x + 14, y + h),
        ]
    elif kind == "wait":
        corners = [(x + 12, y), (x + w, y), (x + w - 12, y + h), (x, y + h)]
    elif kind == "parallel":
        corners = [(x + 14, y), (x + w - 14, y), (x + w, y + h), (x, y + h)]
    elif kind == "join":
        corners = [(x, y), (x + w, y), (x + w - 14, y + h), (x + 14, y + h)]
    else:  # halt: an octagon
        c = 10.0
        corners = [(x + c, y), (x + w - c, y), (x + w, y + c), (x + w, y + h - c)]
        corners += [(x + w - c, y + h), (x + c, y + h), (x, y + h - c), (x, y + c)]
    return f'<polygon class="outline" points="{_points(corners)}"/>'


def _label(kind: str, label: Sequence[str], box: Box) -> str:
    """Return the visible lines of a node: its name, then what it does."""
    name = fit(label[0], DECISION_FIT if kind == "if" else NAME_FIT)
    detail = fit(" \N{MIDDLE DOT} ".join(label[1:]), DETAIL_FIT)
    if not detail:
        return f'<text class="name" x="{_n(box.cx)}" y="{_n(box.cy + 5)}">{text(name)}</text>'
    return (
        f'<text class="name" x="{_n(box.cx)}" y="{_n(box.cy - 3)}">{text(name)}</text>'
        f'<text class="detail" x="{_n(box.cx)}" y="{_n(box.cy + 14)}">{text(detail)}</text>'
    )


def _badges(tokens: Sequence[tuple[int, str]], box: Box) -> str:
    """Return a badge per state of the tokens at a node, with how many, right to left."""
    counts = dict.fromkeys(STATES, 0)
    for _, state in tokens:
        counts[state] = counts.get(state, 0) + 1
    shown = []
    right = box.right + 6
    for state in reversed(STATES):
        if not counts[state]:
            continue
        count = str(counts[state])
        width = 14 + 7 * len(count)
        left = right - width
        shown.append(
            f'<g class="badge b-{state}"><rect x="{_n(left)}" y="{_n(box.y - 10)}" '
            f'width="{width}" height="20" rx="10"/>'
            f'<text x="{_n(left + width / 2)}" y="{_n(box.y + 4)}">{count}</text></g>'
        )
        right = left - 3
    return "".join(shown)


def _title(label: Sequence[str], tokens: Sequence[tuple[int, str]]) -> str:
    lines = list(label)
    lines += [f"token {position}: {state}" for position, state in tokens[:TITLE_TOKENS]]
    if len(tokens) > TITLE_TOKENS:
        lines.append(f"and {len(tokens) - TITLE_TOKENS} more tokens")
    return text("\n".join(lines))


def svg(
    drawn: Layout,
    nodes: Sequence[tuple[str, Sequence[str], str]],
    marks: Mapping[str, Sequence[tuple[int, str]]],
    *,
    summary: str,
) -> str:
    """Return the SVG element of a laid-out flow graph.

    :param drawn: where the nodes stand and the edges run.
    :param nodes: ``(id, label lines, kind)`` of each node, as the flow's graph makes them.
    :param marks: the tokens at each node id, ``(token position, state)``.
    :param summary: what the diagram shows, in a sentence: its ``aria-label``.
    """
    width, height = drawn.width, drawn.height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" role="img" '
        f'aria-label="{text(summary)}" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}">',
        '<defs><marker id="wf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto"><path class="arrowhead" d="M0,0L10,5L0,10z"/>'
        "</marker></defs>",
        '<g class="edges">',
    ]
    for route in drawn.routes:
        parts.append(
            f'<polyline class="edge" points="{_points(route.points)}" marker-end="url(#wf-arrow)"/>'
        )
    for route in drawn.routes:
        if route.label_at is not None:
            x, y = route.label_at
            parts.append(
                f'<text class="edge-label" x="{_n(x)}" y="{_n(y)}">{text(route.label)}</text>'
            )
    parts.append('</g><g class="nodes">')
    for node_id, label, kind in nodes:
        box = drawn.boxes[node_id]
        tokens = marks.get(node_id, ())
        here = " here" if tokens else ""
        parts.append(
            f'<g class="node k-{kind}{here}" id="node-{node_id}"><title>{_title(label, tokens)}'
            f"</title>{_shape(kind, box)}{_label(kind, label, box)}{_badges(tokens, box)}</g>"
        )
    parts.append("</g></svg>")
    return "".join(parts)
