"""Read counter {key}'s state through the client."""

import json

import azure.durable_functions as df
import azure.functions as func


async def main(req: func.HttpRequest, client: str) -> func.HttpResponse:
    durable = df.DurableOrchestrationClient(client)
    state = await durable.read_entity_state(df.EntityId("Counter", req.route_params["key"]))
    if not state.entity_exists:
        return func.HttpResponse("no such counter", status_code=404)
    return func.HttpResponse(json.dumps({"value": state.entity_state}), mimetype="application/json")
