"""README.rst: its examples run as shown, and it renders as PyPI shows it.

The Python examples of the README are ``pycon`` blocks (``>>>`` sessions),
run here with :mod:`doctest` in an empty working directory, in page order and
in one namespace: an example that is wrong, or prints something else than
the README shows, fails this test. Its ``console`` blocks are commands run
from the repository root, as ``tests/cli/test_docs.py`` runs those of
``docs/cli.rst`` (in an empty directory that links to ``examples/``).
"""

from __future__ import annotations

import doctest
import io
import json
from pathlib import Path

import pytest

from tests import rst

README = Path(__file__).resolve().parent.parent / "README.rst"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_examples_print_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the durable run makes runs.sqlite in the working directory
    test = doctest.DocTestParser().get_doctest(readme(), {}, "README.rst", str(README), 0)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    try:
        result = runner.run(test, out=report.write)
    finally:
        for value in test.globs.values():
            if type(value).__name__ == "Store":
                value.dispose()
    assert result.failed == 0, report.getvalue()
    assert result.attempted >= 20


def test_readme_commands_print_what_the_readme_shows(tmp_path: Path) -> None:
    from tests.cli.test_docs import Session, commands

    (tmp_path / "examples").symlink_to(README.parent / "examples")
    session = Session(tmp_path)
    blocks = [b for b in rst.read_blocks(readme(), "code-block") if b.argument == "console"]
    assert blocks
    for block in blocks:
        for command, expected in commands(block.body):
            session.check(command, expected)


def test_every_python_example_of_the_readme_is_a_session_that_runs() -> None:
    blocks = rst.read_blocks(readme(), "code-block", "code", "sourcecode")
    languages = {block.argument for block in blocks}
    assert "python" not in languages, "write Python examples as pycon (>>>) blocks: they run"
    sessions = [block for block in blocks if block.argument == "pycon"]
    assert len(sessions) >= 3
    for block in sessions:
        assert block.body.startswith(">>> "), block.body


def test_readme_json_example_is_json() -> None:
    [block] = [b for b in rst.read_blocks(readme(), "code-block") if b.argument == "json"]
    assert json.loads(block.body)["name"] == "orders"


def test_readme_renders_without_a_warning() -> None:
    core = pytest.importorskip("docutils.core", reason="Sphinx (the dev extra) brings docutils")
    from docutils.utils import SystemMessage

    try:
        core.publish_doctree(
            readme(),
            source_path=str(README),
            settings_overrides={"halt_level": 2, "report_level": 5},
        )
    except SystemMessage as error:  # pragma: no cover - the message is the failure
        pytest.fail(f"README.rst does not render cleanly: {error}")
