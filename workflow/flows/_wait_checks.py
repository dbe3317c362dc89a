"""Validation of the steps that wait (``ask``, ``sleep``, ``receive``) and of ``retry``.

Each check returns the problems it found as ``(json_path, message)`` and the
references it met as ``(json_path, reference)``, which the validator checks
against the names a step may use. Durations and times are parsed with
:mod:`workflow.runtime._time`, which imports nothing of the database, so
validating a flow stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import WorkflowValueError
from ..runtime._time import parse_duration, parse_instant
from ._answers import INSTALL_HINT, answer_problem, schema_problems
from ._limits import MAX_APPROVERS, MAX_ATTEMPTS, MAX_MESSAGE_LENGTH, MAX_TOPIC_LENGTH, key_path
from ._refs import has_default

__all__ = [
    "Checked",
    "check_ask",
    "check_receive",
    "check_retry",
    "check_sleep",
    "check_time_limit",
]

#: The keys of an ``ask`` object, of a ``sleep`` object and of a ``retry`` object.
ASK_KEYS = (
    "message",
    "approvers",
    "quorum",
    "reject_quorum",
    "schema",
    "timeout",
    "deadline",
    "on_timeout",
)
SLEEP_KEYS = ("for", "until")
RETRY_KEYS = ("attempts", "backoff", "max_backoff", "jitter")
#: ``on_timeout`` words of an ``ask`` (or ``{"answer": ...}``), and of a ``receive``.
ASK_ON_TIMEOUT = ("approve", "reject", "fail")


@dataclass
class Checked:
    """What checking a waiting step found: problems, and references for the validator."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    references: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.problems.append((path, message))


def _unknown_keys(
    checked: Checked, spec: dict[Any, Any], where: str, keys: tuple[str, ...]
) -> None:
    for key in spec:
        if key not in keys:
            message = f"unknown key {key!r} (allowed: {', '.join(keys)})"
            checked.add(key_path(where, key), message)


def _duration(checked: Checked, value: object, path: str, what: str) -> timedelta | None:
    try:
        return parse_duration(value, what=what)
    except WorkflowValueError as exc:
        checked.add(path, str(exc))
        return None


def _moment(checked: Checked, value: object, path: str, what: str, *, optional: bool) -> None:
    """Check a time: a reference (resolved when the step runs) or a time with an offset.

    :param optional: whether a reference's default may be ``null`` (no time at all).
    """
    if isinstance(value, str) and value.startswith("@") and not value.startswith("@@"):
        checked.references.append((path, value))
        return
    if has_default(value):
        assert isinstance(value, dict)
        checked.references.append((key_path(path, "ref"), value["ref"]))
        default = value["default"]
        at = key_path(path, "default")
        if default is not None:
            _moment(checked, default, at, what, optional=optional)
        elif not optional:
            checked.add(at, f"{what} needs a time: its default cannot be null")
        return
    try:
        parse_instant(value, what=what)
    except WorkflowValueError as exc:
        checked.add(path, f"{exc} (or write a reference to one, such as '@plan.start')")


def _count(checked: Checked, value: object, path: str, what: str, most: int) -> int | None:
    if type(value) is not int or not 1 <= value <= most:
        checked.add(path, f"{what} must be a whole number from 1 to {most}, not {value!r}")
        return None
    return value


def _text(checked: Checked, value: object, path: str, what: str, longest: int) -> bool:
    if not isinstance(value, str) or not value.strip():
        checked.add(path, f"{what} must be a non-empty string, not {value!r}")
    elif len(value) > longest:
        checked.add(path, f"{what} is longer than {longest} characters")
    elif any(ord(char) < 32 for char in value):
        checked.add(path, f"{what} {value!r} holds a control character")
    else:
        return True
    return False


def check_ask(spec: object, where: str) -> Checked:
    """Check an ``ask`` object at ``where`` (``$.steps[2].ask``)."""
    checked = Checked()
    if not isinstance(spec, dict):
        checked.add(where, "ask takes an object (message, approvers, quorum, timeout, ...)")
        return checked
    _unknown_keys(checked, spec, where, ASK_KEYS)
    message = spec.get("message")
    if message is not None and not isinstance(message, str):
        checked.add(key_path(where, "message"), "message must be a string")
    elif isinstance(message, str) and len(message) > MAX_MESSAGE_LENGTH:
        checked.add(
            key_path(where, "message"), f"message is longer than {MAX_MESSAGE_LENGTH} characters"
        )
    people = _approvers(checked, spec, where)
    most = MAX_APPROVERS if people is None else max(len(people), 1)
    for what in ("quorum", "reject_quorum"):
        if what in spec:
            value = spec[what]
            if type(value) is int and people is not None and value > len(people) >= 1:
                checked.add(
                    key_path(where, what),
                    f"{what} {value} is more than the {len(people)} approvers",
                )
            else:
                _count(checked, value, key_path(where, what), what, most)
    schema_ok = _schema(checked, spec, where)
    timed = _timeout_or_deadline(checked, spec, where)
    if "on_timeout" in spec:
        at = key_path(where, "on_timeout")
        on_timeout = spec["on_timeout"]
        if isinstance(on_timeout, dict) and set(on_timeout) == {"answer"}:
            if schema_ok and "schema" in spec:
                problem = answer_problem(spec["schema"], on_timeout["answer"])
                if problem is not None:
                    path, why = problem
                    checked.add(
                        key_path(at, "answer") + path[1:],
                        f"the answer does not match the schema: {why}",
                    )
        elif on_timeout not in ASK_ON_TIMEOUT:
            checked.add(
                at,
                f"on_timeout is one of {', '.join(ASK_ON_TIMEOUT)} or {{'answer': ...}}, "
                f"not {on_timeout!r}",
            )
        if not timed:
            checked.add(at, "on_timeout needs a timeout or a deadline")
    return checked


def _approvers(checked: Checked, spec: dict[Any, Any], where: str) -> list[str] | None:
    if spec.get("approvers") is None:  # absent (or null): anyone may answer
        return None
    at = key_path(where, "approvers")
    people = spec["approvers"]
    if not isinstance(people, list) or not people:
        checked.add(at, "approvers must be a non-empty list of names (or left out: anyone)")
        return None
    if len(people) > MAX_APPROVERS:
        checked.add(at, f"a step may name at most {MAX_APPROVERS} approvers")
        return None
    seen: dict[str, int] = {}
    for index, person in enumerate(people):
        here = f"{at}[{index}]"
        if _text(checked, person, here, "an approver", MAX_TOPIC_LENGTH):
            if person in seen:
                checked.add(here, f"approver {person!r} is named twice (first at [{seen[person]}])")
            else:
                seen[person] = index
    return [person for person in people if isinstance(person, str)]


def _schema(checked: Checked, spec: dict[Any, Any], where: str) -> bool:
    """Check the answers' schema; return whether answers can be checked against it."""
    if "schema" not in spec:
        return True
    at = key_path(where, "schema")
    try:
        problems = schema_problems(spec["schema"])
    except ImportError:
        checked.add(at, f"a schema needs the jsonschema package: {INSTALL_HINT}")
        return False
    for path, message in problems:
        checked.add(at + path[1:], message)
    return not problems


def _timeout_or_deadline(checked: Checked, spec: dict[Any, Any], where: str) -> bool:
    """Check ``timeout`` and ``deadline``, one or neither; return whether there is one."""
    if "timeout" in spec and "deadline" in spec:
        checked.add(key_path(where, "deadline"), "give a timeout or a deadline, not both")
    if "timeout" in spec:
        _duration(checked, spec["timeout"], key_path(where, "timeout"), "timeout")
    elif "deadline" in spec:
        _moment(checked, spec["deadline"], key_path(where, "deadline"), "deadline", optional=True)
    return "timeout" in spec or "deadline" in spec


def check_sleep(spec: object, where: str) -> Checked:
    """Check a ``sleep`` value: ``"PT10M"``, ``{"for": "PT10M"}`` or ``{"until": ...}``."""
    checked = Checked()
    if isinstance(spec, str):
        _duration(checked, spec, where, "sleep")
        return checked
    if not isinstance(spec, dict):
        checked.add(
            where,
            "sleep takes a duration ('PT10M'), {'for': duration} or {'until': time}, "
            f"not {spec!r}",
        )
        return checked
    _unknown_keys(checked, spec, where, SLEEP_KEYS)
    if ("for" in spec) == ("until" in spec):
        checked.add(where, "sleep takes 'for' (a duration) or 'until' (a time), one of them")
    elif "for" in spec:
        _duration(checked, spec["for"], key_path(where, "for"), "sleep")
    else:
        _moment(checked, spec["until"], key_path(where, "until"), "until", optional=False)
    return checked


def check_receive(step: dict[Any, Any], where: str) -> Checked:
    """Check a ``receive`` step at ``where``: its topic, ``timeout`` and ``on_timeout``."""
    checked = Checked()
    _text(checked, step["receive"], key_path(where, "receive"), "the topic", MAX_TOPIC_LENGTH)
    if "timeout" in step:
        _duration(checked, step["timeout"], key_path(where, "timeout"), "timeout")
    if "on_timeout" in step:
        at = key_path(where, "on_timeout")
        if step["on_timeout"] != "fail":
            wrong = step["on_timeout"]
            checked.add(at, f"on_timeout of a receive is 'fail' (or left out), not {wrong!r}")
        elif "timeout" not in step:
            checked.add(at, "on_timeout needs a timeout")
    return checked


def check_retry(spec: object, where: str) -> Checked:
    """Check the ``retry`` object of a task step at ``where`` (``$.steps[0].retry``)."""
    checked = Checked()
    if not isinstance(spec, dict):
        checked.add(where, "retry takes an object: attempts, backoff, max_backoff, jitter")
        return checked
    _unknown_keys(checked, spec, where, RETRY_KEYS)
    if "attempts" not in spec:
        checked.add(key_path(where, "attempts"), "retry needs 'attempts', how many tries in all")
    else:
        _count(checked, spec["attempts"], key_path(where, "attempts"), "attempts", MAX_ATTEMPTS)
    first = None
    if "backoff" not in spec:
        checked.add(
            key_path(where, "backoff"), "retry needs 'backoff', the wait after the first failure"
        )
    else:
        first = _duration(checked, spec["backoff"], key_path(where, "backoff"), "backoff")
    if "max_backoff" in spec:
        at = key_path(where, "max_backoff")
        most = _duration(checked, spec["max_backoff"], at, "max_backoff")
        if most is not None and first is not None and most < first:
            checked.add(at, f"max_backoff {spec['max_backoff']!r} is shorter than the backoff")
    if "jitter" in spec and not isinstance(spec["jitter"], bool):
        checked.add(key_path(where, "jitter"), "jitter must be true or false")
    return checked


def check_time_limit(spec: object, where: str) -> Checked:
    """Check the ``time_limit`` of a task step: a duration above zero, at most a day."""
    checked = Checked()
    limit = _duration(checked, spec, where, "time_limit")
    if limit is not None and not timedelta(0) < limit <= timedelta(days=1):
        checked.add(where, f"time_limit must be above zero and at most a day (P1D), not {spec!r}")
    return checked
