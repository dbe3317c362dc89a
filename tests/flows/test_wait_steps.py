"""Steps that wait (``ask``, ``sleep``, ``receive``) and ``retry``: validation, diagrams, schema.

Running them needs a database: see ``test_wait_runs.py``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import jsonschema
import pytest

from workflow.flows import TaskRegistry, load_flow, schema, validate_flow

ASK = {
    "message": "Refund of an order over the limit",
    "approvers": ["alice", "bob", "carol"],
    "quorum": 2,
    "reject_quorum": 1,
    "schema": {"type": "object", "properties": {"note": {"type": "string"}}},
    "timeout": "PT48H",
    "on_timeout": "reject",
}

#: A flow with every waiting step in every accepted form.
WAITING = {
    "name": "refund",
    "steps": [
        {
            "name": "plan",
            "task": "echo",
            "params": {"start": "2026-12-06T09:00:00Z"},
            "retry": {"attempts": 5, "backoff": "PT2S", "max_backoff": "PT1M", "jitter": False},
        },
        {"name": "approve", "ask": ASK},
        {"name": "anyone", "ask": {"deadline": "@plan.start", "on_timeout": {"answer": 1}}},
        {"name": "later", "ask": {"deadline": "2026-12-06T10:00:00+01:00", "on_timeout": "fail"}},
        {"name": "nap", "sleep": "PT10M"},
        {"name": "nap_for", "sleep": {"for": "P1DT12H"}},
        {"name": "nap_until", "sleep": {"until": "@plan.start"}},
        {
            "name": "nap_default",
            "sleep": {"until": {"ref": "@plan.late", "default": "2026-12-06T09:00:00Z"}},
        },
        {"name": "maybe", "ask": {"deadline": {"ref": "@plan.late", "default": None}}},
        {"name": "pay", "receive": "payment", "timeout": "PT1H", "on_timeout": "fail"},
        {"name": "note", "receive": "note"},
        {"name": "done", "task": "echo", "params": {"decision": "@approve.decision"}},
    ],
}


def errors_of(body: Any, registry: TaskRegistry) -> list[str]:
    return [f"{e.step}|{e.path}|{e.message}" for e in validate_flow(body, registry=registry)]


def one_step(step: dict[str, Any]) -> dict[str, Any]:
    return {"name": "f", "steps": [{"name": "plan", "task": "echo"}, step]}


def test_every_form_of_the_waiting_steps_is_valid(registry: TaskRegistry) -> None:
    assert errors_of(WAITING, registry) == []
    jsonschema.validate(WAITING, schema())


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"name": "a", "ask": "yes?"}, "a|$.steps[1].ask|ask takes an object"),
        ({"name": "a", "ask": {"whom": 1}}, "a|$.steps[1].ask.whom|unknown key 'whom'"),
        ({"name": "a", "ask": {"message": 3}}, "a|$.steps[1].ask.message|message must be a string"),
        (
            {"name": "a", "ask": {"message": "x" * 4001}},
            "a|$.steps[1].ask.message|message is longer than 4000 characters",
        ),
        (
            {"name": "a", "ask": {"approvers": []}},
            "a|$.steps[1].ask.approvers|approvers must be a non-empty list",
        ),
        (
            {"name": "a", "ask": {"approvers": "alice"}},
            "a|$.steps[1].ask.approvers|approvers must be a non-empty list",
        ),
        (
            {"name": "a", "ask": {"approvers": ["alice", 7]}},
            "a|$.steps[1].ask.approvers[1]|an approver must be a non-empty string, not 7",
        ),
        (
            {"name": "a", "ask": {"approvers": ["alice", "bob", "alice"]}},
            "a|$.steps[1].ask.approvers[2]|approver 'alice' is named twice (first at [0])",
        ),
        (
            {"name": "a", "ask": {"approvers": ["x" * 256]}},
            "a|$.steps[1].ask.approvers[0]|an approver is longer than 255 characters",
        ),
        (
            {"name": "a", "ask": {"approvers": ["al\nice"]}},
            "a|$.steps[1].ask.approvers[0]|an approver 'al\\nice' holds a control character",
        ),
        (
            {"name": "a", "ask": {"approvers": ["alice", "bob"], "quorum": 3}},
            "a|$.steps[1].ask.quorum|quorum 3 is more than the 2 approvers",
        ),
        (
            {"name": "a", "ask": {"approvers": ["alice"], "reject_quorum": 2}},
            "a|$.steps[1].ask.reject_quorum|reject_quorum 2 is more than the 1 approvers",
        ),
        (
            {"name": "a", "ask": {"quorum": 0}},
            "a|$.steps[1].ask.quorum|quorum must be a whole number from 1 to 1000, not 0",
        ),
        (
            {"name": "a", "ask": {"quorum": True}},
            "a|$.steps[1].ask.quorum|quorum must be a whole number from 1 to 1000, not True",
        ),
        (
            {"name": "a", "ask": {"reject_quorum": "2"}},
            "a|$.steps[1].ask.reject_quorum|reject_quorum must be a whole number",
        ),
        (
            {"name": "a", "ask": {"schema": {"type": "objec"}}},
            "a|$.steps[1].ask.schema.type|not a valid JSON Schema",
        ),
        (
            {"name": "a", "ask": {"schema": {"$ref": "https://example.com/s.json"}}},
            "a|$.steps[1].ask.schema['$ref']|$ref 'https://example.com/s.json' points outside",
        ),
        (
            {"name": "a", "ask": {"timeout": "PT1H", "deadline": "2026-12-06T09:00:00Z"}},
            "a|$.steps[1].ask.deadline|give a timeout or a deadline, not both",
        ),
        (
            {"name": "a", "ask": {"timeout": "48 hours"}},
            "a|$.steps[1].ask.timeout|timeout '48 hours' is not an ISO 8601 duration",
        ),
        (
            {"name": "a", "ask": {"timeout": "P1M"}},
            "a|$.steps[1].ask.timeout|timeout 'P1M' is not an ISO 8601 duration such as 'PT10M', "
            "'PT48H' or 'P1DT12H'; years and months are not accepted",
        ),
        (
            {"name": "a", "ask": {"timeout": 60}},
            "a|$.steps[1].ask.timeout|timeout must be an ISO 8601 duration such as 'PT10M', "
            "not int",
        ),
        (
            {"name": "a", "ask": {"deadline": "2026-12-06T09:00:00"}},
            "a|$.steps[1].ask.deadline|deadline '2026-12-06T09:00:00' has no UTC offset",
        ),
        (
            {"name": "a", "ask": {"deadline": "tomorrow"}},
            "a|$.steps[1].ask.deadline|deadline 'tomorrow' is not an ISO 8601 time",
        ),
        (
            {"name": "a", "ask": {"deadline": "@nowhere.start"}},
            "a|$.steps[1].ask.deadline|@nowhere.start refers to unknown step 'nowhere'",
        ),
        (
            {"name": "a", "ask": {"deadline": {"ref": "@plan.start", "default": "soon"}}},
            "a|$.steps[1].ask.deadline.default|deadline 'soon' is not an ISO 8601 time",
        ),
        (
            {"name": "a", "ask": {"timeout": "PT1H", "on_timeout": "maybe"}},
            "a|$.steps[1].ask.on_timeout|on_timeout is one of approve, reject, fail or "
            "{'answer': ...}, not 'maybe'",
        ),
        (
            {"name": "a", "ask": {"timeout": "PT1H", "on_timeout": {"answer": 1, "x": 2}}},
            "a|$.steps[1].ask.on_timeout|on_timeout is one of approve, reject, fail",
        ),
        (
            {"name": "a", "ask": {"on_timeout": "reject"}},
            "a|$.steps[1].ask.on_timeout|on_timeout needs a timeout or a deadline",
        ),
        (
            {
                "name": "a",
                "ask": {
                    "timeout": "PT1H",
                    "schema": {"type": "object", "properties": {"note": {"type": "string"}}},
                    "on_timeout": {"answer": {"note": 5}},
                },
            },
            "a|$.steps[1].ask.on_timeout.answer.note|the answer does not match the schema: "
            "5 is not of type 'string'",
        ),
        (
            {"name": "s", "sleep": "ten minutes"},
            "s|$.steps[1].sleep|sleep 'ten minutes' is not an ISO 8601 duration",
        ),
        ({"name": "s", "sleep": 600}, "s|$.steps[1].sleep|sleep takes a duration ('PT10M')"),
        (
            {"name": "s", "sleep": {}},
            "s|$.steps[1].sleep|sleep takes 'for' (a duration) or 'until' (a time), one of them",
        ),
        (
            {"name": "s", "sleep": {"for": "PT1S", "until": "2026-12-06T09:00:00Z"}},
            "s|$.steps[1].sleep|sleep takes 'for' (a duration) or 'until' (a time), one of them",
        ),
        ({"name": "s", "sleep": {"for": "1s"}}, "s|$.steps[1].sleep.for|sleep '1s' is not"),
        (
            {"name": "s", "sleep": {"until": "12:00"}},
            "s|$.steps[1].sleep.until|until '12:00' is not an ISO 8601 time",
        ),
        (
            {"name": "s", "sleep": {"until": "@s.start"}},
            "s|$.steps[1].sleep.until|@s.start refers to the step itself",
        ),
        ({"name": "s", "sleep": {"until": "@x", "n": 1}}, "s|$.steps[1].sleep.n|unknown key 'n'"),
        (
            {"name": "s", "sleep": {"until": {"ref": "@plan.at", "default": None}}},
            "s|$.steps[1].sleep.until.default|until needs a time: its default cannot be null",
        ),
        (
            {"name": "r", "receive": ""},
            "r|$.steps[1].receive|the topic must be a non-empty string, not ''",
        ),
        (
            {"name": "r", "receive": ["payment"]},
            "r|$.steps[1].receive|the topic must be a non-empty string",
        ),
        (
            {"name": "r", "receive": "p" * 256},
            "r|$.steps[1].receive|the topic is longer than 255 characters",
        ),
        (
            {"name": "r", "receive": "payment", "timeout": "1h"},
            "r|$.steps[1].timeout|timeout '1h' is not an ISO 8601 duration",
        ),
        (
            {"name": "r", "receive": "payment", "timeout": "PT1H", "on_timeout": "reject"},
            "r|$.steps[1].on_timeout|on_timeout of a receive is 'fail' (or left out), not 'reject'",
        ),
        (
            {"name": "r", "receive": "payment", "on_timeout": "fail"},
            "r|$.steps[1].on_timeout|on_timeout needs a timeout",
        ),
        (
            {"name": "r", "receive": "payment", "deadline": "PT1H"},
            "r|$.steps[1].deadline|unknown key 'deadline' for a receive step",
        ),
        ({"name": "t", "task": "echo", "retry": 3}, "t|$.steps[1].retry|retry takes an object"),
        (
            {"name": "t", "task": "echo", "retry": {"backoff": "PT1S"}},
            "t|$.steps[1].retry.attempts|retry needs 'attempts', how many tries in all",
        ),
        (
            {"name": "t", "task": "echo", "retry": {"attempts": 3}},
            "t|$.steps[1].retry.backoff|retry needs 'backoff'",
        ),
        (
            {"name": "t", "task": "echo", "retry": {"attempts": 0, "backoff": "PT1S"}},
            "t|$.steps[1].retry.attempts|attempts must be a whole number from 1 to 100, not 0",
        ),
        (
            {"name": "t", "task": "echo", "retry": {"attempts": 101, "backoff": "PT1S"}},
            "t|$.steps[1].retry.attempts|attempts must be a whole number from 1 to 100, not 101",
        ),
        (
            {"name": "t", "task": "echo", "retry": {"attempts": 2, "backoff": "2s"}},
            "t|$.steps[1].retry.backoff|backoff '2s' is not an ISO 8601 duration",
        ),
        (
            {
                "name": "t",
                "task": "echo",
                "retry": {"attempts": 2, "backoff": "PT1M", "max_backoff": "PT1S"},
            },
            "t|$.steps[1].retry.max_backoff|max_backoff 'PT1S' is shorter than the backoff",
        ),
        (
            {"name": "t", "task": "echo", "retry": {"attempts": 2, "backoff": "PT1S", "jitter": 0}},
            "t|$.steps[1].retry.jitter|jitter must be true or false",
        ),
        (
            {"name": "t", "task": "echo", "retry": {"attempts": 2, "backoff": "PT1S", "x": 0}},
            "t|$.steps[1].retry.x|unknown key 'x' "
            "(allowed: attempts, backoff, max_backoff, jitter)",
        ),
        (
            {"name": "h", "halt": True, "retry": {"attempts": 2, "backoff": "PT1S"}},
            "h|$.steps[1].retry|retry is for task steps only, not for a halt step",
        ),
        (
            {"name": "s", "sleep": "PT1S", "retry": {"attempts": 2, "backoff": "PT1S"}},
            "s|$.steps[1].retry|retry is for task steps only, not for a sleep step",
        ),
        (
            {"name": "p", "parallel": [[{"name": "w", "ask": {"timeout": 5}}]]},
            "w|$.steps[1].parallel[0][0].ask.timeout|",
        ),
        (
            {"name": "both", "ask": {}, "sleep": "PT1S"},
            "both|$.steps[1]|a step has exactly one kind, this one has 'ask', 'sleep'",
        ),
    ],
)
def test_each_field_of_a_waiting_step_is_checked_at_its_path(
    registry: TaskRegistry, step: dict[str, Any], expected: str
) -> None:
    found = errors_of(one_step(step), registry)
    assert any(line.startswith(expected) for line in found), found


def test_every_problem_of_a_waiting_step_is_reported_at_once(registry: TaskRegistry) -> None:
    step = {
        "name": "a",
        "ask": {"approvers": ["x", "x"], "quorum": 0, "timeout": "soon", "on_timeout": "no"},
    }
    paths = [line.split("|")[1] for line in errors_of(one_step(step), registry)]
    assert sorted(paths) == sorted(
        [
            "$.steps[1].ask.approvers[1]",
            "$.steps[1].ask.quorum",
            "$.steps[1].ask.timeout",
            "$.steps[1].ask.on_timeout",
        ]
    )


@pytest.mark.parametrize(
    "step",
    [
        {"name": "a", "ask": {"approvers": ["alice", "alice"]}},
        {"name": "a", "ask": {"timeout": "PT1H", "deadline": "2026-12-06T09:00:00Z"}},
        {"name": "a", "ask": {"timeout": "1h"}},
        {"name": "s", "sleep": {"for": "PT1S", "until": "2026-12-06T09:00:00Z"}},
        {"name": "r", "receive": "payment", "on_timeout": "reject"},
        {"name": "t", "task": "echo", "retry": {"attempts": 0, "backoff": "PT1S"}},
        {"name": "t", "task": "echo", "retry": {"attempts": 2}},
    ],
)
def test_wrong_waiting_steps_fail_the_schema_too(step: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(one_step(step), schema())


def test_waiting_steps_are_drawn_with_their_labels_escaped(registry: TaskRegistry) -> None:
    body = {
        "name": "f",
        "steps": [
            {"name": "plan", "task": "t<x>", "retry": {"attempts": 5, "backoff": "PT2S"}},
            {"name": "approve", "ask": {"approvers": ['b"ob]', "carol"], "quorum": 2}},
            {"name": "anyone", "ask": {}},
            {"name": "nap", "sleep": {"until": "@plan.start"}},
            {"name": "pay", "receive": "pay<ment>", "timeout": "PT1H"},
        ],
    }
    flow = load_flow(body, registry=registry, structure_only=True)
    mermaid = flow.graph()
    assert 'n1["plan<br/>t#60;x#62;<br/>retry: 5 attempts"]' in mermaid
    assert 'n2[/"approve<br/>ask 2 of b#34;ob#93;, carol"/]' in mermaid
    assert 'n3[/"anyone<br/>ask anyone"/]' in mermaid
    assert 'n4[/"nap<br/>sleep until @plan.start"/]' in mermaid
    assert 'n5[/"pay<br/>receive pay#60;ment#62; for PT1H"/]' in mermaid
    assert "n4 --> n5" in mermaid
    dot = flow.graph("dot")
    assert 'n2 [label="approve\\nask 2 of b&#34;ob&#93;, carol", shape=parallelogram];' in dot
    assert "<ment>" not in dot
    assert '"ob]' not in dot


def test_validating_and_drawing_a_waiting_flow_imports_no_database_library() -> None:
    code = (
        "import sys, json\n"
        "from workflow.flows import load_flow, validate_flow\n"
        f"body = json.loads({__import__('json').dumps(__import__('json').dumps(WAITING))})\n"
        "body['steps'][0]['task'] = body['steps'][-1]['task'] = 'json.dumps'\n"
        "flow = load_flow(body, structure_only=True)\n"
        "flow.graph()\n"
        "import workflow.runtime._time\n"
        "print(sorted(m for m in ('sqlalchemy', 'workflow.runtime.waits') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_runtime_package_still_offers_every_name_it_lists() -> None:
    import workflow.runtime as runtime

    assert all(getattr(runtime, name) is not None for name in runtime.__all__)
    assert set(runtime.__all__) <= set(dir(runtime))
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        runtime.nothing  # noqa: B018


def test_a_parallel_branch_may_wait_and_halt(registry: TaskRegistry) -> None:
    branches = [
        [{"name": "w", "ask": {}}],
        [{"name": "s", "sleep": "PT1S"}],
        [{"name": "h", "halt": True}],
    ]
    body = one_step({"name": "p", "parallel": branches})
    assert errors_of(body, registry) == []
    jsonschema.validate(body, schema())
