"""Control characters a run stores reach the terminal escaped, never raw.

A workflow's name, its steps' messages and its tasks' errors are chosen by
whoever wrote the input or the tasks: printed raw, ``ESC`` sequences could
rewrite the screen and bidi overrides reorder what the user reads.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from workflow.cli._logging import TerminalFormatter
from workflow.cli._output import dumps, printable, table

UUID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")

#: A title change, a colour, a carriage return, a C1 CSI and a bidi override.
HOSTILE = "\x1b]0;owned\x07red\x1b[31m\rback\x9b2J\u202etxt.exe"
RAW = ("\x1b", "\x07", "\r", "\x00", "\x9b", "\u202e")

TASKS = f"""
HOSTILE = {HOSTILE!r}


def shout(obj, eng):
    if obj.data.get("halt"):
        eng.halt("halt " + HOSTILE)
    if obj.data.get("fail"):
        raise ValueError("fail " + HOSTILE + "\\x00")


definition = [shout]
"""


def assert_no_raw_controls(text: str) -> None:
    found = [char for char in RAW if char in text]
    assert not found, (found, text)


def test_list_show_and_run_escape_what_a_run_stored(real: Any, workdir: Path) -> None:
    (workdir / "hostile.py").write_text(TASKS)
    (workdir / "in.json").write_text('[{"halt": true}, {"fail": true}]')
    name = f"name {HOSTILE}\nforged line"
    ran = real(
        "--import", "hostile", "run", "hostile:definition", "--tokens", "in.json", "--name", name
    )
    assert ran.code == 1, ran.err
    [uuid] = set(UUID.findall(ran.out))
    for result in (ran, real("list"), real("show", uuid)):
        assert_no_raw_controls(result.out + result.err)
        assert "\\x1b]0;owned\\x07red\\x1b[31m\\rback\\x9b2J\\u202etxt.exe" in result.out
    listed = real("list").out
    assert "\\nforged line" in listed  # a name keeps to its row
    shown = real("show", uuid).out
    assert re.search(r"token 1 +INITIAL -> ERROR +fail \\x1b\]0;owned", shown)


def test_json_output_stays_valid_json_with_the_same_values(real: Any, workdir: Path) -> None:
    (workdir / "hostile.py").write_text(TASKS)
    (workdir / "in.json").write_text('[{"halt": true}]')
    ran = real(
        "--json",
        "--import",
        "hostile",
        "run",
        "hostile:definition",
        "--tokens",
        "in.json",
        "--name",
        HOSTILE,
    )
    shown = real("--json", "show", ran.json()["uuid"])
    for result in (ran, shown, real("--json", "list")):
        assert_no_raw_controls(result.out)
        json.loads(result.out)
    assert shown.json()["name"] == HOSTILE
    messages = [change["message"] for change in shown.json()["status_changes"]]
    assert f"halt {HOSTILE}" in messages


def test_errors_are_escaped(real: Any, workdir: Path) -> None:
    assert real("db", "upgrade").code == 0
    result = real("show", f"no {HOSTILE}")
    assert result.code == 2
    assert_no_raw_controls(result.err)
    assert "no \\x1b]0;owned" in result.err


def test_log_lines_are_escaped_and_keep_tracebacks_on_their_lines() -> None:
    formatter = TerminalFormatter("%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "run %s", (HOSTILE,), exc_info=True
        )
        record.exc_info = __import__("sys").exc_info()
    text = formatter.format(record)
    assert_no_raw_controls(text)
    assert text.startswith("run \\x1b]0;owned")
    assert "\nTraceback (most recent call last):\n" in text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain, ünïcode and emoji \U0001f600", "plain, ünïcode and emoji \U0001f600"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\tb\nc\rd\x00", "a\\tb\\nc\\rd\\x00"),
        ("\x7f\x85\x9f", "\\x7f\\x85\\x9f"),
        (
            "\u202a\u202e\u2066\u2069\u200e\u200f\u061c",
            "\\u202a\\u202e\\u2066\\u2069\\u200e\\u200f\\u061c",
        ),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("\ud800", "\\ud800"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_may_keep_line_breaks() -> None:
    assert printable("a\nb\x1b", newlines=True) == "a\nb\\x1b"


def test_table_cells_are_one_line_each() -> None:
    assert table([("a\nb", "\x1b")], ["X", "Y"]) == "X     Y\na\\nb  \\x1b"


def test_dumps_escapes_what_json_leaves_raw() -> None:
    value = {"k\u202e": "\x9b\x1b\u2028\ud800 é"}
    text = dumps(value, indent=None)
    assert text == '{"k\\u202e": "\\u009b\\u001b\\u2028\\ud800 é"}'
    assert json.loads(text) == value
