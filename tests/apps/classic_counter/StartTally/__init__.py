"""Start Tally; the response goes out through the named http binding, not the return value."""

import azure.functions as func
from azure.durable_functions import DurableOrchestrationClient


async def main(req: func.HttpRequest, starter: str, message: func.Out[func.HttpResponse]) -> None:
    client = DurableOrchestrationClient(starter)
    instance_id = await client.start_new("Tally", None, req.get_json())
    message.set(client.create_check_status_response(req, instance_id))
