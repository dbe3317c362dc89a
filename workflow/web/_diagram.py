"""The diagram of a flow run: its definition's steps, each token marked where it is."""

from __future__ import annotations

from typing import Any

__all__ = ["flow_diagram"]

#: The keys of a flow step that say what kind of step it is, in the order they are looked for.
_KINDS = ("ask", "sleep", "receive", "halt", "task", "call", "if", "switch", "for", "parallel")


def _steps(steps: Any, marks: dict[str, list[tuple[int, str]]]) -> list[dict[str, Any]]:
    """The flow's steps as the diagram shows them, nested steps included."""
    if not isinstance(steps, list):
        return []
    shown = []
    for step in steps:
        if not isinstance(step, dict):
            continue
        name = str(step.get("name", "?"))
        nested = []
        for key, value in step.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                nested.append({"branch": str(key), "steps": _steps(value, marks)})
        kind = next((key for key in _KINDS if key in step), "step")
        shown.append({"name": name, "kind": kind, "tokens": marks.get(name, []), "nested": nested})
    return shown


def flow_diagram(steps: Any, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Return ``steps`` (a flow body's) with the tokens of ``run`` (as the API shows it) marked.

    A token is placed at the step it waits at, halted at or failed in.
    """
    marks: dict[str, list[tuple[int, str]]] = {}
    for wait in run.get("waits", []):
        if wait.get("phase") == "waiting":
            marks.setdefault(str(wait["step"]), []).append((wait["token"], "waits"))
    for token in run.get("tokens", []):
        halted = token.get("halted") or {}
        step = halted.get("step") if isinstance(halted, dict) else None
        if step and not any(token["position"] == at for at, _ in marks.get(step, [])):
            marks.setdefault(str(step), []).append((token["position"], "halted"))
        if token.get("status") == "ERROR" and token.get("step"):
            marks.setdefault(str(token["step"]), []).append((token["position"], "failed"))
    return _steps(steps, marks)
