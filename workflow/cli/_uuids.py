"""Workflow uuids and interaction ids as people type them: whole, or the first few hex digits.

Every command that takes a workflow's uuid resolves it with
:func:`resolve_uuid`, and every command that takes an interaction's id (a
wait's id) with :func:`resolve_interaction`: an id that is stored is taken
as it is; otherwise the text must be the start of exactly one stored id (at
least :data:`MIN_PREFIX` hex digits; dashes allowed), and an ambiguous start
is an error listing the candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workflow._text import has_lone_surrogate

from ._context import CLIError, Context

if TYPE_CHECKING:
    from workflow.storage import Store

__all__ = ["MIN_PREFIX", "resolve_interaction", "resolve_uuid"]

#: The fewest hex digits a uuid prefix may have.
MIN_PREFIX = 4
#: The most candidates an ambiguous prefix lists.
MAX_CANDIDATES = 10
_PREFIX = re.compile(r"[0-9a-f-]+")
_FULL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class _Kind:
    """What is looked up, and how the errors name it."""

    #: What is looked up ("workflow"), and the name of its key ("uuid").
    thing: str
    key: str
    #: Each with its article ("a workflow", "a uuid").
    a_thing: str
    a_key: str
    #: Who has no such key: "no stored workflow".
    nobody: str


_WORKFLOW = _Kind("workflow", "uuid", "a workflow", "a uuid", "no stored workflow")
_INTERACTION = _Kind("interaction", "id", "an interaction", "an id", "no interaction")


def _store(target: Context | Store) -> Store:
    return target.store(write=False) if isinstance(target, Context) else target


def resolve_uuid(target: Context | Store, text: str) -> str:
    """Return the stored workflow uuid that ``text`` is, or is the start of.

    :param target: the command's context (its database is opened to read,
        with its schema checked) or a :class:`~workflow.storage.Store`.
    :param text: a whole uuid, or its first hex digits (upper or lower case).
    :raises CLIError: (exit code 2) when no stored uuid is or starts with
        ``text``, when several start with it (listing them), or when
        ``text`` is too short. Only hex digits and dashes are looked up as
        a start, so that no text is a ``LIKE`` pattern.
    """
    from workflow.storage.run_rows import workflows

    return _resolve(_store(target), text, workflows.c.uuid, None, _WORKFLOW)


def resolve_interaction(target: Context | Store, text: str) -> str:
    """Return the id of the stored wait that ``text`` is, or the ``ask`` it starts.

    A whole id of any wait is taken as it is (answering a ``sleep`` is then
    refused with its reason); a start of an id only finds ``ask`` waits.

    :raises CLIError: as :func:`resolve_uuid` does.
    """
    from workflow.runtime.waits import waits

    return _resolve(_store(target), text, waits.c.id, waits.c.kind == "ask", _INTERACTION)


def _resolve(store: Store, text: str, column: Any, narrow: Any, kind: _Kind) -> str:
    nobody = f"{kind.nobody} has the {kind.key} {text!r}"
    if has_lone_surrogate(text):  # bytes of the command line that are no UTF-8: no database has it
        raise CLIError(nobody)
    import sqlalchemy as sa

    with store.transaction(f"resolve {kind.key}", workflow=text) as conn:
        exact = conn.execute(sa.select(column).where(column == text)).first()
        if exact is not None:
            return str(exact[0])
        prefix = text.lower()
        if not _PREFIX.fullmatch(prefix):
            raise CLIError(nobody)
        if len(prefix.replace("-", "")) < MIN_PREFIX:
            raise CLIError(
                f"{text!r} is too short to find {kind.a_thing} by: give at least "
                f"{MIN_PREFIX} hex digits of its {kind.key}"
            )
        # The prefix holds no LIKE wildcard; autoescape is the second lock on that door.
        matching = column.startswith(prefix, autoescape=True)
        if narrow is not None:
            matching = sa.and_(matching, narrow)
        query = sa.select(column).where(matching).order_by(column)
        found = [str(uid) for uid in conn.execute(query.limit(MAX_CANDIDATES + 1)).scalars()]
        total = len(found)
        if total > MAX_CANDIDATES:
            count = sa.select(sa.func.count()).select_from(column.table).where(matching)
            total = int(conn.execute(count).scalar_one())
    if not found and _FULL.fullmatch(prefix):
        raise CLIError(nobody)
    if not found:
        raise CLIError(f"{kind.nobody} has {kind.a_key} starting with {text!r}")
    if total == 1:
        return found[0]
    listed = ", ".join(found[:MAX_CANDIDATES])
    more = f" and {total - MAX_CANDIDATES} more" if total > MAX_CANDIDATES else ""
    raise CLIError(
        f"{total} {kind.thing}s have {kind.a_key} starting with {text!r}: {listed}{more}; "
        f"give more of the {kind.key}"
    )
