"""Tasks of the CLI tests of answers, defaults and errors in loops (``--import`` this module)."""

from __future__ import annotations

from typing import Any

from workflow.flows import task


@task("flowsx_check")
def flowsx_check(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Fail on the item ``3``: a task error inside a loop."""
    if params["n"] == 3:
        raise ValueError(f"{params['n']} is odd here")
    return {"n": params["n"]}
