"""``workflow check``: a pre-flight check of the database, the stored flows and the extras.

It reads and never writes: the database answers and its schema is the
latest; every enabled stored definition validates against the tasks
registered now (after ``--import``); the extras those flows need are
installed. Exit 0 when all is well, 1 listing each problem otherwise.
"""

from __future__ import annotations

import argparse
import importlib
from typing import TYPE_CHECKING, Any

from ._context import Context, ExitCode, _sqlite_path, import_storage
from ._targets import definition_lookup, task_registry

if TYPE_CHECKING:
    from workflow.storage import Store

__all__ = ["register"]

#: The extras a stored flow may need, by the module they provide and what needs it.
_EXTRAS = {
    "jsonschema": ("schema", "halt steps that declare the schema of their answer"),
    "yaml": ("yaml", "reading .yaml flow files; stored flows are JSON"),
}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``check`` command."""
    check = commands.add_parser(
        "check",
        parents=[common],
        help="check the database, the stored flows and the extras before running anything",
        description="A pre-flight check that changes nothing: the database answers and its "
        "schema is the latest, every enabled stored flow is valid with the tasks registered "
        "now (give --import for yours), and the extras those flows need are installed. "
        "Exits 0 when all is well, 1 listing each problem.",
    )
    check.set_defaults(handler=cmd_check)


def cmd_check(ctx: Context) -> int:
    """Run every check; print what was found and each problem."""
    problems: list[str] = []
    report: dict[str, Any] = {"database": _database(ctx, problems)}
    definitions: list[dict[str, Any]] = []
    if report["database"]["current"]:
        definitions = _definitions(ctx, problems)
    report["definitions"] = definitions
    report["extras"] = _extras(definitions, problems)
    report["problems"] = problems
    report["ok"] = not problems
    ctx.out.result(report, lambda: _text(report))
    return int(ExitCode.OK if not problems else ExitCode.ERROR)


def _database(ctx: Context, problems: list[str]) -> dict[str, Any]:
    """Check that the database answers and is at the latest revision; never create it."""
    from workflow.errors import StorageError

    found: dict[str, Any] = {"url": None, "revision": None, "head": None, "tables": None}
    found["current"] = False
    path = _sqlite_path(ctx.url)
    if path is not None and not path.exists():
        found["url"] = ctx.url  # a SQLite URL holds no password
        problems.append(f"database: no workflow database at {path} (run `workflow db upgrade`)")
        return found
    store = ctx.open_store()  # a URL that names no usable database is a usage error (exit 2)
    found["url"] = ctx.shown_url
    try:
        found.update(_revision(store))
    except StorageError as exc:
        reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
        problems.append(f"database: {ctx.shown_url} does not answer: {reason}")
        return found
    if found["tables"] is False:
        problems.append(
            f"database: {ctx.shown_url} has no workflow tables: run `workflow db upgrade`"
        )
    elif found["revision"] not in (None, found["head"]):
        problems.append(
            f"database: {ctx.shown_url} is at schema revision {found['revision']}, this version "
            f"of workflow needs {found['head']}: run `workflow db upgrade`"
        )
    else:
        found["current"] = True
    return found


def _revision(store: Store) -> dict[str, Any]:
    import sqlalchemy as sa

    import_storage()
    from workflow.storage.schema import current_revision, head_revision

    revision = current_revision(store)
    tables: bool | None = None
    if revision is None:  # no revision: tables made by Store.create_all(), or none at all
        from workflow.storage.store import map_errors

        with map_errors("schema lookup"):
            tables = "wf_workflow" in sa.inspect(store.sql_engine).get_table_names()
    return {"revision": revision, "head": head_revision(), "tables": tables}


def _definitions(ctx: Context, problems: list[str]) -> list[dict[str, Any]]:
    """Validate every enabled version of every stored flow with the tasks registered now."""
    from workflow.flows import FlowValidationError, default_registry, load_flow
    from workflow.storage import Definitions

    stored = Definitions(ctx.store(write=False))
    registry, lookup = default_registry, definition_lookup(ctx)
    try:
        task_registry()  # loads the tasks of installed packages
    except ImportError as exc:  # a broken entry point: its tasks are reported where used
        problems.append(f"tasks: {exc}")
    checked = []
    for latest in stored.list(include_disabled=False):
        for definition in stored.versions(latest.name):
            if not definition.enabled:
                continue
            errors: list[str] = []
            try:
                load_flow(
                    definition.body,
                    registry=registry,
                    definitions=lookup,
                    version=definition.version,
                )
            except FlowValidationError as exc:
                errors = [str(error) for error in exc.errors] or [exc.message]
            which = f"definition {definition.name!r} version {definition.version}"
            problems.extend(f"{which}: {error}" for error in errors)
            checked.append(
                {
                    "name": definition.name,
                    "version": definition.version,
                    "valid": not errors,
                    "errors": errors,
                    "answer_schemas": _has_answer_schema(definition.body),
                }
            )
    return checked


def _has_answer_schema(body: Any) -> bool:
    """Whether a flow body has a halt step that declares the ``schema`` of its answer."""
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            halt = value.get("halt")
            if isinstance(halt, dict) and "schema" in halt:
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _extras(definitions: list[dict[str, Any]], problems: list[str]) -> dict[str, Any]:
    """Say which extras are installed and which the stored flows need."""
    needs = {
        "jsonschema": [f"{d['name']} v{d['version']}" for d in definitions if d["answer_schemas"]],
        "yaml": [],
    }
    found = {}
    for module, (extra, purpose) in _EXTRAS.items():
        installed = _installed(module)
        found[extra] = {"installed": installed, "needed_by": needs[module], "for": purpose}
        if needs[module] and not installed:
            problems.append(
                f"extra {extra!r}: not installed, and needed by {', '.join(needs[module])} "
                f"for {purpose}: pip install 'workflow-ng[{extra}]'"
            )
    return found


def _installed(module: str) -> bool:
    """Whether ``module`` imports (a module that is there but broken is not installed)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _text(report: dict[str, Any]) -> str:
    database = report["database"]
    lines = []
    if database["current"] and database["revision"] is None:
        lines.append(f"database {database['url']}: tables made by Store.create_all()")
    elif database["current"]:
        lines.append(f"database {database['url']}: schema at {database['revision']}, the latest")
    definitions = report["definitions"]
    valid = sum(d["valid"] for d in definitions)
    if database["current"]:
        lines.append(f"stored flows: {valid} of {len(definitions)} enabled version(s) valid")
    for extra, state in report["extras"].items():
        installed = "installed" if state["installed"] else "not installed"
        needed = f", needed by {', '.join(state['needed_by'])}" if state["needed_by"] else ""
        lines.append(f"extra {extra}: {installed}{needed} (for {state['for']})")
    if report["problems"]:
        lines.append(f"{len(report['problems'])} problem(s):")
        lines.extend(f"  {problem}" for problem in report["problems"])
    else:
        lines.append("all is well")
    return "\n".join(lines)
