"""An order saga: reserve, charge (with retries), ship; undo the earlier steps on failure.

``place_order`` runs ``reserve_inventory`` -> ``charge_payment`` (retried on
transient failures) -> ``ship_order``. If charging or shipping fails, the
compensations run in reverse: ``refund_payment`` for a taken charge, then
``release_inventory``.

Charging is the step a crash can repeat. With ``"idempotency": true`` in the
order (the default) the activity passes an idempotency key derived from the
instance id, so a retried charge is recognised by the payment ledger; with
``false`` it does not, and a crash sweep shows the customer charged twice.
"""

import azure.durable_functions as df
import azure.functions as func

from fakes import shop

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

CHARGE_RETRIES = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)


@app.orchestration_trigger(context_name="context")
def place_order(context: df.DurableOrchestrationContext):
    order = context.get_input()
    order_id = order["id"]
    key = f"{context.instance_id}:charge" if order.get("idempotency", True) else None

    yield context.call_activity("reserve_inventory", {"order": order_id, "item": order["item"]})
    charge_id = None
    try:
        charge_id = yield context.call_activity_with_retry(
            "charge_payment", CHARGE_RETRIES,
            {"order": order_id, "amount": order["amount"], "key": key})
        parcel = yield context.call_activity("ship_order", order_id)
    except Exception as error:
        if charge_id is not None:
            yield context.call_activity("refund_payment", charge_id)
        yield context.call_activity("release_inventory", order_id)
        return {"status": "cancelled", "reason": str(error).split("\n")[0].strip()}
    return {"status": "shipped", "charge": charge_id, "parcel": parcel}


@app.activity_trigger(input_name="request")
def reserve_inventory(request: dict) -> None:
    shop.warehouse.reserve(request["order"], request["item"])


@app.activity_trigger(input_name="request")
def charge_payment(request: dict) -> str:
    return shop.payments.charge(request["order"], request["amount"], request.get("key"))


@app.activity_trigger(input_name="order_id")
def ship_order(order_id: str) -> str:
    return shop.warehouse.ship(order_id)


@app.activity_trigger(input_name="charge_id")
def refund_payment(charge_id: str) -> None:
    shop.payments.refund(charge_id)


@app.activity_trigger(input_name="order_id")
def release_inventory(order_id: str) -> None:
    shop.warehouse.release(order_id)
