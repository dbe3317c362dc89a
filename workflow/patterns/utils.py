"""Task factories and debugging helpers, at their Invenio ``workflow`` 2.x path.

Each factory builds a task, a callable ``task(obj, eng)`` to put in a
workflow definition; :func:`with_nice_docs` gives every one of them an
optional ``comment=`` keyword. Only the names of Invenio ``workflow`` 2.x
live here; they differ from 2.x where 2.x was broken, as each docstring says.
"""

from __future__ import annotations

import cProfile
import functools
import importlib
import inspect
import logging
import pstats
import sys
import timeit
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

from ..engine import GenericWorkflowEngine
from ..errors import WorkflowDefinitionError, WorkflowError, WorkflowTransition

__all__ = [
    "CALLFUNC",
    "DEBUG_CYCLE",
    "EMPTY_CALL",
    "ENG_GET",
    "ENG_SET",
    "ERROR",
    "OBJ_GET",
    "OBJ_SET",
    "PROFILE",
    "RUN_WF",
    "TRY",
    "debug_simple",
    "universal_repeater",
    "with_nice_docs",
]

P = ParamSpec("P")
R = TypeVar("R")

#: A task: any callable ``task(obj, eng)``.
Task = Callable[[Any, Any], Any]

log = logging.getLogger(__name__)


# -- with_nice_docs -------------------------------------------------------------


def with_nice_docs(func: Callable[P, R]) -> Callable[P, R]:
    """Give a pattern factory a ``comment=`` keyword and document what it builds.

    The decorated factory takes an optional ``comment`` keyword argument. The
    task it returns (or, when it returns a list, the list's first item) gets
    that comment as its ``__doc__``; without a comment it gets a summary of the
    call, e.g. ``IF: args(<function is_big at 0x...>, [...]); kwargs().``
    (lists and tuples among the arguments show as ``[...]`` and ``(...)``).
    invenio-workflows shows this text in a token's task history.

    Every factory of :mod:`workflow.patterns` except :func:`EMPTY_CALL` is
    decorated with it. For the type checker, declare ``comment`` as a
    keyword-only parameter of the factory; the decorator consumes it, so the
    factory itself never receives it::

        @with_nice_docs
        def ADD(number, *, comment=None):
            def _add(obj, eng):
                obj.data += number

            return _add

        ADD(2, comment="Add two to the token").__doc__  # 'Add two to the token'
    """

    @functools.wraps(func)
    def factory(*args: P.args, **kwargs: P.kwargs) -> R:
        comment = kwargs.pop("comment", None)
        built = func(*args, **kwargs)
        _set_doc(built, str(comment) if comment else _summary(func, args, kwargs))
        return built

    return factory


def _summary(func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    shown_args = ", ".join(_show(arg) for arg in args)
    shown_kwargs = ", ".join(f"{key}={_show(value)}" for key, value in kwargs.items())
    name = getattr(func, "__name__", repr(func))
    return f"{name}: args({shown_args}); kwargs({shown_kwargs})."


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[...]" if value else "[]"
    if isinstance(value, tuple):
        return "(...)" if value else "()"
    return repr(value)


def _set_doc(built: object, doc: str) -> None:
    target = built
    if isinstance(built, Sequence) and not isinstance(built, str):
        if not built:
            return
        target = built[0]
    try:
        target.__doc__ = doc
    except (AttributeError, TypeError):
        log.debug("cannot set the docstring of %r", target)


# -- engines for sub-workflows ----------------------------------------------------


def _child_engine(eng: GenericWorkflowEngine, definition: Any) -> GenericWorkflowEngine:
    """Return a new engine running ``definition``, of ``eng``'s class when possible.

    A class whose constructor needs arguments (a database engine, say) cannot
    be copied blindly; the child is then a plain :class:`GenericWorkflowEngine`.
    """
    cls: type[GenericWorkflowEngine] = type(eng)
    try:
        inspect.signature(cls).bind()
    except (TypeError, ValueError):
        cls = GenericWorkflowEngine
    child = cls()
    child.callbacks.replace(definition)
    return child


def _missing_key(pattern: str, key: Any, where: str, keys: Iterable[Any]) -> WorkflowError:
    known = ", ".join(repr(known) for known in keys) or "none"
    return WorkflowError(f"{pattern}: no key {key!r} in {where} (its keys: {known})", task=pattern)


# -- engine and token data --------------------------------------------------------


def EMPTY_CALL(obj: Any, eng: Any) -> None:
    """Do nothing; a task to fill a place in a definition.

    Use it as it is (it is a task, not a factory)::

        IF_ELSE(is_ready, [publish], [EMPTY_CALL])
    """


@with_nice_docs
def ENG_GET(something: str, *, comment: str | None = None) -> Task:
    """Build a task returning ``eng.extra_data[something]``, or ``None`` when missing.

    The result is useful where a value is expected, e.g. in :func:`CMP`::

        IF(CMP(ENG_GET("retries"), 3, "<"), [try_again])
    """

    def _eng_get(obj: Any, eng: GenericWorkflowEngine) -> Any:
        return eng.extra_data.get(something)

    return _eng_get


@with_nice_docs
def ENG_SET(key: str, value: Any, *, comment: str | None = None) -> Task:
    """Build a task setting ``eng.extra_data[key] = value``.

    Example::

        [ENG_SET("mode", "strict"), validate]
    """

    def _eng_set(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.extra_data[key] = value

    return _eng_set


_OBJ_GET_CONDITIONS = ("all", "any", "many")


@with_nice_docs
def OBJ_GET(something: Any, cond: str = "all", *, comment: str | None = None) -> Task:
    """Build a task reading one or several keys of the token, a dict-like object.

    :param something: one key, or a list or tuple of keys.
    :param cond: with several keys, what the task returns: ``'all'`` a dict
        of them when every one has a true value, else ``False``; ``'any'``
        the first true value, else ``False``; ``'many'`` a dict of the keys
        that have a true value (maybe empty).

    With one key the task returns ``obj[something]``, or ``False`` when the
    token has no such key. Example::

        IF(OBJ_GET(["title", "author"]), [index_record])
    """
    if cond not in _OBJ_GET_CONDITIONS:
        raise WorkflowDefinitionError(
            f"OBJ_GET: cond must be one of {', '.join(_OBJ_GET_CONDITIONS)}; got {cond!r}"
        )
    several = isinstance(something, (list, tuple))

    def _obj_get(obj: Any, eng: GenericWorkflowEngine) -> Any:
        if not several:
            return _item(obj, something)
        values = {key: _item(obj, key) for key in something}
        if cond == "any":
            return next((value for value in values.values() if value), False)
        if cond == "many":
            return {key: value for key, value in values.items() if value}
        return values if all(values.values()) else False

    return _obj_get


def _item(obj: Any, key: Any) -> Any:
    try:
        return obj[key]
    except (KeyError, IndexError):
        return False


@with_nice_docs
def OBJ_SET(key: Any, value: Any, *, comment: str | None = None) -> Task:
    """Build a task setting ``obj[key] = value`` on the token.

    Example::

        [OBJ_SET("status", "checked"), save]
    """

    def _obj_set(obj: Any, eng: GenericWorkflowEngine) -> None:
        obj[key] = value

    return _obj_set


# -- errors and retries -------------------------------------------------------------


@with_nice_docs
def ERROR(msg: str = "Error in the workflow", *, comment: str | None = None) -> Task:
    """Build a task that fails with :class:`~workflow.errors.WorkflowError`.

    The message names the file and line where the definition calls
    ``ERROR``, e.g. ``in /app/flows.py:12 : no handler for this record``.

    .. versionchanged:: 3.0
       Raises :class:`~workflow.errors.WorkflowError` (an ``Exception``, as
       before), so that ``process(stop_on_error=False)`` moves on to the next
       token; 2.x named its own module instead of the caller's file.

    Example::

        IF_ELSE(is_known_type, [convert], [ERROR("unknown record type")])
    """
    where = _caller_location()

    def _error(obj: Any, eng: GenericWorkflowEngine) -> None:
        raise WorkflowError(
            f"in {where} : {msg}",
            id_object=eng.state.token_pos,
            callback_pos=list(eng.state.callback_pos),
            task="ERROR",
        )

    return _error


def _caller_location() -> str:
    """Return ``file:line`` of the first frame outside this module."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is None:  # pragma: no cover - there is always a caller
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@with_nice_docs
def TRY(
    onecall: Task,
    retry: int = 1,
    onfailure: Any = Exception,
    verbose: bool = True,
    *,
    comment: str | None = None,
) -> Task:
    """Build a task that runs ``onecall`` and tries again when it fails.

    ``onecall`` runs at most ``1 + retry`` times. Transitions
    (``eng.halt()``, ``eng.jump_call()``, ...) pass through at once, and only
    :class:`Exception` counts as a failure (``KeyboardInterrupt`` and
    ``SystemExit`` are never caught). After the last failed attempt:

    * an exception class (the default, ``Exception``) re-raises the error;
    * an exception instance is raised, chained to the error;
    * ``None`` ignores the error;
    * any other callable is called as ``onfailure(obj, eng)``.

    :param verbose: log each failure with its traceback at WARNING level on
        the engine's logger (otherwise at DEBUG).

    The task returns what ``onecall`` returned, or ``None`` after an ignored
    failure.

    .. versionchanged:: 3.0
       The default re-raises the error; 2.x silently swallowed it.

    Example::

        [TRY(fetch_metadata, retry=3, onfailure=WorkflowError("server down")), store]
    """
    if not callable(onecall):
        raise WorkflowDefinitionError(f"TRY wraps one callable task; got {onecall!r}")
    if type(retry) is not int or retry < 0:
        raise WorkflowDefinitionError(f"TRY: retry must be an int >= 0; got {retry!r}")
    if not (onfailure is None or callable(onfailure) or isinstance(onfailure, BaseException)):
        raise WorkflowDefinitionError(
            "TRY: onfailure must be an exception class or instance, a callable "
            f"onfailure(obj, eng) or None; got {onfailure!r}"
        )
    attempts = 1 + retry
    level = logging.WARNING if verbose else logging.DEBUG

    def _try(obj: Any, eng: GenericWorkflowEngine) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return onecall(obj, eng)
            except WorkflowTransition:
                raise
            except Exception as error:
                eng.log.log(
                    level,
                    "TRY: attempt %d of %d of %r failed",
                    attempt,
                    attempts,
                    onecall,
                    exc_info=True,
                )
                if attempt < attempts:
                    continue
                if isinstance(onfailure, BaseException):
                    raise onfailure from error
                if onfailure is None:
                    return None
                if isinstance(onfailure, type) and issubclass(onfailure, BaseException):
                    raise
                onfailure(obj, eng)
        return None  # pragma: no cover - the loop always returns or raises

    return _try


# -- sub-workflows ----------------------------------------------------------------


@with_nice_docs
def RUN_WF(
    workflow: Any,
    engine: Callable[[], GenericWorkflowEngine] | None = None,
    data_connector: Task | None = None,
    pass_eng: Iterable[str] = (),
    pass_always: bool | None = None,
    outkey: str | None = "RUN_WF",
    reinit: bool = False,
    *,
    comment: str | None = None,
) -> Task:
    """Build a task running the definition ``workflow`` in a child engine.

    :param workflow: the child's definition.
    :param engine: the child's class (default: the class of the calling
        engine when it needs no constructor argument, else
        :class:`~workflow.engine.GenericWorkflowEngine`).
    :param data_connector: ``data_connector(obj, eng)`` returns the child's
        token list; without it the token itself is that list.
    :param pass_eng: keys of ``eng.extra_data`` copied into the child's
        ``extra_data`` when the child is created.
    :param pass_always: copy the ``pass_eng`` keys before every run instead.
    :param outkey: where the child is kept in ``eng.extra_data`` and reused
        from, run after run (falsy: a new child every time).
    :param reinit: create a new child every time.

    A halt in the child halts the calling engine at this task.

    .. versionchanged:: 3.0
       ``pass_eng`` is copied, never consumed, and a child is only reused by
       the ``RUN_WF`` task that created it.

    Example::

        [RUN_WF([split_authors, normalise_author], data_connector=get_authors), save]
    """
    keys = tuple(pass_eng)
    created: weakref.WeakSet[GenericWorkflowEngine] = weakref.WeakSet()

    def _run_wf(obj: Any, eng: GenericWorkflowEngine) -> None:
        kept = eng.extra_data.get(outkey) if outkey else None
        if reinit or kept is None or kept not in created:
            fresh = True
            if engine is None:
                child = _child_engine(eng, workflow)
            else:
                child = engine()
                child.callbacks.replace(workflow)
            created.add(child)
            if outkey:
                eng.extra_data[outkey] = child
        else:
            fresh, child = False, kept
        if fresh or pass_always:
            for key in keys:
                if key not in eng.extra_data:
                    raise _missing_key("RUN_WF", key, "the engine's extra_data", eng.extra_data)
                child.extra_data[key] = eng.extra_data[key]
        objects = obj if data_connector is None else data_connector(obj, eng)
        child.process(objects)

    return _run_wf


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
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(run)
        finally:
            _write_profile(profiler, output, keys)

    return _profile


def _write_profile(profiler: cProfile.Profile, output: str | None, keys: Sequence[str]) -> None:
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
