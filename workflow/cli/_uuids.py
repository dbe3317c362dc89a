"""Workflow uuids as people type them: whole, or the first few hex digits.

Every command that takes a workflow's uuid resolves it with
:func:`resolve_uuid`: a uuid that is stored is taken as it is; otherwise
the text must be the start of exactly one stored uuid (at least
:data:`MIN_PREFIX` hex digits; dashes allowed), and an ambiguous start is
an error listing the candidates.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from workflow._text import has_lone_surrogate

from ._context import CLIError, Context

if TYPE_CHECKING:
    from workflow.storage import Store

__all__ = ["MIN_PREFIX", "resolve_uuid"]

#: The fewest hex digits a uuid prefix may have.
MIN_PREFIX = 4
#: The most candidates an ambiguous prefix lists.
MAX_CANDIDATES = 10
_PREFIX = re.compile(r"[0-9a-f-]+")
_FULL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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
    if has_lone_surrogate(text):  # bytes of the command line that are no UTF-8: no database has it
        raise CLIError(f"no stored workflow has the uuid {text!r}")
    store = target.store(write=False) if isinstance(target, Context) else target
    import sqlalchemy as sa

    from workflow.storage.run_rows import workflows

    with store.transaction("resolve uuid", workflow=text) as conn:
        exact = conn.execute(sa.select(workflows.c.uuid).where(workflows.c.uuid == text)).first()
        if exact is not None:
            return str(exact[0])
        prefix = text.lower()
        if not _PREFIX.fullmatch(prefix):
            raise CLIError(f"no stored workflow has the uuid {text!r}")
        if len(prefix.replace("-", "")) < MIN_PREFIX:
            raise CLIError(
                f"{text!r} is too short to find a workflow by: give at least {MIN_PREFIX} hex "
                "digits of its uuid"
            )
        # The prefix holds no LIKE wildcard; autoescape is the second lock on that door.
        matching = workflows.c.uuid.startswith(prefix, autoescape=True)
        query = sa.select(workflows.c.uuid).where(matching).order_by(workflows.c.uuid)
        found = [str(uid) for uid in conn.execute(query.limit(MAX_CANDIDATES + 1)).scalars()]
        total = len(found)
        if total > MAX_CANDIDATES:
            count = sa.select(sa.func.count()).select_from(workflows).where(matching)
            total = int(conn.execute(count).scalar_one())
    if not found and _FULL.fullmatch(prefix):
        raise CLIError(f"no stored workflow has the uuid {text!r}")
    if not found:
        raise CLIError(f"no stored workflow has a uuid starting with {text!r}")
    if total == 1:
        return found[0]
    listed = ", ".join(found[:MAX_CANDIDATES])
    more = f" and {total - MAX_CANDIDATES} more" if total > MAX_CANDIDATES else ""
    raise CLIError(
        f"{total} workflows have a uuid starting with {text!r}: {listed}{more}; "
        "give more of the uuid"
    )
