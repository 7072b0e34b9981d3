"""Readable timelines of a history: what happened, when, in virtual time.

One line per meaningful event; episode boundaries (``OrchestratorStarted`` /
``OrchestratorCompleted``) are folded into an ``episode N`` marker, and
completions name the task they complete. Values are shown as the user passed
them: the host stores some twice encoded (an orchestration's input is a JSON
string holding the SDK's ``df_dumps`` text, an activity's a JSON list of such
strings), and the timeline unwraps that, never the history itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .history import Event, EventType, OrchestrationStatus, parse_timestamp

_PREVIEW = 60


def timeline(history: list[Event], max_lines: int | None = 200) -> str:
    """Render ``history`` (host-format events) as text, one event per line.

    Long histories keep their first and last lines and say how many were skipped.
    """
    lines: list[str] = []
    names: dict[Any, str] = {}   # task id or entity request id -> what it was
    start: datetime | None = None
    episode = 0
    for event in history:
        kind = event["EventType"]
        moment = parse_timestamp(event["Timestamp"])
        start = start or moment
        if kind == EventType.OrchestratorStarted:
            episode += 1
            continue
        if kind == EventType.OrchestratorCompleted:
            continue
        if kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
            names[event["EventId"]] = event.get("Name") or "?"
        if kind == EventType.EventSent:
            request = _entity_request(event)
            if request:
                names[request.get("id")] = f"{request.get('op')} on {event.get('InstanceId')}"
        if kind in (EventType.EntityOperationCalled, EventType.EntityOperationSignaled):
            names[event.get("RequestId")] = f"{event.get('Operation')} on {event.get('TargetInstanceId')}"
        text = _describe(event, names)
        lines.append(f"{elapsed(moment - start):>12}  ep{episode:<3} {text}")
    if max_lines is not None and len(lines) > max_lines:
        head, tail = max_lines // 2, max_lines - max_lines // 2
        skipped = len(lines) - head - tail
        lines = lines[:head] + [f"{'':>12}  ... {skipped} events skipped ..."] + lines[-tail:]
    return "\n".join(lines)


def _describe(event: Event, names: dict[Any, str]) -> str:
    kind = event["EventType"]
    task = event.get("TaskScheduledId")
    if kind == EventType.ExecutionStarted:
        return f"started {event.get('Name')!s} input={preview(unwrap(event.get('Input')))}"
    if kind == EventType.TaskScheduled:
        return (f"-> activity {event.get('Name')} #{event['EventId']} "
                f"input={preview(_activity_input(event.get('Input')))}")
    if kind == EventType.TaskCompleted:
        return f"<- activity {names.get(task, '?')} #{task} result={preview(event.get('Result'))}"
    if kind == EventType.TaskFailed:
        return f"<- activity {names.get(task, '?')} #{task} FAILED: {preview(event.get('Reason'))}"
    if kind == EventType.TimerCreated:
        return f"-> timer #{event['EventId']} until {event.get('FireAt')}"
    if kind == EventType.TimerFired:
        return f"<- timer #{event.get('TimerId')} fired"
    if kind == EventType.SubOrchestrationInstanceCreated:
        return (f"-> sub-orchestration {event.get('Name')} #{event['EventId']} "
                f"instance={event.get('InstanceId')}")
    if kind == EventType.SubOrchestrationInstanceCompleted:
        return f"<- sub-orchestration {names.get(task, '?')} #{task} result={preview(event.get('Result'))}"
    if kind == EventType.SubOrchestrationInstanceFailed:
        return f"<- sub-orchestration {names.get(task, '?')} #{task} FAILED: {preview(event.get('Reason'))}"
    if kind == EventType.EventRaised:
        if event.get("Name") in names:
            return f"<- entity {names[event['Name']]} {_entity_response(event.get('Input'))}"
        return f"<- event {event.get('Name')!r} data={preview(event.get('Input'))}"
    if kind == EventType.EventSent:
        request = _entity_request(event)
        if request:
            verb = "signal" if request.get("signal") else "call"
            return (f"-> entity {verb} {request.get('op')} on {event.get('InstanceId')} "
                    f"#{event['EventId']} input={preview(unwrap(request.get('input')))}")
        return f"-> event {event.get('Name')!r} to {event.get('InstanceId')}"
    if kind in (EventType.EntityOperationCalled, EventType.EntityOperationSignaled):
        verb = "call" if kind == EventType.EntityOperationCalled else "signal"
        return (f"-> entity {verb} {event.get('Operation')} on {event.get('TargetInstanceId')} "
                f"#{event['EventId']} input={preview(unwrap(event.get('Input')))}")
    if kind == EventType.EntityOperationCompleted:
        return f"<- entity {names.get(event.get('RequestId'), '?')} result={preview(event.get('Output'))}"
    if kind == EventType.EntityOperationFailed:
        return f"<- entity {names.get(event.get('RequestId'), '?')} FAILED: {preview(event.get('Reason'))}"
    if kind == EventType.ExecutionCompleted:
        status = OrchestrationStatus(event.get("OrchestrationStatus", 1)).name
        shown = event.get("Result")
        if shown is None and event.get("Reason"):   # a durabletask failure: its failure details
            shown = event["Reason"]
        return f"{status.upper()} #{event['EventId']} {preview(shown)}"
    if kind == EventType.ExecutionTerminated:
        return f"terminate requested: {preview(event.get('Input'))}"
    if kind in (EventType.ExecutionSuspended, EventType.ExecutionResumed):
        return f"{EventType(kind).name[9:].lower()}: {preview(event.get('Reason'))}"
    return EventType(kind).name


def _entity_request(event: Event) -> dict[str, Any] | None:
    """The RequestMessage an EventSent to an entity carries, if it is one."""
    if event.get("Name") != "op" or not str(event.get("InstanceId", "")).startswith("@"):
        return None
    try:
        return json.loads(event.get("Input") or "")
    except ValueError:
        return None


def unwrap(raw: Any) -> Any:
    """The JSON text inside ``raw`` when ``raw`` is a JSON string holding JSON, else ``raw``.

    Orchestration and entity inputs are ``df_dumps`` text stored as a JSON
    string; the user passed what is inside. Raw JSON (an HTTP start) stays as is.
    """
    if not isinstance(raw, str) or not raw.startswith('"'):
        return raw
    try:
        inner = json.loads(raw)
        json.loads(inner)
    except (TypeError, ValueError):
        return raw
    return inner


def _activity_input(raw: str | None) -> Any:
    """An activity's input as passed: the host stores a JSON list of one ``df_dumps`` text."""
    try:
        items = json.loads(raw or "")
    except ValueError:
        return raw
    if not isinstance(items, list) or len(items) != 1:
        return raw
    if isinstance(items[0], str):    # the df_dumps text, kept as a string: show what it holds
        return unwrap(json.dumps(items[0]))
    return json.dumps(items[0])      # a host-made input (call_http's request): plain JSON


def _entity_response(raw: str | None) -> str:
    """``response=<result>`` or ``FAILED: <message>``, from the entity's ResponseMessage."""
    try:
        message = json.loads(raw or "")
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("result"), (str, type(None))):
        return f"response={preview(raw)}"
    result = message.get("result")
    if not message.get("exceptionType"):
        return f"response={preview(result)}"
    try:
        error = json.loads(result or "")
    except ValueError:
        error = result
    return f"FAILED: {preview(error if isinstance(error, str) else result)}"


def preview(value: Any, limit: int = _PREVIEW) -> str:
    """``value`` as one line of at most ``limit`` characters (``None`` reads ``null``)."""
    text = "null" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def elapsed(delta: Any) -> str:
    """A virtual-time offset as the timeline shows it: ``+02:00:00``, ``+1d 02:00:00``."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    prefix = f"+{days}d " if days else "+"
    return f"{prefix}{hours:02d}:{minutes:02d}:{secs:02d}"
