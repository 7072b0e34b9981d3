"""The activities every version of the order orchestrator calls, registered on each app.

Activities are not replayed, so they can change freely between versions; only
the orchestrator's sequence of calls is pinned by the histories in flight.
"""

from typing import Any, Dict

import azure.durable_functions as df


def register_activities(app: df.DFApp) -> None:
    """Register ``reserve_stock``, ``check_fraud``, ``charge_payment``, ``ship_order`` and
    ``send_receipt`` on ``app``."""

    @app.activity_trigger(input_name="order")
    def reserve_stock(order: Dict[str, Any]) -> str:
        return f"reserved {order['quantity']} x {order['item']}"

    @app.activity_trigger(input_name="order")
    def check_fraud(order: Dict[str, Any]) -> str:
        return "clear" if order["amount"] < 5_000 else "review"

    @app.activity_trigger(input_name="order")
    def charge_payment(order: Dict[str, Any]) -> str:
        return f"charged {order['amount']} to {order['customer']}"

    @app.activity_trigger(input_name="order")
    def ship_order(order: Dict[str, Any]) -> str:
        return f"TRACK-{order['id']}"

    @app.activity_trigger(input_name="order")
    def send_receipt(order: Dict[str, Any]) -> str:
        return f"receipt sent to {order['customer']}"
