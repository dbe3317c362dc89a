"""The database URLs a person writes: file paths, short forms, and one line for the rest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import empty_database
from workflow.cli._database import FORMS, choose, hidden

ENV = "WORKFLOW_DATABASE_URL"


def test_a_file_path_is_an_sqlite_file(cli: Any, workdir: Path) -> None:
    ran = cli("--database", "runs.sqlite", "run", "simple.json")
    assert ran.code == 0, ran.err
    assert (workdir / "runs.sqlite").is_file()
    assert not (workdir / "workflow.sqlite").exists()
    listed = cli("--json", "--database", str(workdir / "runs.sqlite"), "list")
    assert [row["name"] for row in listed.json()] == ["simple"]


def test_a_file_path_in_the_variable_is_an_sqlite_file(
    cli: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "env.sqlite")
    assert cli("run", "simple.json").code == 0
    assert (workdir / "env.sqlite").is_file()


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("runs.sqlite", "sqlite:///runs.sqlite"),
        ("/tmp/runs.db", "sqlite:////tmp/runs.db"),
        ("sqlite://", "sqlite://"),
        ("postgres://u:pw@h/db", "postgresql+psycopg://u:pw@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgres+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("mysql://u@h/db", "mysql+pymysql://u@h/db"),
        ("mariadb://u@h/db", "mysql+pymysql://u@h/db"),
        ("mysql+mysqldb://u@h/db", "mysql+mysqldb://u@h/db"),
    ],
)
def test_short_forms_get_the_drivers_we_ship(given: str, url: str) -> None:
    assert choose(given, {}).url == url


def test_the_option_wins_over_the_variable() -> None:
    assert choose("a.db", {ENV: "b.db"}).source == "--database"
    assert choose(None, {ENV: "b.db"}).source == f"${ENV}"
    assert choose(None, {}).url == "sqlite:///workflow.sqlite"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("sqlite:/runs.db", "not a database URL (no '://' after the scheme)"),
        ("foo://bar", "unknown database 'foo'"),
        ("  ", "no database given"),
        ("://nothing", "not a database URL"),
    ],
)
@pytest.mark.parametrize("where", ["option", "variable"])
def test_a_bad_url_is_one_line_naming_the_forms(
    cli: Any, monkeypatch: pytest.MonkeyPatch, given: str, reason: str, where: str
) -> None:
    if where == "option":
        argv, source = ["--database", given], "--database"
    else:
        argv, source = [], f"${ENV}"
        monkeypatch.setenv(ENV, given)
    result = cli(*argv, "list")
    assert result.code == 2
    assert result.err == f"workflow: error: {source} {given!r}: {reason}; give {FORMS}\n"
    assert result.out == ""


def test_a_bad_url_under_json_is_the_error_object(cli: Any) -> None:
    result = cli("--json", "--database", "foo://user:secret@host/db", "run", "simple.json")
    assert result.code == 2
    assert result.json() == {
        "error": f"--database 'foo://user:***@host/db': unknown database 'foo'; give {FORMS}",
        "exit_code": 2,
    }
    assert "secret" not in result.out + result.err


@pytest.mark.parametrize(
    ("given", "module", "extra"),
    [
        ("postgres://u:secret@h/db", "psycopg", "postgresql"),
        ("mariadb://u:secret@h/db", "pymysql", "mariadb"),
    ],
)
def test_a_missing_driver_names_the_extra(
    cli: Any, monkeypatch: pytest.MonkeyPatch, given: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    monkeypatch.setenv(ENV, given)
    result = cli("list")
    assert result.code == 2
    assert result.err == (
        f"workflow: error: ${ENV} {hidden(given)!r}: its driver {module} is not installed: "
        f"pip install 'workflow-ng[{extra}]'\n"
    )
    assert "secret" not in result.err


def test_another_missing_driver_is_named_with_ours(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    result = cli("--database", "postgresql+psycopg2://u@h/db", "list")
    assert result.err == (
        "workflow: error: --database 'postgresql+psycopg2://u@h/db': its driver psycopg2 is not "
        "installed: install it, or write postgresql://... for psycopg "
        "(pip install 'workflow-ng[postgresql]')\n"
    )


def test_an_unknown_driver_is_named(cli: Any) -> None:
    result = cli("--database", "postgresql+nosuchdriver://u:secret@h/db", "list")
    assert result.code == 2
    assert result.err == (
        "workflow: error: --database 'postgresql+nosuchdriver://u:***@h/db': unknown driver "
        f"'postgresql+nosuchdriver'; give {FORMS}\n"
    )


def test_an_unknown_database_of_sqlalchemy_names_its_driver(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyodbc", None)
    result = cli("--database", "mssql://u:secret@h/db", "list")
    assert result.err == (
        f"workflow: error: --database 'mssql://u:***@h/db': its driver pyodbc is not "
        f"installed; give {FORMS}\n"
    )


def test_a_bad_variable_does_not_stop_commands_without_a_database(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "foo://bar")
    assert cli("validate", "simple.json").code == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss:w@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h:5432/db", "postgresql://h:5432/db"),
        ("runs:db", "runs:db"),
        ("user:secret@host/db", "user:***@host/db"),
    ],
)
def test_passwords_are_hidden(url: str, shown: str) -> None:
    assert hidden(url) == shown


def test_a_real_subprocess_reports_a_bad_url_without_a_traceback(real: Any) -> None:
    result = real("--json", "list", WORKFLOW_DATABASE_URL="postgres+:nothing")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert result.json()["exit_code"] == 2


@pytest.mark.parametrize(("backend", "short"), [("postgresql", "postgres"), ("mariadb", "mysql")])
def test_the_short_forms_reach_the_servers(
    cli: Any, tmp_path: Path, backend: str, short: str
) -> None:
    url = empty_database(backend, tmp_path)
    shortened = short + url[url.index("://") :]  # postgresql+psycopg:// -> postgres://
    ran = cli("--json", "--database", shortened, "run", "simple.json")
    assert ran.code == 0, ran.err
    listed = cli("--json", "--database", shortened, "list").json()
    assert [row["uuid"] for row in listed] == [ran.json()["uuid"]]
