"""A flow's ``"schedules"``: the cron schedules that start it, declared in the flow document.

Each item is an object with ``name`` and ``cron`` (required), ``timezone``
(default ``UTC``), ``tokens`` (a list of input records) or ``data`` (one
record), ``overlap`` (``skip``, ``queue``, ``allow``), ``catch_up``
(``none``, ``latest``, ``all``) and ``catch_up_window`` (an ISO 8601
duration). ``workflow schedule add --from-flow FILE`` stores the flow and
adds (or replaces) each schedule, to run the stored definition.

Validating a flow needs neither SQLAlchemy nor cronsim; the cron expression
is checked when cronsim is installed, and again when the schedule is added.

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import WorkflowValueError

__all__ = ["SCHEDULE_KEYS", "flow_schedules", "schedule_problems"]

#: The keys of one item of ``"schedules"``.
SCHEDULE_KEYS = (
    "name",
    "cron",
    "timezone",
    "tokens",
    "data",
    "overlap",
    "catch_up",
    "catch_up_window",
)
_CHOICES = {"overlap": ("skip", "queue", "allow"), "catch_up": ("none", "latest", "all")}
#: The most schedules a flow declares.
MAX_SCHEDULES = 100


def schedule_problems(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return ``(json_path, message)`` for each problem of the flow's ``"schedules"``."""
    if "schedules" not in body:
        return []
    declared = body["schedules"]
    if not isinstance(declared, list) or len(declared) > MAX_SCHEDULES:
        return [("$.schedules", f"schedules must be a list of at most {MAX_SCHEDULES} objects")]
    problems: list[tuple[str, str]] = []
    names: set[str] = set()
    for index, item in enumerate(declared):
        path = f"$.schedules[{index}]"
        if not isinstance(item, dict):
            problems.append((path, "a schedule must be an object"))
            continue
        problems += [
            (f"{path}.{key}", f"unknown key {key!r} (allowed: {', '.join(SCHEDULE_KEYS)})")
            for key in item
            if key not in SCHEDULE_KEYS
        ]
        for key in ("name", "cron"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                problems.append((f"{path}.{key}", f"a schedule needs a non-empty string {key!r}"))
        if item.get("name") in names:
            problems.append((f"{path}.name", f"schedule {item['name']!r} is declared twice"))
        names.add(str(item.get("name")))
        if "tokens" in item and "data" in item:
            problems.append((path, "give 'tokens' or 'data', not both"))
        if "tokens" in item and (not isinstance(item["tokens"], list) or not item["tokens"]):
            problems.append((f"{path}.tokens", "tokens must be a non-empty list of records"))
        for key, choices in _CHOICES.items():
            if key in item and item[key] not in choices:
                problems.append(
                    (f"{path}.{key}", f"{key} is one of {', '.join(choices)}, not {item[key]!r}")
                )
        problems += _checked(item, path)
    return problems


def _checked(item: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    """The problems of the time zone, the window and (with cronsim) the cron expression."""
    from ..runtime._cron import check_cron, check_timezone
    from ..runtime._time import parse_duration

    checks: list[tuple[str, Any]] = [("timezone", check_timezone)]
    checks.append(("catch_up_window", lambda value, what: parse_duration(value, what=what)))
    try:
        import cronsim  # noqa: F401
    except ImportError:  # pragma: no cover - checked when the schedule is added
        pass
    else:
        checks.append(("cron", check_cron))
    problems = []
    for key, check in checks:
        if isinstance(item.get(key), str):
            try:
                check(item[key], what=key)
            except WorkflowValueError as exc:
                problems.append((f"{path}.{key}", str(exc)))
        elif key in item and key != "cron":
            problems.append((f"{path}.{key}", f"{key} must be a string"))
    return problems


def flow_schedules(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the keyword arguments of :meth:`~workflow.runtime.Schedules.add` for each
    schedule a (valid) flow declares, without ``flow``."""
    from ..runtime._time import parse_duration

    declared = []
    for item in body.get("schedules") or []:
        spec = {key: item[key] for key in ("name", "cron", "overlap", "catch_up") if key in item}
        spec["timezone"] = item.get("timezone", "UTC")
        if "tokens" in item:
            spec["tokens"] = item["tokens"]
        elif "data" in item:
            spec["tokens"] = [item["data"]]
        if "catch_up_window" in item:
            spec["catch_up_window"] = parse_duration(item["catch_up_window"])
        declared.append(spec)
    return declared
