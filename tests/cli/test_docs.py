"""Run the examples of ``docs/cli.rst`` and check that they print what the page shows.

The page's ``.. code-block::`` directives with a ``:caption:`` are files,
written to an empty working directory; its ``console`` blocks are commands
(``$ ...``) followed by their output (stdout and stderr together), run in
that directory in page order with the installed ``workflow`` script. In the
expected output, ``...`` stands for any text, and a UUID shown on the page
stands for the UUID of the real run it first appeared with (later commands
use the real one); after that, its first 8 hex digits alone stand for the
real one's. ``echo $?`` prints the exit code of the command before.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests import rst

from .conftest import ROOT, subprocess_env

PAGE = ROOT / "docs" / "cli.rst"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Block:
    language: str
    caption: str | None
    body: str


@dataclass
class Session:
    """The commands run so far: the last exit code and the page's UUIDs mapped to real ones."""

    directory: Path
    code: int = 0
    uuids: dict[str, str] = field(default_factory=dict)

    def run(self, command: str) -> str:
        if command == "echo $?":
            return f"{self.code}\n"
        command = self.real_ids(command)
        env = subprocess_env(PYTHONUNBUFFERED="1")
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        self.code = done.returncode
        return done.stdout

    def real_ids(self, text: str) -> str:
        """Put the real UUIDs, and their first 8 hex digits, for those the page shows."""
        for shown, real in self.uuids.items():
            text = text.replace(shown, real)
            text = re.sub(rf"(?<![0-9a-f-]){shown[:8]}(?![0-9a-f-])", real[:8], text)
        return text

    def pattern(self, expected: str) -> re.Pattern[str]:
        """Turn the page's output into a regular expression; unknown UUIDs become groups."""
        expected = "".join(
            piece if UUID.fullmatch(piece) else self.real_ids(piece)
            for piece in re.split(f"({UUID.pattern})", expected)
        )
        parts = []
        for piece in re.split(r"(\.\.\.|" + UUID.pattern + ")", expected):
            if piece == "...":
                parts.append(".*?")
            elif UUID.fullmatch(piece):
                known = self.uuids.get(piece)
                parts.append(re.escape(known) if known else f"(?P<u{piece.replace('-', '')}>"
                             f"{UUID.pattern})")  # fmt: skip
            else:
                parts.append(re.escape(piece))
        # A repeated unknown UUID: the first is the group, the others refer to it.
        text, seen = "".join(parts), set()
        for name in re.findall(r"\(\?P<(u[0-9a-f]{32})>", text):
            if name in seen:
                continue
            seen.add(name)
            group = f"(?P<{name}>{UUID.pattern})"
            first = text.index(group) + len(group)
            text = text[:first] + text[first:].replace(group, f"(?P={name})")
        return re.compile(text, re.DOTALL)

    def check(self, command: str, expected: str) -> None:
        got = self.run(command)
        expected = expected.replace("<BLANKLINE>", "")
        match = self.pattern(expected).fullmatch(got.rstrip("\n") + "\n" if got else "")
        assert match, f"$ {command}\n--- the page shows:\n{expected}--- the command printed:\n{got}"
        for name, value in match.groupdict().items():
            shown = name[1:]
            shown = "-".join([shown[:8], shown[8:12], shown[12:16], shown[16:20], shown[20:]])
            self.uuids[shown] = value


def read_blocks(text: str) -> list[Block]:
    """Return the code blocks of a reST page, in order."""
    return [
        Block(block.argument, block.options.get("caption"), block.body)
        for block in rst.read_blocks(text, "code-block")
    ]


def commands(body: str) -> list[tuple[str, str]]:
    """Split a console block into ``(command, expected output)`` pairs."""
    pairs: list[tuple[str, str]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], ""))
        else:
            command, output = pairs[-1]
            pairs[-1] = (command, output + line + "\n")
    return pairs


def test_page_has_files_and_commands() -> None:
    blocks = read_blocks(PAGE.read_text())
    captions = [block.caption for block in blocks if block.caption]
    assert captions == [
        "tasks.py", "review.json", "papers.jsonl", "pipeline.py", "orders.py", "bad.json"
    ]  # fmt: skip
    assert sum(len(commands(b.body)) for b in blocks if b.language == "console") >= 25


def test_cli_page_examples(tmp_path: Path) -> None:
    session = Session(tmp_path)
    for block in read_blocks(PAGE.read_text()):
        if block.caption:
            (tmp_path / block.caption).write_text(block.body + "\n")
        elif block.language == "console":
            for command, expected in commands(block.body):
                session.check(command, expected)
