"""SIGKILL a worker at random moments: resuming from the database loses nothing.

Each trial takes one workflow of ``TOKENS`` tokens through the definition of
``crash_worker.py``: a worker process starts it and is killed with SIGKILL at
a random moment, the next worker resumes it from the database and may be
killed too, and so on until a worker completes the run. Half the kills come
at any moment of a worker's life (even before the run is stored), the others
right after a random task call, so that they land inside tokens and tasks.

After each kill the database must hold only what the checkpoint policy
commits. At the end every token is COMPLETED exactly once with the data of
one clean pass, the transition log agrees with the rows, and the line each
task call writes outside the database shows that nothing ran more often than
the policy allows, and that no token ran again once it was COMPLETED.

Workers are forked by ``crash_worker.py --serve`` processes, which import
SQLAlchemy once instead of once per worker; trials run a few at a time, each
on its own workflow of the same database. One test also runs the worker as a
plain program.

A failure names its seed: ``WORKFLOW_CRASH_SEED=<seed>`` replays the same
plan of kills (the moments they land on still vary with the machine's
timing). ``WORKFLOW_CRASH_TRIALS=N`` runs N trials per backend and policy; in
CI (``CI`` set) never fewer than the required 50 on SQLite and 20 on each
server database.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any, TextIO

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.storage import (
    CheckpointPolicy,
    Store,
    TokenRecord,
    TransitionRecord,
    WorkflowRecord,
)

from .crash_worker import PAUSE, clean_pass

WORKER = Path(__file__).with_name("crash_worker.py")
TOKENS = 8
#: At most this many workers of a trial are killed; the next one must complete the run.
MAX_KILLS = 3
#: Seconds a worker that is not meant to be killed may take before it counts as hung.
TIMEOUT = 60.0
#: Trials that run at the same time, each on its own fork server.
PARALLEL = 3
SEED = int(os.environ.get("WORKFLOW_CRASH_SEED") or random.SystemRandom().randrange(2**32))

#: Trials per policy and backend kind: (required in CI, default elsewhere).
TRIALS = {
    CheckpointPolicy.TOKEN: {"sqlite": (50, 10), "server": (20, 5)},
    CheckpointPolicy.TASK: {"sqlite": (12, 4), "server": (5, 3)},
    CheckpointPolicy.HALT: {"sqlite": (6, 3), "server": (3, 3)},
}

pytestmark = [
    pytest.mark.crash,
    pytest.mark.skipif(sys.platform == "win32", reason="needs fork() and SIGKILL"),
]

INITIAL = ObjectStatus.INITIAL.value
RUNNING = ObjectStatus.RUNNING.value
COMPLETED = ObjectStatus.COMPLETED.value


def trial_count(backend: str, policy: CheckpointPolicy) -> int:
    required, default = TRIALS[policy]["sqlite" if backend == "sqlite" else "server"]
    wanted = os.environ.get("WORKFLOW_CRASH_TRIALS")
    count = int(wanted) if wanted else default
    return max(count, required) if os.environ.get("CI") else count


# -- running workers ------------------------------------------------------------------


@dataclass
class Outcome:
    """How one worker ended: its exit status (-9 when killed), its time and its output."""

    returncode: int
    seconds: float
    output: str


class ForkServer:
    """``crash_worker.py --serve``: forks workers that have everything imported already."""

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def run(self, argv: list[str], *, log: Path, kill: Kill | None) -> Outcome:
        """Fork a worker with ``argv``; SIGKILL it as ``kill`` says, unless it ended before."""
        job: dict[str, Any] = {"argv": argv, "log": str(log), "timeout": TIMEOUT}
        if kill is None:
            job["kill_after"] = TIMEOUT
        else:
            job.update(kill_after=kill.delay, after_calls=kill.after_calls, effects=kill.effects)
        stdin, stdout = self._pipes()
        stdin.write(json.dumps(job) + "\n")
        stdin.flush()
        answer = stdout.readline()
        if not answer:
            raise RuntimeError(f"the fork server died: {self.log.read_text()}")
        result = json.loads(answer)
        output = log.read_text() if log.exists() else ""
        return Outcome(result["returncode"], result["seconds"], output)

    def close(self) -> None:
        stdin, stdout = self._pipes()
        stdin.close()
        self.process.wait(timeout=TIMEOUT)
        stdout.close()

    def _pipes(self) -> tuple[TextIO, TextIO]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        return self.process.stdin, self.process.stdout


@pytest.fixture(scope="module")
def fork_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue[ForkServer]]:
    """A queue of fork servers, one per trial running at the same time."""
    folder = tmp_path_factory.mktemp("fork-servers")
    servers = [ForkServer(folder / f"server-{i}.log") for i in range(PARALLEL)]
    queue: Queue[ForkServer] = Queue()
    for server in servers:
        queue.put(server)
    yield queue
    for server in servers:
        server.close()


@contextmanager
def borrow(servers: Queue[ForkServer]) -> Iterator[ForkServer]:
    """Take a fork server from ``servers`` (waiting for one), and give it back."""
    server = servers.get()
    try:
        yield server
    finally:
        servers.put(server)


# -- reading and checking the database -------------------------------------------------


@dataclass
class Stored:
    """What the database holds about the workflow called ``name``."""

    workflows: list[dict[str, Any]]
    tokens: list[dict[str, Any]]
    transitions: list[dict[str, Any]]

    @property
    def workflow(self) -> dict[str, Any] | None:
        return self.workflows[0] if self.workflows else None


def read(store: Store, name: str) -> Stored:
    """Read the run called ``name`` in one transaction, so that its rows agree.

    A server may still be committing the last transaction of a worker that was
    just killed: reads in separate transactions could each see a different side
    of that commit.
    """
    workflows = WorkflowRecord.__table__
    tokens = TokenRecord.__table__
    transitions = TransitionRecord.__table__
    options = (
        {} if store.engine.dialect.name == "sqlite" else {"isolation_level": "REPEATABLE READ"}
    )
    with store.engine.connect().execution_options(**options) as conn, conn.begin():
        query = sa.select(workflows).where(workflows.c.name == name)
        found = [dict(row) for row in conn.execute(query).mappings()]
        if len(found) != 1:
            return Stored(found, [], [])
        uid = found[0]["uuid"]
        query = sa.select(tokens).where(tokens.c.workflow_uuid == uid).order_by(tokens.c.position)
        token_rows = [dict(row) for row in conn.execute(query).mappings()]
        query = (
            sa.select(transitions)
            .where(transitions.c.workflow_uuid == uid)
            .order_by(transitions.c.id)
        )
        log = [dict(row) for row in conn.execute(query).mappings()]
    return Stored(found, token_rows, log)


def check_stored(stored: Stored, policy: CheckpointPolicy, where: str) -> None:
    """Check what any moment of a run may leave in the database under ``policy``."""
    assert len(stored.workflows) <= 1, f"{where}: the run is stored twice: {stored.workflows}"
    workflow = stored.workflow
    if workflow is None:
        return
    if not stored.tokens:
        assert workflow["status"] == WorkflowStatus.NEW.value, (
            f"{where}: the workflow has no tokens but its status is {workflow['status']}"
        )
    else:
        positions = [row["position"] for row in stored.tokens]
        assert positions == list(range(TOKENS)), f"{where}: token positions are {positions}"
    for row in stored.tokens:
        check_token(row, policy, where)
    statuses = "".join(_LETTERS[row["status"]] for row in stored.tokens)
    assert _matches(statuses, policy), (
        f"{where}: token statuses {statuses} (C=COMPLETED, R=RUNNING, I=INITIAL) do not "
        f"follow {_PATTERNS[policy]}: the {policy.value} policy commits no such state"
    )
    check_log(stored, where)


_LETTERS = {INITIAL: "I", RUNNING: "R", COMPLETED: "C"}
_PATTERNS = {
    CheckpointPolicy.TOKEN: "C*I*",
    CheckpointPolicy.TASK: "C*R?I*",
    CheckpointPolicy.HALT: "all I or all C",
}


def _matches(statuses: str, policy: CheckpointPolicy) -> bool:
    done = len(statuses) - len(statuses.lstrip("C"))
    rest = statuses[done:]
    if policy is CheckpointPolicy.TASK and rest.startswith("R"):
        rest = rest[1:]
    if policy is CheckpointPolicy.HALT and 0 < done < len(statuses):
        return False
    return set(rest) <= {"I"}


def check_token(row: dict[str, Any], policy: CheckpointPolicy, where: str) -> None:
    """Check that a token's committed data is what its status promises."""
    position, status, data = row["position"], row["status"], row["data"]
    where = f"{where}: token {position}"
    assert status in _LETTERS, f"{where} has status {status}; no task halts or fails here"
    assert isinstance(data, dict), f"{where} holds {data!r}"
    assert data.get("n") == position, f"{where} holds the data of another token: {data}"
    trace, full = data.get("trace"), clean_pass(position)
    if status == COMPLETED:
        assert trace == full, f"{where} is COMPLETED with the trace {trace}, not {full}"
        assert row["callback_pos"] is None, f"{where} is COMPLETED at {row['callback_pos']}"
    elif status == INITIAL:
        assert trace == [], f"{where} is INITIAL but its committed data has a half pass: {trace}"
    else:
        assert policy is CheckpointPolicy.TASK, f"{where} is RUNNING under the {policy} policy"
        assert trace, f"{where} is RUNNING with no task done"
        assert trace == full[: len(trace)], f"{where} is RUNNING with the trace {trace}: not {full}"
        assert row["callback_pos"], f"{where} is RUNNING without a callback_pos"


def check_log(stored: Stored, where: str) -> None:
    """Check that each status chain of the log starts right and ends at the row's status."""
    assert stored.workflow is not None
    logs: dict[int | None, list[dict[str, Any]]] = {}
    for transition in stored.transitions:
        logs.setdefault(transition["token_position"], []).append(transition)
    unknown = set(logs) - {None, *range(len(stored.tokens))}
    assert not unknown, f"{where}: the log has transitions of unknown tokens {unknown}"
    rows: list[tuple[int | None, int | None, int]] = [
        (None, None, stored.workflow["status"]),
        *((row["position"], INITIAL, row["status"]) for row in stored.tokens),
    ]
    for position, first, final in rows:
        who = "the workflow" if position is None else f"token {position}"
        status = first
        for transition in logs.get(position, []):
            step = (transition["from_status"], transition["to_status"])
            assert step[0] == status, (
                f"{where}: the log of {who} goes {step[0]} -> {step[1]} after reaching "
                f"{status}: {_steps(logs.get(position, []))}"
            )
            assert step[0] != step[1], f"{where}: the log of {who} repeats {step}"
            status = step[1]
        assert status == final, (
            f"{where}: the log of {who} ends at {status} but its row says {final}: "
            f"{_steps(logs.get(position, []))}"
        )


def _steps(transitions: list[dict[str, Any]]) -> list[tuple[int | None, int]]:
    return [(t["from_status"], t["to_status"]) for t in transitions]


#: The log of each token of a completed run, per policy.
TOKEN_LOGS = {
    CheckpointPolicy.TOKEN: [(INITIAL, COMPLETED)],
    CheckpointPolicy.TASK: [(INITIAL, RUNNING), (RUNNING, COMPLETED)],
    CheckpointPolicy.HALT: [(INITIAL, COMPLETED)],
}


def check_completed(stored: Stored, policy: CheckpointPolicy, where: str) -> None:
    """Check a run after a worker completed it."""
    check_stored(stored, policy, where)
    workflow = stored.workflow
    assert workflow is not None, f"{where}: the completed run is not stored"
    assert workflow["status"] == WorkflowStatus.COMPLETED.value, (
        f"{where}: the workflow ended {workflow['status']}, not COMPLETED"
    )
    assert workflow["lock_owner"] is None, f"{where}: {workflow['lock_owner']} keeps the lock"
    assert [row["status"] for row in stored.tokens] == [COMPLETED] * TOKENS, (
        f"{where}: not every token is COMPLETED: {[row['status'] for row in stored.tokens]}"
    )
    for position in range(TOKENS):
        steps = _steps([t for t in stored.transitions if t["token_position"] == position])
        assert steps == TOKEN_LOGS[policy], (
            f"{where}: token {position} went through {steps}, not {TOKEN_LOGS[policy]}"
        )
    steps = _steps([t for t in stored.transitions if t["token_position"] is None])
    assert steps[:1] == [(None, WorkflowStatus.NEW.value)], f"{where}: the workflow log is {steps}"


# -- what the tasks really did --------------------------------------------------------------


def read_effects(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    calls = []
    for line in path.read_text().splitlines():
        position, task = line.split()
        calls.append((int(position), task))
    return calls


def check_effects(
    calls: list[tuple[int, str]], policy: CheckpointPolicy, kills: int, where: str
) -> int:
    """Check that tasks ran once per token, plus no more than ``kills`` allow under ``policy``.

    Return how many tasks (TASK policy) or passes of a token (the others) ran again.
    """
    redone = 0
    for position in range(TOKENS):
        tasks = [task for at, task in calls if at == position]
        full = clean_pass(position)
        who = f"{where}: token {position}"
        if policy is CheckpointPolicy.TASK:
            # A kill re-runs at most the task it interrupted: the same task twice in a row.
            once = [task for i, task in enumerate(tasks) if i == 0 or task != tasks[i - 1]]
            assert once == full, f"{who} ran {tasks}, not {full} with some task repeated"
            redone += len(tasks) - len(once)
            continue
        # A kill re-runs the interrupted token from its first task: split the calls in passes.
        runs: list[list[str]] = []
        for task in tasks:
            if task == full[0] or not runs:
                runs.append([])
            runs[-1].append(task)
        assert runs[-1:] == [full], f"{who} ran {tasks}: its last pass is not {full}"
        for partial in runs[:-1]:
            assert partial == full[: len(partial)], f"{who} ran {tasks}: {partial} is off"
        redone += len(runs) - 1
    allowed = kills if policy is not CheckpointPolicy.HALT else kills * TOKENS
    unit = "tasks" if policy is CheckpointPolicy.TASK else "passes of a token"
    assert redone <= allowed, (
        f"{where}: {redone} {unit} ran again after {kills} kills; the {policy.value} policy "
        f"allows {allowed}"
    )
    return redone


# -- trials ---------------------------------------------------------------------------------

#: How many task calls one clean run makes.
CALLS_PER_RUN = sum(len(clean_pass(position)) for position in range(TOKENS))


def _inside_tokens() -> list[int]:
    """Number the calls (from 1) that a token makes after its first and before its last two."""
    calls, before = [], 0
    for position in range(TOKENS):
        count = len(clean_pass(position))
        calls += range(before + 2, before + count - 1)
        before += count
    return calls


#: Calls that a kill right after leaves their token mid-way, tasks done on each side.
INSIDE_TOKENS = _inside_tokens()


@dataclass
class Kill:
    """When a worker is killed: ``delay`` seconds after its start, or after a task call."""

    delay: float
    after_calls: int | None = None
    effects: str | None = None
    #: The database right after the kill, and how many task calls were recorded by then.
    stored: Stored | None = None
    calls: int = 0

    def __str__(self) -> str:
        if self.after_calls is None:
            return f"killed {self.delay:.3f} s after it started"
        return f"killed {self.delay:.4f} s after task call {self.after_calls}"

    @property
    def mid_run(self) -> bool:
        workflow = None if self.stored is None else self.stored.workflow
        return workflow is not None and workflow["status"] == WorkflowStatus.RUNNING.value

    @property
    def mid_token(self) -> bool:
        tokens = [] if self.stored is None else self.stored.tokens
        return any(row["status"] == RUNNING for row in tokens)


@dataclass
class Trial:
    name: str
    where: str
    effects: Path
    kills: list[Kill] = field(default_factory=list)
    seconds: float = 0.0
    redone: int = 0


def plan_kill(rng: random.Random, trial: Trial, *, inside: bool, span: float) -> Kill:
    """Choose when to kill the next worker of ``trial``.

    Half the kills come at any moment of the worker's life (``span`` is how long
    a whole run takes), so some land before the run is even stored; the others
    come right after a task call, at most one task after it. ``inside`` asks for
    a kill between two tasks of a token, so that each test surely interrupts one.
    """
    effects = str(trial.effects)
    if inside:
        return Kill(rng.uniform(0.0, PAUSE / 2), rng.choice(INSIDE_TOKENS), effects)
    if rng.random() < 0.5:
        return Kill(rng.uniform(0.0, span))
    done = 0
    if trial.kills and trial.kills[-1].stored is not None:
        completed = [row for row in trial.kills[-1].stored.tokens if row["status"] == COMPLETED]
        done = sum(len(clean_pass(row["position"])) for row in completed)
    left = rng.randint(1, max(1, CALLS_PER_RUN - done))
    calls = len(read_effects(trial.effects))
    return Kill(rng.uniform(0.0, 2 * PAUSE), calls + left, effects)


def run_trial(
    server: ForkServer,
    store: Store,
    *,
    url: str,
    policy: CheckpointPolicy,
    name: str,
    where: str,
    folder: Path,
    rng: random.Random,
    span: float,
    kills: int,
    inside: bool = False,
) -> Trial:
    """Start workers on the run ``name``, the first ``kills`` of them killed at random."""
    trial = Trial(name, where, folder / f"{name}.effects")
    argv = [url, name, "--policy", policy.value, "--tokens", str(TOKENS)]
    argv += ["--effects", str(trial.effects), "--pause", str(PAUSE)]
    for attempt in range(kills + 1):
        kill = None
        if attempt < kills:
            kill = plan_kill(rng, trial, inside=inside and attempt == 0, span=span)
        outcome = server.run(argv, log=folder / f"{name}.{attempt}.log", kill=kill)
        trial.seconds += outcome.seconds
        worker = f"{where}: worker {attempt + 1}"
        if outcome.returncode == 0:
            assert outcome.output == "", f"{worker} completed but printed:\n{outcome.output}"
            return trial
        assert outcome.returncode == -signal.SIGKILL, (
            f"{worker} failed with exit status {outcome.returncode}:\n{outcome.output}"
        )
        assert kill, f"{worker} did not complete the run in {TIMEOUT:.0f} s:\n{outcome.output}"
        kill.stored = read(store, name)
        kill.calls = len(read_effects(trial.effects))
        check_stored(kill.stored, policy, f"{worker}, {kill}")
        trial.kills.append(kill)
    raise AssertionError("unreachable: the last worker is never killed on purpose")


def check_trial(store: Store, trial: Trial, policy: CheckpointPolicy) -> None:
    """Check a trial's run after it completed, against ``store``."""
    where = f"{trial.where}, after {len(trial.kills)} kills ({'; '.join(map(str, trial.kills))})"
    check_completed(read(store, trial.name), policy, where)
    calls = read_effects(trial.effects)
    trial.redone = check_effects(calls, policy, len(trial.kills), where)
    for number, kill in enumerate(trial.kills, 1):
        assert kill.stored is not None
        done = {row["position"] for row in kill.stored.tokens if row["status"] == COMPLETED}
        again = sorted({at for at, _ in calls[kill.calls :] if at in done})
        assert not again, (
            f"{where}: tokens {again} were COMPLETED in the database at kill {number}, "
            "yet their tasks ran again"
        )


def _context(backend: str, policy: CheckpointPolicy) -> str:
    return f"[seed {SEED}: rerun with WORKFLOW_CRASH_SEED={SEED}] {backend}, {policy.value} policy"


@pytest.mark.parametrize("policy", list(CheckpointPolicy), ids=lambda p: p.value)
def test_sigkill_at_random_moments_loses_nothing(
    backend: str,
    db_url: str,
    store: Store,
    policy: CheckpointPolicy,
    fork_servers: Queue[ForkServer],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    context = _context(backend, policy)
    count = trial_count(backend, policy)
    started = time.monotonic()

    # A first run, never killed, measures how long a run takes: kills land within that.
    with borrow(fork_servers) as server:
        calibration = run_trial(
            server,
            store,
            url=db_url,
            policy=policy,
            name="calibration",
            where=f"{context}, calibration",
            folder=tmp_path,
            rng=random.Random(SEED),
            span=0.0,
            kills=0,
        )
    check_trial(store, calibration, policy)
    span = calibration.seconds

    def trial(number: int) -> Trial:
        rng = random.Random(f"{SEED}/{backend}/{policy.value}/{number}")
        with borrow(fork_servers) as server:
            return run_trial(
                server,
                store,
                url=db_url,
                policy=policy,
                name=f"trial-{number}",
                where=f"{context}, trial {number}",
                folder=tmp_path,
                rng=rng,
                span=span,
                kills=rng.randint(1, MAX_KILLS),
                inside=number % 2 == 0,
            )

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(trial, number) for number in range(count)]
        try:
            trials = [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()

    checker = Store(db_url)  # a fresh store: nothing cached from the runs
    try:
        for done in trials:
            check_trial(checker, done, policy)
    finally:
        checker.dispose()

    kills = [kill for done in trials for kill in done.kills]
    mid_run = sum(kill.mid_run for kill in kills)
    mid_token = sum(kill.mid_token for kill in kills)
    redone = sum(done.redone for done in trials)
    stats = {
        "trials": count,
        "kills": len(kills),
        "kills_mid_run": mid_run,
        "kills_mid_token": mid_token,
        "redone": redone,
        "run_seconds": round(span, 3),
        "seconds": round(time.monotonic() - started, 1),
    }
    request.node.user_properties.extend(stats.items())
    # The kills inside tokens make sure that the harness interrupted something.
    assert mid_run, f"{context}: no kill landed while the run was RUNNING: {stats}"
    if policy is CheckpointPolicy.TASK:
        assert mid_token, f"{context}: no kill left a token between two tasks: {stats}"
    else:
        assert redone, f"{context}: no kill made a token run again: {stats}"


def test_the_worker_script_resumes_a_run_killed_mid_token(
    backend: str, db_url: str, store: Store, tmp_path: Path
) -> None:
    """The worker run as a program: killed with SIGKILL once a token completed, then resumed."""
    where = f"{backend}, the worker run as a program"
    effects = tmp_path / "script.effects"
    argv = [sys.executable, str(WORKER), db_url, "script", "--tokens", str(TOKENS)]
    argv += ["--effects", str(effects), "--pause", "0.01"]
    started = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as worker:
        while not any(row["status"] == COMPLETED for row in read(store, "script").tokens):
            assert worker.poll() is None, f"{where}: the worker ended with {worker.returncode}"
            assert time.monotonic() < started + TIMEOUT, f"{where}: no token completed in time"
            time.sleep(0.005)
        worker.kill()
        output, _ = worker.communicate()
    kill = Kill(time.monotonic() - started, stored=read(store, "script"))
    kill.calls = len(read_effects(effects))
    assert worker.returncode == -signal.SIGKILL, f"{where}: {worker.returncode}, {output!r}"
    assert kill.stored is not None
    check_stored(kill.stored, CheckpointPolicy.TOKEN, f"{where}, {kill}")
    completed = [row for row in kill.stored.tokens if row["status"] == COMPLETED]
    assert 0 < len(completed) < TOKENS, f"{where}: {kill} with {len(completed)} tokens done"

    resumed = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert (resumed.returncode, resumed.stdout, resumed.stderr) == (0, "", ""), where
    check_trial(store, Trial("script", where, effects, [kill]), CheckpointPolicy.TOKEN)
