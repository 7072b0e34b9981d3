"""What the app sent: :class:`LLMRequest`, one captured model call.

``fake.requests`` holds one per call, in order, with secrets masked. The same object is what a
``respond_with`` function and a routing rule see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .conversation import Message
from .routes import Api

__all__ = ["LLMRequest"]

Turn = str | tuple[str, str]


@dataclass(frozen=True)
class LLMRequest:
    """One model call as the fake received it.

    Attributes:
        index: 1-based position among all model calls the fake received.
        api: ``"chat.completions"`` or ``"responses"``.
        method: the HTTP method (always ``POST`` for model calls).
        url: the full URL, secret query parameters masked.
        headers: lower-cased headers, ``Authorization``/``api-key``/... masked.
        body: the parsed JSON body, as sent.
        messages: the whole conversation in Chat Completions shape (see
            :mod:`dafx_testing.llm.conversation`), including history kept server-side through
            ``previous_response_id``.
        deployment: the Azure deployment in the path, if any.
        api_version: the ``api-version`` query parameter, if any.
        agent: the name of the declared agent (``fake.agent(...)``) this request matched, if any.

    Example::

        req = fake.requests[-1]
        assert req.stream and req.model == "gpt-4o-mini"
        req.assert_conversation("Tell me a pirate joke.", ("assistant", "Why did the pirate"), "Explain it.")
    """

    index: int
    api: Api
    method: str
    url: str
    headers: Mapping[str, str]
    body: dict[str, Any]
    messages: list[Message] = field(repr=False)
    deployment: str | None = None
    api_version: str | None = None
    agent: str | None = None

    @property
    def model(self) -> str | None:
        """The ``model`` in the body, else the Azure deployment from the path."""
        return self.body.get("model") or self.deployment

    @property
    def stream(self) -> bool:
        """Whether the client asked for a server-sent event stream (``"stream": true``)."""
        return self.body.get("stream") is True

    @property
    def include_usage(self) -> bool:
        """Whether a streamed Chat Completions reply must end with a usage chunk."""
        return bool((self.body.get("stream_options") or {}).get("include_usage"))

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The function tools offered, each as ``{"name", "description", "parameters"}``."""
        tools = []
        for tool in self.body.get("tools") or []:
            spec = tool.get("function", tool)  # Chat nests under "function"; Responses is flat
            if tool.get("type") == "function":
                tools.append({key: spec.get(key) for key in ("name", "description", "parameters")})
        return tools

    @property
    def tool_names(self) -> list[str]:
        """The names of the function tools offered."""
        return [tool["name"] for tool in self.tools]

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The JSON schema the reply must follow, ``{}`` for free JSON, ``None`` for plain text."""
        fmt = self.body.get("response_format") or (self.body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            return (fmt.get("json_schema") or fmt).get("schema") or {}
        if fmt.get("type") == "json_object":
            return {}
        return None

    @property
    def instructions(self) -> str:
        """The system and developer messages, joined by blank lines."""
        return "\n\n".join(m["content"] or "" for m in self.messages if m["role"] in ("system", "developer"))

    @property
    def last_user_message(self) -> str | None:
        """The text of the last user message, if any."""
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else None

    @property
    def tool_results(self) -> list[Message]:
        """The tool-result messages, oldest first."""
        return [m for m in self.messages if m["role"] == "tool"]

    def describe(self) -> str:
        """One line naming the request for error messages: number, API, agent, model, last user text."""
        agent = f"agent {self.agent!r}" if self.agent else "no declared agent"
        last = self.tool_results[-1]["content"] if self.messages and self.messages[-1]["role"] == "tool" else None
        said = f"tool result {last!r}" if last is not None else f"last user message {self.last_user_message!r}"
        return f"request #{self.index} ({self.api}, {agent}, model {self.model!r}): {said}"

    def assert_conversation(self, *turns: Turn) -> None:
        """Assert that the conversation holds ``turns`` in this order (other messages may sit between).

        Each turn is a text the message must contain, or a ``(role, text)`` pair.

        Raises:
            AssertionError: listing the messages actually sent, when a turn is missing.
        """
        position = 0
        for turn in turns:
            role, text = turn if isinstance(turn, tuple) else (None, turn)
            while position < len(self.messages):
                message = self.messages[position]
                position += 1
                if (role is None or message["role"] == role) and text in (message["content"] or ""):
                    break
            else:
                sent = "\n".join(f"  {m['role']}: {json.dumps(m.get('content'))}" for m in self.messages)
                raise AssertionError(f"{self.describe()}\ndoes not contain {turn!r} after the turns before it; sent:\n{sent}")
