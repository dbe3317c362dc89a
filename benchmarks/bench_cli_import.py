"""Measure what starting the ``workflow`` command costs: its imports and its wall time.

Run it from the repository root::

    python benchmarks/bench_cli_import.py             # the table
    python benchmarks/bench_cli_import.py --json      # the same results as JSON
    python benchmarks/bench_cli_import.py --runs 20   # the median of 20 runs

Three commands run in a temporary directory: ``workflow --help``,
``workflow validate FLOW`` (a flow of one step, with ``--import`` of a
module registering its task) and ``workflow list`` (a SQLite database with
one run, at the current schema). Each runs once to warm up (Python writes
its bytecode caches then), then:

* *import* is the total ``-X importtime`` reports for the modules the
  command imports (the sum of the top-level imports' cumulative times, in
  ms), the median of ``--runs`` runs;
* *wall* is the median wall-clock time of ``--runs`` runs (default 10) of
  ``python -m workflow ...``, in ms;
* *heavy* lists which of SQLAlchemy, Alembic and PyYAML the command imported.

``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment, so
that the bytecode caches are written once and used after: otherwise every
run compiles every module again and the figures say little. The figures
move with the machine's load: compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sqlalchemy", "alembic", "yaml")

TASKS = """\
from workflow.flows import task


@task("bench_double")
def double(context, params):
    return {"n": 2 * params["n"]}
"""
FLOW = '{"name": "bench", "steps": [{"name": "calc", "task": "bench_double", "params": {"n": 2}}]}'
#: Imports ``workflow.cli`` runs the command, then names the heavy modules imported.
PROBE = (
    "import sys, runpy; sys.argv = ['workflow', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('workflow', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)
COMMANDS = {
    "--help": ["--help"],
    "validate": ["--import", "bench_tasks", "validate", "flow.json"],
    "list": ["list"],
}


def environment() -> dict[str, str]:
    """The children's environment: this checkout first, bytecode caches written."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.pop("WORKFLOW_DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def prepare(directory: Path, env: dict[str, str]) -> None:
    """Write the task module and the flow; store one run in workflow.sqlite."""
    (directory / "bench_tasks.py").write_text(TASKS)
    (directory / "flow.json").write_text(FLOW)
    subprocess.run(
        [sys.executable, "-m", "workflow", "--import", "bench_tasks", "run", "flow.json"],
        cwd=directory,
        env=env,
        check=True,
        capture_output=True,
    )


def import_ms(directory: Path, env: dict[str, str], argv: list[str]) -> tuple[float, list[str]]:
    """Return the total import time of one run (ms) and the heavy modules it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, *argv],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
    )
    total = 0
    lines = done.stderr.splitlines()
    for line in lines:
        # "import time: self [us] | cumulative | imported package"; top level: no indent
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if name.startswith("  "):
            continue  # only the top-level imports: their cumulative times add up the rest
        total += int(cumulative)
    probed = [line for line in lines if not line.startswith("import time:")]
    heavy = probed[-1].split() if probed else []
    return total / 1000, heavy


def wall_ms(directory: Path, env: dict[str, str], argv: list[str], runs: int) -> float:
    """Return the median wall-clock time of ``runs`` runs of the command (ms)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "workflow", *argv],
            cwd=directory,
            env=env,
            capture_output=True,
        )
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    env = environment()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        prepare(directory, env)
        for label, argv in COMMANDS.items():
            wall_ms(directory, env, argv, 1)  # warm-up: the bytecode caches are written
            measured = [import_ms(directory, env, argv) for _ in range(args.runs)]
            imports = statistics.median(total for total, _ in measured)
            heavy = measured[-1][1]
            wall = wall_ms(directory, env, argv, args.runs)
            row = {"command": label, "import_ms": imports, "wall_ms": wall, "heavy": heavy}
            results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'command':<10} {'import (ms)':>12} {'wall (ms)':>10}  heavy modules")
    for row in results:
        heavy = ", ".join(row["heavy"]) or "-"
        print(f"{row['command']:<10} {row['import_ms']:>12.1f} {row['wall_ms']:>10.1f}  {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
