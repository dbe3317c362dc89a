"""Profiling and debugging: run tasks under :mod:`cProfile`, time them, reload and call again.

:func:`PROFILE`, :func:`DEBUG_CYCLE`, :func:`CALLFUNC`, :func:`debug_simple`
and :func:`universal_repeater` are offered by :mod:`workflow.patterns.utils`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine import GenericWorkflowEngine

if TYPE_CHECKING:
    import cProfile
from ..errors import WorkflowDefinitionError, WorkflowError, WorkflowTransition
from ._nice_docs import Task, with_nice_docs
from ._subflows import _child_engine, _missing_key

R = TypeVar("R")

# The logger of workflow.patterns.utils, where this code was written first.
log = logging.getLogger("workflow.patterns.utils")


# -- profiling and debugging ------------------------------------------------------


@with_nice_docs
def PROFILE(
    call: Any,
    output: str | None = None,
    stats: Sequence[str] = ("time", "calls", "cumulative", "pcalls"),
    *,
    comment: str | None = None,
) -> Task:
    """Build a task that runs a task, or a sub-workflow, under :mod:`cProfile`.

    :param call: a task, or a list or tuple of tasks run as the definition
        of a child engine with the token as its only token.
    :param output: a file name: the raw profile goes there, and one report
        per sort key to ``<output>.stats-<key>``. Without it the reports are
        printed on standard output.
    :param stats: the :mod:`pstats` sort keys, one report each.

    The profile is written even when the call fails or halts.

    Example::

        [PROFILE([parse, enrich], output="/tmp/enrich.prof"), save]
    """
    keys = tuple(stats)

    def _profile(obj: Any, eng: GenericWorkflowEngine) -> Any:
        run: Callable[[], Any]
        if isinstance(call, (list, tuple)):
            child = _child_engine(eng, call)
            run = functools.partial(child.process, [obj])
        else:
            run = functools.partial(call, obj, eng)
        import cProfile  # only when a profile is taken: a slow import

        profiler = cProfile.Profile()
        try:
            return profiler.runcall(run)
        finally:
            _write_profile(profiler, output, keys)

    return _profile


def _write_profile(profiler: cProfile.Profile, output: str | None, keys: Sequence[str]) -> None:
    import pstats

    if output is None:
        for key in keys:
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(key).print_stats()
        return
    profiler.dump_stats(output)
    for key in keys:
        with open(f"{output}.stats-{key}", "w", encoding="utf-8") as report:
            pstats.Stats(output, stream=report).sort_stats(key).print_stats()


@with_nice_docs
def DEBUG_CYCLE(
    stmt: str | Task,
    setup: str | Task | None = None,
    onerror: Task | None = None,
    debug_stopper: Task | None = None,
    *,
    comment: str | None = None,
    **kwargs: Any,
) -> Task:
    """Build a task that runs a statement again and again, for live debugging.

    Each round times ``stmt`` with :mod:`timeit` (logged at DEBUG on the
    engine's logger) and then asks ``debug_stopper(obj, eng)``: a true answer
    ends the task, a false one runs another round, so that the code can be
    edited (and reloaded by ``stmt``) meanwhile. Without a stopper there is
    one round.

    :param stmt: Python source run with the names ``obj``, ``eng`` and the
        ``kwargs`` in scope, or a callable ``stmt(obj, eng)``.
    :param setup: the same, run once before ``stmt``.
    :param onerror: ``onerror(obj, eng)`` is called when a round fails.
        Without it a failed round is logged and, when there is no stopper,
        re-raised.
    :param debug_stopper: ``debug_stopper(obj, eng)`` returns whether to stop.

    Example::

        DEBUG_CYCLE("importlib.reload(parsers); parsers.parse(obj)",
                    debug_stopper=lambda obj, eng: obj.get("parsed"),
                    importlib=importlib, parsers=parsers)
    """

    def _debug_cycle(obj: Any, eng: GenericWorkflowEngine) -> None:
        namespace = {"obj": obj, "eng": eng, **kwargs}
        import timeit

        timer = timeit.Timer(
            _timeit_code(stmt, obj, eng), _timeit_code(setup or "pass", obj, eng), globals=namespace
        )
        rounds = 0
        while True:
            rounds += 1
            try:
                seconds = timer.timeit(number=1)
            except WorkflowTransition:
                raise
            except Exception:
                eng.log.warning("DEBUG_CYCLE: round %d failed", rounds, exc_info=True)
                if onerror is not None:
                    onerror(obj, eng)
                elif debug_stopper is None:
                    raise
            else:
                eng.log.debug("DEBUG_CYCLE: round %d took %.6f s", rounds, seconds)
            if debug_stopper is None or debug_stopper(obj, eng):
                return

    return _debug_cycle


def _timeit_code(code: str | Task, obj: Any, eng: Any) -> str | Callable[[], object]:
    if isinstance(code, str):
        return code
    return functools.partial(code, obj, eng)


@with_nice_docs
def CALLFUNC(
    func: Callable[..., Any] | str,
    outkey: Any = None,
    debug: bool = False,
    stopper: Task | None = None,
    args: Iterable[Any] = (),
    oeargs: Iterable[str] = (),
    ekeys: Mapping[str, str] | None = None,
    okeys: Mapping[str, str] | None = None,
    *,
    comment: str | None = None,
    **kwargs: Any,
) -> Task:
    """Build a task calling any function with arguments taken from the token and the engine.

    :param func: the function, or its dotted path (``"package.module.name"``,
        imported when the task runs).
    :param outkey: when given, the result is stored in ``obj[outkey]``; the
        task returns it in any case.
    :param debug: on an error, reload the function's module and call again:
        until ``stopper(obj, eng)`` is true after a call (see
        :func:`universal_repeater`), or, without a stopper, interactively
        (see :func:`debug_simple`).
    :param args: positional arguments, first.
    :param oeargs: positional arguments next, each named ``"O<key>"``
        (``obj[key]``) or ``"E<key>"`` (``eng.extra_data[key]``).
    :param ekeys: ``{key: name}``: pass ``eng.extra_data[key]`` as keyword ``name``.
    :param okeys: ``{key: name}``: pass ``obj[key]`` as keyword ``name``.
    :param kwargs: further keyword arguments.
    :raises WorkflowError: when the task runs and a key is missing.

    .. versionchanged:: 3.0
       Every call gets fresh arguments (2.x accumulated them from call to
       call), and a missing key raises instead of exiting the interpreter.

    Example::

        CALLFUNC("mylib.text.clean", outkey="abstract", oeargs=["Oabstract"],
                 ekeys={"language": "lang"})
    """
    if not (callable(func) or (isinstance(func, str) and "." in func)):
        raise WorkflowDefinitionError(
            f"CALLFUNC: func must be a callable or a dotted path such as 'pkg.mod.name'; "
            f"got {func!r}"
        )
    fixed_args = tuple(args)
    pulled = tuple(oeargs)
    for name in pulled:
        if not (isinstance(name, str) and name[:1] in ("O", "E") and len(name) > 1):
            raise WorkflowDefinitionError(
                f"CALLFUNC: each oeargs item is 'O<key>' (from the token) or 'E<key>' "
                f"(from the engine's extra_data); got {name!r}"
            )
    from_engine = dict(ekeys or {})
    from_token = dict(okeys or {})
    fixed_kwargs = dict(kwargs)

    def _callfunc(obj: Any, eng: GenericWorkflowEngine) -> Any:
        call_args = [*fixed_args, *(_pull(obj, eng, name) for name in pulled)]
        call_kwargs = dict(fixed_kwargs)
        for key, name in from_engine.items():
            call_kwargs[name] = _pull(obj, eng, "E" + key)
        for key, name in from_token.items():
            call_kwargs[name] = _pull(obj, eng, "O" + key)
        function = _resolve(func)
        if not debug:
            result = function(*call_args, **call_kwargs)
        elif stopper is None:
            result = debug_simple(function, *call_args, **call_kwargs)
        else:
            result = universal_repeater(
                function.__module__,
                function.__name__,
                functools.partial(stopper, obj, eng),
                *call_args,
                **call_kwargs,
            )
        if outkey is not None:
            obj[outkey] = result
        return result

    return _callfunc


def _pull(obj: Any, eng: GenericWorkflowEngine, name: str) -> Any:
    key = name[1:]
    if name[0] == "E":
        if key not in eng.extra_data:
            raise _missing_key("CALLFUNC", key, "the engine's extra_data", eng.extra_data)
        return eng.extra_data[key]
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError):
        keys = obj.keys() if isinstance(obj, Mapping) else ()
        raise _missing_key("CALLFUNC", key, "the token", keys) from None


def _resolve(func: Callable[..., Any] | str) -> Callable[..., Any]:
    if callable(func):
        return func
    module_name, _, name = func.rpartition(".")
    try:
        function: Callable[..., Any] = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise WorkflowError(
            f"CALLFUNC: cannot import {func!r}: {error}", task="CALLFUNC"
        ) from error
    return function


def debug_simple(func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Call ``func(*args, **kwargs)``; on an error, reload its module and call again.

    Meant for a developer at a terminal: after logging the error it waits for
    Enter, so that the code can be fixed, then reloads ``func``'s module with
    :func:`importlib.reload` and calls the new ``func``. Without an
    interactive standard input the error is raised. Returns what ``func``
    returns. Example::

        debug_simple(parse_record, raw_data)
    """
    while True:
        try:
            return func(*args, **kwargs)
        except WorkflowTransition:
            raise
        except Exception:
            log.exception("debug_simple: %s failed", getattr(func, "__name__", func))
            try:
                input(f"Fix {func.__module__}, then press Enter to reload it and call again: ")
            except (EOFError, OSError):
                log.debug("no interactive input; giving up")
            else:
                func = _reload(func)
                continue
            raise


def _reload(func: Callable[..., R]) -> Callable[..., R]:
    module = sys.modules.get(func.__module__)
    if module is None:
        return func
    module = importlib.reload(module)
    reloaded: Callable[..., R] = getattr(module, func.__name__, func)
    return reloaded


def universal_repeater(
    mod: ModuleType | str,
    call: str | Callable[..., Any],
    stopper: Callable[[], Any] | None = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Call a module's function, reloading the module and calling again until told to stop.

    :param mod: the module, or its dotted name.
    :param call: the function's name in ``mod``, or the function itself.
    :param stopper: called with no argument after each call; a true answer
        stops: the last result is returned, or the last error raised. Each
        false answer reloads ``mod`` (:func:`importlib.reload`) and calls the
        function anew. Without a stopper the function is called once.
    :param args: positional arguments of the function.
    :param kwargs: keyword arguments of the function.

    Example::

        universal_repeater("mylib.harvest", "fetch", lambda: input("done? ") == "y", url)
    """
    module = importlib.import_module(mod) if isinstance(mod, str) else mod
    name = call if isinstance(call, str) else call.__name__
    while True:
        try:
            result = getattr(module, name)(*args, **kwargs)
        except WorkflowTransition:
            raise
        except Exception:
            if stopper is None or stopper():
                raise
            log.warning("universal_repeater: %s.%s failed", module.__name__, name, exc_info=True)
        else:
            if stopper is None or stopper():
                return result
        module = importlib.reload(module)
