"""Measure what the engine costs next to the same tasks called by a plain loop.

Run it from the repository root::

    python benchmarks/bench_engine.py                  # the table, one process
    python benchmarks/bench_engine.py --processes 5    # medians of 5 fresh processes
    python benchmarks/bench_engine.py --json           # the same results as JSON
    python benchmarks/bench_engine.py --check          # exit 1 when a target fails
    python benchmarks/bench_engine.py --make-invenio-venv   # (g): Invenio 2.1.6 venv, then run

Every timed scenario runs the *same* task functions, in the same order and with
the same arguments ``(obj, eng)``, twice: once through
:class:`~workflow.engine.GenericWorkflowEngine` and once through a loop written
by hand (which passes ``None`` for the engine). Before timing, both are run on
a few recording tokens and must write the same keys in the same order, so the
two columns always do the same work. The tasks are trivial (each adds one to a
key of a dict token), which makes the engine's own overhead as visible as it
can be; with real tasks the ratio only gets closer to 1.

Scenarios (the targets are judged on the median of ``--processes`` runs):

(a) flat: every token goes through 20 tasks in one list. Target: ratio <= 2.
(b) nested: lists four deep built with ``IF_ELSE`` and ``WHILE`` from
    :mod:`workflow.patterns`; the loop turns three times per token. The
    hand-written side is plain ``if``/``while``. Target: ratio <= 3.
(c) halt and restart: a task halts every token once; the caller resumes with
    ``eng.restart('current', 'current')``. The hand-written side raises and
    catches one exception per token. Report only: no target.
(d) memory: with :mod:`tracemalloc`, the peak memory the engine adds while it
    runs the definitions of (a), (b), (c) and (f) over N and 4N tokens (made
    before the measurement, so their own size does not count; the garbage
    collector stays on). It passes when the peak grows by less than 64 KiB
    from N to 4N, that is when the engine copies no token list and keeps
    nothing per token.
(e) unrelated receiver: (a), (b) and (f) again, with a receiver connected to
    ``workflow_error``, a signal that never fires there; the same targets as
    without it (2, 3, 4). The engine runs with and without the receiver take
    turns with the hand-written loop, and the ratio of the two engine times is
    printed too (1.0 within noise expected).
(f) nested FOR: the definition of (b) with ``FOR(items_of, set_item, ...)``
    over three items in place of ``WHILE``. The hand-written side is a plain
    ``for`` over the same items that calls the same setter (FOR hands the last
    item to the setter once more when the loop ends, so the plain side does
    too). Target: ratio <= 4.
(g) halt and restart against Invenio ``workflow`` 2.1.6, in the same run: the
    cost of one halt plus its restart is the time of the (c) definition minus
    the time of the same definition whose ``halt_once`` never halts (it still
    writes the same key), divided by the number of halts (one per token),
    measured the same way on both engines. Invenio runs in its own virtual
    environment (``--invenio PYTHON``, or ``benchmarks/.invenio-venv``, made by
    ``--make-invenio-venv``) in a subprocess, on tokens and tasks built the
    same way, after the same recording-token check. Target: ours / Invenio
    <= 0.2. Skipped, with a note, when no Invenio python is found.
(h) import time: ``python -X importtime -c "import workflow.engine,
    workflow.patterns.controlflow"`` in fresh subprocesses, after one warm-up
    run (so the bytecode is cached): the sum of the *cumulative* column of the
    top-level (not indented) lines of the ``workflow`` package, i.e. what the
    import statement costs, the packages it pulls in (blinker, ...) included
    and interpreter start-up excluded. Median of ``--import-runs`` (5)
    processes. Target: <= 30 ms.

How to read the output: *engine* and *hand* are the best (smallest) wall-clock
time of ``--repeat`` runs, each on fresh tokens, after one warm-up run, with
the garbage collector off while the clock runs. *ratio* is engine / hand: 1.0
means the engine adds nothing, 3.0 means a run takes three times as long as
the hand-written loop. With ``--processes N`` every timed scenario (and (g))
runs in N fresh child processes, one after the other; the table gives the
median ratio and its min-max range, and *result* compares the median with the
target (``-`` for report only). The memory table gives the added peak in
bytes, in total and per token, for N and 4N tokens, and its growth. Absolute
times depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

from workflow import GenericWorkflowEngine, HaltProcessing, signals
from workflow.patterns import FOR, IF_ELSE, WHILE

Token: TypeAlias = dict[str, int]
Engine: TypeAlias = GenericWorkflowEngine
Task: TypeAlias = Callable[[Token, Engine | None], object]
Run: TypeAlias = Callable[[list[Token]], None]
#: What one recording token did: its final content and the keys written, in order.
Work: TypeAlias = list[tuple[Token, list[str]]]

#: Largest growth of the engine's peak memory from N to 4N tokens that passes.
MEMORY_BOUND = 64 * 1024
#: Targets: engine / hand for the timed scenarios (and again with a receiver).
TARGET_FLAT = 2.0
TARGET_NESTED = 3.0
TARGET_FOR = 4.0
#: (g): our cost of a halt plus restart / Invenio 2.1.6's.
TARGET_HALT_VS_INVENIO = 0.2
#: (h): milliseconds for ``import workflow.engine, workflow.patterns.controlflow``.
TARGET_IMPORT_MS = 30.0

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
DEFAULT_INVENIO_VENV = BENCHMARKS / ".invenio-venv"
INVENIO_REQUIREMENT = "workflow==2.1.6"
IMPORT_STATEMENT = "import workflow.engine, workflow.patterns.controlflow"
#: How long one child process may take, in seconds.
CHILD_TIMEOUT = 1800


# -- tokens and tasks ------------------------------------------------------------------

FLAT_KEYS = [f"t{index:02d}" for index in range(20)]
NESTED_KEYS = ["a", "b", "c", "d", "e", "f", "g"]
TOKEN_KEYS = ["loops", "halted", "item", *FLAT_KEYS, *NESTED_KEYS]
_TEMPLATE: Token = dict.fromkeys(TOKEN_KEYS, 0)


def new_tokens(n: int) -> list[Token]:
    """Return ``n`` fresh tokens, numbered by their ``id`` key."""
    tokens = []
    for ident in range(n):
        token = _TEMPLATE.copy()
        token["id"] = ident
        tokens.append(token)
    return tokens


def increment(key: str) -> Task:
    """Return a task that adds one to ``obj[key]``."""

    def task(obj: Token, eng: Engine | None) -> None:
        obj[key] += 1

    task.__name__ = task.__qualname__ = f"increment_{key}"
    return task


def halt_once(obj: Token, eng: Engine | None) -> None:
    """Halt the first time a token gets here; let it through the second time."""
    if obj["halted"]:
        return
    obj["halted"] = 1
    if eng is None:
        raise HaltProcessing("first visit")
    eng.halt("first visit")


def halt_never(obj: Token, eng: Engine | None) -> None:
    """Write what :func:`halt_once` writes, without halting: (g)'s baseline."""
    if obj["halted"]:
        return
    obj["halted"] = 1


def is_even(obj: Token, eng: Engine | None) -> bool:
    return obj["id"] % 2 == 0


def loop_again(obj: Token, eng: Engine | None) -> bool:
    return obj["loops"] < 3


def first_round(obj: Token, eng: Engine | None) -> bool:
    return obj["loops"] == 1


#: The items the FOR loop of (f) goes over: three, so it turns three times like (b).
LOOP_ITEMS = (1, 2, 3)


def items_of(obj: Token, eng: Engine | None) -> Sequence[int]:
    return LOOP_ITEMS


def set_item(obj: Token, eng: Engine | None, index: int, item: int) -> None:
    """FOR's setter: where FOR with a string setter writes to ``eng.extra_data``."""
    obj["item"] = item


FLAT = [increment(key) for key in FLAT_KEYS]
count_loop = increment("loops")
inc_a, inc_b, inc_c, inc_d, inc_e, inc_f, inc_g = (increment(key) for key in NESTED_KEYS)


def loop_body() -> list[Any]:
    """The body of the loop of (b) and (f): a counter and two IF_ELSE blocks."""
    return [
        count_loop,
        IF_ELSE(is_even, [inc_b, inc_c], [inc_e, inc_f]),
        IF_ELSE(first_round, [inc_c], [inc_d]),
    ]


#: Lists four deep: the top level, the WHILE loop, two IF_ELSE blocks, their branches.
NESTED = [inc_a, WHILE(loop_again, loop_body()), inc_g]

#: The same nest with FOR over three items in place of WHILE.
NESTED_FOR = [inc_a, FOR(items_of, set_item, loop_body(), cache_data=False, order="ASC"), inc_g]

HALTING = [*FLAT[:10], halt_once, *FLAT[10:]]
NOT_HALTING = [*FLAT[:10], halt_never, *FLAT[10:]]


@dataclass(frozen=True)
class Runner:
    """One side of a comparison.

    :param run: processes a list of tokens; the clock measures only this.
    :param context: what must be in place around the run (e.g. a receiver).
    :param release: called after the clock stops; the engine runners drop their
        reference to the tokens there, so that freeing them is never timed.
    """

    run: Run
    context: Callable[[], AbstractContextManager[object]] = nullcontext
    release: Callable[[], None] = lambda: None


#: Builds the engine's runner for a definition.
Make: TypeAlias = Callable[[list[Any]], Runner]


# -- the hand-written loops ------------------------------------------------------------


def hand_flat(tokens: list[Token]) -> None:
    tasks = FLAT
    for obj in tokens:
        for task in tasks:
            task(obj, None)


def hand_nested(tokens: list[Token]) -> None:
    for obj in tokens:
        inc_a(obj, None)
        while loop_again(obj, None):
            count_loop(obj, None)
            if is_even(obj, None):
                inc_b(obj, None)
                inc_c(obj, None)
            else:
                inc_e(obj, None)
                inc_f(obj, None)
            if first_round(obj, None):
                inc_c(obj, None)
            else:
                inc_d(obj, None)
        inc_g(obj, None)


def hand_nested_for(tokens: list[Token]) -> None:
    for obj in tokens:
        inc_a(obj, None)
        items = items_of(obj, None)
        index = item = 0
        for index, item in enumerate(items):
            set_item(obj, None, index, item)
            count_loop(obj, None)
            if is_even(obj, None):
                inc_b(obj, None)
                inc_c(obj, None)
            else:
                inc_e(obj, None)
                inc_f(obj, None)
            if first_round(obj, None):
                inc_c(obj, None)
            else:
                inc_d(obj, None)
        if items:  # FOR gives the setter the last item once more as the loop ends
            set_item(obj, None, index, item)
        inc_g(obj, None)


def hand_halting(tokens: list[Token]) -> None:
    tasks = HALTING
    n = len(tasks)
    for obj in tokens:
        i = 0
        while i < n:
            try:
                while i < n:
                    tasks[i](obj, None)
                    i += 1
            except HaltProcessing:
                pass  # resume at the task that halted, as restart('current', 'current')


# -- the engine's side -----------------------------------------------------------------


def new_engine(definition: list[Any]) -> Engine:
    eng = GenericWorkflowEngine()
    eng.callbacks.replace(definition)
    return eng


def engine_runner(definition: list[Any]) -> Runner:
    """Return a runner that processes the tokens with one engine."""
    eng = new_engine(definition)

    def run(tokens: list[Token]) -> None:
        eng.process(tokens)

    return Runner(run, release=partial(setattr, eng, "objects", []))


def restarting_runner(definition: list[Any]) -> Runner:
    """Return a runner that restarts the engine at the current task after each halt."""
    eng = new_engine(definition)

    def run(tokens: list[Token]) -> None:
        halted = False
        while True:
            try:
                if halted:
                    eng.restart("current", "current")
                else:
                    eng.process(tokens)
            except HaltProcessing:
                halted = True
            else:
                return

    return Runner(run, release=partial(setattr, eng, "objects", []))


def _ignore(sender: object, **kwargs: object) -> None:
    """A receiver that does nothing."""


def receiver_on_workflow_error() -> AbstractContextManager[object]:
    return signals.workflow_error.connected_to(_ignore)


# -- Invenio workflow 2.1.6, in its own interpreter ------------------------------------

#: Run by the Invenio venv's python (``-I``, in a temporary directory, so that
#: this repository's ``workflow`` cannot be imported). It builds the tokens and
#: the definitions of (g) as above, records 4 tokens through each definition,
#: times both the same way as :func:`best_times` and prints JSON.
INVENIO_CODE = r"""
import collections, collections.abc
for _name in collections.abc.__all__:  # Invenio 2.1.6 imports collections.Iterable
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import gc, json, platform, sys, time
from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing
try:
    from workflow.version import __version__ as version
except Exception:
    version = "?"

config = json.loads(sys.argv[1])
template = dict.fromkeys(config["keys"], 0)


def new_tokens(n):
    tokens = []
    for ident in range(n):
        token = template.copy()
        token["id"] = ident
        tokens.append(token)
    return tokens


def increment(key):
    def task(obj, eng):
        obj[key] += 1
    task.__name__ = "increment_" + key
    return task


def halt_once(obj, eng):
    if obj["halted"]:
        return
    obj["halted"] = 1
    eng.halt("first visit")


def halt_never(obj, eng):
    if obj["halted"]:
        return
    obj["halted"] = 1


flat = [increment(key) for key in config["flat"]]
definitions = {
    "halting": flat[:10] + [halt_once] + flat[10:],
    "plain": flat[:10] + [halt_never] + flat[10:],
}


def restarting_runner(definition):
    eng = GenericWorkflowEngine()
    eng.callbacks.replace(definition)

    def run(tokens):
        halted = False
        while True:
            try:
                if halted:
                    eng.restart("current", "current")
                else:
                    eng.process(tokens)
            except HaltProcessing:
                halted = True
            else:
                return

    def release():
        eng.objects = []

    return run, release


class RecordingToken(dict):
    def __init__(self, data):
        super().__init__(data)
        self.writes = []

    def __setitem__(self, key, value):
        self.writes.append(key)
        super().__setitem__(key, value)


def time_once(runner, tokens):
    run, release = runner
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        run(tokens)
        return time.perf_counter() - start
    finally:
        gc.enable()
        release()


runners = {label: restarting_runner(d) for label, d in definitions.items()}
work = {}
for label, (run, release) in runners.items():
    recording = [RecordingToken(token) for token in new_tokens(4)]
    run(list(recording))
    release()
    work[label] = [[dict(token), token.writes] for token in recording]
n, repeat = config["tokens"], config["repeat"]
for runner in runners.values():
    time_once(runner, new_tokens(n))  # warm-up
times = {label: [] for label in runners}
for _ in range(repeat):
    for label, runner in runners.items():
        times[label].append(time_once(runner, new_tokens(n)))
print(json.dumps({
    "version": version,
    "python": platform.python_implementation() + " " + platform.python_version(),
    "work": work,
    "times": {label: min(values) for label, values in times.items()},
}))
"""


def venv_python(venv: Path) -> Path:
    """Return the interpreter of the virtual environment ``venv``."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def make_invenio_venv(venv: Path) -> Path:
    """Create ``venv`` with Invenio workflow 2.1.6 (when missing); return its python."""
    python = venv_python(venv)
    if python.exists():
        print(f"bench_engine: using the existing {venv}", file=sys.stderr)
        return python
    print(f"bench_engine: creating {venv} with {INVENIO_REQUIREMENT}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", INVENIO_REQUIREMENT], check=True
    )
    return python


def find_invenio(python: str | None) -> Path | None:
    """Return the Invenio python given, or the default venv's when it exists."""
    if python is not None:
        return Path(python)
    default = venv_python(DEFAULT_INVENIO_VENV)
    return default if default.exists() else None


def run_invenio(python: Path, n: int, repeat: int) -> dict[str, Any]:
    """Run (g)'s measurement on Invenio 2.1.6 in ``python``; return its JSON result."""
    config = {"tokens": n, "repeat": repeat, "keys": TOKEN_KEYS, "flat": FLAT_KEYS}
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [str(python), "-I", "-c", INVENIO_CODE, json.dumps(config)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    if done.returncode:
        sys.exit(f"bench_engine: (g): the Invenio side failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- measuring -------------------------------------------------------------------------


@dataclass
class Row:
    """One scenario's result in one process."""

    scenario: str
    engine_s: float
    hand_s: float
    target: float | None
    ratio: float = field(init=False)
    passed: bool | None = field(init=False)

    def __post_init__(self) -> None:
        self.ratio = self.engine_s / self.hand_s
        self.passed = None if self.target is None else self.ratio <= self.target


class RecordingToken(dict[str, int]):
    """A token that remembers which keys were written, in order."""

    def __init__(self, data: Token) -> None:
        super().__init__(data)
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: int) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def record(runner: Runner) -> Work:
    """Return what ``runner`` does to 4 recording tokens."""
    recording = [RecordingToken(token) for token in new_tokens(4)]
    tokens: list[Token] = list(recording)
    with runner.context():
        runner.run(tokens)
    runner.release()
    return [(dict(token), token.writes) for token in recording]


def check_same_work(name: str, runners: dict[str, Runner]) -> None:
    """Exit when the runners do not write the same keys in the same order."""
    seen = {label: record(runner) for label, runner in runners.items()}
    first, *others = seen
    for label in others:
        if seen[label] != seen[first]:
            sys.exit(f"bench_engine: {name}: {label!r} and {first!r} do not do the same work")


def time_once(runner: Runner, tokens: list[Token]) -> float:
    """Return the seconds one run takes, with the garbage collector off."""
    gc.collect()
    was_enabled = gc.isenabled()
    with runner.context():
        gc.disable()
        try:
            start = time.perf_counter()
            runner.run(tokens)
            return time.perf_counter() - start
        finally:
            if was_enabled:
                gc.enable()
            runner.release()


def best_times(runners: dict[str, Runner], n: int, repeat: int) -> dict[str, float]:
    """Return the best time of each runner; the runners take turns, on fresh tokens."""
    for runner in runners.values():
        time_once(runner, new_tokens(n))  # warm-up
    times: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(repeat):
        for label, runner in runners.items():
            times[label].append(time_once(runner, new_tokens(n)))
    return {label: min(values) for label, values in times.items()}


def compare_with_receiver(
    name: str, definition: list[Any], hand: Run, target: float, n: int, repeat: int
) -> tuple[Row, Row]:
    """Time the engine without and with an unrelated receiver, taking turns with ``hand``."""
    free = engine_runner(definition)
    runners = {
        "engine": free,
        "engine + receiver": replace(free, context=receiver_on_workflow_error),
        "hand": Runner(hand),
    }
    check_same_work(name, runners)
    best = best_times(runners, n, repeat)
    return (
        Row(name, best["engine"], best["hand"], target),
        Row(f"(e) {name[:3]} + receiver", best["engine + receiver"], best["hand"], target),
    )


@dataclass
class HaltCost:
    """(g) in one process: the cost of one halt plus restart, ours and Invenio's."""

    halts: int
    ours_halting_s: float
    ours_plain_s: float
    invenio_halting_s: float
    invenio_plain_s: float
    invenio: str
    ours_s: float = field(init=False)
    invenio_s: float = field(init=False)
    ratio: float = field(init=False)

    def __post_init__(self) -> None:
        self.ours_s = (self.ours_halting_s - self.ours_plain_s) / self.halts
        self.invenio_s = (self.invenio_halting_s - self.invenio_plain_s) / self.halts
        self.ratio = self.ours_s / self.invenio_s


@dataclass
class ProcessResult:
    """The timed scenarios of one process."""

    rows: list[Row]
    halt_cost: HaltCost | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessResult:
        rows = [
            Row(row["scenario"], row["engine_s"], row["hand_s"], row["target"])
            for row in data["rows"]
        ]
        cost = data["halt_cost"]
        halt_cost = None
        if cost is not None:
            halt_cost = HaltCost(
                cost["halts"],
                cost["ours_halting_s"],
                cost["ours_plain_s"],
                cost["invenio_halting_s"],
                cost["invenio_plain_s"],
                cost["invenio"],
            )
        return cls(rows, halt_cost)


def _as_json(work: Work) -> Any:
    return json.loads(json.dumps(work))


def measure_timed(n: int, repeat: int, invenio: Path | None) -> ProcessResult:
    """Measure (a), (b), (c), (e), (f) and, with an Invenio python, (g) in this process."""
    flat, flat_receiver = compare_with_receiver("(a) flat", FLAT, hand_flat, TARGET_FLAT, n, repeat)
    nested, nested_receiver = compare_with_receiver(
        "(b) nested WHILE", NESTED, hand_nested, TARGET_NESTED, n, repeat
    )
    nested_for, for_receiver = compare_with_receiver(
        "(f) nested FOR", NESTED_FOR, hand_nested_for, TARGET_FOR, n, repeat
    )
    halting = {
        "engine": restarting_runner(HALTING),
        "engine, never halting": restarting_runner(NOT_HALTING),
        "hand": Runner(hand_halting),
    }
    check_same_work("(c) halt and restart", halting)
    best = best_times(halting, n, repeat)
    rows = [
        flat,
        nested,
        Row("(c) halt and restart", best["engine"], best["hand"], None),
        nested_for,
        flat_receiver,
        nested_receiver,
        for_receiver,
    ]
    halt_cost = None
    if invenio is not None:
        theirs = run_invenio(invenio, n, repeat)
        ours = {
            "halting": _as_json(record(restarting_runner(HALTING))),
            "plain": _as_json(record(restarting_runner(NOT_HALTING))),
        }
        if theirs["work"] != ours:
            sys.exit("bench_engine: (g): Invenio 2.1.6 and this engine do not do the same work")
        halt_cost = HaltCost(
            n,
            best["engine"],
            best["engine, never halting"],
            theirs["times"]["halting"],
            theirs["times"]["plain"],
            f"Invenio workflow {theirs['version']} on {theirs['python']}",
        )
    return ProcessResult(rows, halt_cost)


@dataclass
class Memory:
    """The peak memory one definition's run adds, for N and 4N tokens."""

    scenario: str
    tokens: int
    peak_n: int
    peak_4n: int
    growth: int = field(init=False)
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.growth = self.peak_4n - self.peak_n
        self.passed = self.growth < MEMORY_BOUND


def added_peak(runner: Runner, n: int) -> int:
    """Return the peak bytes allocated while ``runner`` processes ``n`` fresh tokens.

    The tokens exist before the measurement starts, so their size does not
    count. The garbage collector stays on, as in a real program.
    """
    tokens = new_tokens(n)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        runner.run(tokens)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        runner.release()
    return peak - before


def measure_memory(name: str, definition: list[Any], n: int, make: Make) -> Memory:
    runner = make(definition)
    runner.run(new_tokens(10))  # warm-up: what the first run caches is not per token
    runner.release()
    return Memory(name, n, added_peak(runner, n), added_peak(runner, 4 * n))


def measure_all_memory(n: int) -> list[Memory]:
    return [
        measure_memory("(a) flat", FLAT, n, engine_runner),
        measure_memory("(b) nested WHILE", NESTED, n, engine_runner),
        measure_memory("(c) halt and restart", HALTING, n, restarting_runner),
        measure_memory("(f) nested FOR", NESTED_FOR, n, engine_runner),
    ]


def workflow_import_us(importtime: str) -> int:
    """Return the microseconds the ``workflow`` imports took, from ``-X importtime`` output.

    Each line reads ``import time: <self> | <cumulative> | <indent><module>``;
    a module is printed after the modules it imports, which are indented two
    more spaces. The top-level lines (one space of indent) are the imports the
    statement itself asked for; their cumulative figures include everything
    they pulled in. The sum of those of ``workflow`` and its submodules is the
    cost of the statement.
    """
    total = 0
    for line in importtime.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3:
            continue
        cumulative, module = parts[1].strip(), parts[2]
        name = module.lstrip(" ")
        top_level = len(module) - len(name) == 1
        if cumulative.isdigit() and top_level and name.split(".")[0] == "workflow":
            total += int(cumulative)
    return total


def import_once() -> float:
    """Return the milliseconds of :data:`IMPORT_STATEMENT` in a fresh interpreter."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"}
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORT_STATEMENT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=True,
    )
    micros = workflow_import_us(done.stderr)
    if not micros:
        sys.exit(f"bench_engine: (h): no workflow import in:\n{done.stderr}")
    return micros / 1000


@dataclass
class ImportTime:
    """(h): the import statement's time in fresh processes, in milliseconds."""

    runs_ms: list[float]
    target_ms: float = TARGET_IMPORT_MS
    median_ms: float = field(init=False)
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.median_ms = statistics.median(self.runs_ms)
        self.passed = self.median_ms <= self.target_ms


def measure_import(runs: int) -> ImportTime:
    import_once()  # warm-up: writes the bytecode caches
    return ImportTime([import_once() for _ in range(runs)])


def run_child(n: int, repeat: int, invenio: Path | None) -> ProcessResult:
    """Measure the timed scenarios in a fresh interpreter running this script."""
    command = [sys.executable, str(Path(__file__).resolve()), "--json", "--processes", "1"]
    command += ["--tokens", str(n), "--repeat", str(repeat), "--import-runs", "0", "--skip-memory"]
    command += ["--no-invenio"] if invenio is None else ["--invenio", str(invenio)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    if done.returncode:
        sys.exit(f"bench_engine: a child process failed:\n{done.stderr}")
    data = json.loads(done.stdout)
    return ProcessResult.from_json(data["processes"][0])


# -- report ----------------------------------------------------------------------------


@dataclass
class Summary:
    """One ratio over the processes: its median, range and verdict.

    For (g), ``engine_s`` and ``hand_s`` are the medians of our and Invenio's
    seconds per halt; otherwise the medians of the engine's and the hand loop's
    best times.
    """

    scenario: str
    target: float | None
    ratios: list[float]
    engine_s: float
    hand_s: float
    median: float = field(init=False)
    low: float = field(init=False)
    high: float = field(init=False)
    passed: bool | None = field(init=False)

    def __post_init__(self) -> None:
        self.median = statistics.median(self.ratios)
        self.low, self.high = min(self.ratios), max(self.ratios)
        self.passed = None if self.target is None else self.median <= self.target


def summarise(results: list[ProcessResult]) -> tuple[list[Summary], Summary | None]:
    """Return the summaries of the timed scenarios, and of (g) when it ran."""
    summaries = []
    for index, first in enumerate(results[0].rows):
        rows = [result.rows[index] for result in results]
        summaries.append(
            Summary(
                first.scenario,
                first.target,
                [row.ratio for row in rows],
                statistics.median(row.engine_s for row in rows),
                statistics.median(row.hand_s for row in rows),
            )
        )
    costs = [result.halt_cost for result in results if result.halt_cost is not None]
    halt = None
    if costs:
        halt = Summary(
            "(g) halt + restart vs Invenio",
            TARGET_HALT_VS_INVENIO,
            [cost.ratio for cost in costs],
            statistics.median(cost.ours_s for cost in costs),
            statistics.median(cost.invenio_s for cost in costs),
        )
    return summaries, halt


@dataclass
class Report:
    tokens: int
    repeat: int
    processes: list[ProcessResult]
    summary: list[Summary]
    halt: Summary | None
    invenio: str | None
    memory: list[Memory]
    import_time: ImportTime | None
    python: str = f"{platform.python_implementation()} {platform.python_version()}"

    def failed(self) -> bool:
        verdicts = [summary.passed for summary in self.summary]
        verdicts += [memory.passed for memory in self.memory]
        if self.halt is not None:
            verdicts.append(self.halt.passed)
        if self.import_time is not None:
            verdicts.append(self.import_time.passed)
        return False in verdicts


def format_report(report: Report) -> Iterator[str]:
    count = len(report.processes)
    spread = f"median of {count} processes" if count > 1 else "one process"
    yield (
        f"workflow engine vs hand-written loop: {report.tokens:,} tokens, best of "
        f"{report.repeat} runs per process, {spread} ({report.python})"
    )
    yield ""
    yield (
        f"{'scenario':<26} {'engine':>10} {'hand':>10} {'ratio':>7} {'min-max':>11}  "
        f"{'target':<12} result"
    )
    for summary in report.summary:
        yield (
            f"{summary.scenario:<26} {_ms(summary.engine_s):>10} {_ms(summary.hand_s):>10} "
            f"{summary.median:>7.2f} {_range(summary):>11}  {_target(summary)}"
        )
    yield ""
    factors = []
    by_name = {summary.scenario: index for index, summary in enumerate(report.summary)}
    for name in ("(a) flat", "(b) nested WHILE", "(f) nested FOR"):
        free, receiver = by_name[name], by_name[f"(e) {name[:3]} + receiver"]
        ratios = [
            result.rows[receiver].engine_s / result.rows[free].engine_s
            for result in report.processes
        ]
        factors.append(f"{name[:3]} x{statistics.median(ratios):.3f}")
    yield (
        "(e) engine time with / without the receiver on workflow_error: "
        f"{', '.join(factors)} (1.0 within noise expected)"
    )
    yield ""
    if report.halt is None:
        yield f"(g) halt + restart vs Invenio workflow 2.1.6: skipped. {report.invenio}"
    else:
        halt = report.halt
        yield f"(g) one halt + restart, this engine vs {report.invenio} (same run)"
        yield (
            f"{'':<26} {'ours':>10} {'Invenio':>10} {'ratio':>7} {'min-max':>11}  "
            f"{'target':<12} result"
        )
        yield (
            f"{'per halt':<26} {_us(halt.engine_s):>10} {_us(halt.hand_s):>10} "
            f"{halt.median:>7.2f} {_range(halt):>11}  {_target(halt)}"
        )
    yield ""
    if report.import_time is None:
        yield "(h) import time: skipped (--import-runs 0)"
    else:
        imp = report.import_time
        yield (
            f"(h) import time of {IMPORT_STATEMENT!r}: {imp.median_ms:.1f} ms, median of "
            f"{len(imp.runs_ms)} fresh processes ({min(imp.runs_ms):.1f}-"
            f"{max(imp.runs_ms):.1f} ms); target <= {imp.target_ms:g} ms: "
            f"{'PASS' if imp.passed else 'FAIL'}"
        )
    if not report.memory:
        return
    yield ""
    tokens = report.tokens
    yield (
        f"(d) memory the engine adds while it runs (tracemalloc peak, in this process; "
        f"PASS when it grows by < {MEMORY_BOUND // 1024} KiB from N to 4N)"
    )
    yield (
        f"{'definition':<26} {f'N={tokens:,}':>12} {'per token':>10} "
        f"{f'4N={4 * tokens:,}':>12} {'per token':>10} {'growth':>10}  result"
    )
    for memory in report.memory:
        yield (
            f"{memory.scenario:<26} {memory.peak_n:>10,} B {memory.peak_n / tokens:>8.2f} B "
            f"{memory.peak_4n:>10,} B {memory.peak_4n / (4 * tokens):>8.2f} B "
            f"{memory.growth:>8,} B  {'PASS' if memory.passed else 'FAIL'}"
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


def _range(summary: Summary) -> str:
    return f"{summary.low:.2f}-{summary.high:.2f}"


def _target(summary: Summary) -> str:
    if summary.target is None:
        return f"{'report only':<12} -"
    return f"{f'<= {summary.target:g}':<12} {'PASS' if summary.passed else 'FAIL'}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000, help="tokens per run (N)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best counts")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="measure the timed scenarios in this many fresh processes and report the "
        "medians (1: in this process; the targets are meant for 5)",
    )
    parser.add_argument(
        "--import-runs", type=int, default=5, help="fresh processes for (h); 0 skips it"
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip (d)")
    invenio = parser.add_mutually_exclusive_group()
    invenio.add_argument(
        "--invenio",
        metavar="PYTHON",
        help="python of a virtual environment with workflow==2.1.6, for (g) "
        f"(default: {DEFAULT_INVENIO_VENV.relative_to(ROOT)} when it exists)",
    )
    invenio.add_argument(
        "--make-invenio-venv",
        metavar="DIR",
        nargs="?",
        const=str(DEFAULT_INVENIO_VENV),
        help="create DIR (default: %(const)s) with workflow==2.1.6 unless it exists, then "
        "run with it",
    )
    invenio.add_argument("--no-invenio", action="store_true", help="skip (g)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if args.tokens < 1 or args.repeat < 1 or args.processes < 1 or args.import_runs < 0:
        parser.error("--tokens, --repeat and --processes must be at least 1")

    python: Path | None = None
    note: str | None
    if args.make_invenio_venv is not None:
        python = make_invenio_venv(Path(args.make_invenio_venv))
    elif not args.no_invenio:
        python = find_invenio(args.invenio)
    if python is None:
        note = (
            "To enable it, run with --make-invenio-venv (creates "
            f"{DEFAULT_INVENIO_VENV.relative_to(ROOT)} with {INVENIO_REQUIREMENT}) "
            "or --invenio PYTHON."
        )
    elif not python.exists():
        parser.error(f"--invenio: no such interpreter: {python}")

    if args.processes == 1:
        results = [measure_timed(args.tokens, args.repeat, python)]
    else:
        results = []
        for index in range(args.processes):
            print(f"bench_engine: process {index + 1}/{args.processes}", file=sys.stderr)
            results.append(run_child(args.tokens, args.repeat, python))
    summary, halt = summarise(results)
    costs = [result.halt_cost for result in results if result.halt_cost is not None]
    if costs:
        note = costs[0].invenio
    memory = [] if args.skip_memory else measure_all_memory(args.tokens)
    import_time = measure_import(args.import_runs) if args.import_runs else None
    report = Report(args.tokens, args.repeat, results, summary, halt, note, memory, import_time)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print("\n".join(format_report(report)))
    return 1 if args.check and report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
