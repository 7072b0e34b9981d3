"""The Agent Framework's real chat clients against the fake: no ``http_client``, no app changes."""

from __future__ import annotations

import asyncio
import os

import openai
import pytest
from agent_framework import Agent
from agent_framework.foundry import FoundryChatClient
from agent_framework.openai import OpenAIChatClient, OpenAIChatCompletionClient
from azure.identity import AzureCliCredential
from azure.identity.aio import DefaultAzureCredential
from pydantic import BaseModel

CHAT_CLIENTS = {
    "chat_completions": lambda: OpenAIChatCompletionClient(model="gpt-4o-mini", api_key="sk-live-do-not-leak"),
    "responses": lambda: OpenAIChatClient(model="gpt-4o-mini", api_key="sk-live-do-not-leak"),
    "foundry": lambda: FoundryChatClient(
        project_endpoint=os.environ["FOUNDRY_PROJECT_ENDPOINT"], model=os.environ["FOUNDRY_MODEL"], credential=DefaultAzureCredential()
    ),
}
weather_calls: list[str] = []


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    weather_calls.append(city)
    return f"Sunny, 24C in {city}"


class Joke(BaseModel):
    setup: str
    punchline: str


async def _run(agent: Agent, message: str, *, stream: bool, **options):
    if not stream:
        return await agent.run(message, **options)
    updates = agent.run(message, stream=True, **options)
    async for _ in updates:
        pass
    return await updates.get_final_response()


@pytest.fixture(params=list(CHAT_CLIENTS))
def client_kind(request) -> str:
    return request.param


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_conversation_on_each_client(fake, client_kind, stream):
    fake.reply("Why did the pirate go to school? To improve his arrrticulation!").reply("It is a pun on 'arr'.")

    async def scenario():
        agent = Agent(client=CHAT_CLIENTS[client_kind](), name="Joker", instructions="You are good at telling jokes.")
        session = agent.create_session()
        first = await _run(agent, "Tell me a pirate joke.", stream=stream, session=session)
        second = await _run(agent, "Explain it.", stream=stream, session=session)
        return first, second

    first, second = asyncio.run(scenario())
    assert first.text.endswith("arrrticulation!") and second.text == "It is a pun on 'arr'."
    assert first.usage_details["total_token_count"] > 0
    assert [r.stream for r in fake.requests] == [stream, stream]
    fake.last_request.assert_conversation(
        ("system", "telling jokes"), ("user", "pirate joke"), ("assistant", "arrrticulation"), ("user", "Explain it.")
    )
    assert "sk-live-do-not-leak" not in repr(fake.requests)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_tool_round_trip_on_each_client(fake, client_kind, stream):
    weather_calls.clear()
    fake.tool_call("get_weather", {"city": "Rome"}).reply("It is sunny in Rome.")

    async def scenario():
        agent = Agent(client=CHAT_CLIENTS[client_kind](), name="Forecaster", instructions="Report weather.", tools=[get_weather])
        return await _run(agent, "Weather in Rome?", stream=stream)

    assert asyncio.run(scenario()).text == "It is sunny in Rome."
    assert weather_calls == ["Rome"]
    first, second = fake.requests
    assert first.tool_names == ["get_weather"]
    second.assert_conversation(("user", "Rome?"), ("tool", "Sunny, 24C in Rome"))


def test_structured_output_on_each_client(fake, client_kind):
    fake.reply_json({"setup": "Why did the pirate go to school?", "punchline": "To improve his arrrticulation!"})

    async def scenario():
        agent = Agent(client=CHAT_CLIENTS[client_kind](), name="Joker", instructions="You tell jokes.")
        return await agent.run("A pirate joke, please.", options={"response_format": Joke})

    joke = asyncio.run(scenario()).value
    assert isinstance(joke, Joke) and joke.punchline == "To improve his arrrticulation!"
    assert set(fake.last_request.response_format["properties"]) == {"setup", "punchline"}


def test_foundry_goes_to_the_project_endpoint_with_a_fake_token(fake):
    fake.reply("hi")
    asyncio.run(Agent(client=CHAT_CLIENTS["foundry"](), instructions="x").run("hello"))
    request = fake.last_request
    assert request.url == os.environ["FOUNDRY_PROJECT_ENDPOINT"] + "/openai/v1/responses"
    assert request.headers["authorization"] == "Bearer ***" and request.model == "gpt-4o-mini"


def test_azure_chat_completions_use_the_deployment_route_and_api_version(fake):
    fake.model("my-deployment").reply("from Azure")

    async def scenario():
        client = OpenAIChatCompletionClient(
            model="my-deployment", azure_endpoint="https://contoso.openai.azure.com", api_key="azure-key-secret"
        )
        return await _run(Agent(client=client, instructions="x"), "hello", stream=True)

    assert asyncio.run(scenario()).text == "from Azure"
    request = fake.last_request
    assert request.url.startswith("https://contoso.openai.azure.com/openai/deployments/my-deployment/chat/completions?")
    assert (request.deployment, request.api_version) == ("my-deployment", "2024-12-01-preview")
    assert request.headers["api-key"] == "***"


def test_azure_with_a_credential_built_from_env_defaults(fake):
    fake.reply("from Azure Responses")

    async def scenario():  # how apps build it at import time: env plus AzureCliCredential, no key
        client = OpenAIChatClient(
            model=os.environ["AZURE_OPENAI_DEPLOYMENT_NAME"],
            azure_endpoint=os.environ["AZURE_OPENAI_ENDPOINT"],
            credential=AzureCliCredential(),
        )
        return await Agent(client=client, instructions="x").run("hello")

    assert asyncio.run(scenario()).text == "from Azure Responses"
    assert fake.last_request.url.startswith("https://dafx-fake.openai.azure.com/openai/v1/responses")
    assert fake.last_request.headers["authorization"] == "Bearer ***"


def test_the_installed_openai_wire_library_is_intercepted(fake):
    """openai 3.x sends through httpx2, 2.x through httpx; whichever is installed is the one faked."""
    fake.reply("intercepted")
    sdk = openai.AsyncOpenAI(api_key="sk-test", base_url="https://api.openai.test/v1")
    wire = next(cls.__module__.split(".")[0] for cls in type(sdk._client).__mro__ if cls.__module__.startswith("httpx"))
    assert wire == ("httpx2" if openai.__version__.startswith("3.") else "httpx")
    completion = asyncio.run(sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}]))
    assert completion.choices[0].message.content == "intercepted"


@pytest.mark.parametrize(
    ("kind", "cause"),
    [("rate_limit", openai.RateLimitError), ("timeout", openai.APITimeoutError), ("content_filter", openai.BadRequestError)],
)
def test_faults_reach_the_agent_through_the_async_client(fake, client_kind, kind, cause):
    fake.fault(kind)

    async def scenario():
        client = CHAT_CLIENTS[client_kind]()
        client.client = client.client.with_options(max_retries=0)  # see each fault once, with no back-off sleeps
        return await Agent(client=client, instructions="x").run("hello")

    with pytest.raises(Exception) as raised:
        asyncio.run(scenario())
    assert isinstance(raised.value.__cause__, cause)


def test_a_stream_cut_mid_answer_fails_the_streaming_run(fake):
    fake.fault("stream_cut", partial="Why did the pirate go to school")

    async def scenario():
        return await _run(Agent(client=CHAT_CLIENTS["chat_completions"](), instructions="x"), "joke", stream=True)

    with pytest.raises(Exception, match="incomplete chunked read|Connection error"):
        asyncio.run(scenario())
