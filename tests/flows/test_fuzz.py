"""Fuzzing: whatever a flow document or file holds, loading fails only with our error.

Every example is loaded, validated, compiled and drawn. Loading may fail only
with :exc:`~workflow.errors.FlowValidationError`; a flow that loads must
compile and draw, its diagrams keep their line shapes, and its laid-out
diagram keeps its nodes apart and its edges clear of them.

The runs are small and derandomized, so CI is fast and stable; set
``WORKFLOW_FUZZ_EXAMPLES`` to run more examples per test, such as
``WORKFLOW_FUZZ_EXAMPLES=20000 pytest tests/flows/test_fuzz.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.flows.test_layout import check as check_layout
from workflow.engine import GenericWorkflowEngine
from workflow.errors import FlowError, FlowValidationError, HaltProcessing, WorkflowBaseError
from workflow.flows import Flow, TaskRegistry, load_flow

EXAMPLES = int(os.environ.get("WORKFLOW_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Strings that have broken parsers, diagrams and web pages before.
HOSTILE = [
    '<script>alert("x")</script>',
    '"]--> n0',
    "line\nbreak",
    "\r\n\t\x00\u2028",
    "#quot;&amp;%%`",
    "\\",
    "{[(|)]}",
    "é日本",
]
#: The words of the flow format, and references.
WORDS = [
    "name",
    "steps",
    "task",
    "params",
    "if",
    "then",
    "else",
    "while",
    "do",
    "for_each",
    "as",
    "parallel",
    "halt",
    "message",
    "action",
    "flow",
    "needs",
    "version",
    "max_iterations",
    "procedures",
    "mod",
    "method",
    "not",
    "and",
    "or",
    "==",
    "<",
    "in",
    "echo",
    "a",
    "b",
    "c",
    "@a",
    "@a.x",
    "@b.0",
    "@_input",
    "@_runtime.flow",
    "@@lit",
    "@",
    "@a..b",
]

texts = st.sampled_from(WORDS) | st.sampled_from(HOSTILE) | st.text(max_size=12)
#: Numbers JSON cannot hold: NaN and infinity. (Integers of thousands of digits,
#: which Python does not write, are in YAML_PIECES: hypothesis cannot show them.)
odd_numbers = st.sampled_from([float("nan"), float("inf"), float("-inf")])
scalars = st.none() | st.booleans() | st.integers(-3, 5) | st.floats() | texts | odd_numbers
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=25,
)
names = st.sampled_from(["a", "b", "c", "d", "e", "loop", "x"]) | texts


def _steps(children: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(children, min_size=0, max_size=4)


def _step(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A step of a random kind whose blocks hold ``inner`` steps, with random extras."""
    kinds = st.one_of(
        st.fixed_dictionaries({"name": names, "if": values, "then": _steps(inner)}),
        st.fixed_dictionaries({"name": names, "while": values, "do": _steps(inner)}),
        st.fixed_dictionaries(
            {"name": names, "for_each": values, "as": names, "do": _steps(inner)}
        ),
        st.fixed_dictionaries({"name": names, "parallel": st.lists(_steps(inner), max_size=3)}),
    )
    return st.builds(_with_extras, kinds, st.dictionaries(st.sampled_from(WORDS), values))


def _with_extras(step: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    return {**extras, **step} if len(extras) < 2 else {**step, **extras}


leaf_steps = st.one_of(
    st.fixed_dictionaries(
        {"name": names, "task": st.sampled_from(["echo", "mark", "missing", *HOSTILE])},
        optional={"params": values, "needs": st.lists(names, max_size=3)},
    ),
    st.fixed_dictionaries({"name": names, "halt": values}),
    st.fixed_dictionaries({"name": names, "flow": names}, optional={"version": values}),
    values,
)
steps = st.recursive(leaf_steps, _step, max_leaves=30)
flows = st.one_of(
    st.fixed_dictionaries(
        {"name": texts, "steps": st.lists(steps, max_size=6)},
        optional={"version": values, "description": values, "extra": values},
    ),
    st.fixed_dictionaries(
        {
            "procedures": st.lists(
                st.fixed_dictionaries(
                    {"name": names},
                    optional={"mod": texts, "method": texts, "params": values, "x": values},
                )
                | values,
                max_size=4,
            )
        }
    ),
    values,
)


@st.composite
def deep_flows(draw: st.DrawFn) -> Any:
    """A flow nested hundreds of levels deep: steps in steps, values in values."""
    depth = draw(st.integers(1, 400))
    kind = draw(st.sampled_from(["if", "while", "for_each", "parallel", "value", "condition"]))
    leaf: Any = draw(values)
    step: Any = {"name": "s0", "task": "echo", "params": {"v": leaf}}
    for level in range(1, depth):
        name = f"s{level}"
        if kind == "if":
            step = {"name": name, "if": True, "then": [step]}
        elif kind == "while":
            step = {"name": name, "while": False, "do": [step]}
        elif kind == "for_each":
            step = {"name": name, "for_each": [1], "as": f"v{level}", "do": [step]}
        elif kind == "parallel":
            step = {"name": name, "parallel": [[step]]}
        elif kind == "value":
            step["params"] = {"v": step["params"]}
        else:
            step = {"name": "w", "while": {"not": step.get("while", True)}, "do": [step]}
            step["do"] = [{"name": "t", "task": "echo"}]
    return {"name": "deep", "steps": [step]}


@st.composite
def near_valid_flows(draw: st.DrawFn, *, mutate: bool = True) -> dict[str, Any]:
    """A valid flow of random shape with hostile task names and labels, perhaps mutated once.

    Its loops go round once at most, so that a valid one can run.
    """
    count = 0

    def name() -> str:
        nonlocal count
        count += 1
        return f"s{count}"

    def block(depth: int) -> list[dict[str, Any]]:
        return [step(depth) for _ in range(draw(st.integers(1, 3)))]

    def step(depth: int) -> dict[str, Any]:
        kind = draw(st.sampled_from(["task", "halt", "flow"] + ["nest"] * (depth < 40)))
        if kind == "task":
            task = draw(st.sampled_from(["echo", *HOSTILE]))
            return {"name": name(), "task": task, "params": {"v": draw(values), "i": "@_input"}}
        if kind == "halt":
            return {"name": name(), "halt": {"message": draw(texts), "action": draw(texts)}}
        if kind == "flow":
            return {"name": name(), "flow": "a", "params": {"x": draw(values)}}
        nest = draw(st.sampled_from(["if", "while", "for_each", "parallel"]))
        if nest == "if":
            return {"name": name(), "if": "@_input", "then": block(depth + 1)}
        if nest == "while":
            return {"name": name(), "while": False, "max_iterations": 2, "do": block(depth + 1)}
        if nest == "for_each":
            own = name()
            return {"name": own, "for_each": [1], "as": f"v{own}", "do": block(depth + 1)}
        return {"name": name(), "parallel": [block(depth + 1), block(depth + 1)]}

    body: dict[str, Any] = {"name": draw(texts.filter(str.strip)), "steps": block(1)}
    if mutate and draw(st.booleans()):
        steps = body["steps"]
        if len(steps) > 1 and draw(st.booleans()):
            steps[0]["needs"] = [steps[-1]["name"]]
        elif draw(st.booleans()):
            target = draw(st.sampled_from(steps))
            target[draw(st.sampled_from(WORDS))] = draw(values)
    return body


@pytest.fixture(scope="module")
def fuzz_registry() -> TaskRegistry:
    """echo, mark (an engine task) and tasks with hostile names."""
    tasks = TaskRegistry(entry_point_group=None)
    tasks.register("echo", lambda context, params: dict(params))
    tasks.register("mark", lambda obj, eng, **params: None, style="engine")
    for name in HOSTILE:
        tasks.register(name, lambda context, params: {})
    return tasks


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def lookup(name: str, version: int | None) -> Any:
    """Stored flows for ``flow`` steps: a small valid one, an invalid one, or none."""
    if name == "a":
        return {"name": "a", "steps": [{"name": "k", "task": "echo"}]}
    if name == "b":
        return {"name": "b", "steps": [{"name": "k", "task": "missing"}]}
    if name == "c":
        return [1, 2]
    raise LookupError(f"no flow {name!r}")


MERMAID_LINE = re.compile(r'    n\d+ -->(\|\w+\|)? n\d+|    n\d+[^"]+"(?:[^"<>\n]|<br/>)*"[^"]+')
DOT_LINE = re.compile(
    r'    n\d+ -> n\d+( \[label="\w+"\])?;|    n\d+ \[label="(?:[^"\\<>\n]|\\n)*", shape=\w+\];'
)


def load_check_and_draw(source: Any, registry: TaskRegistry) -> Flow | None:
    """Load ``source``; return the flow, or ``None`` when it is invalid as it should be."""
    flow: Flow | None = None
    try:
        flow = load_flow(source, registry=registry, definitions=lookup)
    except FlowValidationError as exc:
        event("invalid")
        errors = exc.errors
    else:
        errors = []
    if errors or flow is None:
        assert errors
        assert all(isinstance(error, FlowError) for error in errors)
        assert all(error.path.startswith("$") for error in errors)
        return None
    event("valid")
    flow.callbacks()
    mermaid = flow.graph("mermaid").splitlines()
    assert mermaid[0] == "flowchart TD"
    assert all(MERMAID_LINE.fullmatch(line) for line in mermaid[1:]), mermaid
    dot = flow.graph("dot").splitlines()
    assert re.fullmatch(r'digraph "[^"\\<>\n]*" \{', dot[0])
    assert all(DOT_LINE.fullmatch(line) for line in dot[2:-1]), dot
    json.dumps(flow.body, allow_nan=False)  # what the store writes: strict JSON
    check_layout(flow.body, limit=40)  # the web page's diagram: nodes apart, edges between them
    return flow


@FUZZ
@given(body=flows)
def test_flow_shaped_documents_fail_only_with_a_validation_error(
    fuzz_registry: TaskRegistry, body: Any
) -> None:
    load_check_and_draw(body, fuzz_registry)


@FUZZ
@given(body=near_valid_flows())
def test_near_valid_flows_load_and_draw_or_fail_with_a_validation_error(
    fuzz_registry: TaskRegistry, body: Any
) -> None:
    load_check_and_draw(body, fuzz_registry)


@FUZZ
@given(body=near_valid_flows(mutate=False), data=st.sampled_from([None, 0, {"n": 1}, HOSTILE]))
def test_valid_flows_run_or_fail_with_our_errors(
    fuzz_registry: TaskRegistry, body: Any, data: Any
) -> None:
    flow = load_check_and_draw(body, fuzz_registry)
    if flow is None:  # a halt in a parallel branch, or steps nested past MAX_NESTING
        return
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(flow.callbacks())
    context = flow.new_context(data)
    try:
        engine.process([context])
    except (WorkflowBaseError, HaltProcessing):
        event("stopped with our error")
    json.dumps(context)  # what the persistent engine stores


@FUZZ
@given(body=deep_flows())
def test_deep_documents_fail_only_with_a_validation_error(
    fuzz_registry: TaskRegistry, body: Any
) -> None:
    load_check_and_draw(body, fuzz_registry)


@FUZZ
@given(body=st.one_of(flows, near_valid_flows(), deep_flows()))
def test_flow_files_in_json_fail_only_with_a_validation_error(
    fuzz_registry: TaskRegistry, fuzz_dir: Path, body: Any
) -> None:
    path = fuzz_dir / "flow.json"
    try:
        path.write_text(json.dumps(body))
    except RecursionError:  # deeper than json.dumps goes
        return
    load_check_and_draw(path, fuzz_registry)


#: Pieces of YAML that have broken loaders: aliases, tags, deep brackets, odd scalars.
YAML_PIECES = [
    "&a [1, 2]",
    "*a",
    "<<: *a",
    "[*a, *a, *a]",
    "!!python/object:os.system ls",
    "!!set {a, b}",
    "!!binary aGk=",
    "2026-12-04",
    "2026-12-04T10:00:00Z",
    "? [a, b]\n: c",
    "[" * 300 + "]" * 300,
    "{" * 50,
    ".nan",
    ".inf",
    "1" * 5000,
    "0x" + "f" * 5000,
    "~",
    "'''",
    "\t",
    "%YAML 1.1\n---",
    "--- a\n--- b",
]


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    """YAML text: a dumped flow, hostile pieces spliced into one, or anything."""
    yaml = pytest.importorskip("yaml")
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.text(max_size=200))
    text: str = yaml.safe_dump(draw(flows | near_valid_flows()), allow_unicode=True)
    if choice == 1:
        return text
    lines = text.splitlines() or [""]
    at = draw(st.integers(0, len(lines)))
    piece = draw(st.sampled_from(YAML_PIECES))
    prefix = draw(st.sampled_from(["", "x: ", "- ", "  params: "]))
    return "\n".join([*lines[:at], prefix + piece, *lines[at:]])


@FUZZ
@given(text=yaml_texts())
def test_yaml_flow_files_fail_only_with_a_validation_error(
    fuzz_registry: TaskRegistry, fuzz_dir: Path, text: str
) -> None:
    path = fuzz_dir / "flow.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    load_check_and_draw(path, fuzz_registry)
