"""Reading the directive blocks of a reST page, for tests that run the docs' examples."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"\.\. ([\w-]+)::\s*(.*?)\s*")


@dataclass
class Block:
    """One directive of a page: ``.. name:: argument``, its ``:options:`` and its body."""

    name: str
    argument: str
    body: str
    options: dict[str, str] = field(default_factory=dict)


def read_blocks(text: str, *names: str) -> list[Block]:
    """Return the directives called one of ``names`` in a reST page, in order."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.fullmatch(lines[i])
        i += 1
        if match is None or match.group(1) not in names:
            continue
        options = {}
        while i < len(lines) and lines[i].strip().startswith(":"):
            key, _, value = lines[i].strip()[1:].partition(":")
            options[key] = value.strip()
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            body.append(lines[i])
            i += 1
        content = textwrap.dedent("\n".join(body)).strip("\n")
        blocks.append(Block(match.group(1), match.group(2), content, options))
    return blocks
