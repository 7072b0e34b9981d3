"""History events in the host's JSON, and history files.

The Durable Functions extension sends DTFx ``HistoryEvent`` objects serialized by
Newtonsoft: PascalCase keys, ``EventType`` as an int, ``Timestamp`` as an ISO
string with up to seven fraction digits. Events here are plain dicts in exactly
that shape, so the same objects go to the SDK, into saved files and into
``get_status().history`` without conversion.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any

from .errors import HistoryFormatError

Event = dict[str, Any]

FILE_FORMAT = "dafx-history"
FILE_VERSION = 1


class EventType(IntEnum):
    """DTFx ``EventType`` (the SDK's ``HistoryEventType`` has the same values)."""

    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20


class OrchestrationStatus(IntEnum):
    """DTFx ``OrchestrationStatus``, as stored in ``ExecutionCompleted``."""

    Running = 0
    Completed = 1
    ContinuedAsNew = 2
    Failed = 3
    Canceled = 4
    Terminated = 5
    Pending = 6
    Suspended = 7


def format_timestamp(moment: datetime) -> str:
    """Format like .NET's ``yyyy-MM-ddTHH:mm:ss.FFFFFFFZ``: trailing zeros dropped."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse a host or SDK timestamp (``Z`` suffix, 0-7 fraction digits) to aware UTC."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    main, sep, rest = value.partition(".")
    if sep:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        offset = rest[len(digits):]
        value = f"{main}.{digits[:6].ljust(6, '0')}{offset}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HistoryFormatError(f"not an ISO timestamp: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def new_event(kind: EventType, timestamp: datetime, event_id: int = -1, **fields: Any) -> Event:
    """One history event with the four fields every DTFx event carries."""
    event: Event = {
        "EventType": int(kind),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_timestamp(timestamp),
    }
    event.update(fields)
    return event


def event_name(event: Event) -> str:
    """The ``EventType`` name of an event dict (``"TaskScheduled"``...)."""
    try:
        return EventType(event["EventType"]).name
    except (KeyError, ValueError):
        return f"EventType({event.get('EventType')!r})"


# --- history files -----------------------------------------------------------------


def save_history(path: str | os.PathLike, document: dict[str, Any]) -> Path:
    """Write a history document atomically (temp file, then rename).

    ``document`` holds ``instanceId``, ``name``, ``input`` and ``history`` (the
    host-format events); format and version keys are added here.
    """
    target = Path(path)
    payload = {"format": FILE_FORMAT, "version": FILE_VERSION, **document}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
            handle.write("\n")
        os.replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return target


def load_history(path: str | os.PathLike) -> dict[str, Any]:
    """Read a history file: ours, or a bare JSON list of host-format events.

    Returns a document with ``history`` and, when the file has them,
    ``instanceId``, ``name`` and ``input``.
    """
    source = Path(path)
    raw = read_history_json(source)
    if isinstance(raw, list):
        document: dict[str, Any] = {"history": raw}
    elif isinstance(raw, dict) and isinstance(raw.get("history"), list):
        document = dict(raw)
    else:
        raise HistoryFormatError(
            f"{source}: expected a dafx history file (an object with a 'history' list) "
            "or a JSON list of host-format history events"
        )
    validate_events(document["history"], where=str(source))
    return document


def read_history_json(source: Path) -> Any:
    """The parsed JSON of a history file; a :class:`HistoryFormatError` naming it otherwise."""
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryFormatError(f"history file not found: {source}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryFormatError(f"cannot read history file {source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(
            f"{source}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None


def validate_events(events: list[Any], where: str) -> None:
    """Check that every item looks like a DTFx event; name the first bad one."""
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise HistoryFormatError(f"{where}: event {index} is not an object: {event!r}")
        missing = [k for k in ("EventType", "EventId", "Timestamp") if k not in event]
        if missing:
            raise HistoryFormatError(
                f"{where}: event {index} lacks {', '.join(missing)}; host-format events carry "
                "EventType (int), EventId, IsPlayed and Timestamp"
            )
        if not isinstance(event["EventType"], int) or not 0 <= event["EventType"] <= 20:
            raise HistoryFormatError(
                f"{where}: event {index} has EventType {event['EventType']!r}; valid values "
                "are the DTFx EventType ints 0-20"
            )


def find_started(events: list[Event]) -> Event | None:
    """The ExecutionStarted event of a history, if present."""
    for event in events:
        if event["EventType"] == EventType.ExecutionStarted:
            return event
    return None
