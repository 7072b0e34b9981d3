"""Agent conversations as an orchestration's history records them.

When an orchestration calls a durable agent (``yield agent.run(...)``), its
history holds the request it sent to the agent's ``dafx-`` entity and the
response it got back. :func:`conversations_in` reads those pairs back into
:class:`~dafx_testing.agents.sessions.AgentSession` objects, so a saved history file can
show its conversations without the agent's entity state::

    for session in conversations_in(load_history("post-1.json")["history"]):
        print(session.transcript())

What a history cannot show: the messages of other callers of the same
session, and the agent's stored state itself. The response of each call still
carries the model's tool calls and their results, so those are shown. With a
live simulator, :meth:`Simulator.agent_sessions` reads the full state instead.
"""

from __future__ import annotations

from typing import Any

from ..agents.sessions import AgentMessage, AgentSession, AgentTurn
from ..core.history import Event
from .interactions import IN, OUT, decode_payload, read_interactions

__all__ = ["conversations_in"]

# The run response (``AgentResponse.to_dict()``) names contents in snake_case;
# the stored state, which AgentMessage follows, in camelCase with ``$type``.
_CONTENT_TYPES = {"function_call": "functionCall", "function_result": "functionResult"}
_CONTENT_KEYS = {"type": "$type", "call_id": "callId", "error_code": "errorCode"}


def conversations_in(history: list[Event]) -> list[AgentSession]:
    """The agent sessions this history called, each with the turns it recorded, in call order.

    A call whose response has not arrived yet is a turn with ``response=None``.
    Payloads that do not decode as the Agent Framework's are shown as their raw text.
    """
    sessions: dict[tuple[str, str], AgentSession] = {}
    calls: dict[int, tuple[AgentSession, int]] = {}   # call's sequence number -> its turn
    for step in read_interactions(history):
        participant = step.participant
        if participant.kind != "agent":
            continue
        if step.direction == OUT and step.label == "call run":
            session = sessions.setdefault((participant.name, participant.key),
                                          AgentSession(agent=participant.name, key=participant.key))
            session.turns.append(_request_turn(step.value))
            if step.task_id is not None:
                calls[step.task_id] = (session, len(session.turns) - 1)
        elif step.direction == IN and step.task_id in calls:
            session, position = calls.pop(step.task_id)
            messages, usage = _response(step.value, step.failed)
            session.turns[position] = _replace(session.turns[position], messages, usage)
            session.agent = next((m.author for m in messages if m.author), session.agent)
    return list(sessions.values())


def _request_turn(request: Any) -> AgentTurn:
    """The turn a ``run`` call opens, from the call's decoded input (a ``RunRequest``)."""
    if not isinstance(request, dict):
        return AgentTurn(correlation_id="", request=(_text("user", str(request)),), response=None)
    return AgentTurn(
        correlation_id=request.get("correlationId") or "",
        request=(_text(request.get("role") or "user", str(request.get("message") or "")),),
        response=None,
        created_at=request.get("created_at"),
        orchestration_id=request.get("orchestrationId"),
        response_type=request.get("request_response_format"),
    )


def _response(answer: Any, failed: bool) -> tuple[tuple[AgentMessage, ...], dict[str, Any] | None]:
    """The messages and usage of the entity's decoded answer: ``{"result": "<AgentResponse>"}``."""
    result = answer.get("result") if isinstance(answer, dict) else answer
    response = decode_payload(result) if isinstance(result, str) else result
    if failed or not isinstance(response, dict):
        error = {"$type": "error", "message": str(response)}
        return (AgentMessage("assistant", "", contents=(error,)),), None
    messages = tuple(_message(m) for m in response.get("messages") or () if isinstance(m, dict))
    return messages, response.get("usage_details")


def _text(role: str, text: str) -> AgentMessage:
    return AgentMessage(role, text, contents=({"$type": "text", "text": text},))


def _replace(turn: AgentTurn, response: tuple[AgentMessage, ...],
             usage: dict[str, Any] | None) -> AgentTurn:
    return AgentTurn(turn.correlation_id, turn.request, response, turn.created_at,
                     turn.orchestration_id, turn.response_type, usage)


def _message(raw: dict[str, Any]) -> AgentMessage:
    contents = tuple(_content(c) for c in raw.get("contents") or () if isinstance(c, dict))
    text = "".join(c.get("text") or "" for c in contents if c.get("$type") == "text")
    return AgentMessage(role=raw.get("role") or "", text=text, author=raw.get("author_name"),
                        contents=contents)


def _content(raw: dict[str, Any]) -> dict[str, Any]:
    content = {_CONTENT_KEYS.get(key, key): value for key, value in raw.items()}
    kind = content.get("$type")
    content["$type"] = _CONTENT_TYPES.get(kind, kind) if isinstance(kind, str) else kind
    if isinstance(content.get("arguments"), str):   # the model's wire form; the state has a dict
        content["arguments"] = decode_payload(content["arguments"])
    return content
