"""A new run made from a stored definition, and a delete of that definition: one waits.

:meth:`Store.create_workflow() <workflow.storage.Store.create_workflow>` locks
the row of the definition version a run is pinned to before it stores the
run; :meth:`Definitions.delete() <workflow.storage.Definitions.delete>` locks
the same row before it looks for unfinished runs. Whichever comes second
waits for the first to commit, then sees what it did.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from ..errors import DefinitionNotFoundError
from .models import DefinitionRecord

__all__ = ["pin_definition"]

_definitions = cast(sa.Table, DefinitionRecord.__table__)


def pin_definition(conn: sa.Connection, name: str, version: int) -> None:
    """Lock the row of the stored definition a new run is made from; refuse a deleted one.

    The lock lasts until the run's row is committed, so that
    :meth:`Definitions.delete() <workflow.storage.Definitions.delete>`, which
    locks the row first, either waits for the run (and sees it) or deletes
    the version first (and the run is refused here). A definition that is
    not stored at all is left to the caller.

    :raises ~workflow.errors.DefinitionNotFoundError: when the version was deleted.
    """
    row = conn.execute(
        sa.select(_definitions.c.deleted)
        .where(_definitions.c.name == name, _definitions.c.version == version)
        .with_for_update()
    ).first()
    if row is not None and row.deleted:
        raise DefinitionNotFoundError(
            f"version {version} of the stored definition {name!r} was deleted: a new run "
            "cannot be pinned to it",
            definition_name=name,
            definition_version=version,
            operation="create workflow",
        )
