"""Content approval with an agent as the writer: the same review loop, the draft from a model.

The ``Writer`` agent drafts the post inside the orchestration
(``app.get_agent(context, "Writer")``); the reviewer then has 24 hours to send
``ApprovalDecision``. Approved -> publish; rejected with feedback -> the Writer
rewrites in the same session (so it sees its first draft and the feedback) and
the review starts again; no decision in time -> escalate. The side effects go
to the ``fakes.content_service`` ledger, as in ``function_app.py``.
"""

from datetime import timedelta

import azure.durable_functions as df
from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient
from review_activities import bp

REVIEW_WINDOW = timedelta(hours=24)
MAX_ROUNDS = 3

writer = Agent(client=OpenAIChatCompletionClient(model="gpt-4o-mini"), name="Writer",
               instructions="You write short, friendly blog posts.")

app = AgentFunctionApp(agents=[writer], enable_http_endpoints=False)


@app.orchestration_trigger(context_name="context")
def agent_content_approval(context: df.DurableOrchestrationContext):
    request = context.get_input() or {}
    topic = request.get("topic", "durable agents")
    reviewer = request.get("reviewer", "reviewer@example.test")
    author = app.get_agent(context, "Writer")
    session = author.create_session()

    draft = (yield author.run(f"Write a short post about {topic}.", session=session)).text
    for round_number in range(1, MAX_ROUNDS + 1):
        yield context.call_activity("notify_reviewer", {"reviewer": reviewer, "draft": draft})
        context.set_custom_status({"stage": "awaiting_review", "round": round_number})

        decision_task = context.wait_for_external_event("ApprovalDecision")
        deadline_task = context.create_timer(context.current_utc_datetime + REVIEW_WINDOW)
        winner = yield context.task_any([decision_task, deadline_task])
        if winner == deadline_task:
            outcome = yield context.call_activity("escalate_for_review", draft)
            return {"status": "escalated", "detail": outcome, "rounds": round_number}

        deadline_task.cancel()
        decision = decision_task.result or {}
        if decision.get("approved"):
            url = yield context.call_activity("publish_content", draft)
            return {"status": "published", "url": url, "rounds": round_number}
        feedback = decision.get("feedback", "Make it better.")
        draft = (yield author.run(f"Rewrite the post. Reviewer feedback: {feedback}",
                                  session=session)).text

    return {"status": "rejected", "rounds": MAX_ROUNDS}


app.register_functions(bp)
