"""Measure what the engine costs next to the same tasks called by a plain loop.

Run it from the repository root::

    python benchmarks/bench_engine.py            # the table
    python benchmarks/bench_engine.py --json     # the same results as JSON
    python benchmarks/bench_engine.py --check    # exit 1 when a target fails

Every timed scenario runs the *same* task functions, in the same order and with
the same arguments ``(obj, eng)``, twice: once through
:class:`~workflow.engine.GenericWorkflowEngine` and once through a loop written
by hand (which passes ``None`` for the engine). Before timing, both are run on
a few recording tokens and must write the same keys in the same order, so the
two columns always do the same work. The tasks are trivial (each adds one to a
key of a dict token), which makes the engine's own overhead as visible as it
can be; with real tasks the ratio only gets closer to 1.

Scenarios:

(a) flat: every token goes through 20 tasks in one list. Target: ratio <= 3.
(b) nested: lists four deep built with ``IF_ELSE`` and ``WHILE`` from
    :mod:`workflow.patterns`; the loop turns three times per token. The
    hand-written side is plain ``if``/``while``. Target: ratio <= 5.
(c) halt and restart: a task halts every token once; the caller resumes with
    ``eng.restart('current', 'current')``. The hand-written side raises and
    catches one exception per token. Report only: no target.
(d) memory: with :mod:`tracemalloc`, the peak memory the engine adds while it
    runs the definitions of (a), (b) and (c) over N and 4N tokens (made before
    the measurement, so their own size does not count; the garbage collector
    stays on). It passes when the peak grows by less than 64 KiB from N to 4N,
    that is when the engine copies no token list and keeps nothing per token.
(e) unconnected signal: scenario (a) with a receiver connected to
    ``workflow_error``, a signal that never fires there. It should cost the
    same as (a), within noise. Report only.

How to read the output: *engine* and *hand* are the best (smallest) wall-clock
time of ``--repeat`` runs, each on fresh tokens, after one warm-up run, with
the garbage collector off while the clock runs. *ratio* is engine / hand: 1.0
means the engine adds nothing, 3.0 means a run takes three times as long as
the hand-written loop. *result* compares the ratio with the target (``-`` for
report only). The memory table gives the added peak in bytes, in total and
per token, for N and 4N tokens, and its growth. Absolute times depend on the
machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, TypeAlias

from workflow import GenericWorkflowEngine, HaltProcessing, signals
from workflow.patterns import IF_ELSE, WHILE

Token: TypeAlias = dict[str, int]
Engine: TypeAlias = GenericWorkflowEngine
Task: TypeAlias = Callable[[Token, Engine | None], object]
Run: TypeAlias = Callable[[list[Token]], None]

#: Largest growth of the engine's peak memory from N to 4N tokens that passes.
MEMORY_BOUND = 64 * 1024


# -- tokens and tasks ------------------------------------------------------------------

FLAT_KEYS = [f"t{index:02d}" for index in range(20)]
NESTED_KEYS = ["a", "b", "c", "d", "e", "f", "g"]
_TEMPLATE: Token = dict.fromkeys(["loops", "halted", *FLAT_KEYS, *NESTED_KEYS], 0)


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


def is_even(obj: Token, eng: Engine | None) -> bool:
    return obj["id"] % 2 == 0


def loop_again(obj: Token, eng: Engine | None) -> bool:
    return obj["loops"] < 3


def first_round(obj: Token, eng: Engine | None) -> bool:
    return obj["loops"] == 1


FLAT = [increment(key) for key in FLAT_KEYS]
count_loop = increment("loops")
inc_a, inc_b, inc_c, inc_d, inc_e, inc_f, inc_g = (increment(key) for key in NESTED_KEYS)

#: Lists four deep: the top level, the WHILE loop, two IF_ELSE blocks, their branches.
NESTED = [
    inc_a,
    WHILE(
        loop_again,
        [
            count_loop,
            IF_ELSE(is_even, [inc_b, inc_c], [inc_e, inc_f]),
            IF_ELSE(first_round, [inc_c], [inc_d]),
        ],
    ),
    inc_g,
]

HALTING = [*FLAT[:10], halt_once, *FLAT[10:]]


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


# -- measuring -------------------------------------------------------------------------


@dataclass
class Row:
    """One scenario's result."""

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


def check_same_work(name: str, runners: dict[str, Runner]) -> None:
    """Exit when the runners do not write the same keys in the same order."""
    seen: dict[str, list[tuple[Token, list[str]]]] = {}
    for label, runner in runners.items():
        recording = [RecordingToken(token) for token in new_tokens(4)]
        tokens: list[Token] = list(recording)
        with runner.context():
            runner.run(tokens)
        seen[label] = [(dict(token), token.writes) for token in recording]
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


def compare(
    name: str, engine: Runner, hand: Runner, target: float | None, n: int, repeat: int
) -> Row:
    runners = {"engine": engine, "hand": hand}
    check_same_work(name, runners)
    best = best_times(runners, n, repeat)
    return Row(name, best["engine"], best["hand"], target)


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


# -- report ----------------------------------------------------------------------------


@dataclass
class Report:
    tokens: int
    repeat: int
    rows: list[Row]
    memory: list[Memory]
    signal_free_s: float
    signal_receiver_s: float
    python: str = f"{platform.python_implementation()} {platform.python_version()}"

    def failed(self) -> bool:
        return any(row.passed is False for row in self.rows) or not all(
            memory.passed for memory in self.memory
        )


def run_all(n: int, repeat: int) -> Report:
    flat = engine_runner(FLAT)
    rows = [
        compare("(a) flat", flat, Runner(hand_flat), 3.0, n, repeat),
        compare("(b) nested", engine_runner(NESTED), Runner(hand_nested), 5.0, n, repeat),
        compare(
            "(c) halt and restart",
            restarting_runner(HALTING),
            Runner(hand_halting),
            None,
            n,
            repeat,
        ),
    ]
    with_receiver = replace(flat, context=receiver_on_workflow_error)
    signal_runners = {"free": flat, "receiver": with_receiver, "hand": Runner(hand_flat)}
    check_same_work("(e) unconnected signal", signal_runners)
    signal = best_times(signal_runners, n, repeat)
    rows.append(Row("(e) flat + unrelated receiver", signal["receiver"], signal["hand"], None))
    memory = [
        measure_memory("(a) flat", FLAT, n, engine_runner),
        measure_memory("(b) nested", NESTED, n, engine_runner),
        measure_memory("(c) halt and restart", HALTING, n, restarting_runner),
    ]
    return Report(n, repeat, rows, memory, signal["free"], signal["receiver"])


def format_report(report: Report) -> Iterator[str]:
    yield (
        f"workflow engine vs hand-written loop: {report.tokens:,} tokens, best of "
        f"{report.repeat} runs ({report.python})"
    )
    yield ""
    yield f"{'scenario':<30} {'engine':>10} {'hand':>10} {'ratio':>7}  {'target':<12} result"
    for row in report.rows:
        target = "report only" if row.target is None else f"<= {row.target:g}"
        result = "-" if row.passed is None else ("PASS" if row.passed else "FAIL")
        yield (
            f"{row.scenario:<30} {_ms(row.engine_s):>10} {_ms(row.hand_s):>10} "
            f"{row.ratio:>7.2f}  {target:<12} {result}"
        )
    yield ""
    tokens = report.tokens
    yield (
        f"(d) memory the engine adds while it runs (tracemalloc peak; "
        f"PASS when it grows by < {MEMORY_BOUND // 1024} KiB from N to 4N)"
    )
    yield (
        f"{'definition':<30} {f'N={tokens:,}':>12} {'per token':>10} "
        f"{f'4N={4 * tokens:,}':>12} {'per token':>10} {'growth':>10}  result"
    )
    for memory in report.memory:
        yield (
            f"{memory.scenario:<30} {memory.peak_n:>10,} B {memory.peak_n / tokens:>8.2f} B "
            f"{memory.peak_4n:>10,} B {memory.peak_4n / (4 * tokens):>8.2f} B "
            f"{memory.growth:>8,} B  {'PASS' if memory.passed else 'FAIL'}"
        )
    yield ""
    yield (
        f"(e) unconnected signal, engine on (a): {_ms(report.signal_free_s)} without "
        f"receivers, {_ms(report.signal_receiver_s)} with one on workflow_error "
        f"(x{report.signal_receiver_s / report.signal_free_s:.3f}; equal within noise expected)"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000, help="tokens per run (N)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best counts")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if args.tokens < 1 or args.repeat < 1:
        parser.error("--tokens and --repeat must be at least 1")

    report = run_all(args.tokens, args.repeat)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print("\n".join(format_report(report)))
    return 1 if args.check and report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
