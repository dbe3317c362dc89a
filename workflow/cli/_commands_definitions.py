"""``workflow validate``, ``workflow graph`` and ``workflow definitions ...``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._argtypes import positive
from ._context import CLIError, Context
from ._output import dumps, table
from ._targets import (
    definition_lookup,
    format_flow_errors,
    import_hint,
    load_flow_file,
    task_registry,
)

if TYPE_CHECKING:
    from workflow.storage import Definition

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``validate``, ``graph`` and ``definitions`` commands."""
    validate = commands.add_parser(
        "validate",
        parents=[common],
        help="check a flow file and list every problem, one per line",
    )
    validate.add_argument(
        "files", nargs="+", metavar="FILE", help="flow files (.json, .yaml, .yml)"
    )
    validate.set_defaults(handler=cmd_validate)

    graph = commands.add_parser("graph", parents=[common], help="draw a flow as a graph")
    graph.add_argument("file", metavar="FILE", help="a flow file (.json, .yaml, .yml)")
    graph.add_argument(
        "--format", choices=["mermaid", "dot"], default="mermaid", help="default: mermaid"
    )
    graph.set_defaults(handler=cmd_graph)

    definitions = commands.add_parser(
        "definitions", parents=[common], help="manage the stored flow definitions"
    )
    actions = definitions.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = actions.add_parser(
        "put", parents=[common], help="store a flow file as the next version of its flow"
    )
    put.add_argument("file", metavar="FILE")
    put.set_defaults(handler=cmd_put)
    listing = actions.add_parser(
        "list", parents=[common], help="list the stored flows (their latest versions)"
    )
    listing.add_argument("--all", action="store_true", help="include the deleted ones")
    listing.set_defaults(handler=cmd_list)
    show = actions.add_parser("show", parents=[common], help="show a stored flow")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--version", type=positive, metavar="N", help="default: the latest")
    show.set_defaults(handler=cmd_show)
    for action, text in [
        ("disable", "stop new runs of a flow (runs already started can resume)"),
        ("enable", "allow new runs of a flow again"),
        (
            "delete",
            "delete a flow; refused while unfinished runs are pinned to the version(s)",
        ),
    ]:
        command = actions.add_parser(action, parents=[common], help=text)
        command.add_argument("name", metavar="NAME")
        command.add_argument("--version", type=positive, metavar="N", help="default: every version")
        command.set_defaults(handler=cmd_change, change=action)


def cmd_validate(ctx: Context) -> int:
    """Check flow files; exit 2 listing every error when one is invalid.

    With one file, the result is one JSON object; with several, a list of them.
    """
    checked = [_validate_file(ctx, path) for path in ctx.args.files]
    results = [result for result, _ in checked]
    hint = next((r["hint"] for r in results if "hint" in r), None)
    several = len(results) > 1

    def text() -> str:
        lines = [_validated_text(result, errors, several=several) for result, errors in checked]
        return "\n".join([*lines, *([hint] if hint else [])])

    ctx.out.result(results if several else results[0], text)
    return 2 if any(not result["valid"] for result in results) else 0


def _validate_file(ctx: Context, path: str) -> tuple[dict[str, Any], str]:
    """Validate one flow file; return what ``--json`` shows of it, and its errors as text."""
    from workflow.flows import FlowValidationError, load_flow

    try:
        flow = load_flow(path, registry=task_registry(), definitions=definition_lookup(ctx))
    except FlowValidationError as exc:
        errors = [
            {"flow": e.flow, "step": e.step, "path": e.path, "message": e.message}
            for e in exc.errors
        ]
        result: dict[str, Any] = {"file": path, "valid": False, "errors": errors}
        hint = import_hint(ctx, exc.errors)
        if hint:
            result["hint"] = hint
        return result, format_flow_errors(exc.errors) or str(exc)
    steps = len(flow.body.get("steps", []))
    text = f"{path}: flow {flow.name!r} is valid ({steps} step{'' if steps == 1 else 's'})"
    return {"file": path, "valid": True, "flow": flow.name, "errors": []}, text


def _validated_text(result: dict[str, Any], text: str, *, several: bool) -> str:
    """One file's report: a line when it is valid; its errors, under its name with several."""
    if result["valid"] or not several:
        return text
    count = len(result["errors"])
    indented = "\n".join(f"  {line}" for line in text.splitlines())
    return f"{result['file']}: invalid, {count} error{'s' if count != 1 else ''}:\n{indented}"


def cmd_graph(ctx: Context) -> int:
    """Print a flow as a Mermaid or Graphviz graph."""
    flow = load_flow_file(ctx, ctx.args.file, structure_only=True)
    graph = flow.graph(ctx.args.format).rstrip("\n")
    ctx.out.result({"flow": flow.name, "format": ctx.args.format, "graph": graph}, graph)
    return 0


def _as_dict(definition: Definition, *, body: bool = False) -> dict[str, Any]:
    result = {
        "name": definition.name,
        "version": definition.version,
        "enabled": definition.enabled,
        "deleted": definition.deleted,
        "checksum": definition.checksum,
        "created": definition.created,
        "updated": definition.updated,
    }
    if body:
        result["body"] = definition.body
    return result


def _definitions(ctx: Context, *, write: bool) -> Any:
    from workflow.storage import Definitions

    return Definitions(ctx.store(write=write))


def cmd_put(ctx: Context) -> int:
    """Store a flow file as a new version (unless the latest one is the same)."""
    flow = load_flow_file(ctx, ctx.args.file)
    definitions = _definitions(ctx, write=True)
    before = {d.version for d in definitions.versions(flow.name)}
    stored = definitions.put(flow.name, flow.body)
    result = _as_dict(stored)
    result["created_version"] = stored.version not in before
    if result["created_version"]:
        text = f"stored flow {stored.name!r} version {stored.version}"
    else:
        text = f"flow {stored.name!r} is unchanged: version {stored.version}"
    ctx.out.result(result, text)
    return 0


def cmd_list(ctx: Context) -> int:
    """List the stored flows."""
    found = _definitions(ctx, write=False).list(include_deleted=ctx.args.all)
    result = [_as_dict(d) for d in found]

    def text() -> str:
        if not result:
            return "no stored flows"
        rows = [
            (
                d["name"],
                d["version"],
                "deleted" if d["deleted"] else "enabled" if d["enabled"] else "disabled",
                f"{d['updated']:%Y-%m-%d %H:%M:%S}",
            )
            for d in result
        ]
        return table(rows, ["NAME", "VERSION", "STATE", "UPDATED (UTC)"])

    ctx.out.result(result, text)
    return 0


def cmd_show(ctx: Context) -> int:
    """Show a stored flow: its versions and the body of one of them."""
    definitions = _definitions(ctx, write=False)
    name, version = ctx.args.name, ctx.args.version
    versions = definitions.versions(name)
    # The latest version even when disabled; else get() raises, naming what is missing.
    shown = versions[-1] if version is None and versions else definitions.get(name, version)
    result = _as_dict(shown, body=True)
    result["versions"] = [_as_dict(d) for d in versions]

    def text() -> str:
        state = "enabled" if shown.enabled else "disabled"
        others = ", ".join(str(d.version) for d in versions)
        header = f"flow {shown.name!r} version {shown.version} ({state}; versions: {others})"
        return header + "\n" + dumps(shown.body)

    ctx.out.result(result, text)
    return 0


def cmd_change(ctx: Context) -> int:
    """Disable, enable or delete a stored flow (or one version of it)."""
    from workflow.errors import DefinitionInUseError

    definitions = _definitions(ctx, write=True)
    name, version, change = ctx.args.name, ctx.args.version, ctx.args.change
    try:
        getattr(definitions, change)(name, version)  # raises for an unknown name or version
    except DefinitionInUseError as exc:  # unfinished runs would be stranded
        raise CLIError(exc.message) from exc
    which = "every version" if version is None else f"version {version}"
    ctx.out.result(
        {"name": name, "version": version, "action": change},
        f"{change}d flow {name!r} ({which})",
    )
    return 0
