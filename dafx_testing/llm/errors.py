"""The exceptions the fake model raises.

Every one derives from :class:`FakeLLMError` (itself a ``DafxError``), so ``except FakeLLMError``
catches them all. Each message names the request (API, agent, last user message), what the script
or cassette held, and the fix.
"""

from __future__ import annotations

import sys

from ..core.errors import DafxError

__all__ = [
    "CassetteMiss",
    "FakeLLMError",
    "NetworkBlocked",
    "ScriptExhausted",
    "UnmatchedRequest",
    "through_openai",
]


class FakeLLMError(DafxError):
    """Base of every error raised by :mod:`dafx_testing.llm`; a :class:`~dafx_testing.core.errors.DafxError`."""


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


_THROUGH_OPENAI: dict[type[FakeLLMError], type[FakeLLMError]] = {}


def through_openai(error: FakeLLMError) -> FakeLLMError:
    """``error`` as an instance that is also an ``openai.OpenAIError`` when openai is loaded.

    openai 2.x wraps any other exception from its transport in ``APIConnectionError("Connection
    error.")`` and retries it with back-off sleeps; an ``OpenAIError`` it re-raises untouched
    (``_base_client.py``, the send loop). So a script error reaches the app unretried, with its
    message, on openai 2.x and 3.x alike; ``except ScriptExhausted`` still catches it.
    """
    openai = sys.modules.get("openai")
    if openai is None or isinstance(error, openai.OpenAIError):
        return error
    kind = type(error)
    if kind not in _THROUGH_OPENAI:
        names = {"__module__": kind.__module__, "__qualname__": kind.__qualname__, "__doc__": kind.__doc__}
        _THROUGH_OPENAI[kind] = type(kind.__name__, (kind, openai.OpenAIError), names)
    return _THROUGH_OPENAI[kind](*error.args)
