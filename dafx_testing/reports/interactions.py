"""A history read as interactions: who the orchestration talked to, what was said, and when.

A host-format history is a list of DTFx events; a reader wants to know that the
orchestration asked the ``draft_content`` activity for something and got an
answer back two seconds (of virtual time) later. :func:`read_interactions`
turns each meaningful event into an :class:`Interaction` between the
orchestration and one :class:`Participant`: an activity, the timer service, an
entity, an agent (an Agent Framework ``dafx-`` entity), a sub-orchestration,
another instance, or the client that started it and raised its events::

    for step in read_interactions(status.history):
        print(step.elapsed, step.direction, step.participant.label, step.label)

Completions name what they complete (``TaskCompleted`` carries only the
sequence number of its ``TaskScheduled``; an entity's response only the id of
its request). The Mermaid diagram and the HTML report are both drawn from
these interactions; the text timeline is :func:`dafx_testing.core.timeline.timeline`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from ..agents.sessions import agent_of
from ..core.history import Event, EventType, OrchestrationStatus, parse_timestamp

__all__ = ["Participant", "Interaction", "read_interactions", "entity_request", "decode_payload"]

OUT, IN = "out", "in"
"""Interaction directions: sent by the orchestration, or received by it."""

CLIENT = "client"
"""The participant that starts the instance and raises its events (a person, an HTTP function)."""


@dataclass(frozen=True)
class Participant:
    """Something the orchestration exchanges messages with.

    Attributes:
        kind: ``"client"``, ``"activity"``, ``"timer"``, ``"entity"``, ``"agent"``,
            ``"sub-orchestration"`` or ``"instance"``.
        name: the function, entity or agent name (``""`` for the client and timers).
        key: what tells two participants of one kind apart: an entity's key, a
            sub-orchestration's instance id (``""`` when the name is enough).
    """

    kind: str
    name: str = ""
    key: str = ""

    @property
    def label(self) -> str:
        """A short human name: ``activity draft_content``, ``entity counter@k1``, ``timers``."""
        if self.kind == CLIENT:
            return "client"
        if self.kind == "timer":
            return "timers"
        key = self.key if len(self.key) <= 12 else self.key[:8] + "..."
        if self.kind in ("entity", "agent"):
            return f"{self.kind} {self.name}@{key}"
        if self.kind == "sub-orchestration":
            return f"sub-orchestration {self.name} ({key})"
        return f"{self.kind} {self.name or key}"


@dataclass(frozen=True)
class Interaction:
    """One meaningful history event, as a message to or from a participant.

    Attributes:
        index: the event's position in the history.
        at: its virtual time; ``elapsed``: the time since the history's first event.
        episode: the replay episode (1-based) that recorded it.
        event: the DTFx event type.
        direction: ``"out"`` (the orchestration sent it) or ``"in"`` (it received it).
        participant: the other side.
        label: what happened, in a few words (``"call run"``, ``"fired"``, ``"Completed"``).
        payload: the input, result or reason as stored (JSON text, or None).
        task_id: the sequence number this event creates or completes, if any.
        failed: True for failures (a failed task, a failed execution, an entity error).
        one_way: True for messages that get no answer (entity signals, events sent to
            other instances).
    """

    index: int
    at: datetime
    elapsed: timedelta
    episode: int
    event: EventType
    direction: str
    participant: Participant
    label: str
    payload: str | None = None
    task_id: int | None = None
    failed: bool = False
    one_way: bool = False

    @property
    def reply(self) -> bool:
        """True for an answer to something the orchestration sent (a completion, a timer firing)."""
        return self.direction == IN and self.task_id is not None

    @property
    def value(self) -> Any:
        """The payload decoded (JSON inside JSON text unwrapped); None when there is none."""
        return decode_payload(self.payload)

    @property
    def summary(self) -> str:
        """The payload in one line, as a person would want to read it.

        An agent call shows the message sent and an agent's answer its reply
        text; other payloads their JSON, compact. Empty when there is no payload.
        """
        if self.payload is None:
            return ""
        value = self.value
        if self.event == EventType.TaskScheduled and isinstance(value, list) and len(value) == 1:
            value = decode_payload(value[0])    # the host passes an activity's input in an array
        if self.reply and self.participant.kind in ("entity", "agent") and isinstance(value, dict):
            value = decode_payload(value.get("result"))    # the entity's ResponseMessage
        if self.participant.kind == "agent" and isinstance(value, dict):
            texts = [content.get("text") for message in value.get("messages") or ()
                     for content in message.get("contents") or () if content.get("text")]
            if "message" in value or texts:
                return str(value.get("message") or texts[-1])
        return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def read_interactions(history: list[Event]) -> list[Interaction]:
    """Every meaningful event of ``history`` (host-format dicts), in order.

    Episode boundaries (``OrchestratorStarted``/``OrchestratorCompleted``) only
    advance :attr:`Interaction.episode`; every other event becomes one
    interaction.
    """
    reader = _Reader()
    steps: list[Interaction] = []
    start: datetime | None = None
    for index, event in enumerate(history):
        kind = EventType(event["EventType"])
        moment = parse_timestamp(event["Timestamp"])
        start = start or moment
        if kind == EventType.OrchestratorStarted:
            reader.episode += 1
            continue
        if kind == EventType.OrchestratorCompleted:
            continue
        step = reader.read(kind, event)
        steps.append(Interaction(index, moment, moment - start, reader.episode, kind,
                                 step.direction, step.participant, step.label, step.payload,
                                 step.task_id, step.failed, step.one_way))
    return steps


def entity_request(event: Event) -> dict[str, Any] | None:
    """The request message an ``EventSent`` to an entity carries (None for other events).

    The host sends entity operations as events named ``op`` to the entity's
    scheduler id (``@name@key``), with a JSON ``RequestMessage``: ``op``,
    ``signal``, ``id`` (the request id its response will be named after) and
    ``input``.
    """
    if event.get("Name") != "op" or not str(event.get("InstanceId", "")).startswith("@"):
        return None
    try:
        request = json.loads(event.get("Input") or "")
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


class _Step(NamedTuple):
    """What one event says, before its place in the history is added."""

    direction: str
    participant: Participant
    label: str
    payload: str | None = None
    task_id: int | None = None
    failed: bool = False
    one_way: bool = False


class _Reader:
    """Walks one history, remembering what each sequence number and request id was."""

    def __init__(self) -> None:
        self.episode = 0
        self.caller = Participant(CLIENT)            # who started the instance: gets its result
        self.tasks: dict[Any, Participant] = {}     # sequence number or request id -> participant
        self.requests: dict[str, tuple[str | None, int]] = {}   # entity call's request id -> (op, seq no)

    def read(self, kind: EventType, event: Event) -> _Step:
        task = event.get("TaskScheduledId")
        if kind == EventType.ExecutionStarted:
            self.caller = _caller(event)
            return _Step(IN, self.caller, f"start {event.get('Name')}", event.get("Input"))
        if kind == EventType.ExecutionCompleted:
            status = OrchestrationStatus(event.get("OrchestrationStatus", 1))
            failed = status in (OrchestrationStatus.Failed, OrchestrationStatus.Terminated)
            return _Step(OUT, self.caller, status.name, event.get("Result"), failed=failed)
        if kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated,
                    EventType.TimerCreated):
            participant = _scheduled(kind, event)
            self.tasks[event["EventId"]] = participant
            label = {EventType.TaskScheduled: "call", EventType.SubOrchestrationInstanceCreated:
                     "start"}.get(kind) or f"until {event.get('FireAt')}"
            return _Step(OUT, participant, label, event.get("Input"), event["EventId"])
        if kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
            return _Step(IN, self._task(task), "completed", event.get("Result"), task)
        if kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            return _Step(IN, self._task(task), "failed", _reason(event), task, failed=True)
        if kind == EventType.TimerFired:
            return _Step(IN, Participant("timer"), "fired", task_id=event.get("TimerId"))
        if kind == EventType.EventSent:
            return self._sent(event)
        if kind == EventType.EventRaised:
            return self._raised(event)
        if kind in (EventType.EntityOperationCalled, EventType.EntityOperationSignaled):
            return self._entity_operation(kind, event)
        if kind in (EventType.EntityOperationCompleted, EventType.EntityOperationFailed):
            return self._entity_result(kind, event)
        if kind == EventType.ExecutionTerminated:
            return _Step(IN, Participant(CLIENT), "terminate", event.get("Input"))
        if kind in (EventType.ExecutionSuspended, EventType.ExecutionResumed):
            verb = kind.name[len("Execution"):].lower()
            return _Step(IN, Participant(CLIENT), verb, event.get("Reason"))
        if kind == EventType.ContinueAsNew:
            return _Step(OUT, self.caller, "continue as new", event.get("Result"))
        return _Step(IN, Participant(CLIENT), kind.name)

    def _task(self, task: Any) -> Participant:
        return self.tasks.get(task) or Participant("activity", "?")

    def _sent(self, event: Event) -> _Step:
        request = entity_request(event)
        if request is None:
            target = Participant("instance", key=str(event.get("InstanceId")))
            return _Step(OUT, target, f"event {event.get('Name')}", event.get("Input"),
                         event["EventId"], one_way=True)
        name, _, key = str(event["InstanceId"])[1:].partition("@")
        participant = _entity(name, key)
        signal = bool(request.get("signal"))
        request_id = request.get("id")
        if not signal and isinstance(request_id, str):   # a call: its response is named after the id
            self.tasks[request_id] = participant
            self.requests[request_id] = (request.get("op"), event["EventId"])
        label = f"{'signal' if signal else 'call'} {request.get('op')}"
        return _Step(OUT, participant, label, request.get("input"), event["EventId"],
                     one_way=signal)

    def _entity_operation(self, kind: EventType, event: Event) -> _Step:
        """The Durable Task protocol's entity call or signal (a durabletask worker's history)."""
        name, _, key = str(event.get("TargetInstanceId") or "@?@")[1:].partition("@")
        participant = _entity(name, key)
        signal = kind == EventType.EntityOperationSignaled
        request_id = event.get("RequestId")
        if not signal and isinstance(request_id, str):
            self.tasks[request_id] = participant
            self.requests[request_id] = (event.get("Operation"), event["EventId"])
        label = f"{'signal' if signal else 'call'} {event.get('Operation')}"
        return _Step(OUT, participant, label, event.get("Input"), event["EventId"], one_way=signal)

    def _entity_result(self, kind: EventType, event: Event) -> _Step:
        request_id = str(event.get("RequestId"))
        operation, sequence_number = self.requests.get(request_id, (None, -1))
        failed = kind == EventType.EntityOperationFailed
        label = f"{operation} {'failed' if failed else 'returned'}"
        payload = event.get("Reason") if failed else event.get("Output")
        return _Step(IN, self._task(request_id), label, payload, sequence_number, failed)

    def _raised(self, event: Event) -> _Step:
        name = event.get("Name")
        if name in self.requests:
            operation, sequence_number = self.requests[name]
            response = decode_payload(event.get("Input"))
            failed = isinstance(response, dict) and "exceptionType" in response
            label = f"{operation} {'failed' if failed else 'returned'}"
            return _Step(IN, self.tasks[name], label, event.get("Input"), sequence_number, failed)
        return _Step(IN, Participant(CLIENT), f"event {name}", event.get("Input"))


def decode_payload(text: str | None) -> Any:
    """Decode a stored payload: JSON text, unwrapping JSON that was encoded again as a string.

    Activity inputs and entity inputs reach the history as JSON strings that
    hold JSON; a payload that is not JSON at all comes back as the text itself.
    """
    if text is None:
        return None
    value: Any = text
    try:
        value = json.loads(text)
        while isinstance(value, str) and value[:1] in ("{", "[", '"'):
            value = json.loads(value)
    except ValueError:
        pass
    return value


def _entity(name: str, key: str) -> Participant:
    """An entity, or the agent whose sessions it holds (``dafx-{agent}``)."""
    agent = agent_of(name)
    return Participant("agent" if agent else "entity", agent or name, key)


def _caller(started: Event) -> Participant:
    parent = ((started.get("ParentInstance") or {}).get("OrchestrationInstance") or {})
    if parent.get("InstanceId"):
        return Participant("instance", key=parent["InstanceId"])
    return Participant(CLIENT)


def _scheduled(kind: EventType, event: Event) -> Participant:
    if kind == EventType.TimerCreated:
        return Participant("timer")
    if kind == EventType.SubOrchestrationInstanceCreated:
        return Participant("sub-orchestration", event.get("Name") or "?",
                           str(event.get("InstanceId") or ""))
    return Participant("activity", event.get("Name") or "?")


def _reason(event: Event) -> str | None:
    reason, details = event.get("Reason"), event.get("Details")
    return f"{reason}\n{details}" if reason and details else reason or details
