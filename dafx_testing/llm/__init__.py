"""Fake LLMs on the real wire: scripted, failing and recorded models, and fake Azure credentials.

``FakeLLM`` answers the OpenAI-wire calls of an app's real clients (openai 2.x and 3.x, Agent
Framework chat clients, Azure OpenAI, Azure AI Foundry) with scripted replies, injected faults
or a recorded cassette, captures every request, fakes ``azure.identity`` tokens and blocks any
other outbound HTTP.

Example::

    from dafx_testing.llm import FakeLLM

    with FakeLLM() as fake:
        fake.tool_call("get_weather", {"city": "Rome"}).reply("Sunny in Rome.")
        ...  # run the app
        fake.last_request.assert_conversation("Weather in Rome?", ("tool", "Sunny"))

Usable without the simulator: it imports only :mod:`dafx_testing.core` (errors, and the
latency meter a simulator opens to charge model time to virtual time).
"""

from .errors import CassetteMiss, FakeLLMError, NetworkBlocked, ScriptExhausted, UnmatchedRequest
from .fake import FakeLLM
from .faults import FAULT_KINDS
from .plan import FaultPlan
from .replies import Reply, ToolCall
from .request import LLMRequest

__all__ = [
    "FAULT_KINDS",
    "CassetteMiss",
    "FakeLLM",
    "FakeLLMError",
    "FaultPlan",
    "LLMRequest",
    "NetworkBlocked",
    "Reply",
    "ScriptExhausted",
    "ToolCall",
    "UnmatchedRequest",
]
