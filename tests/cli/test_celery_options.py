"""``--celery`` of ``workflow run`` and ``workflow worker``: what is refused, before anything runs.

Each mistake exits with 2 and one line naming the option, and stores
nothing. A real broker and a real worker are in
``tests/integrations/test_celery_cli.py``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.cli.conftest import subprocess_env
from workflow.cli._context import ExitCode

#: A port where no broker listens (connecting is refused at once).
NOWHERE = "redis://127.0.0.1:1/0"


def nothing_stored(cli: Any) -> None:
    """The working directory's database holds no run, or was never made."""
    listed = cli("--json", "list")
    assert listed.json() == [] if listed.code == 0 else "no workflow database" in listed.err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("localhost", "--celery: 'localhost' is not a broker URL: give redis://"),
        ("nosuch://host", "--celery: nosuch:// names no broker Celery can use"),
        (NOWHERE, "--celery: the broker at redis://:**@127.0.0.1:1/0 does not answer ("),
    ],
    ids=["no-scheme", "unknown-scheme", "unreachable"],
)
def test_a_bad_broker_url_is_refused_before_the_run_is_stored(
    cli: Any, url: str, says: str
) -> None:
    bad = cli("run", "simple.json", "--queue", "--celery", url)
    assert bad.code == ExitCode.USAGE
    assert one_line(bad.err).startswith(f"workflow: error: {says}")
    nothing_stored(cli)


@pytest.mark.parametrize("url", ["localhost", "nosuch://host", NOWHERE])
def test_a_worker_with_a_bad_broker_url_does_not_start(cli: Any, url: str) -> None:
    bad = cli("worker", "--celery", url)
    assert bad.code == ExitCode.USAGE
    assert "--celery: " in one_line(bad.err)


def test_options_that_do_not_go_together_are_refused(cli: Any) -> None:
    cases = {
        ("run", "simple.json", "--celery", NOWHERE): "--celery sends the tokens of a queued "
        "run: give --queue [NAME] too",
        ("run", "simple.json", "--queue", "--celery-queue", "x"): "--celery-queue names the "
        "broker's queue of --celery: give --celery too",
        ("worker", "--once", "--celery-queue", "x"): "--celery-queue names",
        ("worker", "--once", "--celery", NOWHERE): "--once: a Celery worker runs until SIGINT",
        ("worker", "--celery", NOWHERE, "--celery-queue", "a b"): "--celery-queue: a queue's name",
    }
    for argv, says in cases.items():
        bad = cli(*argv)
        assert bad.code == ExitCode.USAGE, argv
        assert says in one_line(bad.err), argv
    nothing_stored(cli)


def test_without_the_celery_extra_the_option_names_what_to_install(workdir: Any) -> None:
    program = (
        "import sys; sys.modules['celery'] = None; from workflow.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    for argv in (
        ["worker", "--celery", NOWHERE],
        ["run", "simple.json", "--queue", "--celery", NOWHERE],
    ):
        done = subprocess.run(
            [sys.executable, "-c", program, "--import", "tests.cli.cli_tasks", *argv],
            capture_output=True,
            text=True,
            cwd=workdir,
            env=subprocess_env(),
            timeout=60,
        )
        assert done.returncode == ExitCode.USAGE, done.stderr
        line = one_line(done.stderr)
        assert "--celery: " in line
        assert "pip install 'workflow-ng[celery]'" in line
