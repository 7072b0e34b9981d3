"""The exceptions the fake model raises.

Every one derives from :class:`FakeLLMError`, so ``except FakeLLMError`` catches them all. Each
message names the request (API, agent, last user message), what the script or cassette held, and
the fix.
"""

from __future__ import annotations

__all__ = [
    "CassetteMiss",
    "FakeLLMError",
    "NetworkBlocked",
    "ScriptExhausted",
    "UnmatchedRequest",
]


# Rooted at Exception until the engine's ``DafxError`` lands; then this base becomes its subclass.
class FakeLLMError(Exception):
    """Base of every error raised by :mod:`dafx_testing.llm`."""


class ScriptExhausted(FakeLLMError):
    """A request arrived for a script (or an agent's lane) with nothing left to answer.

    Example::

        with FakeLLM() as fake:
            fake.reply("only one")
            ...  # the app asks twice -> ScriptExhausted names both requests
    """


class UnmatchedRequest(FakeLLMError):
    """No routed lane matched the request and the default script is empty."""


class CassetteMiss(FakeLLMError):
    """Strict replay met a request that the cassette never recorded; the nearest one is shown."""


class NetworkBlocked(FakeLLMError):
    """Outbound HTTP that is neither a model call nor allowed was attempted while faking was on.

    Example::

        with FakeLLM():
            requests.get("https://example.com")   # NetworkBlocked: ... https://example.com/
    """
