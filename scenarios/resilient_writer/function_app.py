"""A writer agent whose orchestration owns the retries: it survives every model fault.

A durable agent (``app.get_agent(context, name).run(...)``) cannot be retried by its
orchestration: when the model call fails, the agent entity stores an error reply and
returns it as a *successful* result with empty text. Here the Agent Framework ``Writer``
agent runs inside an activity instead, where a failed model call is an exception the
orchestration sees, and the orchestration retries it in durable time:

- ``write_with_retry``: ``call_activity_with_retry`` with ``RetryOptions`` (a 5 s interval,
  up to three attempts);
- ``write_with_backoff``: its own bounded loop: after a failed attempt a durable timer
  (2 s, then 4 s), up to three attempts; the last failure fails the instance.

The openai client is built with ``max_retries=0``: its own retries would sleep in real time,
invisible to the orchestration's history; these wait in durable timers, replayed and visible.
"""

from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
import openai
from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient

MAX_ATTEMPTS = 3
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5000,
                        max_number_of_attempts=MAX_ATTEMPTS)
FIRST_BACKOFF = timedelta(seconds=2)

writer = Agent(
    client=OpenAIChatCompletionClient(model="gpt-4o-mini",
                                      async_client=openai.AsyncOpenAI(max_retries=0)),
    name="Writer",
    instructions="You are the Writer. Draft one sentence about the topic.",
)

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.activity_trigger(input_name="topic")
async def write_draft(topic: str) -> str:
    """One attempt: a failed model call raises (the Agent Framework's ChatClientException)."""
    response = await writer.run(f"Write about {topic}.")
    if not response.text:
        raise ValueError(f"the Writer answered no text about {topic!r}")
    return response.text


@app.orchestration_trigger(context_name="context")
def write_with_retry(context: df.DurableOrchestrationContext):
    return (yield context.call_activity_with_retry("write_draft", RETRY, context.get_input()))


@app.orchestration_trigger(context_name="context")
def write_with_backoff(context: df.DurableOrchestrationContext):
    topic = context.get_input()
    for attempt in range(1, MAX_ATTEMPTS):
        try:
            return (yield context.call_activity("write_draft", topic))
        except Exception as error:          # the activity failed: wait, durably, then try again
            context.set_custom_status({"attempt": attempt, "error": str(error).splitlines()[0]})
            yield context.create_timer(context.current_utc_datetime
                                       + FIRST_BACKOFF * 2 ** (attempt - 1))
    return (yield context.call_activity("write_draft", topic))    # the last attempt fails the instance
