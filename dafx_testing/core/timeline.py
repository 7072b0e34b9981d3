"""Readable timelines of a history: what happened, when, in virtual time.

One line per meaningful event; episode boundaries (``OrchestratorStarted`` /
``OrchestratorCompleted``) are folded into an ``episode N`` marker, and
completions name the task they complete.
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
        return f"started {event.get('Name')!s} input={preview(event.get('Input'))}"
    if kind == EventType.TaskScheduled:
        return f"-> activity {event.get('Name')} #{event['EventId']} input={preview(event.get('Input'))}"
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
            return f"<- entity {names[event['Name']]} response={preview(event.get('Input'))}"
        return f"<- event {event.get('Name')!r} data={preview(event.get('Input'))}"
    if kind == EventType.EventSent:
        request = _entity_request(event)
        if request:
            verb = "signal" if request.get("signal") else "call"
            return (f"-> entity {verb} {request.get('op')} on {event.get('InstanceId')} "
                    f"#{event['EventId']} input={preview(request.get('input'))}")
        return f"-> event {event.get('Name')!r} to {event.get('InstanceId')}"
    if kind == EventType.ExecutionCompleted:
        status = OrchestrationStatus(event.get("OrchestrationStatus", 1)).name
        return f"{status.upper()} #{event['EventId']} {preview(event.get('Result'))}"
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
