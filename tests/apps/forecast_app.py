"""A tool-using durable agent, and an orchestration that yields a fire-and-forget call.

Used by tests/test_durable_agents.py: the Forecaster calls ``get_weather``; the
``yield_fire_and_forget`` orchestrator shows what happens on Azure Functions when
the pre-completed task of ``wait_for_response=False`` is yielded.
"""

import azure.durable_functions as df
from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny, 24C in {city}"


forecaster = Agent(client=OpenAIChatCompletionClient(model="gpt-4o-mini"), name="Forecaster",
                   instructions="You are the Forecaster. Use your tool.", tools=[get_weather])

app = AgentFunctionApp(agents=[forecaster])


@app.orchestration_trigger(context_name="context")
def yield_fire_and_forget(context: df.DurableOrchestrationContext):
    agent = app.get_agent(context, "Forecaster")
    accepted = yield agent.run("Weather in Oslo?", session=agent.create_session(),
                               options={"wait_for_response": False})
    return accepted.text
