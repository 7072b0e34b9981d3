"""A golden test on a recorded cassette: two agents, a streamed tool round trip and a Responses call.

``fakes/cassettes/forecast_and_joke.jsonl`` was written by record mode against a local upstream
model (the personas in ``fakes/personas.py`` on a fixed clock). ``test_record_mode_reproduces_the_golden``
records the scenario again and compares bytes; run it with ``--dafx-update-goldens`` to rewrite
the file after an intended change.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_framework import Agent
from agent_framework.openai import OpenAIChatClient, OpenAIChatCompletionClient

from dafx_testing.llm import FakeLLM
from fakes.personas import JOKE, forecaster, joker

GOLDEN = Path(__file__).resolve().parents[2] / "fakes" / "cassettes" / "forecast_and_joke.jsonl"
APP_KEY = "sk-golden-app-key-0001"


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"fog, 14C in {city}"


async def _scenario() -> tuple[str, str]:
    forecast_client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=APP_KEY)
    forecasting = Agent(client=forecast_client, name="Forecaster", instructions="You are Forecaster.", tools=[get_weather])
    updates = forecasting.run("What is the weather in Lisbon?", stream=True)  # streamed, as the durable entity runs
    async for _ in updates:
        pass
    forecast = await updates.get_final_response()
    joking = Agent(client=OpenAIChatClient(model="gpt-4o-mini", api_key=APP_KEY), name="Joker", instructions="You are Joker.")
    joke = await joking.run("Tell me a pirate joke.")
    return forecast.text, joke.text


def test_golden_replay():
    with FakeLLM.replaying(GOLDEN) as fake:
        assert asyncio.run(_scenario()) == ("Forecast: fog, 14C in Lisbon.", JOKE)
    assert [(r.api, r.stream) for r in fake.requests] == [
        ("chat.completions", True),
        ("chat.completions", True),
        ("responses", False),
    ]


def test_record_mode_reproduces_the_golden(upstream, tmp_path, request):
    base, model = upstream
    model.agent("Forecaster").respond_with(forecaster)
    model.agent("Joker").respond_with(joker)
    update = request.config.getoption("--dafx-update-goldens", default=False)
    target = GOLDEN if update else tmp_path / GOLDEN.name
    with FakeLLM.recording(target, upstream=base):
        asyncio.run(_scenario())
    assert APP_KEY.encode() not in target.read_bytes()
    assert target.read_bytes() == GOLDEN.read_bytes(), "record mode output changed; rerun with --dafx-update-goldens"
