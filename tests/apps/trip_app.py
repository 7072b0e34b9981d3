"""An orchestration that talks to every kind of participant, for the report renderers' tests.

``plan_trip`` asks the Forecaster agent (which calls its ``get_weather`` tool),
books a hotel (an activity), sends a notice through a sub-orchestration, counts
the trip on an entity, then waits a day for ``Confirm`` against a timer.
``doomed`` fails in its activity. The ``trip`` fixture (``tests/conftest.py``)
runs them and saves their histories.
"""

from datetime import timedelta

import azure.durable_functions as df
from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny, 24C in {city}"


forecaster = Agent(client=OpenAIChatCompletionClient(model="gpt-4o-mini"), name="Forecaster",
                   instructions="You are the Forecaster. Use your tool.", tools=[get_weather])

app = AgentFunctionApp(agents=[forecaster], enable_http_endpoints=False)


@app.orchestration_trigger(context_name="context")
def plan_trip(context: df.DurableOrchestrationContext):
    city = context.get_input()["city"]
    agent = app.get_agent(context, "Forecaster")
    forecast = (yield agent.run(f"Weather in {city}?", session=agent.create_session())).text
    hotel = yield context.call_activity("book_hotel", city)
    yield context.call_sub_orchestrator("send_notice", f"Booked {hotel}", instance_id="notice-1")
    trips = yield context.call_entity(df.EntityId("Counter", "trips"), "add", 1)
    confirm = context.wait_for_external_event("Confirm")
    deadline = context.create_timer(context.current_utc_datetime + timedelta(days=1))
    if (yield context.task_any([confirm, deadline])) == deadline:
        return {"status": "expired"}
    deadline.cancel()
    return {"status": "confirmed", "forecast": forecast, "hotel": hotel, "trips": trips}


@app.orchestration_trigger(context_name="context")
def send_notice(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("notify", context.get_input()))


@app.orchestration_trigger(context_name="context")
def doomed(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("book_hotel", "Atlantis"))


@app.activity_trigger(input_name="city")
def book_hotel(city: str) -> str:
    if city == "Atlantis":
        raise ValueError("no hotels in Atlantis")
    return f"hotel-{city.lower()}"


@app.activity_trigger(input_name="text")
def notify(text: str) -> str:
    return f"sent: {text}"


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0) + context.get_input()
    context.set_state(value)
    context.set_result(value)
