"""Reading flow files (JSON, YAML) and the JSON flow framework's ``procedures`` format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FlowError
from ._limits import MAX_FILE_BYTES

__all__ = ["ParseFailure", "from_procedures", "read_file"]


class ParseFailure(Exception):
    """A flow file cannot be read or parsed; carries the one error to report."""

    def __init__(self, error: FlowError) -> None:
        super().__init__(str(error))
        self.error = error


def read_file(path: Path) -> Any:
    """Return the data of a ``.json``, ``.yaml`` or ``.yml`` file.

    Reads at most :data:`~workflow.flows.MAX_FILE_BYTES` bytes. YAML files
    may not use aliases (``*name``), which let a few bytes stand for
    millions of values, and may not nest deeper than
    :data:`~workflow.flows.MAX_DOCUMENT_DEPTH`.

    :raises ParseFailure: naming the file, and the line and column of a syntax error.
    """
    name = path.stem or "<unnamed>"
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            message = f"{path} is larger than {MAX_FILE_BYTES} bytes, the most a flow file may have"
            raise ParseFailure(FlowError(name, None, "$", message))
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ParseFailure(FlowError(name, None, "$", f"cannot read {path}: {exc}")) from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        return _parse_yaml(text, path, name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise ParseFailure(FlowError(name, None, "$", message)) from exc
    except ValueError as exc:  # a number of more digits than Python converts
        raise ParseFailure(FlowError(name, None, "$", f"{path} is not valid JSON: {exc}")) from exc
    except RecursionError:  # the decoder's own guard: far deeper than any limit
        message = f"{path} is nested too deeply to read"
        raise ParseFailure(FlowError(name, None, "$", message)) from None


def _parse_yaml(text: str, path: Path, name: str) -> Any:
    try:
        from ._yaml import YAMLError, load_yaml
    except ImportError:
        message = f"{path} is YAML, which needs PyYAML: pip install 'workflow-ng[yaml]'"
        raise ParseFailure(FlowError(name, None, "$", message)) from None
    try:
        return load_yaml(text)
    except ValueError as exc:  # a number of more digits than Python converts
        raise ParseFailure(FlowError(name, None, "$", f"{path} is not valid YAML: {exc}")) from exc
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        message = f"{path} is not valid YAML: {problem}{where}"
        raise ParseFailure(FlowError(name, None, "$", message)) from exc


def from_procedures(body: dict[str, Any], name: str) -> tuple[dict[str, Any], list[FlowError]]:
    """Translate the JSON flow framework's format into ours.

    ``{"procedures": [{"name", "mod", "method", "params"}]}`` becomes
    ``{"name": name, "steps": [{"name", "task": "mod.method", "params"}]}``.
    Returns the translation and the errors of the procedures' own shape,
    with paths into the original document.
    """
    errors: list[FlowError] = []
    raw_name = body.get("name")
    flow_name: str = raw_name if isinstance(raw_name, str) and raw_name else name
    for key in body:
        if key not in ("procedures", "name", "description"):
            message = f"unknown key {key!r} (allowed: description, name, procedures)"
            errors.append(FlowError(flow_name, None, f"$.{key}", message))
    procedures = body["procedures"]
    steps: list[Any] = []
    if not isinstance(procedures, list) or not procedures:
        errors.append(
            FlowError(flow_name, None, "$.procedures", "procedures must be a non-empty list")
        )
        procedures = []
    for index, procedure in enumerate(procedures):
        where = f"$.procedures[{index}]"
        if not isinstance(procedure, dict):
            errors.append(FlowError(flow_name, None, where, "a procedure must be a JSON object"))
            continue
        step_name = procedure.get("name")
        label = step_name if isinstance(step_name, str) else None
        for key in procedure:
            if key not in ("name", "mod", "method", "params", "description"):
                message = f"unknown key {key!r} (allowed: method, mod, name, params)"
                errors.append(FlowError(flow_name, label, f"{where}.{key}", message))
        parts = [procedure.get("mod"), procedure.get("method")]
        step: dict[str, Any] = {"name": step_name, "task": ""}
        for key, part in zip(("mod", "method"), parts, strict=True):
            if not isinstance(part, str) or not part:
                message = f"a procedure needs a non-empty string {key!r} (its task is mod.method)"
                errors.append(FlowError(flow_name, label, f"{where}.{key}", message))
        if all(isinstance(part, str) and part for part in parts):
            step["task"] = f"{parts[0]}.{parts[1]}"
        if "params" in procedure:
            step["params"] = procedure["params"]
        steps.append(step)
    translated = {"name": flow_name, "steps": steps}
    if isinstance(body.get("description"), str):
        translated["description"] = body["description"]
    return translated, errors


def procedures_path(path: str, *, known_module: bool = False) -> str:
    """Map a path of the translated flow back into the ``procedures`` document.

    A step's ``task`` is the procedure's ``mod`` and ``method``: a task that
    is not found is reported at ``method`` when its ``mod`` names some task
    (``known_module``), and at ``mod`` otherwise.
    """
    if not path.startswith("$.steps"):
        return path
    path = "$.procedures" + path[len("$.steps") :]
    if path.endswith(".task"):
        return path[: -len(".task")] + (".method" if known_module else ".mod")
    return path
