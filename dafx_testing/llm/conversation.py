"""One view of the conversation, whichever API carried it.

Chat Completions sends ``messages``; the Responses API sends ``instructions`` plus ``input`` items
(and, when the server keeps the history, only the new items and a ``previous_response_id``).
Both are normalised here to a list of messages in the Chat Completions shape::

    {"role": "system" | "user" | "assistant" | "tool", "content": str | None,
     "tool_calls": [{"id", "name", "arguments"}],   # assistant turns that call tools
     "tool_call_id": str}                           # tool results
"""

from __future__ import annotations

from typing import Any

__all__ = ["Message", "from_chat", "from_responses", "reply_messages", "text_of"]

Message = dict[str, Any]


def text_of(content: Any) -> str | None:
    """The text of a message ``content``: a string, or the joined text of its parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") or part.get("refusal") or "" for part in content if isinstance(part, dict)]
        return "".join(texts)
    return str(content)


def _chat_message(message: dict[str, Any]) -> Message:
    out: Message = {"role": message.get("role"), "content": text_of(message.get("content"))}
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {"id": call.get("id"), "name": call["function"]["name"], "arguments": call["function"].get("arguments")}
            for call in message["tool_calls"]
        ]
    if "tool_call_id" in message:
        out["tool_call_id"] = message["tool_call_id"]
    return out


def from_chat(body: dict[str, Any]) -> list[Message]:
    """The messages of a Chat Completions request body."""
    return [_chat_message(message) for message in body.get("messages") or []]


def _response_items(items: Any) -> list[Message]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[Message] = []
    for item in items or []:
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item.get("role"), "content": text_of(item.get("content"))})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "name": item.get("name"), "arguments": item.get("arguments")}
            if messages and messages[-1]["role"] == "assistant" and messages[-1]["content"] is None:
                messages[-1].setdefault("tool_calls", []).append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": text_of(item.get("output")), "tool_call_id": item.get("call_id")})
    return messages


def from_responses(body: dict[str, Any], earlier: list[Message]) -> list[Message]:
    """The messages of a Responses API request body.

    Args:
        body: the request body.
        earlier: the conversation up to ``previous_response_id`` (empty when there is none).
    """
    instructions = body.get("instructions")
    system = [{"role": "system", "content": text_of(instructions)}] if instructions else []
    history = [message for message in earlier if message["role"] != "system"]
    return system + history + _response_items(body.get("input"))


def reply_messages(text: str | None, tool_calls: list[dict[str, Any]]) -> list[Message]:
    """The assistant turn a reply adds to the conversation (for ``previous_response_id`` chains)."""
    message: Message = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return [message]
