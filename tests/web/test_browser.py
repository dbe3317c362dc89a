"""The page in a real browser: Debian's Chromium driven by Playwright, the app served by uvicorn.

Chromium is the system's (``/usr/bin/chromium``; ``run-tests.sh`` installs
Debian's package when it is missing), never a browser Playwright downloads.
The server runs in a thread on a free port of 127.0.0.1. Each test writes
a screenshot of every page it checks under its temporary directory, and
checks the text a person sees.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.storage.conftest import empty_database, unavailable
from tests.web.conftest import REFUND, TOKENS, USERS
from workflow.flows import TaskRegistry
from workflow.storage import Definitions, Store
from workflow.web import create_app

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Server:
    """The app served by uvicorn in a thread; ``url`` is where it listens."""

    def __init__(self, store: Store) -> None:
        tasks = TaskRegistry(entry_point_group=None)
        tasks.register("echo", lambda context, params: dict(params))
        self.app = create_app(store, users=USERS, registry=tasks, secret="browser tests")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        give_up = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped"
            assert time.monotonic() < give_up, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def start_run(self) -> str:
        started: dict[str, Any] = self.app.state.service.start(flow="refund")
        return str(started["uuid"])


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    store = Store(empty_database(str(request.param), tmp_path), lock_ttl=5.0)
    store.create_all()
    Definitions(store).put("refund", REFUND)
    try:
        with Server(store) as running:
            yield running
    finally:
        store.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "no /usr/bin/chromium: apt-get install chromium (run-tests.sh does)"
        unavailable("the browser tests", message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def signed_in(browser: Any, server: Server, name: str) -> Any:
    """A page in a browser context of its own, signed in as ``name``, on the waiting page."""
    context = browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/waiting")
    page.fill("#token", TOKENS[name])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{server.url}/waiting")
    return page


def seen(page: Any, shot: Path) -> str:
    """Write a screenshot of ``page`` to ``shot``; return its visible text, spaces collapsed."""
    page.screenshot(path=str(shot), full_page=True)
    return " ".join(page.inner_text("main").split())


def diagram_nodes(page: Any) -> list[str]:
    """The names the run page's diagram shows, top to bottom, and which carry a badge."""
    names = page.locator("svg.flow-graph g.node text.name").all_text_contents()
    marked = page.locator("svg.flow-graph g.node.here text.name").all_text_contents()
    return [f"{name} *" if name in marked else name for name in names]


def badge_on(page: Any, step: str, state: str) -> str:
    """The count of the ``state`` badge drawn on the node of ``step``, checked to sit on it."""
    node = page.locator("svg.flow-graph g.node", has=page.locator(f"text.name:text-is('{step}')"))
    badge = node.locator(f"g.badge.b-{state}")
    assert badge.count() == 1
    outline, mark = node.locator(".outline").bounding_box(), badge.bounding_box()
    middle_x, middle_y = mark["x"] + mark["width"] / 2, mark["y"] + mark["height"] / 2
    assert outline["x"] <= middle_x <= outline["x"] + outline["width"] + 10
    assert outline["y"] - 10 <= middle_y <= outline["y"] + outline["height"]
    return str(badge.text_content())


def test_an_approval_in_the_browser_continues_the_run(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    run = server.start_run()
    alice = signed_in(browser, server, "alice")
    alice.goto(f"{server.url}/runs/{run}")
    text = seen(alice, tmp_path / "run-waiting.png")
    assert "Diagram" in text
    assert "1 waiting" in text  # the legend
    assert alice.locator("svg.flow-graph").is_visible()
    assert alice.locator("svg.flow-graph").get_attribute("role") == "img"
    assert diagram_nodes(alice) == ["start", "approve *", "after", "end"]
    details = alice.locator("svg.flow-graph text.detail").all_text_contents()
    assert details == ["ask 2 of alice, bob, carol", "echo"]
    assert badge_on(alice, "approve", "waiting") == "1"
    card = alice.locator("#diagram").bounding_box()
    assert card["x"] + card["width"] <= 420  # it fits the phone's width
    alice.goto(f"{server.url}/waiting")
    text = seen(alice, tmp_path / "waiting.png")
    assert "Refund order 17 (240 EUR)?" in text
    assert "0 of 2 approvals" in text
    assert "Approvers: alice, bob, carol" in text
    alice.fill("input[name='field.note']", "fine by me")
    alice.click("button:has-text('Approve')")
    text = seen(alice, tmp_path / "approved.png")
    assert "Your approval of approve was recorded: 1 of 2 approvals." in text
    assert "The step waits for more answers." in text

    bob = signed_in(browser, server, "bob")
    assert "1 of 2 approvals (alice approved)" in seen(bob, tmp_path / "waiting-bob.png")
    bob.click("button:has-text('Approve')")
    text = seen(bob, tmp_path / "decided.png")
    assert "Decided: approved by alice, bob." in text
    assert "The run went on: it is now completed." in text

    bob.click("text=See the run")
    text = seen(bob, tmp_path / "run.png")
    assert f"Run {run[:8]} completed" in text
    assert diagram_nodes(bob) == ["start", "approve", "after", "end *"]
    assert badge_on(bob, "end", "completed") == "1"
    assert "halted → completed" in text
    # The step trace grew with the answers and the step after them.
    steps = " ".join(bob.inner_text("#trace").split())
    assert "approve 1 approve" in steps
    assert "alice" in steps
    assert "bob" in steps
    assert "after 1 completed" in steps
    bob.goto(f"{server.url}/")
    assert "completed 1" in seen(bob, tmp_path / "runs.png")
    for name in ("run-waiting", "waiting", "approved", "waiting-bob", "decided", "run", "runs"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_two_browsers_give_the_last_vote_at_once_and_one_decides(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    server.start_run()
    alice = signed_in(browser, server, "alice")
    alice.click("button:has-text('Approve')")
    bob = signed_in(browser, server, "bob")
    carol = signed_in(browser, server, "carol")
    click = "document.querySelector(\"form.answer button[value='approve']\").click()"
    bob.evaluate(click)
    carol.evaluate(click)  # both forms are on their way before either answer is back
    texts = {}
    for name, page in (("bob", bob), ("carol", carol)):
        page.wait_for_selector("main h1:not(:has-text('Waiting for approval'))")
        texts[name] = seen(page, tmp_path / f"last-vote-{name}.png")
    decided = [name for name, text in texts.items() if "Decided: approved by alice, " in text]
    told = [name for name, text in texts.items() if "already decided: approved by alice, " in text]
    assert len(decided) == 1, texts
    assert len(told) == 1, texts
    assert decided != told
    assert f"approved by alice, {decided[0]}" in texts[told[0]]


def test_a_non_approver_sees_no_buttons_and_a_forged_post_is_refused(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    server.start_run()
    mallory = signed_in(browser, server, "mallory")
    text = seen(mallory, tmp_path / "waiting-mallory.png")
    assert "You are not an approver of this step." in text
    assert mallory.locator("button:has-text('Approve')").count() == 0
    action = re.sub(r"^/", "", "/interactions/")
    ident = mallory.locator("article.interaction").get_attribute("id")
    assert ident is not None
    url = f"{server.url}/{action}{ident.removeprefix('i-')}/answer"
    csrf = mallory.locator("input[name='csrf']").first.get_attribute("value")
    forged = mallory.request.post(url, form={"decision": "approve"})
    assert forged.status == 403
    assert "this form is not from your session" in forged.text()
    as_mallory = mallory.request.post(url, form={"decision": "approve", "csrf": csrf})
    assert as_mallory.status == 403
    assert "mallory is not an approver" in as_mallory.text()
    mallory.goto(f"{server.url}/waiting")
    assert "0 of 2 approvals" in seen(mallory, tmp_path / "after-forgery.png")
