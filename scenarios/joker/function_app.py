"""One durable agent behind its HTTP API: the Agent Framework's single-agent sample.

``AgentFunctionApp`` registers the ``dafx-Joker`` entity (one entity key per
conversation), ``POST /api/agents/Joker/run`` and ``GET /api/health``. The
model client is built at import time from the environment with an
``AzureCliCredential``, exactly as the sample deploys it; under test the
``fake_llm`` fixture supplies the endpoint, the model name and the token.
"""

import os

from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.foundry import FoundryChatClient
from azure.identity import AzureCliCredential

joker = Agent(
    client=FoundryChatClient(
        project_endpoint=os.environ["FOUNDRY_PROJECT_ENDPOINT"],
        model=os.environ["FOUNDRY_MODEL"],
        credential=AzureCliCredential(),
    ),
    name="Joker",
    instructions="You are good at telling jokes.",
)

app = AgentFunctionApp(agents=[joker])
