"""Quickstart: push orders through a pipeline, halt a suspicious one, resume it.

Run it with ``./run-example.sh`` (or ``python examples/quickstart.py`` once the
package is installed).
"""

from __future__ import annotations

from typing import Any

from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing
from workflow.patterns.controlflow import IF_ELSE


def add_tax(order: dict[str, Any], eng: GenericWorkflowEngine) -> None:
    """Add 20% tax to the order's amount."""
    order["total"] = round(order["amount"] * 1.2, 2)


def is_large(order: dict[str, Any], eng: GenericWorkflowEngine) -> bool:
    """Tell whether the order needs a second look."""
    return bool(order["total"] > 1000)


def ask_for_review(order: dict[str, Any], eng: GenericWorkflowEngine) -> None:
    """Halt the run until somebody approved the order."""
    if not order.get("approved"):
        eng.halt(f"order {order['id']} needs approval", action="approve")


def ship(order: dict[str, Any], eng: GenericWorkflowEngine) -> None:
    order["status"] = "shipped"
    print(f"shipped order {order['id']}: {order['total']:.2f}")


def fast_track(order: dict[str, Any], eng: GenericWorkflowEngine) -> None:
    order["priority"] = "normal"


PIPELINE = [
    add_tax,
    IF_ELSE(is_large, [ask_for_review], [fast_track]),
    ship,
]


def main() -> None:
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(PIPELINE)
    orders = [
        {"id": 1, "amount": 120.0},
        {"id": 2, "amount": 2500.0},
        {"id": 3, "amount": 75.5},
    ]
    try:
        engine.process(orders)
    except HaltProcessing as halt:
        print(f"halted at token {engine.state.token_pos}, task {engine.current_taskname}: {halt}")
        engine.current_object["approved"] = True
        print("approved; resuming where the run stopped")
        engine.restart("current", "current")
    print("statuses:", [order["status"] for order in orders])


if __name__ == "__main__":
    main()
