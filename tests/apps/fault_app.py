"""A writer agent called three ways, for model-fault sweeps (tests/test_fault_sweep.py).

* ``draft_with_retry``: an activity asks the model with the openai client (no client retries)
  and the orchestration retries the activity: it survives every fault.
* ``draft_once``: the same activity without a retry: a fault fails the instance, cleanly.
* ``draft_or_empty``: the activity swallows the model error and returns "": the instance
  completes with another output while nothing failed (broken).
* ``draft_then_wait``: with no draft, the orchestration waits for a ``DraftReady`` event that
  nothing sends: a fault leaves it stuck Running with nothing to wake it (broken).
* ``agent_draft``: the durable agent ``Writer`` (Agent Framework); its entity retries a failed
  streaming call once without streaming.
"""

import functools

import azure.durable_functions as df
import openai
from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient

INSTRUCTIONS = "You are the Writer. Draft one sentence."

writer = Agent(client=OpenAIChatCompletionClient(model="gpt-4o-mini"), name="Writer",
               instructions=INSTRUCTIONS)

app = AgentFunctionApp(agents=[writer])

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)


@functools.cache
def _client() -> openai.OpenAI:
    """One client for every call (each new one loads an SSL context: about 20 ms);
    max_retries=0: the retries are the orchestration's."""
    return openai.OpenAI(max_retries=0)


def _ask(topic: str) -> str:
    answer = _client().chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": topic}])
    return answer.choices[0].message.content or ""


@app.activity_trigger(input_name="topic")
def ask_writer(topic: str) -> str:
    return _ask(topic)


@app.activity_trigger(input_name="topic")
def ask_writer_or_empty(topic: str) -> str:
    try:
        return _ask(topic)
    except openai.OpenAIError:
        return ""                                # the fault is swallowed here


@app.orchestration_trigger(context_name="context")
def draft_with_retry(context: df.DurableOrchestrationContext):
    return (yield context.call_activity_with_retry("ask_writer", RETRY, context.get_input()))


@app.orchestration_trigger(context_name="context")
def draft_once(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("ask_writer", context.get_input()))


@app.orchestration_trigger(context_name="context")
def draft_or_empty(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("ask_writer_or_empty", context.get_input()))


@app.orchestration_trigger(context_name="context")
def draft_then_wait(context: df.DurableOrchestrationContext):
    draft = yield context.call_activity("ask_writer_or_empty", context.get_input())
    if not draft:
        draft = yield context.wait_for_external_event("DraftReady")
    return draft


@app.orchestration_trigger(context_name="context")
def agent_draft(context: df.DurableOrchestrationContext):
    agent = app.get_agent(context, "Writer")
    reply = yield agent.run(context.get_input(), session=agent.create_session())
    return reply.text
