"""What a stored run looks like to the user: its outcome, its tokens, its exit code."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ._context import ExitCode
from ._output import printable

if TYPE_CHECKING:
    from workflow.storage import PersistentWorkflowEngine, Token

__all__ = ["OUTCOMES", "exit_code", "last_line", "outcome", "render_outcome", "token_info"]

_WAITING = ("HALTED", "WAITING")
#: What each exit code of a run says in its report.
OUTCOMES = {ExitCode.OK: "completed", ExitCode.ERROR: "failed", ExitCode.HALTED: "halted"}


def last_line(text: str | None) -> str | None:
    """Return the last non-blank line of a traceback: the exception and its message."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def _halt_messages(changes: list[dict[str, Any]]) -> dict[int, str]:
    """Map each token to the message of its latest halt in the status log."""
    messages = {}
    for row in changes:
        halted = row["to_status"] == 2 != row["from_status"]  # to ObjectStatus.HALTED
        if row["token_position"] is not None and halted:
            messages[row["token_position"]] = row["message"] or ""
    return messages


def token_info(token: Token, *, flow: bool, halts: dict[int, str]) -> dict[str, Any]:
    """Describe one token: status, position, why it halted or what failed.

    :param flow: the token is a flow's context, which records its halt step.
    :param halts: the halt messages of the run's status log, by token.
    """
    info: dict[str, Any] = {
        "position": token.position,
        "status": token.status.name,
        "callback_pos": token.callback_pos,
    }
    if token.status.name in _WAITING:
        halt: dict[str, Any] = {"step": None, "message": halts.get(token.position), "action": None}
        if flow:
            from workflow.flows import halted_step

            step = halted_step(token.data)
            halt.update(step or {"answered": True})
        info["halted"] = halt
    if token.last_error:
        info["error"] = last_line(token.last_error)
    return info


def exit_code(status: str, tokens: list[dict[str, Any]]) -> ExitCode:
    """1 when a token failed, 3 when one waits, else 0."""
    statuses = {token["status"] for token in tokens}
    if "ERROR" in statuses or status == "ERROR":
        return ExitCode.ERROR
    if statuses & set(_WAITING) or status in _WAITING:
        return ExitCode.HALTED
    return ExitCode.OK


def outcome(engine: PersistentWorkflowEngine) -> dict[str, Any]:
    """Return the state of the stored run of ``engine``, as JSON-ready data."""
    flow = engine.definition_name is not None
    halts = _halt_messages(engine.status_changes())
    tokens = [token_info(token, flow=flow, halts=halts) for token in engine.load_tokens()]
    status = engine.status.name
    meta = engine.extra_data.get("cli")
    meta = meta if isinstance(meta, dict) else {}
    counts = Counter(token["status"].lower() for token in tokens)
    code = exit_code(status, tokens)
    return {
        "uuid": engine.uuid,
        "name": engine.name,
        "status": status,
        "definition": (
            {"name": engine.definition_name, "version": engine.definition_version} if flow else None
        ),
        "target": meta.get("target"),
        "imports": [name for name in meta.get("imports") or [] if isinstance(name, str)],
        "counts": {"total": len(tokens), **dict(sorted(counts.items()))},
        "tokens": tokens,
        "outcome": OUTCOMES[code],
        "exit_code": int(code),
    }


def _describe_token(token: dict[str, Any]) -> str | None:
    if "halted" in token:
        halt = token["halted"]
        where = f" at step {printable(repr(halt['step']))}" if halt.get("step") else ""
        message = f": {printable(str(halt['message']))}" if halt.get("message") else ""
        answered = " (answered)" if halt.get("answered") else ""
        return f"  token {token['position']} halted{where}{message}{answered}"
    if token["status"] == "ERROR":
        return f"  token {token['position']} failed: {printable(str(token.get('error')))}"
    return None


def render_outcome(result: dict[str, Any]) -> str:
    """Return the text report of a run: uuid and status, then each token that did not complete."""
    counts = result["counts"]
    parts = [f"{value} {key}" for key, value in counts.items() if key != "total"]
    total = counts["total"]
    summary = f"{total} token{'' if total == 1 else 's'}" + (
        f": {', '.join(parts)}" if parts else ""
    )
    definition = result["definition"]
    source = (
        f"{definition['name']} v{definition['version']}"
        if definition
        else result["target"] or result["name"]
    )
    lines = [f"workflow {result['uuid']} ({printable(source)}) {result['outcome']}: {summary}"]
    lines += [line for line in map(_describe_token, result["tokens"]) if line]
    if result["exit_code"] == ExitCode.HALTED:
        imports = "".join(f" --import {name}" for name in result["imports"])
        data = " --data JSON" if definition else ""
        lines.append(f"resume with: workflow resume {result['uuid']}{printable(imports)}{data}")
    return "\n".join(lines)
