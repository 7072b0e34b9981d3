"""Order fulfilment, version 3: an incompatible change.

A fraud check is inserted before the payment. New instances are fine, but a
v1 instance replays its history through this code: at sequence number 1 the
history recorded ``charge_payment`` and this code schedules ``check_fraud``,
so the host fails every instance that was past the reservation.
"""

import azure.durable_functions as df

from scenarios.versioning.activities import APPROVAL_WINDOW, new_app

app = new_app()


@app.orchestration_trigger(context_name="context")
def order_fulfillment(context: df.DurableOrchestrationContext):
    order = context.get_input()
    yield context.call_activity("reserve_stock", order)
    verdict = yield context.call_activity("check_fraud", order)
    if verdict != "clear":
        return {"order": order["id"], "status": "held for review"}
    yield context.call_activity("charge_payment", order)

    approval = context.wait_for_external_event("ShipmentApproved")
    deadline = context.create_timer(context.current_utc_datetime + APPROVAL_WINDOW)
    winner = yield context.task_any([approval, deadline])
    if winner != approval:
        return {"order": order["id"], "status": "cancelled"}
    deadline.cancel()
    tracking = yield context.call_activity("ship_order", order)
    return {"order": order["id"], "status": "shipped", "tracking": tracking}
