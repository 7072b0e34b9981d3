"""The Chat Completions wire: ``POST .../chat/completions``, plain JSON or server-sent events.

Shapes follow ``openai.types.chat.ChatCompletion`` and ``ChatCompletionChunk``. ``created`` is
required by the SDK (without it the client fails with a ``TypeError``); a streamed answer ends
with a usage chunk (``choices: []``) when the request set ``stream_options.include_usage``, then
``data: [DONE]``. Answering a streaming request with plain JSON would not fail but yield empty
text, so :func:`render` always branches on the request's ``stream`` flag.
"""

from __future__ import annotations

import json
from typing import Any

from .replies import Reply, Stamp, stream_pieces
from .request import LLMRequest

__all__ = ["payload", "stream_events"]


def _usage(reply: Reply, request: LLMRequest) -> dict[str, int]:
    usage = reply.usage_for(request)
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _envelope(request: LLMRequest, stamp: Stamp, obj: str) -> dict[str, Any]:
    return {
        "id": stamp.id("chatcmpl-"),
        "object": obj,
        "created": stamp.created,
        "model": request.model or "unknown",
        "system_fingerprint": "fp_dafx",
    }


def payload(reply: Reply, request: LLMRequest, stamp: Stamp) -> dict[str, Any]:
    """The ``chat.completion`` object answering ``request`` with ``reply``."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": stamp.call_id(i), "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
            for i, c in enumerate(reply.tool_calls)
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
    return {**_envelope(request, stamp, "chat.completion"), "choices": [choice], "usage": _usage(reply, request)}


def stream_events(reply: Reply, request: LLMRequest, stamp: Stamp) -> list[str]:
    """The ``data:`` events of the streamed answer, ``[DONE]`` last."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**_envelope(request, stamp, "chat.completion.chunk"), "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in stream_pieces(reply.content or "")]
    for i, call in enumerate(reply.tool_calls):
        head = {"index": i, "id": stamp.call_id(i), "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks.append(chunk({"tool_calls": [head]}))
        chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": call.arguments_json}}]}))
    chunks.append(chunk({}, reply.finish_reason))
    if request.include_usage:
        chunks.append({**_envelope(request, stamp, "chat.completion.chunk"), "choices": [], "usage": _usage(reply, request)})
    return [f"data: {json.dumps(c)}" for c in chunks] + ["data: [DONE]"]

