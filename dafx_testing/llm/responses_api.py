"""The Responses API wire: ``POST .../responses``, plain JSON or typed server-sent events.

Shapes follow ``openai.types.responses.Response`` and its stream events. A streamed answer is
the sequence the service sends: ``response.created``, ``response.in_progress``, per output item
``response.output_item.added`` → deltas → ``...done`` → ``response.output_item.done``, and
``response.completed`` carrying the whole response with its usage. Text is an output item of
type ``message``; a tool call is an item of type ``function_call`` with ``call_id``.
"""

from __future__ import annotations

import json
from typing import Any

from .replies import Reply, Stamp, stream_pieces
from .request import LLMRequest

__all__ = ["payload", "response_id", "stream_events"]


def response_id(stamp: Stamp) -> str:
    """The id of the response served under ``stamp`` (what ``previous_response_id`` will name)."""
    return stamp.id("resp_")


def _message_item(text: str, stamp: Stamp, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    return {"id": stamp.id("msg_"), "type": "message", "status": status, "role": "assistant", "content": content}


def _call_items(reply: Reply, stamp: Stamp, done: bool) -> list[dict[str, Any]]:
    return [
        {
            "id": f"fc_{stamp.call_id(i)}",
            "type": "function_call",
            "status": "completed" if done else "in_progress",
            "call_id": stamp.call_id(i),
            "name": call.name,
            "arguments": call.arguments_json if done else "",
        }
        for i, call in enumerate(reply.tool_calls)
    ]


def _output(reply: Reply, stamp: Stamp) -> list[dict[str, Any]]:
    text = [_message_item(reply.content, stamp, "completed")] if reply.content is not None else []
    return text + _call_items(reply, stamp, done=True)


def _usage(reply: Reply, request: LLMRequest) -> dict[str, Any]:
    usage = reply.usage_for(request)
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def _response(request: LLMRequest, stamp: Stamp, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {
        "id": response_id(stamp),
        "object": "response",
        "created_at": stamp.created,
        "status": status,
        "model": request.model or "unknown",
        "output": output,
        "parallel_tool_calls": request.body.get("parallel_tool_calls", True),
        "tool_choice": request.body.get("tool_choice", "auto"),
        "tools": request.body.get("tools", []),
        "previous_response_id": request.body.get("previous_response_id"),
        "instructions": request.body.get("instructions"),
        "text": request.body.get("text", {"format": {"type": "text"}}),
        "error": None,
        "incomplete_details": None,
        "metadata": {},
        "usage": usage,
    }


def payload(reply: Reply, request: LLMRequest, stamp: Stamp) -> dict[str, Any]:
    """The ``response`` object answering ``request`` with ``reply``."""
    return _response(request, stamp, "completed", _output(reply, stamp), _usage(reply, request))


def _text_events(text: str, stamp: Stamp, index: int) -> list[dict[str, Any]]:
    item_id = stamp.id("msg_")
    at = {"item_id": item_id, "output_index": index, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    return [
        {"type": "response.output_item.added", "output_index": index, "item": _message_item(text, stamp, "in_progress")},
        {"type": "response.content_part.added", **at, "part": part},
        *({"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []} for piece in stream_pieces(text)),
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": index, "item": _message_item(text, stamp, "completed")},
    ]


def _call_events(reply: Reply, stamp: Stamp, first_index: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    pending, done = _call_items(reply, stamp, done=False), _call_items(reply, stamp, done=True)
    for offset, (start, end) in enumerate(zip(pending, done)):
        at = {"item_id": start["id"], "output_index": first_index + offset}
        events += [
            {"type": "response.output_item.added", "output_index": at["output_index"], "item": start},
            {"type": "response.function_call_arguments.delta", **at, "delta": end["arguments"]},
            {"type": "response.function_call_arguments.done", **at, "arguments": end["arguments"], "name": end["name"]},
            {"type": "response.output_item.done", "output_index": at["output_index"], "item": end},
        ]
    return events


def stream_events(reply: Reply, request: LLMRequest, stamp: Stamp) -> list[str]:
    """The ``event:``/``data:`` blocks of the streamed answer, ``response.completed`` last."""
    text = _text_events(reply.content, stamp, 0) if reply.content is not None else []
    started = _response(request, stamp, "in_progress", [], None)
    events = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        *text,
        *_call_events(reply, stamp, 1 if text else 0),
        {"type": "response.completed", "response": payload(reply, request, stamp)},
    ]
    return [
        f"event: {event['type']}\ndata: {json.dumps({**event, 'sequence_number': n})}" for n, event in enumerate(events)
    ]

