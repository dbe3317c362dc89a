"""A run's diagram: the flow's graph as inline SVG with each token marked, escaped and bounded."""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.testclient import TestClient

from tests.flows.test_layout import EVERY_KIND, long_flow
from tests.web.conftest import auth, start
from tests.web.test_pages import sign_in, text
from workflow.flows import TaskRegistry
from workflow.storage import Definitions, Store
from workflow.web._diagram import MAX_NODES, flow_diagram, no_diagram

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script>"&'


def parsed(markup: object) -> ET.Element:
    """Parse the SVG as XML: it must be well formed, whatever the flow's names."""
    return ET.fromstring(str(markup))


def node(svg: ET.Element, title_start: str) -> ET.Element:
    """The node whose title (its tooltip) starts with ``title_start``."""
    for group in svg.iter(f"{SVG}g"):
        title = group.findtext(f"{SVG}title") or ""
        if "node" in group.get("class", "").split() and title.startswith(title_start):
            return group
    raise AssertionError(f"no node {title_start!r}")


def badges(group: ET.Element) -> dict[str, str]:
    """The badges of a node: state -> the count it shows."""
    found = {}
    for badge in group.iter(f"{SVG}g"):
        classes = badge.get("class", "").split()
        if "badge" in classes:
            state = next(c for c in classes if c.startswith("b-")).removeprefix("b-")
            found[state] = "".join(badge.itertext())
    return found


def test_hostile_names_are_text_in_the_svg_never_markup() -> None:
    body = {
        "name": HOSTILE,
        "steps": [
            {"name": HOSTILE, "task": "<img src=x onerror=alert(1)>"},
            {"name": "ok", "ask": {"message": "?", "approvers": ['"&<b>eve</b>']}},
            {"name": "sub\x00\u2028", "flow": "'&amp;"},
        ],
    }
    run = {"tokens": [{"position": 0, "status": "ERROR", "step": HOSTILE}]}
    shown = flow_diagram(body, run)
    markup = str(shown.svg)
    for raw in ("<script", "<img", "<b>", "\x00", 'alert(1)</script>"&'):
        assert raw not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;" in markup  # the whole name, in titles
    svg = parsed(markup)
    assert svg.get("role") == "img"
    assert HOSTILE in (svg.get("aria-label") or "")
    hostile = node(svg, HOSTILE)
    assert badges(hostile) == {"failed": "1"}
    names = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "name"]
    assert "<script>alert(1)</sc\u2026" in names  # cut to fit, still the text itself
    assert "sub\ufffd\ufffd" in names  # what cannot be printed is shown as a replacement


def test_each_token_is_marked_where_it_is_and_the_legend_counts_them() -> None:
    run: dict[str, Any] = {
        "tokens": [
            {"position": 0, "status": "HALTED", "halted": {"step": "approve"}},
            {"position": 1, "status": "WAITING", "halted": {"step": "approve"}},
            {"position": 2, "status": "ERROR", "step": "work"},
            {"position": 3, "status": "COMPLETED"},
            {"position": 4, "status": "INITIAL"},
            {"position": 5, "status": "RUNNING"},
            {"position": 6, "status": "HALTED", "halted": {"step": "stop"}},
        ],
        "waits": [{"token": 0, "step": "approve", "phase": "waiting"}],
    }
    shown = flow_diagram(EVERY_KIND, run)
    svg = parsed(shown.svg)
    approve = node(svg, "approve")
    assert "here" in approve.get("class", "").split()
    assert badges(approve) == {"waiting": "2"}
    title = approve.findtext(f"{SVG}title") or ""
    assert "token 0: waiting" in title
    assert "token 1: waiting" in title
    assert badges(node(svg, "work")) == {"failed": "1"}
    assert badges(node(svg, "stop")) == {"halted": "1"}
    assert badges(node(svg, "end")) == {"completed": "1"}
    assert badges(node(svg, "start")) == {"new": "1"}
    assert "here" not in node(svg, "fetch").get("class", "").split()
    assert shown.legend == [
        ("new", 1),
        ("running", 1),
        ("waiting", 2),
        ("halted", 1),
        ("failed", 1),
        ("completed", 1),
    ]
    assert shown.elsewhere == ["Token 5 is running: its step shows once it stops."]
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "edge-label"]
    assert sorted(set(labels)) == ["do", "done", "else", "resume", "then"]


def test_a_flow_of_500_steps_is_cut_with_the_rest_counted_and_their_tokens_on_it() -> None:
    run = {"tokens": [{"position": 0, "status": "HALTED", "halted": {"step": "s480"}}]}
    shown = flow_diagram(long_flow(500), run)
    svg = parsed(shown.svg)
    nodes = [g for g in svg.iter(f"{SVG}g") if "node" in g.get("class", "").split()]
    assert len(nodes) <= MAX_NODES + 2
    more = node(svg, "\u2026 ")
    assert re.fullmatch(r"\u2026 \d+ more steps", "".join(more.itertext()).split("\n")[0])
    assert badges(more) == {"halted": "1"}
    assert shown.note is not None
    assert "more steps follow" in shown.note
    assert len(str(shown.svg)) < 200_000
    width = float(svg.get("width") or 0)
    assert svg.get("viewBox") == f"0 0 {svg.get('width')} {svg.get('height')}"
    assert 0 < width < 2000


def test_a_body_the_graph_cannot_be_drawn_from_gets_its_steps_listed() -> None:
    body = {"name": "odd", "steps": [{"name": "x", "mystery": 1}, {"name": "y", "task": "t"}]}
    run = {"tokens": [{"position": 0, "status": "ERROR", "step": "y"}]}
    shown = flow_diagram(body, run)
    assert shown.svg is None
    assert shown.note is not None
    assert shown.note.startswith("The graph of flow odd could not be drawn")
    assert [step["name"] for step in shown.steps] == ["x", "y"]
    assert shown.steps[1]["tokens"] == [(0, "failed")]
    assert no_diagram(run, "why").legend == [("failed", 1)]


def test_the_run_page_draws_the_graph_with_the_waiting_token_marked(client: TestClient) -> None:
    run = start(client)["uuid"]
    sign_in(client, "alice")
    page = client.get(f"/runs/{run}").text
    [markup] = re.findall(r'<div class="graph">(<svg.*?</svg>)</div>', page, re.S)
    svg = parsed(markup)
    approve = node(svg, "approve")
    assert badges(approve) == {"waiting": "1"}
    assert "token 0: waiting" in (approve.findtext(f"{SVG}title") or "")
    assert "1 waiting" in text(page)  # the legend
    assert "here" not in node(svg, "after").get("class", "").split()


def test_a_run_of_python_callbacks_says_why_it_has_no_graph(
    client: TestClient, store: Store
) -> None:
    from workflow.storage import PersistentWorkflowEngine

    def fail(obj: object, eng: object) -> None:
        raise ValueError("no")

    engine = PersistentWorkflowEngine.with_name("python", store=store, definition=[fail])
    with contextlib.suppress(Exception):
        engine.process([{}], stop_on_error=False)
    sign_in(client, "alice")
    page = client.get(f"/runs/{engine.uuid}").text
    assert "<svg" not in page
    shown = text(page)
    assert "steps are Python callbacks, not a stored flow, so there is no graph" in shown
    assert "1 failed" in shown


def test_a_run_whose_definition_is_gone_says_so(client: TestClient, store: Store) -> None:
    run = start(client)["uuid"]
    cancelled = client.post(f"/api/runs/{run}/cancel", json={}, headers=auth("alice"))
    assert cancelled.status_code == 200, cancelled.text
    Definitions(store).delete("refund")
    sign_in(client, "alice")
    shown = text(client.get(f"/runs/{run}").text)
    assert "Flow refund version 1 is no longer stored, so there is no graph to draw" in shown


def test_branch_tokens_are_marked_only_while_they_wait_or_failed() -> None:
    run: dict[str, Any] = {
        "tokens": [
            {"position": 0, "status": "COMPLETED"},
            {"position": 1, "status": "COMPLETED", "branch_of": {"token": 0, "index": 0}},
            {"position": 2, "status": "INITIAL", "branch_of": {"token": 0, "index": 1}},
            {
                "position": 3,
                "status": "HALTED",
                "halted": {"step": "approve"},
                "branch_of": {"token": 0, "index": 2},
            },
        ],
        "waits": [],
    }
    svg = parsed(flow_diagram(EVERY_KIND, run).svg)
    assert badges(node(svg, "end")) == {"completed": "1"}
    assert badges(node(svg, "start")) == {}
    assert badges(node(svg, "approve")) == {"halted": "1"}


def test_a_queued_runs_page_and_api_name_each_branch_token(
    client: TestClient, store: Store, registry: TaskRegistry
) -> None:
    from workflow.flows import load_flow
    from workflow.runtime import Worker
    from workflow.storage import PersistentWorkflowEngine

    body = {
        "name": "fan",
        "steps": [
            {
                "name": "each",
                "for_each": [1, 2],
                "as": "n",
                "parallel": True,
                "do": [{"name": "said", "task": "echo", "params": {"n": "@n"}}],
            }
        ],
    }
    flow = load_flow(body, registry=registry)
    Definitions(store).put("fan", body)
    engine = PersistentWorkflowEngine.with_name("fan", store=store, definition=flow.callbacks())
    engine.enqueue([flow.new_context(None)], "q")
    Worker(store, {"fan": flow.callbacks()}, queue="q").run_once()
    shown = client.get(f"/api/runs/{engine.uuid}", headers=auth("alice")).json()
    assert [t.get("branch_of") for t in shown["tokens"]] == [
        None,
        {"token": 0, "index": 0},
        {"token": 0, "index": 1},
    ]
    sign_in(client, "alice")
    page = text(client.get(f"/runs/{engine.uuid}").text)
    assert "(branch 1 of token 0)" in page
