"""Model calls racing a deadline: an agent and an activity that both ask a model.

Used by tests/test_model_latency.py. ``agent_or_deadline`` waits for the Analyst
agent or a 60 s timer, whichever comes first; ``summary_or_deadline`` does the
same for the ``summarize`` activity, which calls the model with the plain
``openai`` client.
"""

from datetime import timedelta

import azure.durable_functions as df
from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient
from openai import OpenAI

DEADLINE = timedelta(seconds=60)

analyst = Agent(client=OpenAIChatCompletionClient(model="gpt-4o-mini"), name="Analyst",
                instructions="You are the Analyst. Answer in one line.")

app = AgentFunctionApp(agents=[analyst])


def _first(context, task):
    deadline = context.create_timer(context.current_utc_datetime + DEADLINE)
    winner = yield context.task_any([task, deadline])
    if winner is deadline:
        return "deadline"
    deadline.cancel()
    return winner.result


@app.orchestration_trigger(context_name="context")
def agent_or_deadline(context: df.DurableOrchestrationContext):
    agent = app.get_agent(context, "Analyst")
    outcome = yield from _first(context, agent.run(context.get_input(),
                                                    session=agent.create_session()))
    return outcome if isinstance(outcome, str) else outcome.text


@app.orchestration_trigger(context_name="context")
def summary_or_deadline(context: df.DurableOrchestrationContext):
    return (yield from _first(context, context.call_activity("summarize", context.get_input())))


@app.activity_trigger(input_name="text")
def summarize(text: str) -> str:
    reply = OpenAI().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"Summarize: {text}"}])
    return reply.choices[0].message.content
