"""The web page through FastAPI's TestClient: sign-in, CSRF, answers, escaping; every database."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from tests.web.conftest import TOKENS, start
from workflow.storage import Definitions, Store


def sign_in(client: TestClient, name: str) -> None:
    signed = client.post(
        "/login", data={"token": TOKENS[name], "next": "/waiting"}, follow_redirects=False
    )
    assert (signed.status_code, signed.headers["location"]) == (303, "/waiting")
    assert "HttpOnly" in signed.headers["set-cookie"]
    assert "SameSite=lax" in signed.headers["set-cookie"]


def forms(page: str) -> list[tuple[str, str]]:
    """The answer forms of a page: (action, CSRF token)."""
    return re.findall(
        r'<form class="answer" method="post" action="([^"]+)">\s*'
        r'<input type="hidden" name="csrf" value="([^"]+)">',
        page,
    )


def text(page: str) -> str:
    """The visible text of a page's main part, spaces collapsed."""
    main = re.search(r"<main>(.*)</main>", page, re.S)
    assert main is not None
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main[1])).split())


def test_pages_need_a_session_and_a_wrong_token_is_refused(client: TestClient) -> None:
    home = client.get("/waiting", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/login?next=%2Fwaiting")
    wrong = client.post("/login", data={"token": "guessed-token-guessed", "next": "/"})
    assert wrong.status_code == 401
    assert "That token is not known here" in text(wrong.text)
    away = client.post(
        "/login", data={"token": TOKENS["bob"], "next": "//evil.example"}, follow_redirects=False
    )
    assert away.headers["location"] == "/"


def test_an_approver_answers_from_the_page_and_the_run_goes_on(client: TestClient) -> None:
    run = start(client)["uuid"]
    sign_in(client, "alice")
    page = client.get("/waiting")
    assert "Refund order 17 (240 EUR)?" in text(page.text)
    assert "0 of 2 approvals" in text(page.text)
    [(action, csrf)] = forms(page.text)
    answered = client.post(action, data={"csrf": csrf, "decision": "approve", "field.note": "ok"})
    assert answered.status_code == 200
    assert "Your approval of approve was recorded: 1 of 2 approvals" in text(answered.text)

    client.cookies.clear()
    sign_in(client, "bob")
    [(action, csrf)] = forms(client.get("/waiting").text)
    decided = client.post(action, data={"csrf": csrf, "decision": "approve"})
    said = text(decided.text)
    assert "Decided: approved by alice, bob" in said
    assert "The run went on: it is now completed" in said
    shown = text(client.get(f"/runs/{run}").text)
    assert "completed" in shown
    assert "halted → completed" in shown  # the log shows the token going on


def test_a_forged_post_and_a_non_approver_get_403(client: TestClient) -> None:
    start(client)
    sign_in(client, "alice")
    [(action, csrf)] = forms(client.get("/waiting").text)
    assert client.post(action, data={"decision": "approve"}).status_code == 403
    other = client.post(action, data={"decision": "approve", "csrf": "x" * 43})
    assert other.status_code == 403
    assert "this form is not from your session" in text(other.text)

    client.cookies.clear()
    sign_in(client, "mallory")
    page = client.get("/waiting")
    assert forms(page.text) == []
    assert "You are not an approver of this step." in text(page.text)
    mallory_csrf = re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]
    refused = client.post(action, data={"decision": "approve", "csrf": mallory_csrf})
    assert refused.status_code == 403
    assert "mallory is not an approver of 'approve'" in text(refused.text)
    assert client.post(action, data={"decision": "approve", "csrf": csrf}).status_code == 403


def test_the_last_vote_twice_tells_the_second_who_decided(client: TestClient) -> None:
    start(client)
    sign_in(client, "carol")
    [(action, carol_csrf)] = forms(client.get("/waiting").text)
    client.post(action, data={"csrf": carol_csrf, "decision": "reject"})
    client.cookies.clear()
    sign_in(client, "bob")
    page = client.get("/waiting")
    assert "Nothing waits for an answer." in text(page.text)
    bob_csrf = re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]
    late = client.post(action, data={"csrf": bob_csrf, "decision": "approve"})
    assert late.status_code == 409
    assert "already decided: rejected by carol" in text(late.text)


def test_everything_a_run_wrote_is_escaped(client: TestClient, store: Store) -> None:
    Definitions(store).put(
        "evil",
        {
            "name": "evil",
            "steps": [
                {
                    "name": "look",
                    "ask": {
                        "message": "<script>alert(1)</script>",
                        "approvers": ["alice", "<b>eve</b>"],
                    },
                }
            ],
        },
    )
    response = client.post(
        "/api/runs", json={"flow": "evil"}, headers={"Authorization": f"Bearer {TOKENS['alice']}"}
    )
    assert response.status_code == 201, response.text
    sign_in(client, "alice")
    page = client.get("/waiting").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;eve&lt;/b&gt;" in page
    assert "default-src 'self'" in client.get("/waiting").headers["content-security-policy"]


def test_runs_page_counts_statuses_filters_and_cancels(client: TestClient) -> None:
    run = start(client)["uuid"]
    sign_in(client, "alice")
    listed = text(client.get("/").text)
    assert "halted 1" in listed
    assert run[:8] in listed
    assert run[:8] not in text(client.get("/?status=COMPLETED").text)
    assert client.get("/?since=yesterday").status_code == 422
    page = client.get(f"/runs/{run}").text
    csrf = re.findall(r'name="csrf" value="([^"]+)"', page)[0]
    assert "token 0: waiting" in text(page)  # the title of its node in the diagram
    cancelled = client.post(f"/runs/{run}/cancel", data={"csrf": csrf, "reason": "dup"})
    assert "cancelled" in text(cancelled.text)
    assert client.post(f"/runs/{run}/cancel", data={"reason": "dup"}).status_code == 403
    assert client.get("/static/page.css").status_code == 200
    assert client.get("/static/page.js").status_code == 200


def test_a_post_without_a_session_is_refused_not_redirected(client: TestClient) -> None:
    start(client)
    [waiting] = client.get(
        "/api/interactions", headers={"Authorization": f"Bearer {TOKENS['alice']}"}
    ).json()["interactions"]
    forged = client.post(
        f"/interactions/{waiting['id']}/answer",
        data={"decision": "approve", "csrf": "x"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "this form is not from your session" in text(forged.text)


def test_the_page_refuses_what_no_database_stores_and_times_with_zones(client: TestClient) -> None:
    run = start(client)["uuid"]
    sign_in(client, "alice")
    assert client.get("/", params={"flow": "a\x00b"}).status_code == 422
    assert client.get("/runs/not%00a-uuid").status_code == 404
    with_zone = client.get("/", params={"since": "2000-01-01T00:00:00+02:00"})
    assert run[:8] in text(with_zone.text)
    page = client.get("/waiting").text
    csrf = re.findall(r'name="csrf" value="([^"]+)"', page)[0]
    refused = client.post(f"/runs/{run}/cancel", data={"csrf": csrf, "reason": "a\x00"})
    assert refused.status_code == 422
    assert client.post("/interactions/nope/answer", data={"csrf": csrf}).status_code == 422
    missing = client.post("/interactions/nope/answer", data={"csrf": csrf, "decision": "approve"})
    assert missing.status_code == 404
