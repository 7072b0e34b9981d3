"""Order fulfilment, version 2: a compatible change.

Every v1 history replays: the calls v1 made keep their order, kind and name.
What changed is what the host does not pin: custom status, the output's shape,
and a new last step (``send_receipt``) that in-flight instances simply reach
when they get there.
"""

import azure.durable_functions as df

from scenarios.versioning.activities import APPROVAL_WINDOW, new_app

app = new_app()


@app.orchestration_trigger(context_name="context")
def order_fulfillment(context: df.DurableOrchestrationContext):
    order = context.get_input()
    context.set_custom_status({"order": order["id"], "stage": "paying"})
    yield context.call_activity("reserve_stock", order)
    payment = yield context.call_activity("charge_payment", order)

    context.set_custom_status({"order": order["id"], "stage": "awaiting approval"})
    approval = context.wait_for_external_event("ShipmentApproved")
    deadline = context.create_timer(context.current_utc_datetime + APPROVAL_WINDOW)
    winner = yield context.task_any([approval, deadline])
    if winner != approval:
        return {"order": order["id"], "status": "cancelled", "payment": payment}
    deadline.cancel()
    tracking = yield context.call_activity("ship_order", order)
    receipt = yield context.call_activity("send_receipt", order)
    return {"order": order["id"], "status": "shipped", "tracking": tracking, "receipt": receipt}
