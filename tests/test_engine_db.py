"""DbWorkflowEngine against a real SQLAlchemy 2 model on an in-memory SQLite database."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from sqlalchemy import JSON, ForeignKey, String, Text, create_engine, select
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from workflow import signals
from workflow.engine import GenericWorkflowEngine
from workflow.engine_db import (
    DbProcessingFactory,
    DbTransitionAction,
    DbWorkflowEngine,
    EnumLabel,
    ObjectStatus,
    WorkflowStatus,
)
from workflow.errors import HaltProcessing, WorkflowError
from workflow.utils import classproperty

# -- the user's model ------------------------------------------------------------


class Base(DeclarativeBase):
    pass


def _commit(row: Base) -> None:
    session = Session.object_session(row)
    assert session is not None, "the row must belong to a session"
    session.commit()


class WorkflowRow(Base):
    """A workflow; its status is stored as a WorkflowStatus member."""

    __tablename__ = "workflow"

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

    def __str__(self) -> str:
        return f"WorkflowRow {self.name}"


class TokenRow(Base):
    """A token; its status is stored as the plain integer value of an ObjectStatus."""

    __tablename__ = "token"
    known_statuses: ClassVar[type[ObjectStatus]] = ObjectStatus

    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[int]
    status: Mapped[int] = mapped_column(default=ObjectStatus.INITIAL.value)
    id_workflow: Mapped[str | None] = mapped_column(ForeignKey("workflow.uuid"))
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


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def row(session: Session) -> WorkflowRow:
    row = WorkflowRow(uuid=str(uuid4()), name="grading")
    session.add(row)
    session.commit()
    return row


def add_tokens(row: WorkflowRow, *data: int) -> list[TokenRow]:
    tokens = [TokenRow(data=value) for value in data]
    row.objects.extend(tokens)
    _commit(row)
    return tokens


def stored(session: Session) -> tuple[WorkflowStatus, list[int]]:
    """Read the workflow status and the token statuses back from the database."""
    session.expire_all()
    workflow_status = session.scalars(select(WorkflowRow.status)).one()
    token_statuses = session.scalars(select(TokenRow.status).order_by(TokenRow.id)).all()
    return workflow_status, list(token_statuses)


# -- tasks -----------------------------------------------------------------------


def add_one(obj: TokenRow, eng: Any) -> None:
    obj.data += 1


def add_ten(obj: TokenRow, eng: Any) -> None:
    obj.data += 10


def halt_if_even(obj: TokenRow, eng: Any) -> None:
    if obj.data % 2 == 0:
        eng.halt("needs review")


def explode(obj: TokenRow, eng: Any) -> None:
    raise ValueError("boom")


INITIAL, DONE, HALTED, RUNNING, ERROR = (
    ObjectStatus.INITIAL.value,
    ObjectStatus.COMPLETED.value,
    ObjectStatus.HALTED.value,
    ObjectStatus.RUNNING.value,
    ObjectStatus.ERROR.value,
)


# -- statuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "value", "label"),
    [
        (WorkflowStatus.NEW, 0, "New"),
        (WorkflowStatus.RUNNING, 1, "Running"),
        (WorkflowStatus.HALTED, 2, "Halted"),
        (WorkflowStatus.ERROR, 3, "Error"),
        (WorkflowStatus.COMPLETED, 4, "Completed"),
        (ObjectStatus.INITIAL, 0, "New"),
        (ObjectStatus.COMPLETED, 1, "Done"),
        (ObjectStatus.HALTED, 2, "Need action"),
        (ObjectStatus.RUNNING, 3, "In process"),
        (ObjectStatus.ERROR, 4, "Error"),
    ],
)
def test_statuses_keep_the_invenio_values_and_labels(
    member: EnumLabel, value: int, label: str
) -> None:
    assert member.value == value
    assert member.label == label
    assert type(member)(json.loads(json.dumps(member.value))) is member
    assert pickle.loads(pickle.dumps(member)) is member


def test_statuses_keep_invenio_order_then_add_waiting() -> None:
    assert [m.name for m in WorkflowStatus] == [
        "NEW",
        "RUNNING",
        "HALTED",
        "ERROR",
        "COMPLETED",
        "WAITING",
        "CANCELLED",
    ]
    assert [m.name for m in ObjectStatus] == [
        "INITIAL",
        "COMPLETED",
        "HALTED",
        "RUNNING",
        "ERROR",
        "WAITING",
    ]
    assert (WorkflowStatus.WAITING.value, WorkflowStatus.WAITING.label) == (5, "Waiting")
    assert (WorkflowStatus.CANCELLED.value, WorkflowStatus.CANCELLED.label) == (6, "Cancelled")
    assert (ObjectStatus.WAITING.value, ObjectStatus.WAITING.label) == (5, "Waiting")


def test_enum_label_subclass_gets_labels_from_its_class_property() -> None:
    class InvenioObjectStatus(EnumLabel):
        HALTED = 2
        WAITING = 4

        @classproperty
        def labels(cls) -> dict[Any, str]:
            return {2: "Need action", 4: "Waiting"}

    assert InvenioObjectStatus.WAITING.label == "Waiting"


def test_enum_label_subclass_without_labels_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="labels"):

        class Unlabelled(EnumLabel):
            ONLY = 0


def test_engine_points_at_the_database_hooks() -> None:
    assert DbWorkflowEngine.processing_factory is DbProcessingFactory
    assert DbProcessingFactory.transition_exception_mapper is DbTransitionAction
    assert DbWorkflowEngine.known_statuses is WorkflowStatus
    assert issubclass(DbWorkflowEngine, GenericWorkflowEngine)


# -- the engine's view of its model ----------------------------------------------


def test_properties_read_the_model(row: WorkflowRow) -> None:
    tokens = add_tokens(row, 1, 2)
    eng = DbWorkflowEngine(row, id_user=7)  # extra keywords are accepted and ignored

    assert eng.db_obj is row
    assert eng.name == "grading"
    assert eng.uuid == row.uuid
    assert eng.status is WorkflowStatus.NEW
    assert eng.database_objects == tokens


def test_save_passes_the_status_to_the_model(session: Session, row: WorkflowRow) -> None:
    eng = DbWorkflowEngine(row)

    eng.save(WorkflowStatus.HALTED)
    assert stored(session)[0] is WorkflowStatus.HALTED
    eng.save()
    assert stored(session)[0] is WorkflowStatus.HALTED


def test_repr_names_the_workflow_and_str_describes_it(row: WorkflowRow) -> None:
    eng = DbWorkflowEngine(row)

    assert repr(eng) == "<DbWorkflow_engine(grading)>"
    text = str(eng)
    assert text.splitlines()[0] == "DbWorkflowEngine 'grading'"
    assert f"uuid:         {row.uuid}" in text
    assert "token_pos:    -1" in text
    assert "model:        WorkflowRow grading" in text


def test_import_does_not_import_sqlalchemy() -> None:
    code = "import sys, workflow.engine_db; print('sqlalchemy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- a successful run --------------------------------------------------------------


def test_successful_run_saves_workflow_and_every_token_completed(
    session: Session, row: WorkflowRow
) -> None:
    tokens = add_tokens(row, 1, 2, 3)
    eng = DbWorkflowEngine(row)
    during: list[tuple[Any, ...]] = []

    def look(obj: TokenRow, eng: DbWorkflowEngine) -> None:
        during.append((eng.status, obj.status, eng.running_objects))

    eng.callbacks.replace([look, add_one])
    eng.process(tokens)

    assert during == [(WorkflowStatus.RUNNING, RUNNING, [token]) for token in tokens]
    assert stored(session) == (WorkflowStatus.COMPLETED, [DONE, DONE, DONE])
    assert [token.data for token in tokens] == [2, 3, 4]
    assert {token.id_workflow for token in tokens} == {row.uuid}
    assert eng.final_objects == tokens
    assert eng.halted_objects == eng.running_objects == []
    assert eng.has_completed


def test_successful_run_sends_workflow_finished_after_saving_completed(
    row: WorkflowRow,
) -> None:
    tokens = add_tokens(row, 1)
    eng = DbWorkflowEngine(row)
    eng.callbacks.replace([add_one])
    finished: list[Any] = []

    def receiver(sender: DbWorkflowEngine, **kwargs: Any) -> None:
        finished.append((sender, sender.status))

    with signals.workflow_finished.connected_to(receiver, sender=eng):
        eng.process(tokens)

    assert finished == [(eng, WorkflowStatus.COMPLETED)]


def test_run_over_no_tokens_is_saved_completed(session: Session, row: WorkflowRow) -> None:
    eng = DbWorkflowEngine(row)
    eng.callbacks.replace([add_one])

    eng.process([])

    assert stored(session) == (WorkflowStatus.COMPLETED, [])


def test_stop_before_the_last_token_saves_the_workflow_halted(
    session: Session, row: WorkflowRow
) -> None:
    tokens = add_tokens(row, 1, 2)
    eng = DbWorkflowEngine(row)

    def stop(obj: TokenRow, eng: DbWorkflowEngine) -> None:
        eng.stop()

    eng.callbacks.replace([stop])
    finished: list[Any] = []
    with signals.workflow_finished.connected_to(finished.append, sender=eng):
        eng.process(tokens)

    assert stored(session) == (WorkflowStatus.HALTED, [RUNNING, INITIAL])
    assert finished == [eng]


# -- halt and resume ----------------------------------------------------------------


def test_halt_saves_the_token_position_and_the_workflow_halted(
    session: Session, row: WorkflowRow, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = add_tokens(row, 0, 1, 2)
    eng = DbWorkflowEngine(row)
    eng.callbacks.replace([add_one, [halt_if_even, add_ten]])
    halted: list[Any] = []

    with (
        signals.workflow_halted.connected_to(halted.append, sender=eng),
        pytest.raises(HaltProcessing, match="needs review"),
    ):
        eng.process(tokens)

    assert halted == [eng]
    assert stored(session) == (WorkflowStatus.HALTED, [DONE, HALTED, INITIAL])
    assert tokens[1].callback_pos == [1, 0]
    assert [token.data for token in tokens] == [11, 2, 2]
    assert eng.final_objects == [tokens[0]]
    assert eng.halted_objects == [tokens[1]]
    assert eng.running_objects == []
    assert (
        "workflow.engine.DbWorkflowEngine",
        logging.WARNING,
        "Workflow 'grading' halted at task halt_if_even with message: needs review",
    ) in caplog.record_tuples


def test_halted_run_resumes_from_the_stored_position_to_completed(
    session: Session, row: WorkflowRow
) -> None:
    tokens = add_tokens(row, 0, 1, 2)
    first = DbWorkflowEngine(row)
    definition = [add_one, [halt_if_even, add_ten]]
    first.callbacks.replace(definition)
    with pytest.raises(HaltProcessing):
        first.process(tokens)

    # Later, maybe in another process: rebuild an engine from what was stored.
    eng = DbWorkflowEngine(row)
    eng.callbacks.replace(definition)
    [waiting] = eng.halted_objects
    assert waiting.callback_pos is not None
    eng.state.token_pos = row.objects.index(waiting)
    eng.state.callback_pos = waiting.callback_pos
    eng.restart("current", "next", objects=list(row.objects))

    assert stored(session) == (WorkflowStatus.COMPLETED, [DONE, DONE, DONE])
    assert [token.data for token in row.objects] == [11, 12, 13]
    assert eng.final_objects == row.objects
    assert eng.halted_objects == []


def test_halt_with_stop_on_halt_false_goes_on_and_completes(
    session: Session, row: WorkflowRow
) -> None:
    tokens = add_tokens(row, 0, 1, 2)
    eng = DbWorkflowEngine(row)
    eng.callbacks.replace([add_one, halt_if_even, add_ten])

    eng.process(tokens, stop_on_halt=False)

    assert stored(session) == (WorkflowStatus.COMPLETED, [DONE, HALTED, DONE])


# -- errors ----------------------------------------------------------------------


def test_task_error_is_saved_and_raised_as_a_chained_workflow_error(
    session: Session, row: WorkflowRow, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = add_tokens(row, 5, 6)
    eng = DbWorkflowEngine(row)
    eng.callbacks.replace([add_one, [explode]])
    errors: list[Any] = []
    halted: list[Any] = []

    def on_error(sender: DbWorkflowEngine, exception: BaseException) -> None:
        errors.append((sender, exception))

    with (
        signals.workflow_error.connected_to(on_error, sender=eng),
        signals.workflow_halted.connected_to(halted.append, sender=eng),
        pytest.raises(WorkflowError) as info,
    ):
        eng.process(tokens)

    error = info.value
    original = error.__cause__
    assert isinstance(original, ValueError)
    assert str(original) == "boom"
    assert error.id_workflow == row.uuid
    assert error.id_object == 0
    assert error.callback_pos == [1, 0]
    assert error.task == "explode"
    assert str(error).startswith("ValueError: boom (")
    assert "Traceback" in error.payload
    assert errors == [(eng, original)]
    assert halted == []

    assert stored(session) == (WorkflowStatus.ERROR, [ERROR, INITIAL])
    assert tokens[0].callback_pos == [1, 0]
    assert tokens[0].error_message is not None
    assert "Traceback" in tokens[0].error_message
    assert "ValueError: boom" in tokens[0].error_message
    assert any(
        record.levelno == logging.ERROR and "Workflow 'grading' failed" in record.getMessage()
        for record in caplog.records
    )


def test_workflow_error_from_a_task_is_raised_as_is_with_its_unset_context_filled(
    session: Session, row: WorkflowRow
) -> None:
    tokens = add_tokens(row, 1)
    eng = DbWorkflowEngine(row)
    raised = WorkflowError("bad grade", id_object="grade #1", payload={"grade": 1})

    def refuse(obj: TokenRow, eng: DbWorkflowEngine) -> None:
        raise raised

    eng.callbacks.replace([add_one, refuse])

    with pytest.raises(WorkflowError) as info:
        eng.process(tokens)

    assert info.value is raised
    assert (raised.id_workflow, raised.id_object, raised.callback_pos, raised.task) == (
        row.uuid,
        "grade #1",
        [1],
        "refuse",
    )
    assert raised.payload == {"grade": 1}
    assert stored(session) == (WorkflowStatus.ERROR, [ERROR])


@pytest.mark.parametrize("exception", [ValueError("boom"), WorkflowError("bad grade")])
def test_failing_token_with_stop_on_error_false_is_saved_and_the_run_goes_on(
    session: Session, row: WorkflowRow, exception: Exception
) -> None:
    tokens = add_tokens(row, 1, 2, 3)
    eng = DbWorkflowEngine(row)

    def fail_on_two(obj: TokenRow, eng: DbWorkflowEngine) -> None:
        if obj.data == 2:
            raise exception

    eng.callbacks.replace([fail_on_two, add_one])

    eng.process(tokens, stop_on_error=False)

    assert stored(session) == (WorkflowStatus.COMPLETED, [DONE, ERROR, DONE])
    assert [token.data for token in tokens] == [2, 2, 4]
