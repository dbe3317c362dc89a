"""A stored run as ``workflow show`` reads it: whatever can be read, the rest marked.

A row damaged by hand or by a broken migration (JSON that does not parse, a
position that is not a list, a status no enumeration knows) must not stop
the command that helps to find it: each value is read on its own from the
text the database holds (:meth:`~workflow.storage.Store.stored_rows`), and a
value that cannot be read is shown as :class:`Unreadable`.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import WorkflowNotFoundError
from workflow.storage.codec import UnreadableValue
from workflow.storage.run_checks import failed_task

from ._report import add_failed_step, classify, last_line, next_command
from ._targets import META_KEY

if TYPE_CHECKING:
    from workflow.storage import Store

__all__ = ["Unreadable", "read_run", "read_workflows"]

_WAITING = ("HALTED", "WAITING")
_StatusKind = type[WorkflowStatus] | type[ObjectStatus]
_SHOWN_CHARACTERS = 200
#: A naive timestamp as the databases write it as text.
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?")


class Unreadable(dict[str, str]):
    """A stored value that cannot be read: the reason, and the start of what is stored.

    It is the JSON object ``{"unreadable": reason, "stored": text}`` in
    ``--json`` output, and ``<unreadable: reason>`` in text.
    """

    def __init__(self, reason: str, stored: Any) -> None:
        text = str(stored)
        if len(text) > _SHOWN_CHARACTERS:
            text = text[:_SHOWN_CHARACTERS] + "..."
        super().__init__(unreadable=reason, stored=text)

    def __str__(self) -> str:
        return f"<unreadable: {self['unreadable']}>"

    __repr__ = __str__


class _Reader:
    """Decode the values of stored rows, keeping a list of what could not be read."""

    def __init__(self, store: Store) -> None:
        self.codec = store.codec
        self.problems: list[str] = []

    def mark(self, where: str, reason: str, stored: Any) -> Unreadable:
        self.problems.append(f"{where}: {reason}")
        return Unreadable(reason, stored)

    def json(self, where: str, text: str | None, kind: type | None = None) -> Any:
        """Decode the JSON ``text``; with ``kind``, the value must be of that type (or null)."""
        if text is None:
            return None
        try:
            value = self.codec.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            return self.mark(where, f"invalid JSON ({exc})", text)
        if isinstance(value, UnreadableValue):  # the store's codec never raises
            return self.mark(where, f"invalid JSON ({value.error})", text)
        if kind is not None and value is not None and not isinstance(value, kind):
            return self.mark(where, f"not a JSON {_JSON_NAMES[kind]}", text)
        return value

    def position(self, where: str, text: str | None) -> Any:
        """Decode a callback position: a list of whole numbers, or null."""
        value = self.json(where, text, list)
        if isinstance(value, list) and not all(
            isinstance(i, int) and not isinstance(i, bool) for i in value
        ):
            return self.mark(where, "not a list of whole numbers", text)
        return value

    def status(self, where: str, value: Any, kind: _StatusKind) -> str:
        """Return the name of a stored status, or ``UNKNOWN(value)`` marked as a problem."""
        try:
            return kind(value).name
        except (ValueError, TypeError):
            self.problems.append(f"{where}: {value!r} is no {kind.__name__}")
            return f"UNKNOWN({value!r})"

    def when(self, where: str, text: str | None) -> datetime | Unreadable | None:
        """Parse a stored timestamp."""
        if text is None:
            return None
        match = _TIMESTAMP.fullmatch(str(text))
        if match is not None:
            fraction = f".{match[2]:0<6}" if match[2] else ""  # PostgreSQL drops zeros
            try:
                return datetime.fromisoformat(match[1] + fraction)
            except ValueError:  # the shape of a timestamp, but no date (month 13)
                pass
        return self.mark(where, "not a timestamp", text)


_JSON_NAMES: dict[type, str] = {dict: "object", list: "list"}


def read_run(store: Store, uid: str) -> tuple[dict[str, Any], list[str]]:
    """Return what ``workflow show`` shows of run ``uid``, and what could not be read.

    :raises WorkflowNotFoundError: when no workflow has that uuid.
    """
    rows = store.stored_rows(uid)
    if not rows["workflow"]:
        raise WorkflowNotFoundError(f"no stored workflow has the uuid {uid!r}", workflow=uid)
    row = rows["workflow"][0]
    read = _Reader(store)
    extra_data = read.json("the workflow's extra_data", row["extra_data"], dict)
    meta = extra_data.get(META_KEY) if isinstance(extra_data, dict) else None
    changes = [_status_change(read, change) for change in rows["status_changes"]]
    flow = row["definition_name"] is not None
    halts = {
        change["token"]: change["message"] or ""
        for change in changes
        if change["token"] is not None and change["to"] == "HALTED" != change["from"]
    }
    tasks = {
        change["token"]: failed_task(change["message"])
        for change in changes
        if change["token"] is not None and change["to"] == "ERROR"
    }
    tokens = [_token(read, token, flow=flow, halts=halts, tasks=tasks) for token in rows["tokens"]]
    status = read.status("the workflow's status", row["status"], WorkflowStatus)
    counts = Counter(token["status"].lower() for token in tokens)
    expires = read.when("the workflow's lock_expires", row["lock_expires"])
    live = row["lock_owner"] is not None and isinstance(expires, datetime) and expires > store.now()
    name, code = classify(status, tokens, lock_live=live)
    imports = meta.get("imports") if isinstance(meta, dict) else None
    result = {
        "uuid": row["uuid"],
        "name": row["name"],
        "status": status,
        "definition": (
            {"name": row["definition_name"], "version": row["definition_version"]} if flow else None
        ),
        "target": meta.get("target") if isinstance(meta, dict) else None,
        "counts": {"total": len(tokens), **dict(sorted(counts.items()))},
        "imports": [item for item in imports or [] if isinstance(item, str)],
        "lock": {"owner": row["lock_owner"], "expires": expires, "live": live}
        if row["lock_owner"] is not None
        else None,
        "tokens": tokens,
        "outcome": name,
        "exit_code": int(code),
        "extra_data": extra_data,
        "status_changes": changes,
    }
    result["waits"] = _waits(read, store, uid)
    result["next"] = next_command(result)
    return result, read.problems


def _waits(read: _Reader, store: Store, uid: str) -> list[dict[str, Any]]:
    """The run's waits with every answer, oldest first; ``[]`` marked when they cannot be read."""
    from workflow.errors import StorageError
    from workflow.runtime import Waits

    from ._waits import wait_info

    try:
        return [wait_info(wait) for wait in Waits(store).of_run(uid)]
    except (StorageError, ValueError, TypeError) as exc:
        read.problems.append(f"the run's waits: {type(exc).__name__}: {exc}")
        return []


def read_workflows(
    store: Store, *, status: WorkflowStatus | None, limit: int | None, **filters: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return what ``workflow list`` shows of the stored runs, and what could not be read.

    ``filters`` go to :meth:`~workflow.storage.Store.stored_workflow_rows`
    (``flow``, ``since``, ``until``); each run comes with its token counts.
    """
    read = _Reader(store)
    rows = store.stored_workflow_rows(
        status=None if status is None else status.value, limit=limit, **filters
    )
    counts = store.token_counts([row["uuid"] for row in rows])
    result = []
    for row in rows:
        where = f"workflow {row['uuid']}"
        result.append(
            {
                "uuid": row["uuid"],
                "name": row["name"],
                "status": read.status(f"{where} status", row["status"], WorkflowStatus),
                "definition": (
                    {"name": row["definition_name"], "version": row["definition_version"]}
                    if row["definition_name"]
                    else None
                ),
                "created": read.when(f"{where} created", row["created"]),
                "modified": read.when(f"{where} modified", row["modified"]),
                "counts": {"total": sum(counts[row["uuid"]].values()), **counts[row["uuid"]]},
            }
        )
    return result, read.problems


def _token(
    read: _Reader,
    row: dict[str, Any],
    *,
    flow: bool,
    halts: dict[Any, str],
    tasks: dict[Any, str | None],
) -> Any:
    """Describe one token as :func:`~workflow.cli._report.token_info` does, tolerantly."""
    where = f"token {row['position']}"
    data = read.json(f"{where} data", row["data"])
    info: dict[str, Any] = {
        "position": row["position"],
        "status": read.status(f"{where} status", row["status"], ObjectStatus),
        "callback_pos": read.position(f"{where} callback_pos", row["callback_pos"]),
    }
    if info["status"] in _WAITING:
        halt: dict[str, Any] = {"step": None, "message": halts.get(row["position"]), "action": None}
        if flow and isinstance(data, dict) and not isinstance(data, Unreadable):
            from workflow.flows import halted_step

            halt.update(halted_step(data) or {"answered": True})
        info["halted"] = halt
    if row["last_error"]:
        info["error"] = last_line(row["last_error"])
    if info["status"] == "ERROR":
        add_failed_step(info, tasks.get(row["position"]), flow=flow)
    info["data"] = data
    info["extra_data"] = read.json(f"{where} extra_data", row["extra_data"], dict)
    info["last_error"] = row["last_error"]
    branch = info["extra_data"].get("_branch") if isinstance(info["extra_data"], dict) else None
    if isinstance(branch, dict):  # a parallel step's branch, run on a work queue
        info["branch_of"] = {"token": branch.get("of"), "index": branch.get("index")}
    return info


def _status_change(read: _Reader, row: dict[str, Any]) -> dict[str, Any]:
    token = row["token_position"]
    kind: _StatusKind = WorkflowStatus if token is None else ObjectStatus
    where = f"status change {row['id']}"
    before = row["from_status"]
    return {
        "created": read.when(f"{where} time", row["created"]),
        "token": token,
        "from": None if before is None else read.status(f"{where} from", before, kind),
        "to": read.status(f"{where} to", row["to_status"], kind),
        "callback_pos": read.position(f"{where} callback_pos", row["callback_pos"]),
        "message": row["message"],
    }
