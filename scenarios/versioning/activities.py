"""What every version of the order app shares: the app object and its activities.

Activities are not replayed, so they can change freely between versions; only
the orchestrator's sequence of calls is pinned by the histories in flight.
"""

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

APPROVAL_WINDOW = timedelta(days=2)
"""How long an order waits for ``ShipmentApproved`` before it is cancelled."""

V3_DIVERGENCE = (
    "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled "
    "an activity task with sequence number 1 named 'charge_payment', but the current "
    "orchestration replay instead scheduled an activity task named 'check_fraud' with this "
    "sequence number.  Was a change made to the orchestrator code after this instance had "
    "already started running?")
"""The host's message when v3 replays a v1 history (what the tests expect)."""


def new_app() -> df.DFApp:
    """An app with the activities registered; each version adds its orchestrator."""
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    register_activities(app)
    return app


def register_activities(app: df.DFApp) -> None:
    """Register ``reserve_stock``, ``check_fraud``, ``charge_payment``, ``ship_order`` and
    ``send_receipt`` on ``app``."""

    @app.activity_trigger(input_name="order")
    def reserve_stock(order: dict[str, Any]) -> str:
        return f"reserved {order['quantity']} x {order['item']}"

    @app.activity_trigger(input_name="order")
    def check_fraud(order: dict[str, Any]) -> str:
        return "clear" if order["amount"] < 5_000 else "review"

    @app.activity_trigger(input_name="order")
    def charge_payment(order: dict[str, Any]) -> str:
        return f"charged {order['amount']} to {order['customer']}"

    @app.activity_trigger(input_name="order")
    def ship_order(order: dict[str, Any]) -> str:
        return f"TRACK-{order['id']}"

    @app.activity_trigger(input_name="order")
    def send_receipt(order: dict[str, Any]) -> str:
        return f"receipt sent to {order['customer']}"
