"""What a stored run looks like to the user: its outcome, its tokens, its exit code."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from workflow.engine_db import WorkflowStatus

from ._context import ExitCode
from ._output import printable

if TYPE_CHECKING:
    from workflow.storage import PersistentWorkflowEngine, Token

__all__ = [
    "OUTCOMES",
    "classify",
    "exit_code",
    "last_line",
    "outcome",
    "render_outcome",
    "token_info",
]

_WAITING = ("HALTED", "WAITING")
#: What each exit code of a run that finished a pass says in its report.
OUTCOMES = {ExitCode.OK: "completed", ExitCode.ERROR: "failed", ExitCode.HALTED: "halted"}
#: The outcome and exit code of a run that is not between two passes.
_UNFINISHED = {
    # a process runs it (it holds a live lock): not finished
    "running": ExitCode.HALTED,
    # RUNNING with no live lock: its process died; `workflow resume` goes on
    "interrupted": ExitCode.ERROR,
    # stored, never started
    "new": ExitCode.HALTED,
    # stopped for good by `workflow cancel`
    "cancelled": ExitCode.ERROR,
}


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


def failed_tasks(changes: list[dict[str, Any]]) -> dict[int, str]:
    """Map each token to the task of its latest failure in the status log (by status value)."""
    from workflow.storage.run_checks import failed_task

    tasks = {}
    for row in changes:
        if row["token_position"] is not None and row["to_status"] == 4:  # ObjectStatus.ERROR
            task = failed_task(row["message"])
            if task is not None:
                tasks[row["token_position"]] = task
    return tasks


def token_info(
    token: Token, *, flow: bool, halts: dict[int, str], tasks: dict[int, str] | None = None
) -> dict[str, Any]:
    """Describe one token: status, position, why it halted or what failed.

    :param flow: the token is a flow's context, which records its halt step.
    :param halts: the halt messages of the run's status log, by token.
    :param tasks: the tasks that failed, by token (see :func:`failed_tasks`).
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
    if token.status.name == "ERROR":
        add_failed_step(info, (tasks or {}).get(token.position), flow=flow)
    return info


def add_failed_step(info: dict[str, Any], task: str | None, *, flow: bool) -> None:
    """Name where a failed token failed: ``"step"`` for a flow, else ``"task"``."""
    info["step" if flow else "task"] = task


def classify(status: str, tokens: list[dict[str, Any]], *, lock_live: bool) -> tuple[str, ExitCode]:
    """Return the outcome of a run and its exit code, from its status, tokens and lock.

    ``running`` (3) while a process holds a live lock of a ``RUNNING`` run,
    ``interrupted`` (1) when none does (its process died), ``new`` (3),
    ``cancelled`` (1); else ``failed`` (1), ``halted`` (3) or ``completed`` (0).
    """
    unfinished = {"RUNNING": "running" if lock_live else "interrupted"}.get(
        status, status.lower() if status in ("NEW", "CANCELLED") else None
    )
    if unfinished is not None:
        return unfinished, _UNFINISHED[unfinished]
    code = exit_code(status, tokens)
    return OUTCOMES[code], code


def next_command(result: dict[str, Any]) -> str | None:
    """Return the command that goes on with a run of this outcome, if one does.

    A halted run whose every halted token waits in a wait row (``ask``,
    ``receive``, ``sleep``) goes on with an answer, a message or a worker,
    not with ``resume``.
    """
    uuid = result["uuid"]
    modules = list(result.get("imports") or [])
    target = result.get("target")
    if not result["definition"] and isinstance(target, str) and ":" in target:
        modules.append(target.partition(":")[0])  # resume imports only what it is allowed
    imports = "".join(f" --import {name}" for name in dict.fromkeys(modules))
    waiting = _open_wait(result)
    if result["outcome"] == "halted" and waiting is not None:
        if waiting["kind"] == "ask":
            return f"workflow answer {waiting['id'][:8]} --as USER --approve"
        if waiting["kind"] == "receive":
            return f"workflow send {uuid[:8]} {waiting.get('topic')} --data JSON"
        return f"workflow worker{imports}"
    if result["outcome"] in ("halted", "interrupted"):
        data = " --data JSON" if result["definition"] and result["outcome"] == "halted" else ""
        return f"workflow resume {uuid}{imports}{data}"
    if result["outcome"] == "failed":
        return f"workflow retry {uuid}{imports}"
    return None


def _open_wait(result: dict[str, Any]) -> dict[str, Any] | None:
    """The first open wait of a run whose every halted token waits in one, else ``None``."""
    opened: list[dict[str, Any]] = [
        wait for wait in result.get("waits") or [] if wait.get("phase") == "waiting"
    ]
    halted = {token["position"] for token in result["tokens"] if token["status"] in _WAITING}
    if not opened or not halted or not halted <= {wait["token"] for wait in opened}:
        return None
    return opened[0]


def open_waits(engine: PersistentWorkflowEngine) -> list[dict[str, Any]]:
    """The waits of the run that still wait (at most 100), as ``show`` lists waits."""
    from workflow.runtime import Waits

    from ._waits import wait_info

    return [wait_info(wait) for wait in Waits(engine.storage).waiting(run=engine.uuid, kind=None)]


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
    changes = engine.status_changes()
    halts, tasks = _halt_messages(changes), failed_tasks(changes)
    tokens = [
        token_info(token, flow=flow, halts=halts, tasks=tasks) for token in engine.load_tokens()
    ]
    row = engine.storage.workflow(engine.uuid)
    # The status read with the lock: another process may have moved the run on
    # since this engine read it (a run found by its key runs elsewhere).
    status = WorkflowStatus(row["status"]).name
    meta = engine.extra_data.get("cli")
    meta = meta if isinstance(meta, dict) else {}
    counts = Counter(token["status"].lower() for token in tokens)
    owner, expires = row["lock_owner"], row["lock_expires"]
    live = owner is not None and expires is not None and expires > engine.storage.now()
    name, code = classify(status, tokens, lock_live=live)
    result = {
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
        "outcome": name,
        "exit_code": int(code),
    }
    if name == "running":
        result["lock"] = {"owner": owner, "expires": expires, "live": live}
    result["waits"] = open_waits(engine) if counts.keys() & {"halted", "waiting"} else []
    result["next"] = next_command(result)
    return result


#: How the last line of a flow step's traceback starts.
_FLOW_ERROR = "workflow.errors.FlowRuntimeError: "


def _describe_token(token: dict[str, Any]) -> str | None:
    if "halted" in token:
        halt = token["halted"]
        where = f" at step {printable(repr(halt['step']))}" if halt.get("step") else ""
        message = f": {printable(str(halt['message']))}" if halt.get("message") else ""
        answered = " (answered)" if halt.get("answered") else ""
        return f"  token {token['position']} halted{where}{message}{answered}"
    if token["status"] == "ERROR":
        step = token.get("step") or token.get("task")
        kind = "step" if "step" in token else "task"
        where = f" at {kind} {printable(repr(step))}" if step else ""
        position = f" (position {token['callback_pos']})" if kind == "task" else ""
        error = str(token.get("error"))
        if kind == "step" and step:  # a flow's error names its flow and step: say them once
            said = f"{_FLOW_ERROR}flow "
            named = f", step {step!r}"
            if error.startswith(said) and named in error:
                rest = error.split(named, 1)[1]
                return (
                    f"  token {token['position']} failed{where}"
                    f"{printable(rest if rest.startswith(',') else ': ' + rest.lstrip(': '))}"
                )
        return f"  token {token['position']} failed{where}{position}: {printable(error)}"
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
    lines += next_lines(result)
    return "\n".join(lines)


def next_lines(result: dict[str, Any]) -> list[str]:
    """Say what goes on with the run: its lock's holder, or the command to run next."""
    command = result.get("next")
    if result["outcome"] == "running":
        lock = result.get("lock") or {}
        holder = f" by {printable(str(lock['owner']))}" if lock.get("owner") else ""
        return [f"it is being run{holder}: that process reports how it ends"]
    if command is None:
        return []
    if result["outcome"] == "interrupted":
        return [f"its process stopped before the run ended; resume with: {printable(command)}"]
    if result["outcome"] == "failed":
        return [
            f"fix the cause, then retry the failed tokens with: {printable(command)} "
            "(set-data UUID --token N --data JSON changes a token's data first)"
        ]
    if command.startswith("workflow answer "):
        return [f"it waits for an answer (workflow waiting lists them): {printable(command)}"]
    if command.startswith("workflow send "):
        return [f"it waits for a message: {printable(command)}"]
    if command.startswith("workflow worker"):
        return [f"it waits for its time; then a worker goes on with it: {printable(command)}"]
    return [f"resume with: {printable(command)}"]
