"""Human-in-the-loop content approval (the "human interaction" pattern).

An activity drafts content, the reviewer is notified, then the orchestrator
waits for an ``ApprovalDecision`` event or a 24-hour deadline, whichever comes
first: approved -> publish, rejected -> "Content rejected", no answer ->
escalate. The losing timer is cancelled, otherwise the host would keep the
instance Running until it fires.
"""

import json
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
from review_activities import bp

from fakes.content_service import service

REVIEW_WINDOW = timedelta(hours=24)

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def content_approval(context: df.DurableOrchestrationContext):
    request = context.get_input() or {}
    topic = request.get("topic", "durable agents")
    reviewer = request.get("reviewer", "reviewer@example.test")

    draft = yield context.call_activity("draft_content", topic)
    yield context.call_activity("notify_reviewer", {"reviewer": reviewer, "draft": draft})
    context.set_custom_status({"stage": "awaiting_review", "reviewer": reviewer})

    decision_task = context.wait_for_external_event("ApprovalDecision")
    deadline_task = context.create_timer(context.current_utc_datetime + REVIEW_WINDOW)
    winner = yield context.task_any([decision_task, deadline_task])

    if winner == decision_task:
        deadline_task.cancel()
        decision = decision_task.result
        if isinstance(decision, str):   # the Python durable client sends event data as JSON text
            decision = json.loads(decision)
        approved = decision.get("approved") if isinstance(decision, dict) else bool(decision)
        if approved:
            url = yield context.call_activity("publish_content", draft)
            context.set_custom_status({"stage": "published"})
            return {"status": "published", "url": url}
        context.set_custom_status({"stage": "rejected"})
        return "Content rejected"

    outcome = yield context.call_activity("escalate_for_review", draft)
    context.set_custom_status({"stage": "escalated"})
    return {"status": "escalated", "detail": outcome}


@app.activity_trigger(input_name="topic")
def draft_content(topic: str) -> str:
    return service.draft(topic)


app.register_functions(bp)


# --- HTTP: how a user starts a review and how the reviewer answers ---------------------


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    """``POST /api/orchestrators/content_approval`` with the request JSON: 202 and the status URLs."""
    payload = req.get_json() if req.get_body() else None
    instance_id = await client.start_new(req.route_params["functionName"], None, payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="approvals/{instanceId}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def submit_decision(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    """``POST /api/approvals/{instanceId}`` with ``{"approved": true}``: raises ApprovalDecision."""
    instance_id = req.route_params["instanceId"]
    status = await client.get_status(instance_id)
    if not status:
        return func.HttpResponse(f"no review {instance_id}", status_code=404)
    await client.raise_event(instance_id, "ApprovalDecision", req.get_json())
    return func.HttpResponse(status_code=202)
