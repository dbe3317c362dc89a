"""Run the "Zack's grades" example of ``docs/storage_example.rst`` and check what it prints.

The code is read from the page itself, so the page and this test cannot drift
apart; the expected lines are those of the Invenio ``workflow`` 2.x docs.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from tests import rst

PAGE = Path(__file__).resolve().parent.parent / "docs" / "storage_example.rst"

EXPECTED = [
    "Testing grade #1, with data 6",
    "Testing grade #2, with data 5",
    "Testing grade #3, with data 4",
    "The student has failed this test!",
    "What Zak sees: [6, 5, 4, 5, 2, 6]",
    "Note how the engine resumes from the last failing test:",
    "Testing grade #3, with data 4",
    "Amending this grade..",
    "Testing grade #4, with data 5",
    "Testing grade #5, with data 2",
    "Amending this grade..",
    "Testing grade #6, with data 6",
    "What the professor sees: [6, 5, 5, 5, 5, 6]",
]


def read_blocks(text: str) -> list[tuple[str, str]]:
    """Return ``(directive, body)`` for each doctest block of a reST page, in order."""
    blocks = rst.read_blocks(text, "testcode", "testoutput", "testcleanup")
    return [(block.name, block.body) for block in blocks]


def run_page(blocks: list[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """Run the code blocks in one namespace; pair each output block with what was printed."""
    namespace: dict[str, Any] = {"__name__": "storage_example"}
    checks = []
    printed = io.StringIO()
    try:
        for directive, body in blocks:
            if directive == "testcode":
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    exec(compile(body, str(PAGE), "exec", dont_inherit=True), namespace)
            elif directive == "testoutput":
                checks.append((printed.getvalue().splitlines(), body.splitlines()))
    finally:
        for directive, body in blocks:
            if directive == "testcleanup":
                exec(compile(body, str(PAGE), "exec", dont_inherit=True), namespace)
    return checks


def test_page_shows_the_documented_output() -> None:
    blocks = read_blocks(PAGE.read_text(encoding="utf-8"))

    shown = [
        line
        for directive, body in blocks
        if directive == "testoutput"
        for line in body.splitlines()
    ]
    assert shown == EXPECTED


def test_storage_example_prints_exactly_the_documented_lines() -> None:
    pytest.importorskip("workflow.patterns.controlflow", reason="the example uses IF and HALT")
    blocks = read_blocks(PAGE.read_text(encoding="utf-8"))

    checks = run_page(blocks)

    assert [printed for printed, _ in checks] == [expected for _, expected in checks]
    assert [line for printed, _ in checks for line in printed] == EXPECTED
