"""What the API and the page do to runs and interactions, on top of the Python API.

Every operation calls what the ``workflow`` command calls (the
:class:`~workflow.storage.Store`, :class:`~workflow.runtime.Waits`, the
:class:`~workflow.runtime.Worker`): no face of the project has logic of its
own. A refusal is a :class:`Problem` that names its HTTP status and a
``reason`` a program can test.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid as _uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NoReturn

from workflow.engine_db import WorkflowStatus
from workflow.errors import (
    AnswerRefusedError,
    DefinitionDisabledError,
    DefinitionNotFoundError,
    FlowValidationError,
    RunKeyConflictError,
    StoredRunError,
    WorkflowBaseError,
    WorkflowError,
    WorkflowLockedError,
    WorkflowNotFoundError,
    WorkflowValueError,
)

from ._diagram import Diagram, flow_diagram, no_diagram
from ._problems import ANSWER_STATUS, Problem, plain

if TYPE_CHECKING:
    from workflow.flows import Flow, TaskRegistry
    from workflow.runtime import AnswerOutcome
    from workflow.runtime._answer_fast import AnswerPool
    from workflow.storage import PersistentWorkflowEngine, Store

__all__ = ["Definitions", "RunService", "stored_flows"]

log = logging.getLogger(__name__)

#: The callbacks of a stored run, given its engine (a Worker's ``definitions``).
Definitions = Callable[["PersistentWorkflowEngine"], list[Any]]

#: The key of a run's ``extra_data`` where the ``workflow`` command records how it
#: started; runs started here record it too, so ``workflow resume`` can go on with them.
META_KEY = "cli"

#: Namespace of the run uuids made from ``Idempotency-Key`` headers.
_IDEMPOTENT = _uuid.UUID("8f6f0f53-5d8a-4bb4-9b55-8d4f5f1f3b7e")


def stored_flows(store: Store, registry: TaskRegistry) -> Definitions:
    """Return a ``definitions`` callable that rebuilds a run's stored flow with ``registry``.

    Runs that are not made from a stored definition (Python callback lists)
    are refused: ``workflow serve --import`` continues those.
    """
    from workflow.flows import load_flow
    from workflow.storage import Definitions as Stored

    def lookup(name: str, version: int | None) -> Any:
        return Stored(store).get(name, version)

    def build(engine: PersistentWorkflowEngine) -> list[Any]:
        if engine.definition_name is None:
            raise WorkflowValueError(
                f"run {engine.uuid} is not made from a stored flow: continue it with "
                "`workflow resume` or a `workflow worker` given its --import"
            )
        definition = lookup(engine.definition_name, engine.definition_version)
        flow = load_flow(
            definition.body, registry=registry, definitions=lookup, version=definition.version
        )
        return flow.callbacks()

    return build


#: A run's uuid, or an interaction's id.
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _known(ident: str, what: str) -> str:
    """``ident`` when it has the shape of an id; else the 404 it would get anyway."""
    if not _ID.fullmatch(ident):
        raise Problem(404, f"no {what} has the id {ident!r}", "not_found")
    return ident


def _naive(moment: datetime | None) -> datetime | None:
    """A time as the database keeps it: naive UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _status(text: str | None) -> WorkflowStatus | None:
    return None if text is None else WorkflowStatus[text]


#: How many of the latest trace entries one run's page and API show.
TRACE_SHOWN = 500


class RunService:
    """The operations of the API and the page, on one database.

    :param store: the database.
    :param registry: the tasks stored flows are compiled with.
    :param definitions: builds a stored run's callbacks to continue it
        (default: :func:`stored_flows`).
    :param imports: the modules recorded with the runs started here (what
        ``workflow resume`` must be allowed to import to go on with them).

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        store: Store,
        *,
        registry: TaskRegistry,
        definitions: Definitions | None = None,
        imports: list[str] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.definitions = definitions or stored_flows(store, registry)
        self.imports = list(imports or [])
        #: Connections that answer on the event loop (PostgreSQL), or ``None``:
        #: every answer in a thread. The app opens it (see :func:`create_app`).
        self.answers: AnswerPool | None = None

    def __repr__(self) -> str:
        return f"<RunService {self.store!r}>"

    # -- runs ---------------------------------------------------------------------

    def runs(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        key: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Return a page of runs, newest first, and the offset of the next page (or ``None``)."""
        from workflow.cli._stored_run import read_workflows

        from ._models import storable

        for name, text in (("flow", flow), ("key", key)):
            try:
                storable(text or "")
            except ValueError as exc:
                raise Problem(422, f"{name}: {exc}", "invalid") from None
        found, _ = read_workflows(
            self.store,
            status=_status(status),
            limit=limit + 1,
            flow=flow,
            since=_naive(since),
            until=_naive(until),
            key=key,
            offset=offset,
        )
        more = len(found) > limit
        return plain(found[:limit]), (offset + limit if more else None)

    def status_counts(self) -> dict[str, int]:
        """How many runs have each status, by status name (every status, zeros too)."""
        counts = self.store.status_counts()
        return {status.name: counts.get(status.value, 0) for status in WorkflowStatus}

    def run(self, uuid: str) -> dict[str, Any]:
        """Return one run: its row, tokens, waits and :meth:`trace`.

        :raises Problem: 404 when there is no such run.
        """
        from workflow.cli._stored_run import read_run

        _known(uuid, "run")
        try:
            found, problems = read_run(self.store, uuid)
        except WorkflowNotFoundError:
            raise Problem(404, f"no run has the uuid {uuid!r}", "not_found") from None
        found.pop("next", None)  # the command to type next: the page has buttons
        found.pop("exit_code", None)
        changes = found.pop("status_changes")
        found["log"] = self.log(changes)
        found["trace"] = self.trace(uuid)
        found["problems"] = problems
        shown: dict[str, Any] = plain(found)
        return shown

    def trace(self, uuid: str) -> list[dict[str, Any]]:
        """Return the steps the run's tokens ran and the answers given to it, oldest first.

        The last :data:`TRACE_SHOWN` entries of :meth:`Store.trace
        <workflow.storage.Store.trace>`: ``workflow trace`` shows them all.
        """
        rows = self.store.trace(uuid)[-TRACE_SHOWN:]
        return [row.as_dict() for row in rows]

    def log(self, status_changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return the run's status changes (of the run and of its tokens), oldest first."""
        return [
            {
                "at": change["created"],
                "token": change["token"],
                "from": change["from"],
                "to": change["to"],
                "position": change["callback_pos"],
                "message": change["message"],
            }
            for change in status_changes
        ]

    def diagram(self, run: dict[str, Any]) -> Diagram:
        """Return the diagram of a run (as :meth:`run` returns it): its flow's graph, tokens marked.

        A token is marked at the step it waits at, halted at or failed in,
        at the start when new and at the end when completed. Runs of Python
        callback lists, and runs whose definition is gone from the database,
        get a sentence that says why they have no graph.
        """
        from workflow.storage import Definitions as Stored

        definition = run.get("definition")
        if not isinstance(definition, dict):
            why = (
                "This run's steps are Python callbacks, not a stored flow, so there is no "
                "graph to draw; its tokens are listed below."
            )
            return no_diagram(run, why)
        try:
            body = Stored(self.store).get(definition["name"], definition["version"]).body
        except WorkflowBaseError:
            why = (
                f"Flow {definition['name']} version {definition['version']} is no longer "
                "stored, so there is no graph to draw; the run's tokens are listed below."
            )
            return no_diagram(run, why)
        return flow_diagram(body, run)

    def state(self, uuid: str) -> dict[str, Any]:
        """The run's status and the steps it waits at (``{"uuid", "status", "waiting"}``)."""
        from workflow.cli._waits import run_state

        return run_state(self.store, uuid)

    def _flow(self, name: str, version: int | None) -> tuple[Flow, int]:
        from workflow.flows import load_flow
        from workflow.storage import Definitions as Stored

        stored = Stored(self.store)
        try:
            definition = stored.get(name, version)
        except DefinitionNotFoundError as exc:
            raise Problem(404, str(exc), "flow_not_found", flow=name) from None
        except DefinitionDisabledError as exc:
            raise Problem(409, str(exc), "flow_disabled", flow=name) from None
        try:
            flow = load_flow(
                definition.body,
                registry=self.registry,
                definitions=stored.get,
                version=definition.version,
            )
        except FlowValidationError as exc:
            errors = [str(error) for error in exc.errors] or [str(exc)]
            raise Problem(
                409,
                f"flow {name!r} version {definition.version} cannot run here: {errors[0]}",
                "flow_invalid",
                errors=errors,
            ) from None
        return flow, definition.version

    def start(
        self,
        *,
        flow: str,
        version: int | None = None,
        tokens: list[Any] | None = None,
        key: str | None = None,
        on_conflict: str | None = None,
        idempotency: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start a run of the stored flow ``flow`` over ``tokens`` (default: one ``{}``).

        The run goes as far as it can in this process, and stops where it
        waits. The same ``idempotency`` (user, key) gives the same run, which
        is not started again.

        :raises Problem: 404 for an unknown flow, 409 when an active run holds
            the key, 422 for tokens the flow cannot take.
        """
        from workflow.cli._limits import MAX_DEPTH, LimitError, check, format_path
        from workflow.storage import PersistentWorkflowEngine

        compiled, number = self._flow(flow, version)
        records = [{}] if tokens is None else tokens
        for index, record in enumerate(records):
            try:  # a flow keeps each record under _input: one level is taken
                check(record, max_depth=MAX_DEPTH - 1)
            except LimitError as exc:
                where = f"token {index}: {format_path(exc.path)}"
                raise Problem(422, f"{where}: {exc.problem}", "invalid") from None
        try:
            contexts = [compiled.new_context(record) for record in records]
            if key is None and "key" in compiled.body:
                key = compiled.run_key(records[0] if len(records) == 1 else None)
        except (WorkflowValueError, ValueError, TypeError) as exc:
            raise Problem(422, f"the tokens do not fit flow {flow!r}: {exc}", "invalid") from None
        uuid = None
        if idempotency is not None:
            uuid = str(_uuid.uuid5(_IDEMPOTENT, "\n".join(idempotency)))
        meta = {"target": None, "imports": self.imports, "checkpoint": "token"}
        try:
            engine = PersistentWorkflowEngine.with_name(
                compiled.name,
                store=self.store,
                definition=compiled.callbacks(),
                extra_data={META_KEY: meta},
                definition_name=flow,
                definition_version=number,
                uuid=uuid,
                key=key,
                on_conflict=on_conflict or compiled.on_conflict,  # type: ignore[arg-type]
            )
        except RunKeyConflictError as exc:
            raise Problem(
                409,
                f"run {exc.workflow} ({exc.status}) holds the key {exc.key!r}: nothing started",
                "key_conflict",
                holder={"uuid": exc.workflow, "status": exc.status},
            ) from None
        except WorkflowValueError as exc:
            raise Problem(422, str(exc), "invalid") from None
        if engine.created:
            log.info("starting run %s of flow %s (%d tokens)", engine.uuid, flow, len(contexts))
            with contextlib.suppress(WorkflowError):  # a failed token is stored ERROR
                engine.process(contexts, stop_on_error=False, stop_on_halt=False)
        assert engine.uuid is not None
        return {**self.state(engine.uuid), "created": engine.created}

    def resume(self, uuid: str) -> dict[str, Any]:
        """Resume a halted or failed run here, with the definition it started with.

        :raises Problem: 404 no such run, 409 cancelled, completed, locked by
            another process, or not continuable here.
        """
        from workflow.storage import PersistentWorkflowEngine

        _known(uuid, "run")
        try:
            engine = PersistentWorkflowEngine.from_uuid(uuid, store=self.store)
        except WorkflowNotFoundError:
            raise Problem(404, f"no run has the uuid {uuid!r}", "not_found") from None
        if engine.status in (WorkflowStatus.CANCELLED, WorkflowStatus.COMPLETED):
            how = engine.status.name.lower()
            raise Problem(409, f"run {uuid} is {how}: nothing to resume", how)
        try:
            engine.callbacks.replace(self.definitions(engine))
        except Exception as exc:  # the definition cannot be built here: say why
            detail = f"run {uuid} cannot be resumed here: {exc}"
            raise Problem(409, detail, "no_definition") from None
        try:
            engine.resume(stop_on_error=False, stop_on_halt=False)
        except WorkflowLockedError as exc:
            raise Problem(409, str(exc), "locked") from None
        except StoredRunError as exc:
            raise Problem(409, str(exc), "not_resumable") from None
        except WorkflowError:
            pass  # a token failed again: it is stored ERROR
        return self.state(uuid)

    def cancel(self, uuid: str, *, reason: str, by: str) -> dict[str, Any]:
        """Cancel a run for good.

        :raises Problem: 404 no such run, 409 completed or locked by a live process.
        """
        from ._models import storable

        _known(uuid, "run")
        try:
            storable(reason)
        except ValueError as exc:
            raise Problem(422, f"the reason: {exc}", "invalid") from None
        try:
            cancelled = self.store.cancel(uuid, reason, by=by)
        except WorkflowNotFoundError:
            raise Problem(404, f"no run has the uuid {uuid!r}", "not_found") from None
        except WorkflowLockedError as exc:
            raise Problem(409, str(exc), "locked") from None
        except StoredRunError as exc:
            raise Problem(409, str(exc), "completed") from None
        return {**self.state(uuid), "cancelled": cancelled}

    # -- interactions ---------------------------------------------------------------

    def waiting(
        self, *, user: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Return a page of the open interactions, oldest first, and the next offset."""
        from workflow.cli._waits import run_rows, wait_info
        from workflow.runtime import Waits

        found = Waits(self.store).waiting(user=user, limit=limit + 1, offset=offset)
        more = len(found) > limit
        found = found[:limit]
        runs = run_rows(self.store, {wait.workflow_uuid for wait in found})
        infos = []
        for wait in found:
            info = wait_info(wait, runs)
            info["schema"] = wait.spec.get("schema")
            infos.append(info)
        return plain(infos), (offset + limit if more else None)

    def interaction(self, ident: str) -> dict[str, Any]:
        """Return one interaction, open or decided.

        :raises Problem: 404 when there is none.
        """
        from workflow.cli._waits import run_rows, wait_info
        from workflow.runtime import Waits

        _known(ident, "interaction")
        try:
            wait = Waits(self.store).get(ident)
        except WorkflowBaseError:
            raise Problem(404, f"no interaction has the id {ident!r}", "not_found") from None
        if wait.kind != "ask":
            raise Problem(404, f"no interaction has the id {ident!r}", "not_found")
        info = wait_info(wait, run_rows(self.store, {wait.workflow_uuid}))
        info["schema"] = wait.spec.get("schema")
        info["decided_by"] = wait.decided_by()
        shown: dict[str, Any] = plain(info)
        return shown

    def answer(
        self,
        ident: str,
        *,
        by: str,
        decision: str,
        data: Any = None,
        key: str | None = None,
        go_on: bool = True,
    ) -> dict[str, Any]:
        """Record ``by``'s answer; when it decides, continue the run in this process.

        :param go_on: continue a decided run here (else a ``workflow worker`` does).
        :raises Problem: with the status of :data:`ANSWER_STATUS` for the reason.
        """
        from workflow.runtime import Waits

        _known(ident, "interaction")
        waits = Waits(self.store)
        return self._settle(
            waits,
            ident,
            lambda: waits.answer(ident, by=by, decision=decision, data=data, key=key),
            go_on,
        )

    async def answer_async(
        self,
        ident: str,
        *,
        by: str,
        decision: str,
        data: Any = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`answer` from the event loop, continuing a decided run here.

        With an :attr:`answers` pool (PostgreSQL), an answer that decides
        nothing is judged and recorded on the loop, without a thread; a run
        that goes on, an expired interaction and the locked way (a wait that
        changed, a deadline that passed) go to a thread.
        """
        from starlette.concurrency import run_in_threadpool

        from workflow.runtime import Waits
        from workflow.runtime.waits import _refused

        pool = self.answers
        if pool is None:
            return await run_in_threadpool(
                self.answer, ident, by=by, decision=decision, data=data, key=key
            )
        _known(ident, "interaction")
        waits = Waits(self.store)
        try:
            by, data, key = waits._checked(ident, by, decision, data, key)
            found = await pool.answer(ident, by, decision, data, key)
            done = None if found is None else _refused(ident, found)
        except AnswerRefusedError as exc:
            if exc.reason == "expired":  # the run it timed out may go on: in a thread
                await run_in_threadpool(self._refusal, waits, ident, exc, True)
            self._refusal(waits, ident, exc, True)
        if done is None:  # the wait changed, or its deadline passed: the locked way

            def locked() -> AnswerOutcome:
                return _refused(ident, waits._answer_locked(ident, by, decision, data, key))

            return await run_in_threadpool(self._settle, waits, ident, locked, True)
        if done.wait.phase == "decided":  # the run goes on, here
            return await run_in_threadpool(self._answered, ident, done, True)
        return self._answered(ident, done, False)

    def _settle(
        self, waits: Any, ident: str, answer: Callable[[], AnswerOutcome], go_on: bool
    ) -> dict[str, Any]:
        """Report what ``answer()`` did, or raise the :class:`Problem` of its refusal."""
        try:
            done = answer()
        except AnswerRefusedError as exc:
            self._refusal(waits, ident, exc, go_on)
        return self._answered(ident, done, go_on)

    def _refusal(self, waits: Any, ident: str, exc: AnswerRefusedError, go_on: bool) -> NoReturn:
        """Raise the :class:`Problem` of a refused answer (continuing a run it timed out)."""
        extra: dict[str, Any] = {"interaction": ident}
        if exc.reason in ("already_decided", "expired"):
            extra.update(decision=exc.decision, by=list(exc.by))
        if exc.reason == "expired" and go_on:
            wait = waits.get(ident)
            if wait.phase == "decided":  # this answer's transaction saw the deadline pass
                self._go_on(wait.workflow_uuid)
        status = ANSWER_STATUS.get(exc.reason, 409)
        raise Problem(status, exc.message, exc.reason, **extra) from None

    def _answered(self, ident: str, done: AnswerOutcome, go_on: bool) -> dict[str, Any]:
        """The API's report of a recorded answer (continuing the run it decided, with ``go_on``)."""
        wait = done.wait
        result = done.as_dict(ident)
        result["decided"] = wait.phase != "waiting"  # by this answer or an earlier one
        result["decided_by"] = wait.decided_by()
        run_status = done.run_status  # as the answer's transaction saw it
        if wait.phase == "decided" and go_on:
            result["continued"] = self._go_on(wait.workflow_uuid)
            run_status = self.store.workflow(wait.workflow_uuid)["status"]
        result["run_status"] = None if run_status is None else WorkflowStatus(run_status).name
        shown: dict[str, Any] = plain(result)
        return shown

    def _go_on(self, run: str) -> bool:
        from workflow.runtime import Worker

        went_on = Worker(self.store, self.definitions).continue_run(run)
        if not went_on:
            log.info("run %s was decided but not continued here: a worker continues it", run)
        return went_on
