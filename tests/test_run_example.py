"""``./run-example.sh``: the commands it shows are those it runs, followed by their own output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the script in this interpreter's environment, which has the package installed.

    The script installs nothing then; ``PIP_NO_INDEX`` makes sure that a test
    never downloads anything.
    """
    scripts = Path(sys.executable).parent
    assert (scripts / "workflow").exists(), "the workflow script is not installed: pip install -e ."
    env = {k: v for k, v in os.environ.items() if k != "WORKFLOW_DATABASE_URL"}
    env["VIRTUAL_ENV"] = sys.prefix
    env["PIP_NO_INDEX"] = "1"
    env["PATH"] = os.pathsep.join([str(scripts), env["PATH"]])
    return subprocess.run(
        ["bash", str(ROOT / "run-example.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_example_shows_each_command_as_typed_then_its_own_output() -> None:
    done = run_example()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    commands = [line[2:] for line in out.splitlines() if line.startswith("$ ")]
    assert [re.sub(UUID, "UUID", command) for command in commands[2:]] == [
        "workflow --import examples.pipeline.tasks validate examples/pipeline/pipeline.json",
        "workflow --import examples.pipeline.tasks run examples/pipeline/pipeline.json"
        " --tokens examples/pipeline/records.jsonl",
        "echo $?",
        "cat orders-out.jsonl",
        "workflow resume UUID --import examples.pipeline.tasks --data '{\"approved\": true}'",
        "tail -n 3 orders-out.jsonl",
        "workflow show UUID",
    ]
    assert commands[0].startswith("cd ")
    assert commands[1] == f"ln -s {ROOT / 'examples'} examples"
    # The run's own report, unchanged, then its exit code: 3, halted.
    assert re.search(
        r"records\.jsonl\n"
        r"flow 'orders' is stored as version 1\n"
        rf"workflow ({UUID}) \(orders v1\) halted: 12 tokens: 9 completed, 3 halted\n"
        r"(  token \d+ halted at step 'review': a suspicious order waits for a review\n){3}"
        r"resume with: workflow resume \1 --import examples\.pipeline\.tasks --data JSON\n"
        r"\$ echo \$\?\n3\n",
        out,
    ), out
    assert re.search(
        rf"--data '\{{\"approved\": true\}}'\n"
        rf"workflow {UUID} \(orders v1\) completed: 12 tokens: 12 completed\n",
        out,
    ), out
    assert out.count('"status": "accepted"') == 9
    assert out.count('"status": "approved"') == 3
    assert "{'" not in out, "a Python dict was printed instead of a command's output"


def test_example_runs_a_python_example_it_is_given() -> None:
    done = run_example("examples/quickstart.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("$ python examples/quickstart.py\n")
    assert "statuses: ['shipped', 'shipped', 'shipped']" in done.stdout
