"""The JSON API with FastAPI's TestClient, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient

from tests.web.conftest import auth, start
from workflow.storage import Store


def interaction_of(client: TestClient, run: str) -> str:
    found = client.get("/api/interactions", headers=auth("alice")).json()["interactions"]
    [ident] = [item["id"] for item in found if item["run"] == run]
    return str(ident)


def test_every_route_needs_a_known_bearer_token(client: TestClient) -> None:
    assert client.get("/api/runs").status_code == 401
    refused = client.get("/api/runs", headers={"Authorization": "Bearer not-a-token-at-all"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.json()["reason"] == "unauthorized"
    assert client.get("/api/runs", headers=auth("alice")).json() == {
        "runs": [],
        "next_offset": None,
    }


def test_a_started_run_waits_and_two_approvals_continue_it(client: TestClient) -> None:
    started = start(client)
    run = started["uuid"]
    assert (started["status"], started["created"]) == ("HALTED", True)
    assert [wait["step"] for wait in started["waiting"]] == ["approve"]
    ident = interaction_of(client, run)

    first = client.post(
        f"/api/interactions/{ident}/answer",
        json={"decision": "approve", "data": {"note": "fine"}},
        headers=auth("alice"),
    )
    assert first.status_code == 200, first.text
    assert (first.json()["recorded"], first.json()["decided"], first.json()["by"]) == (
        True,
        False,
        "alice",
    )
    assert (first.json()["approvals"], first.json()["run_status"]) == (1, "HALTED")
    second = client.post(
        f"/api/interactions/{ident}/answer",
        json={"decision": "approve", "data": {}},
        headers=auth("bob"),
    )
    assert second.status_code == 200, second.text
    body = second.json()
    assert (body["decided"], body["decision"], body["continued"]) == (True, "approved", True)
    assert body["run_status"] == "COMPLETED"

    shown = client.get(f"/api/runs/{run}", headers=auth("carol")).json()
    assert shown["status"] == "COMPLETED"
    assert shown["tokens"][0]["data"]["after"] == {"decision": "approved"}
    assert [entry["to"] for entry in shown["log"]][-1] == "COMPLETED"
    assert [entry["outcome"] for entry in shown["trace"]][-1] == "completed"
    assert all(entry["kind"] in ("task", "answer") for entry in shown["trace"])
    [wait] = shown["waits"]
    assert [answer["by"] for answer in wait["answers"]] == ["alice", "bob"]


def test_answers_are_refused_with_the_status_of_their_reason(client: TestClient) -> None:
    run = start(client)["uuid"]
    ident = interaction_of(client, run)
    url = f"/api/interactions/{ident}/answer"

    mallory = client.post(url, json={"decision": "approve", "data": {}}, headers=auth("mallory"))
    assert (mallory.status_code, mallory.json()["reason"]) == (403, "not_an_approver")
    invalid = client.post(
        url, json={"decision": "approve", "data": {"note": 5}}, headers=auth("alice")
    )
    assert (invalid.status_code, invalid.json()["reason"]) == (422, "invalid")
    assert "schema" in invalid.json()["detail"]

    assert (
        client.post(url, json={"decision": "reject", "data": {}}, headers=auth("carol")).status_code
        == 200
    )
    late = client.post(url, json={"decision": "approve", "data": {}}, headers=auth("alice"))
    assert late.status_code == 409
    assert late.json()["reason"] == "already_decided"
    assert (late.json()["decision"], late.json()["by"]) == ("rejected", ["carol"])
    assert "already decided: rejected by carol" in late.json()["detail"]

    unknown = "00000000-0000-4000-8000-000000000000"
    missing = client.post(
        f"/api/interactions/{unknown}/answer",
        json={"decision": "approve", "data": {}},
        headers=auth("bob"),
    )
    assert (missing.status_code, missing.json()["reason"]) == (404, "not_found")
    body_says_who = client.post(
        url, json={"decision": "approve", "by": "alice"}, headers=auth("mallory")
    )
    assert body_says_who.status_code == 422  # the user is the token's, never the body's


def test_an_idempotency_key_records_an_answer_once(client: TestClient) -> None:
    run = start(client)["uuid"]
    ident = interaction_of(client, run)
    url = f"/api/interactions/{ident}/answer"
    headers = {**auth("alice"), "Idempotency-Key": "click-1"}
    first = client.post(url, json={"decision": "approve", "data": {}}, headers=headers).json()
    again = client.post(url, json={"decision": "approve", "data": {}}, headers=headers).json()
    assert (first["recorded"], again["recorded"]) == (True, False)
    assert again["approvals"] == 1
    stolen = client.post(
        url,
        json={"decision": "approve", "data": {}},
        headers={**auth("bob"), "Idempotency-Key": "click-1"},
    )
    assert (stolen.status_code, stolen.json()["reason"]) == (409, "key_in_use")


def test_an_expired_interaction_answers_410(client: TestClient, store: Store) -> None:
    from workflow.runtime import Waits

    run = start(client)["uuid"]
    ident = interaction_of(client, run)
    import sqlalchemy as sa

    from workflow.storage.models import WaitRecord

    table = WaitRecord.__table__
    with store.transaction("make the wait due") as conn:
        past = store.now() - timedelta(seconds=1)
        conn.execute(sa.update(table).where(table.c.id == ident).values(due=past))
    late = client.post(
        f"/api/interactions/{ident}/answer",
        json={"decision": "approve", "data": {}},
        headers=auth("alice"),
    )
    assert (late.status_code, late.json()["reason"]) == (410, "expired")
    assert Waits(store).get(ident).decision == "timed_out"


def test_a_start_with_the_same_idempotency_key_gives_the_same_run(client: TestClient) -> None:
    headers = {**auth("alice"), "Idempotency-Key": "order-17"}
    first = client.post("/api/runs", json={"flow": "refund"}, headers=headers)
    again = client.post("/api/runs", json={"flow": "refund"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["uuid"] == again.json()["uuid"]
    assert again.json()["created"] is False
    other = client.post("/api/runs", json={"flow": "refund"}, headers=auth("alice"))
    assert other.json()["uuid"] != first.json()["uuid"]
    listed = client.get("/api/runs", headers=auth("alice")).json()["runs"]
    assert len(listed) == 2


def test_a_run_key_is_held_by_one_active_run(client: TestClient) -> None:
    first = start(client, key="A-17")
    refused = client.post(
        "/api/runs", json={"flow": "refund", "key": "A-17"}, headers=auth("alice")
    )
    assert refused.status_code == 409
    assert refused.json()["holder"]["uuid"] == first["uuid"]
    existing = client.post(
        "/api/runs",
        json={"flow": "refund", "key": "A-17", "on_conflict": "existing"},
        headers=auth("alice"),
    )
    assert (existing.status_code, existing.json()["uuid"]) == (200, first["uuid"])
    found = client.get("/api/runs", params={"key": "A-17"}, headers=auth("bob")).json()
    assert [run["uuid"] for run in found["runs"]] == [first["uuid"]]


def test_runs_are_listed_with_filters_and_pages(client: TestClient) -> None:
    made = [start(client)["uuid"] for _ in range(3)]
    page = client.get("/api/runs", params={"limit": 2}, headers=auth("alice")).json()
    assert page["next_offset"] == 2
    rest = client.get("/api/runs", params={"limit": 2, "offset": 2}, headers=auth("alice")).json()
    assert rest["next_offset"] is None
    assert {run["uuid"] for run in page["runs"] + rest["runs"]} == set(made)
    halted = client.get("/api/runs", params={"status": "HALTED"}, headers=auth("alice")).json()
    assert len(halted["runs"]) == 3
    done = client.get("/api/runs", params={"status": "COMPLETED"}, headers=auth("alice")).json()
    assert done["runs"] == []
    assert (
        client.get("/api/runs", params={"flow": "other"}, headers=auth("alice")).json()["runs"]
        == []
    )
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert (
        client.get("/api/runs", params={"since": later}, headers=auth("alice")).json()["runs"] == []
    )
    assert (
        len(client.get("/api/runs", params={"until": later}, headers=auth("alice")).json()["runs"])
        == 3
    )
    bad = client.get("/api/runs", params={"status": "SLEEPY"}, headers=auth("alice"))
    assert (bad.status_code, bad.json()["reason"]) == (422, "invalid")


def test_a_cancelled_run_is_never_resumed_nor_answered(client: TestClient) -> None:
    run = start(client)["uuid"]
    ident = interaction_of(client, run)
    cancelled = client.post(
        f"/api/runs/{run}/cancel", json={"reason": "duplicate order"}, headers=auth("bob")
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancelled"]) == ("CANCELLED", True)
    trace = client.get(f"/api/runs/{run}", headers=auth("bob")).json()["log"]
    assert "duplicate order" in trace[-1]["message"]
    resumed = client.post(f"/api/runs/{run}/resume", headers=auth("bob"))
    assert (resumed.status_code, resumed.json()["reason"]) == (409, "cancelled")
    answered = client.post(
        f"/api/interactions/{ident}/answer",
        json={"decision": "approve", "data": {}},
        headers=auth("alice"),
    )
    assert answered.status_code == 409


def test_a_waiting_run_resumed_waits_again(client: TestClient) -> None:
    run = start(client)["uuid"]
    resumed = client.post(f"/api/runs/{run}/resume", headers=auth("alice"))
    assert resumed.status_code == 200, resumed.text
    assert [wait["step"] for wait in resumed.json()["waiting"]] == ["approve"]
    missing = client.post(
        "/api/runs/00000000-0000-4000-8000-000000000000/resume", headers=auth("alice")
    )
    assert missing.status_code == 404


def test_unknown_flows_and_runs_are_404(client: TestClient) -> None:
    unknown = client.post("/api/runs", json={"flow": "nope"}, headers=auth("alice"))
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "flow_not_found")
    run = client.get("/api/runs/00000000-0000-4000-8000-000000000000", headers=auth("alice"))
    assert run.status_code == 404
    malformed = client.get("/api/runs/not-a-uuid", headers=auth("alice"))
    assert malformed.status_code == 422


def test_mine_lists_only_what_the_user_may_still_answer(client: TestClient) -> None:
    run = start(client)["uuid"]
    ident = interaction_of(client, run)
    client.post(
        f"/api/interactions/{ident}/answer",
        json={"decision": "approve", "data": {}},
        headers=auth("alice"),
    )
    mine = {"mine": "true"}
    assert (
        client.get("/api/interactions", params=mine, headers=auth("alice")).json()["interactions"]
        == []
    )
    assert (
        client.get("/api/interactions", params=mine, headers=auth("mallory")).json()["interactions"]
        == []
    )
    [open_] = client.get("/api/interactions", params=mine, headers=auth("bob")).json()[
        "interactions"
    ]
    assert (open_["approvals"], open_["quorum"], open_["message"]) == (
        1,
        2,
        "Refund order 17 (240 EUR)?",
    )
    one = client.get(f"/api/interactions/{ident}", headers=auth("bob")).json()
    assert one["schema"] == {"type": "object", "properties": {"note": {"type": "string"}}}


def test_a_start_with_tokens_the_flow_cannot_take_is_422(client: TestClient) -> None:
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    refused = client.post(
        "/api/runs", json={"flow": "refund", "tokens": [deep]}, headers=auth("alice")
    )
    assert refused.status_code == 422
    many = client.post(
        "/api/runs", json={"flow": "refund", "tokens": [{}] * 1001}, headers=auth("alice")
    )
    assert many.status_code == 422
    unknown = client.post("/api/runs", json={"flow": "refund", "version": 7}, headers=auth("alice"))
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "flow_not_found")


def test_a_failed_run_is_resumed_and_goes_on(client: TestClient, store: Store) -> None:
    from workflow.storage import Definitions

    calls: list[int] = []

    def flaky(context: object, params: dict[str, object]) -> dict[str, object]:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the service does not answer")
        return {"ok": True}

    client.app.state.service.registry.register("flaky", flaky)  # type: ignore[attr-defined]
    Definitions(store).put("shaky", {"name": "shaky", "steps": [{"name": "s", "task": "flaky"}]})
    started = client.post("/api/runs", json={"flow": "shaky"}, headers=auth("alice")).json()
    assert started["status"] == "ERROR"
    shown = client.get(f"/api/runs/{started['uuid']}", headers=auth("alice")).json()
    assert "ConnectionError: the service does not answer" in shown["tokens"][0]["error"]
    resumed = client.post(f"/api/runs/{started['uuid']}/resume", headers=auth("alice"))
    assert resumed.json()["status"] == "COMPLETED"
    again = client.post(f"/api/runs/{started['uuid']}/resume", headers=auth("alice"))
    assert (again.status_code, again.json()["reason"]) == (409, "completed")
    cancel = client.post(f"/api/runs/{started['uuid']}/cancel", headers=auth("alice"))
    assert (cancel.status_code, cancel.json()["reason"]) == (409, "completed")


def test_a_run_of_python_callbacks_is_not_resumed_by_the_server(
    client: TestClient, store: Store
) -> None:
    from workflow.storage import PersistentWorkflowEngine

    def fail(obj: object, eng: object) -> None:
        raise ValueError("no")

    engine = PersistentWorkflowEngine.with_name("python", store=store, definition=[fail])
    with contextlib.suppress(Exception):
        engine.process([{}], stop_on_error=False)
    refused = client.post(f"/api/runs/{engine.uuid}/resume", headers=auth("alice"))
    assert (refused.status_code, refused.json()["reason"]) == (409, "no_definition")
    assert "not made from a stored flow" in refused.json()["detail"]


def test_text_no_database_stores_is_refused_with_422(client: TestClient) -> None:
    run = start(client)["uuid"]
    headers = {**auth("alice"), "Content-Type": "application/json"}
    bodies = {
        "/api/runs": [b'{"flow": "ref\\ud800"}', b'{"flow": "refund", "key": "\\ud800"}'],
        f"/api/runs/{run}/cancel": [b'{"reason": "\\ud800"}', b'{"reason": "a\\u0000b"}'],
    }
    for path, sent in bodies.items():
        for body in sent:
            refused = client.post(path, content=body, headers=headers)
            assert (refused.status_code, refused.json()["reason"]) == (422, "invalid"), body
    assert client.get(f"/api/runs/{run}", headers=auth("alice")).json()["status"] == "HALTED"


def test_a_body_over_the_limit_is_refused_with_413_before_the_route(client: TestClient) -> None:
    from workflow.web._app import MAX_BODY

    response = client.post(
        "/api/runs",
        content=b" " * (MAX_BODY + 1),
        headers={**auth("alice"), "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["reason"]) == (413, "too_large")
    assert client.get("/api/runs", headers=auth("alice")).json()["runs"] == []
