"""The CLI's parts on their own: input parsing, output, progress bar, logging, context."""

from __future__ import annotations

import argparse
import enum
import io
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from workflow.cli import ExitCode
from workflow.cli._context import CLIError, Context, _sqlite_path, database_url
from workflow.cli._inputs import parse_json, read_tokens
from workflow.cli._logging import LogSetup
from workflow.cli._output import Output, dumps, table
from workflow.cli._progress import ProgressBar
from workflow.storage import Definitions
from workflow.storage.schema import upgrade

from .conftest import TASKS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"a": 1}, 2]', [{"a": 1}, 2]),
        ('{"a": 1}', [{"a": 1}]),
        ('{"a": 1}\n[1, 2]\n', [{"a": 1}, [1, 2]]),
        ("null", [None]),
        (" \n", []),
    ],
    ids=["list", "one", "json-lines", "null", "empty"],
)
def test_stdin_is_json_or_json_lines(
    text: str, expected: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert read_tokens("-") == expected


def test_invalid_stdin_names_line_and_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"a":\n  oops}'))
    with pytest.raises(CLIError, match=r"<stdin>: invalid JSON at line 2, column 3"):
        read_tokens("-")
    monkeypatch.setattr("sys.stdin", io.StringIO('{"a": 1}\n{"b": }\n'))
    with pytest.raises(CLIError, match=r"<stdin>: invalid JSON at line 2, column 7"):
        read_tokens("-")


def test_token_files(tmp_path: Path) -> None:
    assert read_tokens(None) == [{}]
    (tmp_path / "one.json").write_text('{"a": 1}')
    assert read_tokens(str(tmp_path / "one.json")) == [{"a": 1}]
    (tmp_path / "lines.ndjson").write_text("1\n2\n")
    assert read_tokens(str(tmp_path / "lines.ndjson")) == [1, 2]
    (tmp_path / "latin.json").write_bytes(b'"\xe9"')
    with pytest.raises(CLIError, match=r"cannot read the tokens file .*latin\.json: 'utf-8' codec"):
        read_tokens(str(tmp_path / "latin.json"))
    with pytest.raises(CLIError, match="Is a directory"):
        read_tokens(str(tmp_path))
    with pytest.raises(CLIError, match=r"--data: invalid JSON at line 1, column 1"):
        parse_json("", "--data")


def test_dumps_makes_everything_readable() -> None:
    class Color(enum.Enum):
        RED = 1

    value = {"at": datetime(2024, 1, 2, 3, 4, 5), "c": Color.RED, "s": {1}, "o": object}
    assert dumps(value, indent=None) == (
        '{"at": "2024-01-02T03:04:05", "c": "RED", "s": [1], "o": "<class \'object\'>"}'
    )


def test_table_aligns_columns() -> None:
    assert table([("a", None), ("long", 2)], ["X", "Y"]) == "X     Y\na\nlong  2"


def test_output_streams() -> None:
    out, err = io.StringIO(), io.StringIO()
    text = Output(json_mode=False, stdout=out, stderr=err)
    text.result({"a": 1}, "")
    text.note("hello")
    assert (out.getvalue(), err.getvalue()) == ("", "hello\n")
    as_json = Output(json_mode=True, stdout=out, stderr=err)
    as_json.note("not shown")
    assert repr(as_json) == "<Output json>"
    assert repr(text) == "<Output text>"
    assert err.getvalue() == "hello\n"


def test_progress_bar_draws_at_most_every_interval() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, 4, width=4, interval=3600)
    bar.on_finished(None)
    bar.on_finished(None)  # too soon: not drawn
    assert stream.getvalue() == "\r[#...] 1/4 tokens"
    assert repr(bar) == "<ProgressBar 2/4>"
    bar.finish()
    assert stream.getvalue().endswith("\r[##..] 2/4 tokens\n")


def test_log_setup_installs_and_removes_its_handlers(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level, logging.getLogger("alembic").level
    logs = LogSetup("debug", log_file=tmp_path / "x.log")
    assert repr(logs) == "<LogSetup DEBUG [StreamHandler, RotatingFileHandler]>"
    assert logging.getLogger("alembic").level == before[2]  # DEBUG shows alembic too
    logging.getLogger("workflow.test").debug("one line")
    logs.close()
    assert (list(root.handlers), root.level, logging.getLogger("alembic").level) == before
    [line] = (tmp_path / "x.log").read_text().splitlines()
    assert line.endswith(
        " DEBUG test_parts test_log_setup_installs_and_removes_its_handlers one line"
    )


def test_log_database_in_process(open_store: Any, cli: Any, workdir: Path) -> None:
    assert cli("--log-level", "info", "--log-database", "run", f"{TASKS}:definition").code == 0
    store = open_store()
    with store.engine.connect() as conn:
        import sqlalchemy as sa

        count = conn.execute(sa.text("SELECT count(*) FROM wf_syslog")).scalar()
    assert count is not None
    assert count >= 2


def test_database_url_and_sqlite_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKFLOW_DATABASE_URL", raising=False)
    assert database_url(None) == "sqlite:///workflow.sqlite"
    monkeypatch.setenv("WORKFLOW_DATABASE_URL", "sqlite:///env.sqlite")
    assert database_url(None) == "sqlite:///env.sqlite"
    assert database_url("sqlite://") == "sqlite://"
    assert _sqlite_path("sqlite:///a/b.sqlite?mode=ro") == Path("a/b.sqlite")
    assert _sqlite_path("sqlite:///:memory:") is None
    assert _sqlite_path("sqlite://") is None
    assert _sqlite_path("postgresql://x/y") is None


def test_context_repr_and_shown_url() -> None:
    args = argparse.Namespace(command="list", database="sqlite://", log_database=False)
    ctx = Context(args, Output(json_mode=False), LogSetup())
    try:
        assert repr(ctx) == "<Context 'list' database='sqlite://'>"
        assert ctx.shown_url == "sqlite://"
        with pytest.raises(CLIError, match="has no workflow tables"):
            ctx.store(write=False)
        assert ctx.store(write=True) is ctx.store(write=False)
    finally:
        ctx.close()


def test_missing_db_extra_is_a_one_line_error(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "workflow.storage", None)
    result = cli("db", "upgrade")
    assert result.code == ExitCode.ERROR
    assert result.err.startswith("workflow: error: import of workflow.storage halted")


def test_invalid_stored_definition_is_reported(open_store: Any, cli: Any) -> None:
    store = open_store()
    upgrade(store)
    Definitions(store).put("broken", {"name": "broken", "steps": [{"name": "a", "task": "nope"}]})
    result = cli("run", "def:broken")
    assert result.code == ExitCode.USAGE
    assert "definition 'broken' version 1 is not a valid flow:" in result.err
    assert "unknown task 'nope'" in result.err


def test_importing_the_package_does_not_import_the_cli() -> None:
    import subprocess

    code = (
        "import sys, workflow, workflow.engine;"
        "print(sorted(m for m in sys.modules if m.startswith('workflow.cli') or m == 'argparse'));"
        "import workflow.storage, workflow.flows;"
        "print(sorted(m for m in sys.modules if m.startswith('workflow.cli')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]"]
