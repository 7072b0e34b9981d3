"""A counter entity, an orchestrator that calls and signals it, and HTTP endpoints.

The entity keeps an integer; the ``tally`` orchestrator adds each input number
with ``call_entity`` (waiting for the new total), signals a final ``add`` it
does not wait for, and reads the result. HTTP functions start orchestrations,
signal the counter and read it, the way a client app would.
"""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
        context.set_result(value)
    elif operation == "reset":
        value = 0
    elif operation == "get":
        context.set_result(value)
    elif operation == "fail_after_add":
        value += context.get_input()
        context.set_state(value)
        raise ValueError(f"refusing {context.get_input()}")
    elif operation == "delete":
        context.destruct_on_exit()
        return
    context.set_state(value)


@app.orchestration_trigger(context_name="context")
def tally(context: df.DurableOrchestrationContext):
    request = context.get_input()
    entity = df.EntityId("Counter", request["counter"])
    totals = []
    for number in request["numbers"]:
        totals.append((yield context.call_entity(entity, "add", number)))
    context.signal_entity(entity, "add", request.get("bonus", 0))
    try:
        yield context.call_entity(entity, "fail_after_add", 1000)
    except Exception as error:
        totals.append(f"refused: {error}")
    final = yield context.call_entity(entity, "get")
    return {"totals": totals, "final": final}


@app.route(route="counters/{key}/add/{amount:int}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def add_to_counter(req: func.HttpRequest, client) -> func.HttpResponse:
    key, amount = req.route_params["key"], int(req.route_params["amount"])
    await client.signal_entity(df.EntityId("Counter", key), "add", amount)
    return func.HttpResponse(status_code=202)


@app.route(route="counters/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read_counter(req: func.HttpRequest, client) -> func.HttpResponse:
    state = await client.read_entity_state(df.EntityId("Counter", req.route_params["key"]))
    if not state.entity_exists:
        return func.HttpResponse("no such counter", status_code=404)
    return func.HttpResponse(json.dumps({"value": state.entity_state}),
                             mimetype="application/json")


@app.route(route="tally", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_tally(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id = await client.start_new("tally", client_input=req.get_json())
    return client.create_check_status_response(req, instance_id)
