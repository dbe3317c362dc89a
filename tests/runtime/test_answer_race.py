"""Answers racing each other and racing the deadline, from many real processes at once.

Every interaction must be decided exactly once, whatever the order in which
32 processes deliver its answers (some twice, with the same idempotency key),
and an answer arriving at the deadline either decides it or is refused as
``expired``, never both. On SQLite, PostgreSQL and MariaDB.

``WORKFLOW_RACE_INTERACTIONS`` (default 1,000, the figure of the issue) and
``WORKFLOW_RACE_PROCESSES`` (default 32) size the first race;
``WORKFLOW_RACE_SEED`` replays a plan of answers.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from workflow.runtime import Waits, WaitSpec, wait_id
from workflow.storage import Store
from workflow.storage.models import utcnow

from .racing import Crowd, answer_rows, wait_rows

pytestmark = [
    pytest.mark.crash,
    pytest.mark.skipif(sys.platform == "win32", reason="needs fork()"),
]

INTERACTIONS = int(os.environ.get("WORKFLOW_RACE_INTERACTIONS") or 1000)
PROCESSES = int(os.environ.get("WORKFLOW_RACE_PROCESSES") or 32)
SEED = int(os.environ.get("WORKFLOW_RACE_SEED") or random.SystemRandom().randrange(2**32))
APPROVERS = ("ann", "bob", "cyd", "dee", "eve", "fay")
#: How many of the approvers answer each interaction: 3 always reach a quorum of 2.
ANSWERING = 4
#: The share of answers delivered a second time with the same key.
REPEATED = 0.2
#: The share of those whose second delivery names someone else (the key is in use).
IMPOSTORS = 0.1


def open_interactions(
    store: Store, count: int, spec: WaitSpec, due: list[datetime | None]
) -> list[str]:
    """Store ``count`` runs, each with one interaction ``spec`` due at ``due[i]``."""
    waits = Waits(store)
    idents = []
    for index in range(count):
        run = store.create_workflow("race")
        ident = wait_id(run, 0, spec.step, 1)
        waits.open(run, 0, ident, WaitSpec(**{**spec.__dict__, "until": due[index]}))
        idents.append(ident)
    return idents


def deal(jobs: list[dict[str, Any]], processes: int) -> list[dict[str, Any]]:
    """Deal the jobs round-robin into ``processes`` answering roles."""
    return [{"role": "answer", "jobs": jobs[index::processes]} for index in range(processes)]


def told_by_job(results: list[list[dict[str, Any]]]) -> dict[int, dict[str, Any]]:
    told = {item["job"]: item for result in results for item in result}
    assert len(told) == sum(len(result) for result in results)
    return told


# -- 32 processes, 1,000 interactions, 20 % of the answers twice ----------------------


def answer_plan(
    idents: list[str], rng: random.Random
) -> tuple[list[dict[str, Any]], list[tuple[int, int, bool]]]:
    """The answers of the race, shuffled, and the pairs (original, repeat, impostor)."""
    jobs: list[dict[str, Any]] = []
    answering: dict[str, list[str]] = {}
    for ident in idents:
        answering[ident] = rng.sample(APPROVERS, ANSWERING)
        for person in answering[ident]:
            jobs.append(
                {
                    "job": len(jobs),
                    "wait": ident,
                    "by": person,
                    "decision": rng.choice(("approve", "reject")),
                    "data": {"job": len(jobs)},
                    "key": f"{person}:{ident}",
                }
            )
    pairs = []
    for original in rng.sample(list(jobs), round(len(jobs) * REPEATED)):
        repeat = {**original, "job": len(jobs)}
        # now and then someone who does not answer this one otherwise gives the same key
        others = [who for who in APPROVERS if who not in answering[original["wait"]]]
        impostor = rng.random() < IMPOSTORS and bool(others)
        if impostor:
            who = rng.choice(others)
            answering[original["wait"]].append(who)  # each person answers once
            repeat.update(by=who, data={"job": len(jobs)})
        jobs.append(repeat)
        pairs.append((original["job"], repeat["job"], impostor))
    rng.shuffle(jobs)
    return jobs, pairs


def test_every_interaction_is_decided_exactly_once_by_32_racing_processes(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    spec = WaitSpec("ask", "approve", approvers=APPROVERS, quorum=2, reject_quorum=2)
    idents = open_interactions(store, INTERACTIONS, spec, [None] * INTERACTIONS)
    jobs, pairs = answer_plan(idents, rng)
    crowd = Crowd(tmp_path / "answers", db_url, deal(jobs, PROCESSES))
    try:
        crowd.go()
        told = told_by_job(crowd.results())
    finally:
        crowd.close()
    by_job = {job["job"]: job for job in jobs}
    assert set(told) == set(by_job), f"seed {SEED}"

    rows = wait_rows(store)
    stored = answer_rows(store)
    counted: dict[str, Counter[str]] = defaultdict(Counter)
    for row in stored:
        counted[row.wait_id][row.decision] += 1
    assert len({(row.wait_id, row.by) for row in stored}) == len(stored), "someone counted twice"

    # every interaction decided once, its counters equal to its answers' rows
    for ident in idents:
        row = rows[ident]
        assert row.phase == "decided", (SEED, ident, row.phase)
        assert row.approvals == counted[ident]["approve"], (SEED, ident)
        assert row.rejections == counted[ident]["reject"], (SEED, ident)
        if row.decision == "approved":
            assert (row.approvals, row.rejections <= 1) == (2, True), (SEED, ident)
        else:
            assert row.decision == "rejected", (SEED, ident, row.decision)
            assert (row.rejections, row.approvals <= 1) == (2, True), (SEED, ident)

    # what the processes were told agrees with the rows: none lost, none doubled
    recorded = [told[job] for job in told if told[job].get("recorded")]
    assert Counter(
        (by_job[item["job"]]["wait"], item["answer"]["by"]) for item in recorded
    ) == Counter((row.wait_id, row.by) for row in stored), f"seed {SEED}"
    for item in recorded:
        job = by_job[item["job"]]
        assert (item["answer"]["decision"], item["answer"]["data"]) == (
            job["decision"],
            job["data"],
        )
    deciders = [item for item in told.values() if item.get("decided")]
    assert len(deciders) == INTERACTIONS, f"seed {SEED}"
    assert {by_job[item["job"]]["wait"] for item in deciders} == set(idents)
    for item in deciders:
        row = rows[by_job[item["job"]]["wait"]]
        assert (
            row.decision
            == {"approve": "approved", "reject": "rejected"}[item["answer"]["decision"]]
        )
        assert item["answer"]["at"] == row.decided.isoformat(timespec="microseconds")
    refused = Counter(item["refused"] for item in told.values() if "refused" in item)
    assert set(refused) <= {"already_decided", "key_in_use"}, (SEED, refused)
    for item in told.values():
        if item.get("refused") == "already_decided":
            assert item["decision"] == rows[by_job[item["job"]]["wait"]].decision

    # a key given twice: one answer, told twice (or refused twice, once decided)
    for first, second, impostor in pairs:
        one, two = sorted((told[first], told[second]), key=lambda item: "refused" in item)
        if "refused" in one:
            assert one["refused"] == two["refused"] == "already_decided", (SEED, one, two)
        elif impostor:
            assert (one["recorded"], two["refused"]) == (True, "key_in_use"), (SEED, one, two)
        else:
            assert "refused" not in two, (SEED, one, two)
            assert {one["recorded"], two["recorded"]} == {True, False}, (SEED, one, two)
            assert one["answer"] == two["answer"], (SEED, one, two)
            assert not (one["decided"] and two["decided"]), (SEED, one, two)


# -- answers at the deadline ------------------------------------------------------------


def test_an_answer_racing_the_deadline_either_decides_or_is_refused_as_expired(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    per = 100 if INTERACTIONS >= 300 else max(INTERACTIONS // 3, 1)
    spec = WaitSpec("ask", "approve", approvers=("ann", "bob"))
    # a third due before anyone answers, a third far ahead: opened now
    base = utcnow()
    due = [base + timedelta(seconds=0.5)] * per + [base + timedelta(hours=1)] * per
    idents = open_interactions(store, 2 * per, spec, due)
    group = [0] * per + [1] * per
    where = tmp_path / "deadline"
    roles = [{"role": "answer", "jobs_from": str(where / f"jobs-{i}.json")} for i in range(8)]
    crowd = Crowd(where, db_url, roles + [{"role": "fire", "limit": 20}] * 2)
    try:
        crowd.ready()
        # the racing third, opened once every process waits at the gate: due
        # 1.5 to 3.5 s from now, each answer given then, give or take 20 ms
        start = utcnow()
        racing = [start + timedelta(seconds=1.5 + 2 * rng.random()) for _ in range(per)]
        idents += open_interactions(store, per, spec, racing)
        due += racing
        group += [2] * per
        jobs = []
        for index, ident in enumerate(idents):
            for person, decision in (
                ("ann", "approve"),
                ("bob", rng.choice(("approve", "reject"))),
            ):
                at = due[index] + timedelta(seconds=rng.uniform(-0.02, 0.02))
                jobs.append(
                    {
                        "job": len(jobs),
                        "wait": ident,
                        "by": person,
                        "decision": decision,
                        "data": None,
                        "key": None,
                        "at": at.isoformat() if group[index] == 2 else None,
                    }
                )
        # eight processes answer the racing third at its times, then the others
        timed = sorted((job for job in jobs if job["at"]), key=lambda job: job["at"])
        settled = [job for job in jobs if job["at"] is None]
        for index, role in enumerate(deal(timed + settled, 8)):
            (where / f"jobs-{index}.json").write_text(json.dumps(role["jobs"]))
        crowd.go()
        crowd.wait_for(range(8))  # the answerers are done: stop the firers
        crowd.stop()
        results = crowd.results()
    finally:
        crowd.close()
    told = told_by_job(results[:8])
    fired = sum(result["fired"] for result in results[8:])
    asked: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        asked[job["wait"]].append(told[job["job"]])
    rows = wait_rows(store)
    stored: dict[str, list[Any]] = defaultdict(list)
    for answer in answer_rows(store):
        stored[answer.wait_id].append(answer)
    outcomes: Counter[tuple[int, str]] = Counter()
    for index, ident in enumerate(idents):
        row = rows[ident]
        mine = asked[ident]
        assert row.phase == "decided", (SEED, ident)
        outcomes[(group[index], row.decision)] += 1
        refusals = sorted(item.get("refused", "") for item in mine)
        if row.decision == "timed_out":
            assert row.decided >= row.due, (SEED, ident)
            assert stored[ident] == [], (SEED, ident)
            assert refusals == ["expired", "expired"], (SEED, ident, mine)
            assert {item["decision"] for item in mine} == {"timed_out"}
        else:
            assert row.decided < row.due, (SEED, ident)
            assert len(stored[ident]) == 1, (SEED, ident)
            assert refusals == ["", "already_decided"], (SEED, ident, mine)
            [decider] = [item for item in mine if "refused" not in item]
            assert (decider["recorded"], decider["decided"]) == (True, True)
            assert decider["answer"]["by"] == stored[ident][0].by
    # the past third timed out, the far third was answered
    assert outcomes[(0, "timed_out")] == group.count(0), (SEED, outcomes)
    assert outcomes[(1, "timed_out")] == 0, (SEED, outcomes)
    assert fired <= sum(
        value for (_, decision), value in outcomes.items() if decision == "timed_out"
    )
