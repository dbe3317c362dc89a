"""Workflow uuids given whole or by their first hex digits, and one clean sentence when unknown."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import empty_database
from workflow.cli import ExitCode
from workflow.cli._context import CLIError
from workflow.cli._output import printable
from workflow.cli._uuids import resolve_uuid
from workflow.engine_db import WorkflowStatus
from workflow.storage import Store
from workflow.storage.run_rows import WorkflowInsert
from workflow.storage.run_writes import insert_workflow
from workflow.storage.schema import upgrade

from .conftest import TASKS


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    opened = open_store()
    upgrade(opened)
    return opened


@pytest.fixture
def stored(store: Store) -> Callable[..., list[str]]:
    """Store new workflows with the given uuids in the working directory's database."""

    def make(*uids: str) -> list[str]:
        return rows(store, *uids)

    return make


def rows(store: Store, *uids: str) -> list[str]:
    """Store new workflows with the given uuids, as ``workflow run`` of a callback list would."""
    meta = {"imports": [TASKS], "target": f"{TASKS}:definition", "checkpoint": "token"}
    now = store.now()
    with store.transaction("test rows") as conn:
        for uid in uids:
            row = WorkflowInsert(
                uuid=uid,
                name="x",
                status=WorkflowStatus.NEW.value,
                token_pos=-1,
                callback_pos=[0],
                extra_data={"cli": meta},
                definition_name=None,
                definition_version=None,
                created=now,
                modified=now,
            )
            insert_workflow(conn, row)
    return list(uids)


def full(prefix: str, n: int) -> str:
    """A uuid starting with ``prefix`` (8 hex digits), made unique by ``n``."""
    return f"{prefix}-0000-4000-8000-{n:012x}"


def test_a_unique_prefix_resolves_for_show(cli: Any, stored: Any) -> None:
    [one, _] = stored(full("abcd1234", 1), full("abce0000", 2))
    shown = cli("--json", "show", "abcd")
    assert shown.code == ExitCode.OK, shown.err
    assert shown.json()["uuid"] == one
    assert cli("--json", "show", "ABCD1").json()["uuid"] == one


def test_resume_takes_a_prefix(cli: Any, workdir: Path) -> None:
    (workdir / "halt.json").write_text('{"halt": true}')
    halted = cli("--json", "run", f"{TASKS}:definition", "--tokens", "halt.json").json()
    resumed = cli("--json", "resume", halted["uuid"][:8], "--data", '{"approved": true}')
    assert resumed.code == ExitCode.OK, resumed.err
    assert resumed.json()["uuid"] == halted["uuid"]


def test_a_whole_uuid_resolves(store: Store, stored: Any) -> None:
    [one] = stored(full("1234abcd", 1))
    assert resolve_uuid(store, one) == one
    assert resolve_uuid(store, one.upper()) == one


def test_an_ambiguous_prefix_lists_the_candidates(cli: Any, stored: Any) -> None:
    made = stored(full("abcd0000", 1), full("abcd0000", 2), full("abcf0000", 3))
    result = cli("show", "abcd")
    assert result.code == ExitCode.USAGE
    assert result.err == (
        f"workflow: error: 2 workflows have a uuid starting with 'abcd': {made[0]}, {made[1]}; "
        "give more of the uuid\n"
    )


def test_many_candidates_are_cut_at_ten(cli: Any, stored: Any) -> None:
    made = sorted(stored(*(full("beef0000", n) for n in range(13))))
    result = cli("--json", "resume", "beef")
    assert result.code == ExitCode.USAGE
    message = result.json()["error"]
    assert message == (
        f"13 workflows have a uuid starting with 'beef': {', '.join(made[:10])} and 3 more; "
        "give more of the uuid"
    )


@pytest.mark.parametrize("command", ["show", "resume"])
@pytest.mark.parametrize(
    "text",
    ["no-such", "%", "____", "abc%", "'; drop table wf_workflow; --", "ab\x1bc", "\udcff\udcfe"],
)
def test_an_unknown_uuid_is_one_clean_sentence(
    cli: Any, stored: Any, command: str, text: str
) -> None:
    stored(full("abcd0000", 1))
    result = cli(command, text)
    assert result.code == ExitCode.USAGE
    shown = printable(repr(text))
    assert result.err == f"workflow: error: no stored workflow has the uuid {shown}\n"


def test_a_prefix_nothing_starts_with(cli: Any, stored: Any) -> None:
    stored(full("abcd0000", 1))
    result = cli("show", "0000")
    assert result.err == "workflow: error: no stored workflow has a uuid starting with '0000'\n"
    missing = str(uuid.UUID(int=1))
    assert (
        cli("show", missing).err
        == f"workflow: error: no stored workflow has the uuid {missing!r}\n"
    )


def test_a_prefix_needs_four_hex_digits(store: Store, stored: Any) -> None:
    stored(full("abcd0000", 1))
    with pytest.raises(
        CLIError, match="'ab-c' is too short to find a workflow by: give at least 4"
    ):
        resolve_uuid(store, "ab-c")
    assert resolve_uuid(store, "abcd0000-0").startswith("abcd")  # dashes are not counted


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_prefixes_resolve_on_every_backend(backend: str, tmp_path: Path) -> None:
    server = Store(empty_database(backend, tmp_path))
    try:
        upgrade(server)
        uids = full("abcd0000", 0x01), full("abcd0000", 0x10), full("abce0000", 3)
        one, two, other = rows(server, *uids)
        assert resolve_uuid(server, one.upper()) == one
        assert resolve_uuid(server, "ABCE") == other
        assert resolve_uuid(server, two[:-1]) == two
        with pytest.raises(CLIError, match=rf"^2 workflows .* 'abcd': {one}, {two};"):
            resolve_uuid(server, "abcd")
        for text in ("abc_", "abc%", "ab%%"):
            with pytest.raises(CLIError, match=r"^no stored workflow has the uuid"):
                resolve_uuid(server, text)
    finally:
        server.dispose()
