"""What the fake model says: :class:`Reply`, independent of the API that carries it.

A reply is text, one or more tool calls, or JSON text for structured output. The wire modules
render it as a Chat Completions or Responses API payload, plain or streamed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .request import LLMRequest

__all__ = ["Reply", "Stamp", "ToolCall", "Usage", "as_reply", "stream_pieces"]


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asks for. ``arguments`` is a dict or already-encoded JSON text.

    Example::

        fake.tool_calls(ToolCall("get_weather", {"city": "Rome"}), ToolCall("get_time", '{"tz": "CET"}'))
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        """The arguments as the wire carries them: a JSON string."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Usage:
    """Token counts reported with a reply."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Stamp:
    """Identity and time of one served reply: ids derive from ``serial`` so runs are reproducible.

    ``serial`` counts the model calls of the simulator at work (:mod:`~dafx_testing.llm.runs`),
    or the fake's own requests outside one; ``created`` is the fake's clock in epoch seconds.
    """

    serial: int
    created: int

    def id(self, prefix: str) -> str:
        """A stable id such as ``chatcmpl-dafx0003``."""
        return f"{prefix}dafx{self.serial:04d}"

    def call_id(self, position: int) -> str:
        """The id of the ``position``-th tool call of this reply, e.g. ``call_3_0``."""
        return f"call_{self.serial}_{position}"


def _tokens(text: str) -> int:
    # About four characters a token, as OpenAI's rule of thumb; exactness does not matter, stability does.
    return max(1, (len(text) + 3) // 4)


@dataclass(frozen=True)
class Reply:
    """One model turn: ``text``, or ``tool_calls``, or both.

    Build them with :meth:`text`, :meth:`json` and :meth:`calls`, or let ``respond_with`` return a
    plain ``str`` (text) or ``dict``/``list`` (JSON).

    Example::

        Reply.text("Sunny in Rome.")
        Reply.calls(ToolCall("get_weather", {"city": "Rome"}))
        Reply.json({"setup": "...", "punchline": "..."})
    """

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    kind: str = "reply"

    @classmethod
    def text(cls, text: str) -> Reply:
        """A plain text answer."""
        return cls(content=text)

    @classmethod
    def json(cls, value: Any) -> Reply:
        """A structured-output answer: ``value`` encoded as JSON text."""
        return cls(content=json.dumps(value), kind="reply_json")

    @classmethod
    def calls(cls, *calls: ToolCall) -> Reply:
        """An answer that asks the client to run one or more tools (in parallel when several)."""
        return cls(tool_calls=tuple(calls), kind="tool_call")

    @property
    def finish_reason(self) -> str:
        """``tool_calls`` when the model asks for tools, else ``stop``."""
        return "tool_calls" if self.tool_calls else "stop"

    def usage_for(self, request: LLMRequest) -> Usage:
        """Stable, plausible token counts for answering ``request`` with this reply."""
        prompt = sum(_tokens(json.dumps(m)) for m in request.messages)
        completion = _tokens(self.content or "") + sum(_tokens(c.name + c.arguments_json) for c in self.tool_calls)
        return Usage(prompt, completion)

    def describe(self) -> str:
        """Short text for error messages, e.g. ``tool_call get_weather({"city": "Rome"})``."""
        if self.tool_calls:
            return "tool_call " + ", ".join(f"{c.name}({c.arguments_json})" for c in self.tool_calls)
        text = self.content or ""
        shown = self.content if len(text) <= 60 else f"{text[:57]}..."
        return f"{self.kind} {shown!r}"


def as_reply(value: Reply | str | dict[str, Any] | list[Any]) -> Reply:
    """Coerce what a ``respond_with`` function returned: ``str`` is text, ``dict``/``list`` is JSON."""
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply.text(value)
    if isinstance(value, (dict, list)):
        return Reply.json(value)
    raise TypeError(f"respond_with returned {type(value).__name__} {value!r}; return a str, a dict/list (JSON) or a Reply")


def stream_pieces(text: str) -> list[str]:
    """``text`` cut for streaming: one word (with its trailing space) per piece, as models stream."""
    return re.findall(r"\S+\s*|\s+", text)
