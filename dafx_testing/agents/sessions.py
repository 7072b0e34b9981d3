"""Agent Framework durable agents, read back from the task hub.

An ``AgentFunctionApp`` registers one entity per agent, ``dafx-{name}``; each
session is one entity key, and its state is the framework's
``DurableAgentState`` (schema ``1.1.0``): a ``conversationHistory`` of
``request`` and ``response`` entries matched by ``correlationId``. The
simulator runs those entities through their real entity function; this module
only *reads* what they stored, so a test can look at a conversation the way a
person would::

    session = sim.agent_session("Joker", "s1")
    session.user_messages           # ["Tell a joke", "Explain it"]
    session.replies                 # the agent's final text of each turn
    session.tool_calls              # every functionCall the model made, with its result
    print(session)                  # the whole conversation as a transcript

The reading follows the stored JSON (``agent_framework_durabletask``'s
``DurableStateFields``), not the framework's classes, so it also works on a
state saved by another version of the framework.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AGENT_ENTITY_PREFIX",
    "AgentMessage",
    "AgentSession",
    "AgentToolCall",
    "AgentTurn",
    "agent_entity_name",
    "agent_of",
    "conversation_problems",
    "read_session",
    "session_key",
]

AGENT_ENTITY_PREFIX = "dafx-"
"""``AgentSessionId.ENTITY_NAME_PREFIX``: agent ``Joker`` lives in entity ``dafx-Joker``."""


def agent_entity_name(agent: str) -> str:
    """The entity that holds the sessions of ``agent``."""
    return AGENT_ENTITY_PREFIX + agent


def agent_of(entity_name: str) -> str | None:
    """The agent whose sessions ``entity_name`` holds (None for another entity)."""
    if entity_name.startswith(AGENT_ENTITY_PREFIX):
        return entity_name[len(AGENT_ENTITY_PREFIX):]
    return None


def session_key(session_id: str) -> str:
    """The entity key of a session id: ``key`` itself, or the key of ``@agent@key``."""
    if session_id.startswith("@") and session_id.count("@") >= 2:
        return session_id.split("@", 2)[2]
    return session_id


@dataclass(frozen=True)
class AgentToolCall:
    """A tool call the model asked for, and the result the tool gave (None if none stored)."""

    call_id: str
    name: str
    arguments: Any
    result: Any = None


@dataclass(frozen=True)
class AgentMessage:
    """One stored message: its role, its text, and what else it carried.

    Attributes:
        role: ``"user"``, ``"assistant"``, ``"tool"``, ``"system"``.
        text: the text contents joined (empty for a pure tool call).
        author: the agent's name on assistant messages.
        contents: the raw ``contents`` list, for what the fields above leave out.
    """

    role: str
    text: str
    author: str | None = None
    contents: tuple[dict[str, Any], ...] = ()

    @property
    def errors(self) -> list[str]:
        """The messages of ``error`` contents (a failed model call stores one)."""
        return [c.get("message") or c.get("errorCode") or "error"
                for c in self.contents if c.get("$type") == "error"]


@dataclass(frozen=True)
class AgentTurn:
    """One request to the agent and the response stored for it (None while it is pending).

    Attributes:
        correlation_id: the id the caller polls for.
        request: the request's messages (normally one user message).
        response: the response's messages (tool calls, tool results, the reply).
        orchestration_id: the calling orchestration instance, if any.
        response_type: ``"text"`` or ``"json"``.
        usage: the model's token counts, if it reported them.
    """

    correlation_id: str
    request: tuple[AgentMessage, ...]
    response: tuple[AgentMessage, ...] | None
    created_at: str | None = None
    orchestration_id: str | None = None
    response_type: str | None = None
    usage: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        """The request's text."""
        return "\n".join(m.text for m in self.request)

    @property
    def reply(self) -> str | None:
        """The response's final assistant text (None while pending)."""
        if self.response is None:
            return None
        texts = [m.text for m in self.response if m.role == "assistant" and m.text]
        return texts[-1] if texts else ""

    @property
    def errors(self) -> list[str]:
        """Errors stored in the response (the entity stores one when the model call fails)."""
        return [error for m in self.response or () for error in m.errors]


@dataclass
class AgentSession:
    """The conversation of one agent session, as its entity stored it.

    Attributes:
        agent: the agent name; ``key``: the session id (the entity key).
        turns: requests with their responses, in order.
        state: the raw ``DurableAgentState`` dict (None if the entity has no state).
    """

    agent: str
    key: str
    turns: list[AgentTurn] = field(default_factory=list)
    state: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def messages(self) -> list[AgentMessage]:
        """Every stored message, requests and responses, in conversation order."""
        return [m for turn in self.turns for m in turn.request + (turn.response or ())]

    @property
    def user_messages(self) -> list[str]:
        """The text of each request."""
        return [turn.message for turn in self.turns]

    @property
    def replies(self) -> list[str | None]:
        """The final reply of each turn (None for a turn still pending)."""
        return [turn.reply for turn in self.turns]

    @property
    def tool_calls(self) -> list[AgentToolCall]:
        """Every tool call in the session, with the result stored for it."""
        calls: list[dict[str, Any]] = []
        results: dict[str, Any] = {}
        for message in self.messages:
            for content in message.contents:
                if content.get("$type") == "functionCall":
                    calls.append(content)
                elif content.get("$type") == "functionResult":
                    results[content["callId"]] = content.get("result")
        # The framework's function-call contents always carry a call id and a name.
        return [AgentToolCall(call_id=c["callId"], name=c["name"],
                              arguments=c.get("arguments"), result=results.get(c["callId"]))
                for c in calls]

    def transcript(self) -> str:
        """The conversation as lines of ``role: text`` (tool calls and results included)."""
        lines = [f"agent session {self.agent}/{self.key}: {len(self.turns)} turn(s)"]
        for turn in self.turns:
            for message in turn.request + (turn.response or ()):
                lines.extend(_render(message))
            if turn.response is None:
                lines.append("  (no response yet)")
        return "\n".join(lines)

    __str__ = transcript


def read_session(agent: str, key: str, raw_state: str | None) -> AgentSession:
    """Parse an agent entity's stored state (the ``entityState`` JSON text)."""
    if raw_state is None:
        return AgentSession(agent=agent, key=key)
    state = json.loads(raw_state)
    history = _history(state)
    responses = {entry.get("correlationId"): entry for entry in history
                 if entry.get("$type") == "response"}
    turns = []
    for entry in history:
        if entry.get("$type") != "request":
            continue
        response = responses.get(entry.get("correlationId"))
        turns.append(AgentTurn(
            correlation_id=entry["correlationId"],   # required on every request
            request=_messages(entry),
            response=None if response is None else _messages(response),
            created_at=entry.get("createdAt"),
            orchestration_id=entry.get("orchestrationId"),
            response_type=entry.get("responseType"),
            usage=None if response is None else response.get("usage"),
        ))
    return AgentSession(agent=agent, key=key, turns=turns, state=state)


def conversation_problems(raw_state: str | None) -> list[str]:
    """What breaks "each user message and each reply exactly once" in a stored conversation.

    A request whose correlation id appears twice was recorded twice (a crash
    re-ran the batch and both writes survived); two responses for one id mean
    the reply was stored twice; a response with no request is orphaned.
    """
    if raw_state is None:
        return []
    counts = Counter((entry.get("$type"), entry.get("correlationId"))
                     for entry in _history(json.loads(raw_state)))
    problems = [f"the {kind} {cid!r} is stored {n} times" for (kind, cid), n in counts.items() if n > 1]
    requested = {cid for kind, cid in counts if kind == "request"}
    problems += [f"the response {cid!r} has no request" for kind, cid in counts
                 if kind == "response" and cid not in requested]
    return problems


def _history(state: Any) -> list[dict[str, Any]]:
    """The ``conversationHistory`` entries of a decoded state (none if it has no history)."""
    return ((state or {}).get("data") or {}).get("conversationHistory") or []


def _messages(entry: dict[str, Any]) -> tuple[AgentMessage, ...]:
    return tuple(
        AgentMessage(
            role=message.get("role") or "",
            text="".join(c.get("text") or "" for c in message.get("contents") or ()
                         if c.get("$type") == "text"),
            author=message.get("authorName"),
            contents=tuple(message.get("contents") or ()),
        )
        for message in entry.get("messages") or ()
    )


def _render(message: AgentMessage) -> list[str]:
    lines = []
    for content in message.contents:
        kind = content.get("$type")
        if kind == "text":
            lines.append(f"  {message.role}: {content.get('text')}")
        elif kind == "functionCall":
            arguments = json.dumps(content.get("arguments"), sort_keys=True)
            lines.append(f"  {message.role}: calls {content.get('name')}({arguments})")
        elif kind == "functionResult":
            lines.append(f"  {message.role}: {content.get('callId')} -> {content.get('result')!r}")
        elif kind == "error":
            lines.append(f"  {message.role}: error {content.get('errorCode')}: {content.get('message')}")
        else:
            lines.append(f"  {message.role}: [{kind}]")
    return lines
