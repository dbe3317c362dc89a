"""What ``resume()`` checks in a stored run before it runs a task of it.

A run is read back from rows that a crash, a person or another program may
have left in any state. Resuming guesses nothing: the run's input must have
been stored whole (``wf_workflow.token_count``, written in the transaction
that stores the tokens), every token row must be there and readable, and
every stored position must lead to a task of the definition. Anything else
is a :class:`~workflow.errors.StoredRunError` naming the workflow and the
token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ..engine_db import ObjectStatus, WorkflowStatus
from ..errors import StoredRunError
from .codec import UnreadableValue
from .token import Token

__all__ = [
    "check_input",
    "check_path",
    "check_positions",
    "check_run_row",
    "failed_task",
    "failed_task_note",
    "tokens_from_rows",
]


def check_run_row(row: dict[str, Any]) -> None:
    """Refuse the row of a run whose columns cannot be read (before an engine uses it)."""
    uuid = row["uuid"]
    for column in ("extra_data", "callback_pos"):
        value = row[column]
        if isinstance(value, UnreadableValue):
            problem = f"holds no JSON ({value.error})"
        elif column == "extra_data" and not isinstance(value, (dict, type(None))):
            problem = f"is {type(value).__name__}, not an object"
        elif column == "callback_pos" and value is not None and not _is_path(value):
            problem = f"{value!r} is not a list of indexes"
        else:
            continue
        raise StoredRunError(
            f"workflow {uuid}: its stored {column} cannot be read: the column {problem}",
            workflow=uuid,
            operation="load workflow",
        )
    if row["status"] not in _RUN_STATUSES:
        raise StoredRunError(
            f"workflow {uuid}: its stored status {row['status']!r} is none of "
            f"{sorted(_RUN_STATUSES)}",
            workflow=uuid,
            operation="load workflow",
        )


def tokens_from_rows(uuid: str, rows: Sequence[dict[str, Any]]) -> list[Token]:
    """Build the tokens of run ``uuid`` from its rows, refusing a row that cannot be one."""
    loaded = []
    for row in rows:
        position = row["position"]
        problem = _row_problem(row)
        if problem is not None:
            raise StoredRunError(
                f"workflow {uuid}: the stored token {position} cannot be read: {problem}",
                workflow=uuid,
                token=position,
                operation="resume",
            )
        loaded.append(Token.from_row(row))
    return loaded


def _row_problem(row: dict[str, Any]) -> str | None:
    for column in ("data", "extra_data", "callback_pos"):
        if isinstance(row[column], UnreadableValue):
            return f"its {column} column holds no JSON ({row[column].error})"
    status = row["status"]
    if status not in _STATUSES:
        return f"its status {status!r} is none of {sorted(_STATUSES)}"
    if not isinstance(row["extra_data"], (dict, type(None))):
        return f"its extra_data is {type(row['extra_data']).__name__}, not an object"
    if row["callback_pos"] is not None and not _is_path(row["callback_pos"]):
        return f"its position {row['callback_pos']!r} is not a list of indexes"
    return None


_STATUSES = {status.value for status in ObjectStatus}
_RUN_STATUSES = {status.value for status in WorkflowStatus}


def _is_path(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(type(index) is int for index in value)  # bool is no index
    )


def check_input(uuid: str, token_count: int | None, loaded: Sequence[Token]) -> None:
    """Refuse a run whose input was not stored whole, or whose token rows are not all there."""
    if token_count is None:
        raise StoredRunError(
            f"workflow {uuid} has no input to resume: its tokens were never stored whole "
            "(the process that started it stopped before they were); nothing ran, so start "
            "it again with process() (`workflow run`)",
            workflow=uuid,
            operation="resume",
        )
    positions = [token.position for token in loaded]
    if positions == list(range(token_count)):
        return
    expected = set(range(token_count))
    missing = sorted(expected - set(positions))
    unexpected = sorted(set(positions) - expected)
    from .fanout import BRANCH  # only on this path: a queued run's parallel branches

    branches = [t.position for t in loaded if t.position in unexpected and BRANCH in t.extra_data]
    if branches and not missing and len(branches) == len(unexpected):
        raise StoredRunError(
            f"workflow {uuid} ran parallel branches on a work queue, as tokens of their "
            f"own (positions {_listed(branches)}): its queue's workers go on with it "
            "(`workflow worker --queue NAME`), not a process",
            workflow=uuid,
            token=branches[0],
            operation="resume",
        )
    found = f"{len(loaded)} are stored"
    if missing:
        found += f", positions {_listed(missing)} are missing"
    if unexpected:
        found += f", positions {_listed(unexpected)} are not the run's"
    raise StoredRunError(
        f"workflow {uuid} was given {token_count} tokens but {found}; restore the rows "
        "before resuming (resume never guesses what a missing token held)",
        workflow=uuid,
        token=(missing or unexpected)[0],
        operation="resume",
    )


def _listed(positions: list[int]) -> str:
    shown = ", ".join(map(str, positions[:10]))
    return shown + (f" and {len(positions) - 10} more" if len(positions) > 10 else "")


def check_positions(uuid: str, loaded: Sequence[Token], tree_of: Callable[[Token], Any]) -> None:
    """Refuse a token that did not complete and whose stored position leads nowhere.

    ``tree_of(token)`` is the callback tree the token runs (``None``: none).
    A position must lead through nested lists to an item of the tree, every
    index within its list.
    """
    for token in loaded:
        if token.callback_pos is None or token.status is ObjectStatus.COMPLETED:
            continue
        tree = tree_of(token)
        if not isinstance(tree, list):
            continue
        problem = _path_problem(tree, token.callback_pos)
        if problem is not None:
            raise StoredRunError(
                f"workflow {uuid}: token {token.position} is stored at position "
                f"{token.callback_pos}, which is not in the definition ({problem}); "
                "fix the row or the definition before resuming",
                workflow=uuid,
                token=token.position,
                operation="resume",
            )


def _path_problem(tree: list[Any], path: list[int]) -> str | None:
    items: Any = tree
    for depth, index in enumerate(path):
        if not isinstance(items, list):
            return f"the item at depth {depth - 1} is a task, not a list"
        if not 0 <= index < len(items):
            return f"index {index} at depth {depth} is outside a list of {len(items)} items"
        items = items[index]
    return None


def check_path(uuid: str, token: int, tree: list[Any], path: list[int]) -> None:
    """Refuse ``path`` when it does not lead to an item of the callback ``tree``."""
    problem = _path_problem(tree, path) if _is_path(path) else "not a list of indexes"
    if problem is not None:
        raise StoredRunError(
            f"workflow {uuid}: position {path} is not in the definition ({problem})",
            workflow=uuid,
            token=token,
            operation="retry token",
        )


#: How the status log's message of a failed token ends: the task that failed.
_FAILED_TASK = re.compile(r" \[task (?P<task>[^\]\n]+)\]\Z")


def failed_task_note(task: str | None) -> str:
    """The end of a failed token's message in the status log naming ``task``."""
    return f" [task {task}]" if task else ""


def failed_task(message: str | None) -> str | None:
    """Read back the task a failed token's status-log message names, if any."""
    found = _FAILED_TASK.search(message or "")
    return found["task"] if found else None
