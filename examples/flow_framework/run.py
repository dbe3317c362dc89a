"""Run the JSON flow framework's two-step example on the plain engine.

From the repository root, with the package installed::

    python examples/flow_framework/run.py

It prints the context of the one token the flow runs for: the result of
each procedure under its name (``step2`` got ``step1``'s message through
``@step1.msg``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from workflow.engine import GenericWorkflowEngine
from workflow.flows import load_flow

if __package__ in (None, ""):  # run as a script: make ``examples`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import examples.flow_framework.tasks  # noqa: F401  (registers common.Kt.prt)

FLOW_FILE = Path(__file__).with_name("hello.json")


def run() -> dict[str, Any]:
    """Load, validate and run ``hello.json`` for one token; return its context."""
    flow = load_flow(FLOW_FILE)
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(flow.callbacks())
    context = flow.new_context()
    engine.process([context])
    return context


def main() -> None:
    context = run()
    # _runtime holds the time the run started; leave it out of the output.
    shown = {key: value for key, value in context.items() if key != "_runtime"}
    print(f"flow {context['_runtime']['flow']!r} ran; its context:")
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
