"""The tasks of the order pipeline (``pipeline.json``).

Importing this module registers them in the default task registry under
``orders.*``; the command line does it with ``--import``::

    workflow --import examples.pipeline.tasks run examples/pipeline/pipeline.json \
        --tokens examples/pipeline/records.jsonl

Each task is a plain function ``task(context, params) -> dict``: the flow
passes it what it needs as parameters, and stores the dict it returns under
the step's name. Amounts are computed in cents, so that the totals are exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflow.flows import task

__all__ = ["CUSTOMERS", "VAT_RATES"]

#: The customer database the pipeline enriches orders from.
CUSTOMERS: dict[str, dict[str, str]] = {
    "C-100": {"name": "Ada Lovelace", "country": "GB"},
    "C-200": {"name": "Max Mustermann", "country": "DE"},
    "C-300": {"name": "Camille Martin", "country": "FR"},
    "C-400": {"name": "Sanne de Vries", "country": "NL"},
    "C-500": {"name": "Lena Schmidt", "country": "DE"},
    "C-600": {"name": "Hugo Bernard", "country": "FR"},
}

#: VAT rates by country, in percent.
VAT_RATES: dict[str, int] = {"DE": 19, "FR": 20, "GB": 20, "NL": 21}

Params = dict[str, Any]
Result = dict[str, Any]


def _euros(cents: int) -> float:
    return cents / 100


@task("orders.read")
def read(context: Params, params: Params) -> Result:
    """Normalise an input record: trimmed ids, upper-case country codes, prices in cents."""
    record = params["record"]
    if not isinstance(record, dict):
        raise ValueError(f"an order record is a JSON object, not {record!r}")
    items = [
        {
            "sku": str(item.get("sku", "")).strip(),
            "qty": item.get("qty"),
            "price_cents": round(float(item.get("price", 0)) * 100),
        }
        for item in record.get("items") or []
    ]
    order = {
        "id": str(record.get("id", "")).strip(),
        "customer": str(record.get("customer", "")).strip(),
        "ship_to": str(record.get("ship_to", "")).strip().upper(),
        "items": items,
    }
    return {"order": order}


@task("orders.validate")
def validate(context: Params, params: Params) -> Result:
    """Fail on a malformed order: every problem is named in the error.

    A failing task stops its token (the run goes on with the others); it is
    stored as an error, to be fixed and resumed.
    """
    order = params["order"]
    problems = []
    if not order["id"]:
        problems.append("it has no id")
    if order["customer"] not in CUSTOMERS:
        problems.append(f"unknown customer {order['customer']!r}")
    if not order["items"]:
        problems.append("it has no items")
    for index, item in enumerate(order["items"]):
        if not item["sku"]:
            problems.append(f"item {index} has no sku")
        if not isinstance(item["qty"], int) or item["qty"] < 1:
            problems.append(f"item {index} has the quantity {item['qty']!r}")
        if item["price_cents"] <= 0:
            problems.append(f"item {index} has no price")
    if problems:
        raise ValueError(f"order {order['id'] or '?'} is invalid: {'; '.join(problems)}")
    return {"valid": True}


@task("orders.enrich")
def enrich(context: Params, params: Params) -> Result:
    """Return the customer's name and country, and the VAT rate (percent) of that country."""
    customer = CUSTOMERS[params["customer_id"]]
    return {**customer, "vat_rate": VAT_RATES[customer["country"]]}


@task("orders.price_line")
def price_line(context: Params, params: Params) -> Result:
    """Price one line of an order: net, VAT and gross, in cents."""
    item = params["item"]
    net = item["qty"] * item["price_cents"]
    vat = round(net * params["vat_rate"] / 100)
    return {"sku": item["sku"], "qty": item["qty"], "net": net, "vat": vat, "gross": net + vat}


@task("orders.total")
def total(context: Params, params: Params) -> Result:
    """Add up the priced lines (the per-round results of the ``for_each`` step), in cents."""
    lines = [round_result["line"] for round_result in params["lines"]]
    return {key: sum(line[key] for line in lines) for key in ("net", "vat", "gross")}


@task("orders.screen")
def screen(context: Params, params: Params) -> Result:
    """Tell whether a person should look at the order first, and why.

    An order is suspicious when its gross total is over ``limit`` (in
    euros), when a line asks for more than ``max_quantity`` pieces, or when
    it ships to another country than the customer's.
    """
    order, customer = params["order"], params["customer"]
    reasons = []
    if params["gross"] > params["limit"] * 100:
        reasons.append(f"total {_euros(params['gross']):.2f} is over {params['limit']}")
    for item in order["items"]:
        if item["qty"] > params["max_quantity"]:
            reasons.append(f"{item['qty']} pieces of {item['sku']}")
    if order["ship_to"] != customer["country"]:
        reasons.append(f"ships to {order['ship_to']}, customer lives in {customer['country']}")
    return {"suspicious": bool(reasons), "reasons": reasons}


@task("orders.write")
def write(context: Params, params: Params) -> Result:
    """Append the order's outcome to the JSON Lines file ``path``.

    An order that needed no review (``reviewed`` false) is ``accepted``. A
    reviewed one is ``approved`` when ``review``, the reviewer's answer, is
    ``{"approved": true}``, and ``rejected`` otherwise, also when the run was
    resumed without an answer (``review`` is then ``None``).
    """
    order, customer, amounts, review = (
        params["order"],
        params["customer"],
        params["total"],
        params["review"],
    )
    if not params["reviewed"]:
        status = "accepted"
    elif isinstance(review, dict) and review.get("approved") is True:
        status = "approved"
    else:
        status = "rejected"
    line = {
        "id": order["id"],
        "customer": customer["name"],
        "ship_to": order["ship_to"],
        "net": _euros(amounts["net"]),
        "vat": _euros(amounts["vat"]),
        "gross": _euros(amounts["gross"]),
        "status": status,
        "reasons": params["reasons"],
    }
    if isinstance(review, dict) and review.get("note"):
        line["note"] = review["note"]
    path = Path(params["path"])
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")
    return {"path": str(path), "status": status}
