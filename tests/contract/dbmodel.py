"""A small SQLAlchemy model for :class:`~workflow.engine_db.DbWorkflowEngine`.

It keeps the promises :mod:`workflow.engine_db` lists: a workflow row with
``name``, ``uuid``, ``status``, ``objects`` and ``save(status)``, and token
rows with ``known_statuses``, ``status``, ``save(...)`` and
``set_error_message(text)``. A token's payload is the JSON ``data`` column,
tracked for changes made in place.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.ext.mutable import MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from workflow.engine_db import ObjectStatus, WorkflowStatus


class Base(DeclarativeBase):
    pass


def _commit(row: Base) -> None:
    session = Session.object_session(row)
    assert session is not None, "the row must belong to a session"
    session.commit()


class WorkflowRow(Base):
    """A workflow run; its status is stored as a :class:`WorkflowStatus` member."""

    __tablename__ = "contract_workflow"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[WorkflowStatus] = mapped_column(
        SqlEnum(WorkflowStatus), default=WorkflowStatus.NEW
    )
    objects: Mapped[list[TokenRow]] = relationship(
        back_populates="workflow", order_by="TokenRow.id"
    )

    def save(self, status: WorkflowStatus | None = None) -> None:
        if status is not None:
            self.status = status
        _commit(self)


class TokenRow(Base):
    """A token; its payload is a JSON list, its status the value of an ObjectStatus."""

    __tablename__ = "contract_token"
    known_statuses: ClassVar[type[ObjectStatus]] = ObjectStatus

    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[list[Any]] = mapped_column(MutableList.as_mutable(JSON))
    status: Mapped[int] = mapped_column(default=ObjectStatus.INITIAL.value)
    id_workflow: Mapped[str | None] = mapped_column(ForeignKey("contract_workflow.uuid"))
    callback_pos: Mapped[list[int] | None] = mapped_column(JSON)
    error_message: Mapped[str | None] = mapped_column(Text)
    workflow: Mapped[WorkflowRow | None] = relationship(back_populates="objects")

    def save(
        self,
        status: ObjectStatus | None = None,
        id_workflow: str | None = None,
        callback_pos: list[int] | None = None,
    ) -> None:
        if status is not None:
            self.status = status.value
        if id_workflow is not None:
            self.id_workflow = id_workflow
        if callback_pos is not None:
            self.callback_pos = callback_pos
        _commit(self)

    def set_error_message(self, text: str) -> None:
        self.error_message = text

    def __repr__(self) -> str:
        return f"<TokenRow {self.id} {ObjectStatus(self.status).name} data={self.data!r}>"
