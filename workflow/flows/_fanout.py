"""Parallel steps: the branches of ``parallel`` and the items of a parallel ``for_each``.

Each branch runs on a copy of the token's context, and the join copies the
results of the branch's steps back by step name, so that branches never
see (nor overwrite) each other's results; a parallel ``for_each`` collects
each item's results in the order of its items, as the sequential loop does.

A step compiles to two tasks, a *fork* and a *join*:

- in-process, the fork runs the branches in threads of the process (at
  most ``max_concurrency`` at once) and merges their results itself; the
  join has nothing left to do. A branch that waits cannot be kept by a
  thread: it fails the step, saying so;
- on a work queue, the engine offers ``fan_out`` and ``branch_results``
  (:class:`~workflow.storage.queued.QueuedTokenEngine`): the fork stores
  each branch as a token of its own, a work item any worker claims, and
  halts its token until the last branch finished; the join then reads the
  branches' results. A branch may wait there like any token.

Either way a branch that fails fails the step, naming the branch (or item).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import FlowRuntimeError, HaltProcessing
from ..patterns._subflows import _child_engine
from ..patterns._threads import _add_note
from ._refs import Lookup, compile_value
from ._resume import LOOPS, context_of, scope_at
from ._steps import Place, _Step

__all__ = ["IN_PROCESS_THREADS", "Fork", "ForkEach", "Join"]

#: Where a forked token keeps the number of the fork it waits for, by step name.
FORKS = "_forks"
#: How many forks a token made so far (in its ``extra_data``): numbers its forks.
FORK_COUNT = "_fork_count"
#: Threads an in-process fork runs at once when the step sets no ``max_concurrency``.
IN_PROCESS_THREADS = 16


class _BranchFailed(Exception):
    """A branch that failed or waited in a thread, with what to say about it."""

    def __init__(self, index: int, message: str, cause: BaseException | None) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
        self.cause = cause


class Fork(_Step):
    """The fork of a ``parallel`` step: its branches, at once (see the module docstring)."""

    traced = False  # the branches' tasks are traced; the fork is bookkeeping
    #: What one branch, and several, are called in messages.
    noun, plural = "branch", "branches"
    #: Threads in-process when the step sets no ``max_concurrency`` (``None``: one a branch).
    default_threads: int | None = None

    def __init__(self, place: Place, branches: list[list[Any]], names: list[list[str]]) -> None:
        super().__init__(place)
        self.branches = branches
        self.names = names
        self.max_concurrency: int | None = None

    def callbacks_of(self, index: int) -> list[Any]:
        """The callback list branch ``index`` runs (what a branch token of a queue runs)."""
        return self.branches[index]

    def contexts(self, lookup: Lookup) -> list[dict[str, Any]]:
        """The context each branch starts from: a copy of the token's."""
        return [copy.deepcopy(lookup.root) for _ in self.branches]

    def merge(self, lookup: Lookup, contexts: Sequence[dict[str, Any]]) -> None:
        """Copy each branch's results (its steps') into the token's scope."""
        scope = lookup.scope
        for names, context in zip(self.names, contexts, strict=True):
            inner = scope_at(context, self.place.scope)
            for name in names:
                if name in inner:
                    scope[name] = inner[name]
        scope[self.name] = {"branches": len(contexts)}

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        contexts = self.contexts(lookup)
        if not contexts:
            self.merge(lookup, [])
            return
        fan_out: Callable[..., Any] | None = getattr(eng, "fan_out", None)
        if fan_out is not None:
            number = obj.extra_data.get(FORK_COUNT, 0) + 1
            obj.extra_data[FORK_COUNT] = number
            lookup.scope.setdefault(FORKS, {})[self.name] = number
            message = f"step {self.name!r} waits for its {len(contexts)} {self.plural}"
            fan_out(obj, number, contexts, limit=self.max_concurrency, message=message)
            return  # pragma: no cover - fan_out halts the token
        self.merge(lookup, self._in_threads(obj, eng, contexts))

    def _in_threads(self, obj: Any, eng: Any, contexts: list[dict[str, Any]]) -> list[Any]:
        """Run the branches in at most ``max_concurrency`` threads; raise the first failure."""
        errors: list[BaseException | None] = [None] * len(contexts)
        count = min(len(contexts), self.max_concurrency or self.default_threads or len(contexts))
        pending = iter(range(len(contexts)))
        taking = threading.Lock()

        def taken() -> Iterator[int]:  # the branches not started yet, one at a time
            while True:
                with taking:
                    index = next(pending, None)
                if index is None:
                    return
                yield index

        def work(indexes: Iterable[int]) -> None:
            for index in indexes:
                try:
                    self._run_branch(index, obj, eng, contexts[index])
                except BaseException as error:  # handed to the forking thread, which raises
                    errors[index] = error

        # A thread per branch runs its own; fewer threads take the next branch in turn.
        own = count == len(contexts)
        threads = [
            threading.Thread(
                target=work,
                args=([number] if own else taken(),),
                name=f"workflow-{self.name}-{number}",
                daemon=True,
            )
            for number in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failed = [error for error in errors if error is not None]
        if failed:
            first = failed[0]
            if not isinstance(first, _BranchFailed):
                raise first
            error = self.fail(first.message, context_of(obj))
            for other in failed[1:]:
                _add_note(error, str(other))
            raise error from first.cause
        return contexts

    def _run_branch(self, index: int, obj: Any, eng: Any, context: dict[str, Any]) -> None:
        child = _child_engine(eng, self.callbacks_of(index))
        token: Any = context
        if type(obj) is not dict:
            token = copy.copy(obj)
            token.data = context
            token.extra_data = copy.deepcopy(getattr(obj, "extra_data", {}))
        try:
            child.process([token])
        except HaltProcessing as halt:
            raise _BranchFailed(
                index,
                f"{self.noun} {index} waits ({halt}); a {self.noun} can wait only in a run "
                "on a work queue (`workflow run --queue`), whose workers keep each branch "
                "as a token of its own",
                None,
            ) from None
        except Exception as exc:
            found: BaseException | None = exc
            while found is not None and not isinstance(found, FlowRuntimeError):
                found = found.__cause__
            failure = found if found is not None else exc
            said = getattr(failure, "message", None) or f"{type(failure).__name__}: {failure}"
            said = said.removeprefix(f"flow {self.place.flow!r}, ")
            cause = failure.__cause__ if failure.__cause__ is not None else failure
            raise _BranchFailed(index, f"{self.noun} {index} failed: {said}", cause) from None

    def join(self, obj: Any, eng: Any) -> None:
        """Merge the results of the fork this token waited for, if it waited (on a queue)."""
        lookup = self.lookup(obj)
        forks = lookup.scope.get(FORKS)
        if not forks or self.name not in forks:
            return  # in-process: the fork merged already
        number = forks.pop(self.name)
        if not forks:
            del lookup.scope[FORKS]
        results = eng.branch_results(obj, number)  # storage.fanout.BranchResult each
        failed = [result for result in results if not result.completed]
        if failed:
            first = failed[0]
            error = self.fail(f"{self.noun} {first.index} failed: {first.error}", lookup.root)
            for other in failed[1:]:
                _add_note(error, f"{self.noun} {other.index} failed too: {other.error}")
            raise error
        self.merge(lookup, [result.context for result in results])


class ForkEach(Fork):
    """The fork of a ``for_each`` with ``"parallel": true``: one branch per item."""

    noun, plural = "item", "items"
    default_threads = IN_PROCESS_THREADS

    def __init__(
        self,
        place: Place,
        source: Any,
        var: str,
        body: list[Any],
        names: list[str],
        max_concurrency: int | None,
    ) -> None:
        super().__init__(place, [body], [names])
        self.source = compile_value(source)
        self.var = var
        self.max_concurrency = max_concurrency

    def callbacks_of(self, index: int) -> list[Any]:
        return self.branches[0]

    def contexts(self, lookup: Lookup) -> list[dict[str, Any]]:
        """One copy of the token's context per item, the item bound to the loop's variable."""
        contexts = []
        for index, item in enumerate(self.items(self.source, lookup)):
            context = copy.deepcopy(lookup.root)
            scope = scope_at(context, self.place.scope)
            scope[self.var] = item
            scope.setdefault(LOOPS, {})[self.name] = {"index": index}
            contexts.append(context)
        return contexts

    def merge(self, lookup: Lookup, contexts: Sequence[dict[str, Any]]) -> None:
        """The step's result: each item's results, in the items' order."""
        results = []
        for context in contexts:
            inner = scope_at(context, self.place.scope)
            results.append({name: inner[name] for name in self.names[0] if name in inner})
        lookup.scope[self.name] = results


class Join(_Step):
    """The join of a parallel step: merge what its branches left on a work queue."""

    traced = False  # bookkeeping of the flow, not a step of its own

    def __init__(self, fork: Fork) -> None:
        super().__init__(fork.place)
        self.fork = fork

    def __call__(self, obj: Any, eng: Any) -> None:
        self.fork.join(obj, eng)
