"""Stored flow definitions: named, versioned JSON bodies in table ``wf_definition``.

A definition is stored once per distinct body: putting the same body again
returns the stored version, putting a different one stores the next version.
New runs use the latest enabled version; a run resumes with the version it
started with (:attr:`~workflow.storage.PersistentWorkflowEngine.definition_version`),
even once it is disabled.

.. versionadded:: 3.0
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ..engine_db import WorkflowStatus
from ..errors import (
    DefinitionDisabledError,
    DefinitionInUseError,
    DefinitionNotFoundError,
    StorageError,
    WorkflowTypeError,
    WorkflowValueError,
)
from .models import DefinitionRecord, WorkflowRecord, utcnow
from .store import Store

__all__ = ["Definition", "Definitions", "checksum"]

definitions = cast(sa.Table, DefinitionRecord.__table__)
workflows = cast(sa.Table, WorkflowRecord.__table__)

#: The statuses of a run that will never resume: ``COMPLETED``, and ``CANCELLED``
#: (6) where that status exists. Every other run may still need its definition.
FINISHED_STATUSES = (WorkflowStatus.COMPLETED.value, 6)

#: How many of the runs that keep a definition from being deleted its error names.
_NAMED_RUNS = 5

#: How often :meth:`Definitions.put` tries again when another process stored
#: the same version number at the same time.
_PUT_ATTEMPTS = 20


def checksum(body: dict[str, Any]) -> str:
    """Return the sha256 (hex) of ``body``'s canonical JSON.

    The canonical JSON has sorted keys, no spaces and non-ASCII characters
    as they are, so equal bodies have equal checksums whatever their key order.

    :raises TypeError: when ``body`` is not plain JSON.
    """
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Definition:
    """One stored version of a definition, as :class:`Definitions` returns it.

    .. versionadded:: 3.0
    """

    #: The definition's name.
    name: str
    #: Its version: 1, 2, ... per name, never reused.
    version: int
    #: The stored body (a JSON object).
    body: dict[str, Any] = field(repr=False, compare=False)
    #: The sha256 (hex) of the body's canonical JSON (see :func:`checksum`).
    checksum: str
    #: Whether new runs may use it (:meth:`Definitions.get` without a version).
    enabled: bool
    #: Whether it was deleted (only listed with ``include_deleted=True``).
    deleted: bool
    #: When it was stored, naive UTC.
    created: datetime
    #: When it was last enabled, disabled or deleted, naive UTC.
    updated: datetime

    @classmethod
    def from_row(cls, row: Any) -> Definition:
        """Build a definition from a row of ``wf_definition``."""
        return cls(
            name=row.name,
            version=row.version,
            body=row.body,
            checksum=row.checksum,
            enabled=bool(row.enabled),
            deleted=bool(row.deleted),
            created=row.created,
            updated=row.updated,
        )

    def __repr__(self) -> str:
        flags = "deleted" if self.deleted else "enabled" if self.enabled else "disabled"
        return f"<Definition {self.name!r} v{self.version} {flags} {self.checksum[:12]}>"


class Definitions:
    """The flow definitions stored in a :class:`~workflow.storage.Store`, by name and version.

    Versions count from 1 per name and are never reused. Deleting is soft:
    a deleted version is kept, hidden from every method, so that its number
    stays taken.

    >>> from workflow.storage import Definitions, Store
    >>> store = Store("sqlite://")
    >>> store.create_all()
    >>> definitions = Definitions(store)
    >>> definitions.put("greet", {"steps": ["hello"]})
    <Definition 'greet' v1 enabled ...>

    :param store: the database; its tables must exist
        (:func:`~workflow.storage.schema.upgrade`).

    .. versionadded:: 3.0
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"<Definitions in {self.store!r}>"

    # -- writing --------------------------------------------------------------------

    def put(self, name: str, body: dict[str, Any]) -> Definition:
        """Store ``body`` as the next version of ``name`` and return it.

        When the latest version that is not deleted has the same checksum
        (enabled or not), nothing is stored and that version is returned as it
        is. A name whose versions were all deleted goes on after the highest
        version it ever had.

        :param name: the definition's name (1 to 255 characters).
        :param body: a JSON object; its canonical JSON gives the checksum.
        :raises TypeError: when ``body`` is not a dict of plain JSON values.
        :raises ValueError: when ``name`` is empty or too long.
        """
        _check_name(name)
        if not isinstance(body, dict):
            raise WorkflowTypeError(
                f"the body of definition {name!r} must be a dict (a JSON object), "
                f"not {type(body).__name__}"
            )
        try:
            digest = checksum(body)
            # A copy, as get() will return it; NaN and infinities are not JSON.
            body = json.loads(json.dumps(body, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise WorkflowTypeError(
                f"the body of definition {name!r} is not plain JSON: {exc}"
            ) from exc
        for attempt in range(_PUT_ATTEMPTS):
            try:
                return self._put(name, body, digest)
            except StorageError as error:
                # Another process stored this version number first: count again.
                raced = isinstance(error.__cause__, sa_exc.IntegrityError)
                if not raced or attempt == _PUT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _put(self, name: str, body: dict[str, Any], digest: str) -> Definition:
        with self.store.transaction("put definition") as conn:
            latest = conn.execute(
                sa.select(definitions)
                .where(definitions.c.name == name, definitions.c.deleted.is_(False))
                .order_by(definitions.c.version.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.checksum == digest:
                return Definition.from_row(latest)
            highest = conn.execute(
                sa.select(sa.func.max(definitions.c.version)).where(definitions.c.name == name)
            ).scalar()
            now = utcnow()
            stored = Definition(
                name=name,
                version=(highest or 0) + 1,
                body=body,
                checksum=digest,
                enabled=True,
                deleted=False,
                created=now,
                updated=now,
            )
            conn.execute(
                definitions.insert().values(
                    name=stored.name,
                    version=stored.version,
                    body=stored.body,
                    checksum=stored.checksum,
                    enabled=stored.enabled,
                    deleted=stored.deleted,
                    created=now,
                    updated=now,
                )
            )
        return stored

    def disable(self, name: str, version: int | None = None) -> builtins.list[Definition]:
        """Keep new runs off ``version`` of ``name`` (``None``: every version).

        Runs that started with a disabled version still get it with
        :meth:`get` and an explicit version. Returns the versions concerned,
        oldest first.

        :raises ~workflow.errors.DefinitionNotFoundError: when there is no
            such version (deleted ones included).
        """
        return self._set(name, version, "disable definition", enabled=False)

    def enable(self, name: str, version: int | None = None) -> builtins.list[Definition]:
        """Let new runs use ``version`` of ``name`` again (``None``: every version).

        Returns the versions concerned; errors as for :meth:`disable`.
        """
        return self._set(name, version, "enable definition", enabled=True)

    def delete(self, name: str, version: int | None = None) -> builtins.list[Definition]:
        """Delete ``version`` of ``name`` (``None``: every version), softly.

        A deleted version is no longer returned by any method, and its number
        is never given again. Returns the versions deleted.

        A run resumes with the version it started with, so a version that
        unfinished runs (neither ``COMPLETED`` nor cancelled) are pinned to
        is not deleted: finish or cancel them first. Without a version,
        nothing is deleted while any version has such runs.

        The delete first marks the versions deleted, which takes their rows'
        locks, then looks for unfinished runs with a locking read, which sees
        every run committed by then; if it finds one, nothing is deleted. A
        new run takes the lock of its version's row before it is stored
        (:meth:`Store.create_workflow`), so of a delete and a run starting at
        the same time, one waits for the other: either the run is stored and
        the delete refused, or the version is deleted and the run refused.

        :raises ~workflow.errors.DefinitionInUseError: naming how many runs
            are pinned to the version(s), and the first few.
        :raises ~workflow.errors.DefinitionNotFoundError: as for :meth:`disable`.
        """
        now = utcnow()
        where = self._where(name, version)
        with self.store.transaction("delete definition") as conn:
            found = self._mark_deleted(conn, where, now)
            if not found:
                raise _not_found(name, version, "delete definition")
            unfinished = (
                workflows.c.definition_name == name,
                workflows.c.definition_version.in_(found),
                workflows.c.status.not_in(FINISHED_STATUSES),
            )
            pinned = conn.execute(
                sa.select(workflows.c.uuid).where(*unfinished).limit(1).with_for_update(read=True)
            ).first()
            if pinned is not None:
                raise self._in_use(conn, name, version, unfinished)
            rows = conn.execute(
                sa.select(definitions)
                .where(definitions.c.name == name, definitions.c.version.in_(found))
                .order_by(definitions.c.version)
            ).all()
        return [Definition.from_row(row) for row in rows]

    @staticmethod
    def _mark_deleted(
        conn: sa.Connection, where: builtins.list[sa.ColumnElement[bool]], now: datetime
    ) -> builtins.list[int]:
        """Lock the versions ``where`` selects and mark them deleted; return their numbers."""
        found = list(
            conn.execute(sa.select(definitions.c.version).where(*where).with_for_update())
            .scalars()
            .all()
        )
        if found:
            conn.execute(
                definitions.update()
                .where(*where, definitions.c.version.in_(found))
                .values(updated=now, deleted=True)
            )
        return found

    @staticmethod
    def _in_use(
        conn: sa.Connection, name: str, version: int | None, unfinished: tuple[Any, ...]
    ) -> StorageError:
        """Return the error of a delete refused for the unfinished runs of the versions."""
        count = conn.execute(sa.select(sa.func.count()).where(*unfinished)).scalar() or 0
        uuids = tuple(
            conn.execute(
                sa.select(workflows.c.uuid)
                .where(*unfinished)
                .order_by(workflows.c.created, workflows.c.uuid)
                .limit(_NAMED_RUNS)
            ).scalars()
        )
        which = "any version of it" if version is None else f"version {version}"
        more = f", and {count - len(uuids)} more" if count > len(uuids) else ""
        error = DefinitionInUseError(
            f"cannot delete {which} of the stored definition {name!r}: {count} unfinished "
            f"run{'s are' if count != 1 else ' is'} pinned to it ({', '.join(uuids)}{more}); "
            "finish or cancel them first",
            definition_name=name,
            definition_version=version,
            operation="delete definition",
        )
        error.runs = count
        error.uuids = uuids
        return error

    def _set(
        self, name: str, version: int | None, operation: str, **values: Any
    ) -> builtins.list[Definition]:
        now = utcnow()
        where = self._where(name, version)
        with self.store.transaction(operation) as conn:
            rows = conn.execute(
                sa.select(definitions).where(*where).order_by(definitions.c.version)
            ).all()
            if not rows:
                raise _not_found(name, version, operation)
            conn.execute(definitions.update().where(*where).values(updated=now, **values))
        return [
            dataclasses.replace(Definition.from_row(row), updated=now, **values) for row in rows
        ]

    # -- reading --------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> Definition:
        """Return ``version`` of ``name``; ``None``, the latest enabled one.

        Without a version, this is the version a new run should use. An
        explicit version is returned even when disabled (a run resumes with
        the version it started with), but not when deleted.

        :raises ~workflow.errors.DefinitionNotFoundError: when there is no
            such version (deleted ones included), or no version at all.
        :raises ~workflow.errors.DefinitionDisabledError: without a version,
            when every version of ``name`` is disabled.
        """
        query = sa.select(definitions).where(*self._where(name, version))
        if version is None:
            query = query.order_by(definitions.c.enabled.desc(), definitions.c.version.desc())
        with self.store.transaction("get definition") as conn:
            row = conn.execute(query.limit(1)).first()
        if row is None:
            raise _not_found(name, version, "get definition")
        if not row.enabled and version is None:
            raise DefinitionDisabledError(
                f"every version of the stored definition {name!r} is disabled "
                f"(the latest is version {row.version}); enable one or put a new one",
                definition_name=name,
                operation="get definition",
            )
        return Definition.from_row(row)

    def versions(self, name: str) -> builtins.list[Definition]:
        """Return the versions of ``name`` that are not deleted, oldest first.

        A name without any is an empty list.
        """
        query = sa.select(definitions).where(*self._where(name, None))
        with self.store.transaction("list definitions") as conn:
            rows = conn.execute(query.order_by(definitions.c.version)).all()
        return [Definition.from_row(row) for row in rows]

    def list(
        self, *, include_disabled: bool = True, include_deleted: bool = False
    ) -> builtins.list[Definition]:
        """Return the latest version of each definition, sorted by name.

        "Latest" is among the versions the filters let through: with
        ``include_disabled=False`` it is the version :meth:`get` gives a new
        run, and names whose versions are all disabled are left out.

        :param include_disabled: consider disabled versions.
        :param include_deleted: consider deleted versions too.
        """
        filters = []
        if not include_disabled:
            filters.append(definitions.c.enabled.is_(True))
        if not include_deleted:
            filters.append(definitions.c.deleted.is_(False))
        latest = (
            sa.select(definitions.c.name, sa.func.max(definitions.c.version).label("version"))
            .where(*filters)
            .group_by(definitions.c.name)
            .subquery()
        )
        query = (
            sa.select(definitions)
            .join(
                latest,
                sa.and_(
                    definitions.c.name == latest.c.name,
                    definitions.c.version == latest.c.version,
                ),
            )
            .order_by(definitions.c.name)
        )
        with self.store.transaction("list definitions") as conn:
            return [Definition.from_row(row) for row in conn.execute(query)]

    @staticmethod
    def _where(name: str, version: int | None) -> builtins.list[sa.ColumnElement[bool]]:
        where = [definitions.c.name == name, definitions.c.deleted.is_(False)]
        if version is not None:
            where.append(definitions.c.version == version)
        return where


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise WorkflowValueError(f"a definition needs a name (a non-empty str), not {name!r}")
    if len(name) > 255:
        raise WorkflowValueError(f"a definition's name has at most 255 characters, not {len(name)}")


def _not_found(name: str, version: int | None, operation: str) -> DefinitionNotFoundError:
    if version is None:
        message = f"no stored definition is called {name!r}"
    else:
        message = f"the stored definition {name!r} has no version {version}"
    return DefinitionNotFoundError(
        message, definition_name=name, definition_version=version, operation=operation
    )
