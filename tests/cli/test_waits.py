"""``workflow waiting``, ``answer``, ``send`` and ``worker`` against real processes and databases.

The runs are Python callback lists built with :mod:`workflow.runtime`'s
``ASK``, ``SLEEP`` and ``RECEIVE``, in a module written to the working
directory and run with ``workflow run waitdefs:NAME``; every command is a
real ``python -m workflow`` process, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import TASKS, Result, subprocess_env
from tests.storage.conftest import BACKENDS, empty_database
from workflow.cli._context import CLIError
from workflow.cli._uuids import resolve_interaction
from workflow.runtime import Waits, WaitSpec
from workflow.storage import PersistentWorkflowEngine, Store

#: Hundreds of real ``workflow`` processes: run once, on the main Python, in CI.
pytestmark = pytest.mark.slow

DEFINITIONS = """
from workflow.runtime import ASK, RECEIVE, SLEEP


def keep(name):
    def task(obj, eng):
        obj.data[name] = obj.extra_data[name]

    task.__name__ = "keep_" + name
    return task


def woke(obj, eng):
    obj.data["woke"] = True


review = [*ASK("review", "approve the paper?", approvers=["alice", "bob"], quorum=2),
          keep("review")]
signed = [*ASK("sign", "sign it", schema={"type": "object", "required": ["signature"]}),
          keep("sign")]
late = [*ASK("late", "answer quickly", timeout="PT0.1S"), keep("late")]
nap = [*SLEEP("nap", "PT0.1S"), woke]
inbox = [*RECEIVE("payment", "paid"), keep("payment")]
later = [*ASK("start", "start the order?"), *RECEIVE("payment", "paid"), keep("payment")]
twice = [*ASK("first", "first?"), *ASK("second", "second?")]
"""


class Runs:
    """Run ``workflow`` processes on one database, with the definitions module importable."""

    def __init__(self, workdir: Path, url: str) -> None:
        self.workdir = workdir
        self.url = url

    def argv(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "workflow", "--database", self.url, "--import", TASKS, *argv]

    def __call__(self, *argv: str) -> Result:
        done = subprocess.run(
            self.argv(*argv),
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=subprocess_env(),
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, name: str) -> str:
        """Run ``waitdefs:name`` until it waits; return its uuid."""
        started = self("--import", "waitdefs", "--json", "run", f"waitdefs:{name}")
        assert started.code == 3, started.err
        return str(started.json()["uuid"])

    def interactions(self, *argv: str) -> list[dict[str, Any]]:
        listed = self("--json", "waiting", *argv)
        assert listed.code == 0, listed.err
        found: list[dict[str, Any]] = listed.json()
        return found

    def show(self, uuid: str) -> dict[str, Any]:
        shown = self("--json", "show", uuid)
        assert shown.code == 0, shown.err
        found: dict[str, Any] = shown.json()
        return found


@pytest.fixture(params=BACKENDS)
def runs(request: pytest.FixtureRequest, workdir: Path, tmp_path: Path) -> Runs:
    (workdir / "waitdefs.py").write_text(DEFINITIONS)
    return Runs(workdir, empty_database(request.param, tmp_path))


def the_interaction(runs: Runs, uuid: str) -> str:
    [found] = [item for item in runs.interactions() if item["run"] == uuid]
    return str(found["id"])


def test_waiting_lists_what_each_person_may_still_answer(runs: Runs) -> None:
    uuid = runs.start("review")
    table = runs("waiting")
    assert table.code == 0, table.err
    header, row = table.out.splitlines()
    assert header.split() == [
        "ID", "RUN", "FLOW", "STEP", "MESSAGE", "APPROVERS", "ANSWERS", "DEADLINE", "(UTC)"
    ]  # fmt: skip
    ident = the_interaction(runs, uuid)
    assert row.startswith(f"{ident[:8]}  {uuid[:8]}  waitdefs:review  review  approve the paper?")
    assert "alice, bob  0/2 approvals  -" in row
    [item] = runs.interactions()
    assert item["approvers"] == ["alice", "bob"]
    assert (item["quorum"], item["approvals"], item["answers"], item["due"]) == (2, 0, [], None)
    assert runs("waiting", "--as", "carol").out == "no interaction waits for an answer for carol\n"
    assert runs("answer", ident[:6], "--as", "alice", "--approve").code == 0
    assert runs.interactions("--as", "alice") == []
    [left] = runs.interactions("--as", "bob")
    assert [answer["by"] for answer in left["answers"]] == ["alice"]
    assert "1/2 approvals" in runs("waiting", "--as", "bob").out


def test_answers_are_counted_once_and_refusals_name_their_reason(runs: Runs) -> None:
    uuid = runs.start("review")
    ident = the_interaction(runs, uuid)
    short = ident[:8]
    stranger = runs("answer", short, "--as", "carol", "--approve")
    assert stranger.code == 2
    assert stranger.err == "workflow: error: answer refused: carol is not an approver of 'review'\n"
    first = runs("answer", short, "--as", "alice", "--approve", "--key", "k1", "--data", '{"n": 1}')
    assert first.code == 0, first.err
    assert f"recorded alice's approval of step 'review' of run {uuid}: 1/2 approvals" in first.out
    again = runs("--json", "answer", short, "--as", "alice", "--approve", "--key", "k1")
    assert again.code == 0, again.err
    assert (again.json()["recorded"], again.json()["approvals"], again.json()["data"]) == (
        False, 1, {"n": 1}
    )  # fmt: skip
    said = runs("answer", short, "--as", "alice", "--approve", "--key", "k1")
    assert "with the key 'k1' was recorded before" in said.out
    twice = runs("answer", short, "--as", "alice", "--reject")
    assert twice.code == 2
    assert twice.err == (
        "workflow: error: answer refused: alice answered already (approve); "
        "an approver counts once\n"
    )
    other_key = runs("--json", "answer", short, "--as", "bob", "--approve", "--key", "k1")
    assert (other_key.code, other_key.json()["reason"]) == (2, "key_in_use")
    decided = runs("answer", short, "--as", "bob", "--approve", "--no-continue")
    assert decided.code == 0, decided.err
    assert "decided: approved by alice, bob" in decided.out
    assert "the run goes on when a `workflow worker` (given its --import)" in decided.out
    late = runs("--json", "answer", short, "--as", "bob", "--reject")
    assert late.code == 2
    error = late.json()
    assert error["error"] == "answer refused: already decided: approved by alice, bob"
    assert (error["reason"], error["decision"], error["by"]) == (
        "already_decided", "approved", ["alice", "bob"]
    )  # fmt: skip
    unknown = runs("--json", "answer", "00000000", "--as", "bob", "--approve")
    assert (unknown.code, unknown.json()["reason"]) == (2, "not_found")
    assert runs("show", uuid).out.count("approve") >= 2  # the answers are shown
    # --no-continue left the run to a worker: one pass continues it.
    assert runs.show(uuid)["status"] == "HALTED"
    worked = runs("--import", "waitdefs", "worker", "--once")
    assert worked.code == 0, worked.err
    assert f"continued run {uuid}: completed" in worked.out
    shown = runs.show(uuid)
    assert shown["status"] == "COMPLETED"
    assert shown["tokens"][0]["data"]["review"]["decision"] == "approved"
    [wait] = shown["waits"]
    assert (wait["phase"], wait["decision"]) == ("done", "approved")
    assert [(a["by"], a["decision"], a["key"]) for a in wait["answers"]] == [
        ("alice", "approve", "k1"), ("bob", "approve", None)
    ]  # fmt: skip


def test_a_deciding_answer_continues_the_run_in_its_process(runs: Runs) -> None:
    uuid = runs.start("review")
    ident = the_interaction(runs, uuid)
    assert runs("answer", ident, "--as", "alice", "--approve").code == 0
    done = runs("--import", "waitdefs", "answer", ident, "--as", "bob", "--approve")
    assert done.code == 0, done.err
    assert done.out.splitlines()[1:] == [
        "decided: approved by alice, bob",
        f"run {uuid} continued: completed",
    ]
    shown = runs.show(uuid)
    assert shown["status"] == "COMPLETED"
    assert shown["tokens"][0]["data"]["review"]["approvals"] == 2
    # A run that goes on to its next question says so.
    uuid = runs.start("twice")
    ident = the_interaction(runs, uuid)
    first = runs("--import", "waitdefs", "answer", ident, "--as", "ann", "--approve")
    assert first.code == 0, first.err
    assert first.out.splitlines()[-1] == f"run {uuid} continued: waiting at step 'second'"
    [item] = runs.show(uuid)["waits"][1:]
    assert (item["step"], item["phase"]) == ("second", "waiting")
    text = runs("--import", "waitdefs", "answer", the_interaction(runs, uuid), "--as", "ann",
                "--reject", "--no-continue")  # fmt: skip
    assert text.code == 0, text.err
    worked = runs("--import", "waitdefs", "worker", "--once")
    assert worked.out == f"continued run {uuid}: completed\n"
    # One rejection decides (reject quorum 1); without the run's module, it is left to a worker.
    uuid = runs.start("review")
    ident = the_interaction(runs, uuid)
    rejected = runs("--json", "answer", ident, "--as", "bob", "--reject", "--key", "r1")
    assert rejected.code == 0, rejected.err
    assert (rejected.json()["decision"], rejected.json()["continued"]) == ("rejected", False)
    assert "--import waitdefs" in rejected.json()["not_continued"]
    assert runs.show(uuid)["status"] == "HALTED"
    # The same command again, with the module allowed: the same answer, and the run goes on.
    retried = runs(
        "--import", "waitdefs", "answer", ident, "--as", "bob", "--reject", "--key", "r1"
    )
    assert retried.code == 0, retried.err
    assert retried.out.splitlines()[-1] == f"run {uuid} continued: completed"
    assert runs.show(uuid)["tokens"][0]["data"]["review"]["decision"] == "rejected"


def test_refusals_for_schema_deadline_and_cancelled_runs(runs: Runs) -> None:
    uuid = runs.start("signed")
    ident = the_interaction(runs, uuid)
    wrong = runs("answer", ident, "--as", "ann", "--approve", "--data", '{"name": "ann"}')
    assert wrong.code == 2
    assert wrong.err.startswith(
        "workflow: error: answer refused: answer does not match the schema: $: 'signature'"
    )
    signed = runs("--import", "waitdefs", "answer", ident, "--as", "ann", "--approve",
                  "--data", '{"signature": "A."}')  # fmt: skip
    assert signed.code == 0, signed.err
    assert runs.show(uuid)["tokens"][0]["data"]["sign"]["answers"][0]["data"] == {"signature": "A."}
    uuid = runs.start("late")
    ident = the_interaction(runs, uuid)
    time.sleep(0.2)  # the deadline of PT0.1S passes (the database's clock decides)
    expired = runs("--import", "waitdefs", "--json", "answer", ident, "--as", "ann", "--approve")
    assert expired.code == 2
    assert (expired.json()["reason"], expired.json()["decision"]) == ("expired", "timed_out")
    assert expired.json()["error"].startswith("answer refused: expired")
    # That answer's transaction decided the wait (timed out), and the run went on.
    shown = runs.show(uuid)
    assert shown["status"] == "COMPLETED"
    assert shown["tokens"][0]["data"]["late"]["decision"] == "timed_out"
    uuid = runs.start("review")
    ident = the_interaction(runs, uuid)
    assert runs("cancel", uuid).code == 0
    cancelled = runs("answer", ident, "--as", "alice", "--approve")
    assert cancelled.code == 2
    assert f"answer refused: run {uuid} was cancelled" in cancelled.err


def test_a_sleep_goes_on_with_a_worker_pass_once_its_time_passed(runs: Runs) -> None:
    uuid = runs.start("nap")
    assert "sleeping until" in runs("show", uuid).out
    time.sleep(0.2)
    worked = runs("--import", "waitdefs", "--json", "worker", "--once")
    assert worked.code == 0, worked.err
    [state] = worked.json()["continued"]
    assert (state["uuid"], state["status"], state["waiting"]) == (uuid, "COMPLETED", [])
    assert runs.show(uuid)["tokens"][0]["data"] == {"woke": True}
    idle = runs("--import", "waitdefs", "worker", "--once")
    assert (idle.code, idle.out) == (0, "nothing to do\n")


def test_messages_are_taken_by_a_waiting_step_or_kept_for_it_once_per_key(runs: Runs) -> None:
    uuid = runs.start("inbox")
    sent = runs("send", uuid[:6], "paid", "--data", '{"amount": 3}', "--key", "p1")
    assert sent.code == 0, sent.err
    assert (
        sent.out.splitlines()[1] == "step 'payment' took it; a `workflow worker` continues the run"
    )
    again = runs("--json", "send", uuid, "paid", "--data", '{"amount": 4}', "--key", "p1")
    assert again.code == 0, again.err
    assert (again.json()["duplicate"], again.json()["taken_by"]["step"]) == (True, "payment")
    assert runs("--import", "waitdefs", "worker", "--once").code == 0
    shown = runs.show(uuid)
    assert shown["status"] == "COMPLETED"
    payment = shown["tokens"][0]["data"]["payment"]
    assert (payment["data"], payment["key"], payment["received"]) == ({"amount": 3}, "p1", True)
    finished = runs("--json", "send", uuid, "paid")
    assert finished.code == 2
    assert (finished.json()["reason"], finished.json()["status"]) == ("completed", "COMPLETED")
    assert runs("send", "00000000-0000-0000-0000-000000000000", "paid").code == 2

    # Sent before the run reaches its receive step: kept, and taken when it gets there.
    uuid = runs.start("later")
    kept = runs("--json", "send", uuid, "paid", "--data", "5")
    assert kept.code == 0, kept.err
    assert (kept.json()["kept"], kept.json()["taken_by"]) == (True, None)
    ident = the_interaction(runs, uuid)
    answered = runs("--import", "waitdefs", "answer", ident, "--as", "ann", "--approve")
    assert answered.code == 0, answered.err
    assert answered.out.splitlines()[-1] == f"run {uuid} continued: completed"
    shown = runs.show(uuid)
    assert shown["tokens"][0]["data"]["payment"]["data"] == 5
    assert [wait["phase"] for wait in shown["waits"]] == ["done", "done"]
    idle = runs("--import", "waitdefs", "worker", "--once")  # nothing left for a worker
    assert (idle.code, idle.out) == (0, "nothing to do\n")


def test_a_worker_process_continues_runs_until_sigterm(runs: Runs) -> None:
    uuid = runs.start("review")
    ident = the_interaction(runs, uuid)
    worker = subprocess.Popen(
        runs.argv("--import", "waitdefs", "worker", "--poll", "0.05"),
        cwd=runs.workdir,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for person in ("alice", "bob"):
            answered = runs("answer", ident, "--as", person, "--approve", "--no-continue")
            assert answered.code == 0, answered.err
        deadline = time.monotonic() + 60  # a bound for a broken worker, not a timing assertion
        while runs.show(uuid)["status"] != "COMPLETED":
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker never continued the run"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    lines = out.splitlines()
    assert any(line.endswith(f"continued run {uuid}: completed") for line in lines), out
    assert lines[-1] == "worker stopped (SIGTERM)"
    assert "SIGTERM: the worker stops after the run it continues" in err


def test_interaction_prefixes_resolve_like_run_uuids(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ids.sqlite'}")
    store.create_all()
    try:
        engine = PersistentWorkflowEngine.with_name("ids", store=store, definition=[])
        waits = Waits(store)
        made = [f"abcd0000-0000-5000-8000-00000000000{n}" for n in (1, 2)]
        for n, ident in enumerate(made):
            waits.open(engine.uuid, n, ident, WaitSpec("ask", f"step{n}"))
        nap = WaitSpec("sleep", "nap", timeout=timedelta(hours=1))
        waits.open(engine.uuid, 2, "abce0000-0000-5000-8000-000000000003", nap)
        assert resolve_interaction(store, "ABCD0000-0000-5000-8000-000000000002") == made[1]
        listed = f"2 interactions have an id starting with 'abcd': {made[0]}, {made[1]};"
        with pytest.raises(CLIError, match=f"{listed} give more of the id"):
            resolve_interaction(store, "abcd")
        with pytest.raises(CLIError, match="no interaction has an id starting with 'abce'"):
            resolve_interaction(store, "abce")  # a sleep is no interaction
        assert resolve_interaction(store, "abce0000-0000-5000-8000-000000000003").startswith("abce")
        with pytest.raises(CLIError, match="too short to find an interaction by"):
            resolve_interaction(store, "ab")
    finally:
        store.dispose()


def test_the_help_lists_the_wait_commands() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "workflow", "--help"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    for command in ("waiting", "answer", "send", "worker"):
        assert re.search(rf"^    {command} ", shown.stdout, re.MULTILINE), command
    assert "answer: 0 recorded (or decided), 2 refused, with the reason" in shown.stdout


def test_names_and_data_people_give_reach_the_terminal_escaped(runs: Runs) -> None:
    uuid = runs.start("later")
    ident = the_interaction(runs, uuid)
    who = "mal\u202elory"
    answered = runs("answer", ident, "--as", who, "--approve", "--data", '"\\u001b[2J"')
    assert answered.code == 0, answered.err
    assert "recorded mal\\u202elory's approval" in answered.out
    shown = runs("show", uuid)
    assert "\u202e" not in shown.out
    assert "\x1b" not in shown.out
    assert "mal\\u202elory" in shown.out
    assert runs.show(uuid)["waits"][0]["answers"][0]["by"] == who  # JSON keeps it exactly
