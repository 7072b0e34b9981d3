"""Order fulfilment, version 1: the code whose instances are in flight.

Reserve the stock, charge the payment, then wait up to two days for a person
to approve the shipment (``ShipmentApproved``); ship, or cancel on timeout.
Histories recorded from this version are committed under ``histories/``;
never edit this file: it is what those instances ran.
"""

import azure.durable_functions as df

from scenarios.versioning.activities import APPROVAL_WINDOW, new_app

app = new_app()


@app.orchestration_trigger(context_name="context")
def order_fulfillment(context: df.DurableOrchestrationContext):
    order = context.get_input()
    yield context.call_activity("reserve_stock", order)
    yield context.call_activity("charge_payment", order)

    approval = context.wait_for_external_event("ShipmentApproved")
    deadline = context.create_timer(context.current_utc_datetime + APPROVAL_WINDOW)
    winner = yield context.task_any([approval, deadline])
    if winner != approval:
        return {"order": order["id"], "status": "cancelled"}
    deadline.cancel()
    tracking = yield context.call_activity("ship_order", order)
    return {"order": order["id"], "status": "shipped", "tracking": tracking}
