"""The model personas in fakes/, driving real Agent Framework agents."""

from __future__ import annotations

import asyncio

from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient
from pydantic import BaseModel

from fakes.personas import EXPLANATION, JOKE, forecaster, joker, schema_filler


class Forecast(BaseModel):
    city: str
    celsius: int
    sky: list[str]


def _agent(instructions: str, **options) -> Agent:
    return Agent(client=OpenAIChatCompletionClient(model="gpt-4o-mini", api_key="sk-test"), instructions=instructions, **options)


def test_joker_jokes_then_explains(fake):
    fake.respond_with(joker)

    async def scenario():
        agent = _agent("You tell jokes.")
        session = agent.create_session()
        return [(await agent.run(q, session=session)).text for q in ("Tell me a joke.", "Explain it.")]

    assert asyncio.run(scenario()) == [JOKE, EXPLANATION]


def test_forecaster_calls_the_tool_for_the_asked_city_and_reports_it(fake):
    fake.respond_with(forecaster)

    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"rain in {city}"

    result = asyncio.run(_agent("Report weather.", tools=[get_weather]).run("What is the weather in Buenos Aires?"))
    assert result.text == "Forecast: rain in Buenos Aires."


def test_schema_filler_fits_any_pydantic_model(fake):
    fake.respond_with(schema_filler)
    result = asyncio.run(_agent("Forecast.").run("Forecast please.", options={"response_format": Forecast}))
    assert result.value == Forecast(city="<city>", celsius=1, sky=["<sky>"])
