"""Answers through the API on PostgreSQL: on the event loop, on connections of its own.

Runs on PostgreSQL (the ``db_url`` fixture; a missing server fails CI).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.web.conftest import auth, start
from workflow.runtime import Waits, WaitSpec
from workflow.runtime._answer_fast import AnswerPool
from workflow.storage import Store

pytestmark = pytest.mark.parametrize("store", ["postgresql"], indirect=True)


#: An approval, with the data the step's schema asks for.
APPROVE = {"decision": "approve", "data": {"note": "ok"}}


def statements(store: Store) -> list[str]:
    """The statements the store's own engine runs from now on (their first word)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0])

    sa.event.listen(store.sql_engine, "before_cursor_execute", note)
    return seen


def waiting(client: TestClient) -> str:
    """Start a refund run; return the id of the interaction it waits at."""
    run = start(client)["uuid"]
    found = client.get("/api/interactions", headers=auth("alice")).json()["interactions"]
    [ident] = [item["id"] for item in found if item["run"] == run]
    return str(ident)


def test_an_answer_that_decides_nothing_takes_no_thread_and_no_pooled_connection(
    client: TestClient, store: Store
) -> None:
    ident = waiting(client)
    seen = statements(store)
    url = f"/api/interactions/{ident}/answer"
    data = {"note": "ok — ünïcode ✓"}
    response = client.post(url, json={"decision": "approve", "data": data}, headers=auth("alice"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["by"], body["decided"], body["approvals"], body["run_status"]) == (
        "alice",
        False,
        1,
        "HALTED",
    )
    assert [word for word in seen if word != "SELECT"] == []  # nothing written by the engine
    wait = Waits(store).get(ident)
    assert [(a.by, a.data) for a in wait.answers] == [("alice", data)]
    # the answer that decides goes on in a thread: the run continues and completes
    response = client.post(url, json=APPROVE, headers=auth("bob"))
    assert response.status_code == 200, response.text
    assert (response.json()["decided"], response.json()["run_status"]) == (True, "COMPLETED")


def test_refusals_from_the_loop_have_the_statuses_of_the_thread(client: TestClient) -> None:
    ident = waiting(client)
    url = f"/api/interactions/{ident}/answer"
    assert client.post(url, json=APPROVE, headers=auth("mallory")).status_code == 403
    first = client.post(url, json=APPROVE, headers=auth("alice"))
    assert first.status_code == 200
    again = client.post(url, json={"decision": "reject", "data": {}}, headers=auth("alice"))
    assert (again.status_code, again.json()["reason"]) == (409, "already_answered")
    unknown = client.post(
        f"/api/interactions/{uuid.uuid4()}/answer", json=APPROVE, headers=auth("bob")
    )
    assert unknown.status_code == 404
    keyed = {**auth("bob"), "Idempotency-Key": "k-1"}
    decided = client.post(url, json=APPROVE, headers=keyed)
    replayed = client.post(url, json=APPROVE, headers=keyed)
    assert decided.status_code == replayed.status_code == 200
    assert replayed.json()["recorded"] is False
    late = client.post(url, json=APPROVE, headers=auth("carol"))
    assert (late.status_code, late.json()["reason"], late.json()["by"]) == (
        409,
        "already_decided",
        ["alice", "bob"],
    )


def test_a_killed_connection_is_replaced_and_the_answer_still_lands(
    client: TestClient, store: Store
) -> None:
    pool = client.app.state.service.answers  # type: ignore[attr-defined]
    assert isinstance(pool, AnswerPool)
    pids = [conn.info.backend_pid for conn in pool._all]
    with store.autocommit("kill") as conn:
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    for user in ("alice", "bob"):  # each pooled connection dead: both answers land all the same
        ident = waiting(client)
        response = client.post(
            f"/api/interactions/{ident}/answer", json=APPROVE, headers=auth(user)
        )
        assert response.status_code == 200, response.text
        assert [a.by for a in Waits(store).get(ident).answers] == [user]
    ident = waiting(client)
    seen = statements(store)
    response = client.post(f"/api/interactions/{ident}/answer", json=APPROVE, headers=auth("carol"))
    assert response.status_code == 200
    assert [word for word in seen if word != "SELECT"] == []  # the loop's fresh connections
    alive = [conn.info.backend_pid for conn in pool._all if not conn.closed]
    assert alive
    assert not set(alive) & set(pids)


def test_answers_at_once_on_the_loop_each_count_once(store: Store) -> None:
    run = store.create_workflow("answers")
    ident = str(uuid.uuid4())
    voters = [f"user{n}" for n in range(12)]
    Waits(store).open(run, 0, ident, WaitSpec("ask", "ship", message="Ship?", quorum=len(voters)))

    async def answer_all() -> list[Any]:
        pool = await AnswerPool.open(store, 3)
        try:

            async def one(by: str) -> Any:
                found = await pool.answer(ident, by, "approve", None, None)
                if found is None:  # the wait moved since the read: the locked way counts it
                    return await asyncio.to_thread(
                        Waits(store).answer, ident, by=by, decision="approve"
                    )
                return found

            return await asyncio.gather(*(one(by) for by in voters))
        finally:
            await pool.close()

    outcomes = asyncio.run(answer_all())
    assert sum(1 for done in outcomes if done.decided) == 1
    wait = Waits(store).get(ident)
    assert (wait.phase, wait.approvals) == ("decided", len(voters))
    assert sorted(a.by for a in wait.answers) == sorted(voters)


def test_an_unreachable_database_is_named_when_the_pool_opens(store: Store) -> None:
    from workflow.errors import DatabaseUnavailableError

    url = store.sql_engine.url.set(port=1)
    elsewhere = Store(url.render_as_string(hide_password=False))
    with pytest.raises(DatabaseUnavailableError, match="the database is unavailable"):
        asyncio.run(AnswerPool.open(elsewhere, 2))
    elsewhere.dispose()


def test_a_connection_lost_while_writing_answers_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow.errors import DatabaseUnavailableError

    ident = waiting(client)
    pool = client.app.state.service.answers  # type: ignore[attr-defined]

    async def lost(*args: Any) -> Any:
        raise DatabaseUnavailableError("the database is unavailable: server closed the connection")

    monkeypatch.setattr(pool, "answer", lost)
    response = client.post(f"/api/interactions/{ident}/answer", json=APPROVE, headers=auth("alice"))
    assert (response.status_code, response.json()["reason"]) == (503, "unavailable")
    assert "server closed the connection" in response.json()["detail"]


def test_an_answer_cancelled_while_its_write_waits_leaves_no_connection_mid_statement(
    store: Store,
) -> None:
    run = store.create_workflow("answers")
    ident = str(uuid.uuid4())
    Waits(store).open(run, 0, ident, WaitSpec("ask", "ship", message="Ship?", quorum=3))

    async def cancel_then_answer() -> Any:
        pool = await AnswerPool.open(store, 1)
        try:
            with store.transaction("hold the row") as conn:  # the write waits for this lock
                conn.execute(
                    sa.text("SELECT id FROM wf_wait WHERE id = :i FOR UPDATE"), {"i": ident}
                )
                task = asyncio.ensure_future(pool.answer(ident, "ann", "approve", None, None))
                await asyncio.sleep(0.5)
                assert not task.done()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            [conn] = pool._all
            assert conn.closed  # never handed out again with a statement under way
            found = await pool.answer(ident, "bob", "approve", None, None)
            assert not pool._all[0].closed
            return found
        finally:
            await pool.close()

    done = asyncio.run(cancel_then_answer())
    assert done is not None
    assert done.answer.by == "bob"
    assert "bob" in [a.by for a in Waits(store).get(ident).answers]
