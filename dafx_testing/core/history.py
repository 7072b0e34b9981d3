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
from collections.abc import Callable
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any

from .errors import HistoryFormatError
from .payloads import MAX_NESTING, loads_bounded, nested_too_deep, short_repr

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
    ExecutionRewound = 21
    # The Durable Task protocol's entity events (durabletask workers, DTS). DTFx
    # numbers none of them, so they go on from its last value, in the protocol's order.
    EntityOperationSignaled = 22
    EntityOperationCalled = 23
    EntityOperationCompleted = 24
    EntityOperationFailed = 25
    EntityLockRequested = 26
    EntityLockGranted = 27
    EntityUnlockSent = 28


DTFX_EVENTS: frozenset[EventType] = frozenset(
    kind for kind in EventType if kind <= EventType.ExecutionRewound)
"""The event types of a DTFx history (an Azure Functions app's): DTFx's ``EventType`` ends at
``ExecutionRewound`` (src/DurableTask.Core/History/EventType.cs in Azure/durabletask); the
entity events after it are the Durable Task protocol's, which the Functions host never writes."""


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


_OPENED_BY_ID = (EventType.TaskScheduled, EventType.TimerCreated,
                 EventType.SubOrchestrationInstanceCreated)
_ANSWERED = {EventType.TaskCompleted: "TaskScheduledId", EventType.TaskFailed: "TaskScheduledId",
             EventType.SubOrchestrationInstanceCompleted: "TaskScheduledId",
             EventType.SubOrchestrationInstanceFailed: "TaskScheduledId",
             EventType.TimerFired: "TimerId",
             EventType.EntityOperationCompleted: "RequestId",
             EventType.EntityOperationFailed: "RequestId"}


def unanswered(events: list[Event]) -> list[Event]:
    """The work a history started and never heard back from, in the order it was started.

    Activities and sub-orchestrations with no completion, timers not fired, and (on the
    Durable Task protocol) entity calls with no result: what a host's queues would still
    hold for an instance loaded in flight.
    """
    started: dict[Any, Event] = {}
    for event in events:
        kind = event["EventType"]
        if kind in _OPENED_BY_ID:
            started[event["EventId"]] = event
        elif kind == EventType.EntityOperationCalled:
            started[event.get("RequestId")] = event
        elif kind in _ANSWERED:
            started.pop(event.get(_ANSWERED[kind]), None)
    return list(started.values())


def event_name(event: Event) -> str:
    """The ``EventType`` name of an event dict (``"TaskScheduled"``...)."""
    try:
        return EventType(event["EventType"]).name
    except (KeyError, ValueError):
        return f"EventType({event.get('EventType')!r})"


# --- history files -----------------------------------------------------------------

DTFX, STATUS_API = "dtfx", "status-api"
"""The two shapes of a history: DTFx events as stored (``EventType`` ints, in
``history`` or a bare list), or the status API's ``historyEvents`` (``EventType`` names)."""


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
    """Read a DTFx history file: ours, or a bare JSON list of host-format events.

    Returns a document with ``history`` and, when the file has them,
    ``instanceId``, ``name`` and ``input``; every field is checked (see
    :func:`read_document`).
    """
    source = Path(path)
    form, document = read_document(read_history_json(source), str(source), parsed=True)
    if form == STATUS_API:
        raise HistoryFormatError(
            f"{source}: this is the status API's history (EventType names, as in "
            "'historyEvents'); this reader takes DTFx histories, whose EventType is an int "
            f"0-{max(EventType)}, as Simulator.save_history writes them (dafx replay and Replayer "
            "read both)")
    return document


def read_history_json(source: Path) -> Any:
    """The parsed JSON of a history file; a :class:`HistoryFormatError` naming it otherwise."""
    try:
        return loads_bounded(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryFormatError(f"history file not found: {source}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryFormatError(f"cannot read history file {source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(
            f"{source}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:           # nested too deep
        raise HistoryFormatError(f"{source}: {exc}") from None


def read_document(raw: Any, where: str, *, parsed: bool = False) -> tuple[str, dict[str, Any]]:
    """Decide a parsed history's shape as a whole and check it: the one reader check.

    Every history reader (``load_history``, ``Simulator.load_history``, ``Replayer``,
    ``dafx show``/``replay``) comes through here, so a bad value is reported where
    it is read, naming ``where``, the event index, the field and what is valid.

    Returns ``(DTFX, document with a 'history' list)``, every event checked by
    :func:`validate_event`, or ``(STATUS_API, document with a 'historyEvents'
    list)``, whose events the status-history rebuild checks. A document that
    mixes the two shapes is refused. ``parsed``: ``raw`` comes from
    :func:`read_history_json`, whose parse already bounded its nesting; an
    object from memory is walked for it here.
    """
    if not parsed and isinstance(raw, (dict, list)) and nested_too_deep(raw):
        raise HistoryFormatError(f"{where}: nested deeper than {MAX_NESTING} levels (or holds "
                                 "itself)")
    if isinstance(raw, list):
        document: dict[str, Any] = {"history": raw}
    elif isinstance(raw, dict):
        document = dict(raw)
    else:
        raise HistoryFormatError(f"{where}: {_EXPECTED_SHAPE}")
    if "historyEvents" in document and ("history" in document or "format" in document):
        what = "'history'" if "history" in document else f"format {short_repr(document['format'])}"
        raise HistoryFormatError(
            f"{where}: holds both {what} (a dafx history file) and 'historyEvents' (a "
            "status-API answer); a history file is one or the other")
    key = "historyEvents" if "historyEvents" in document else "history"
    events = document.get(key)
    if not isinstance(events, list):
        found = f"'{key}' is a {type(events).__name__}; " if key in document else ""
        raise HistoryFormatError(f"{where}: {found}{_EXPECTED_SHAPE}")
    _check_document_fields(document, where)
    named, numbered = _event_type_styles(events)
    if named is not None and (numbered is not None or "format" in document):
        if numbered is not None:
            other = f"event {numbered} has EventType {short_repr(events[numbered]['EventType'])}, a DTFx int"
        else:
            other = f"the file says format {short_repr(document['format'])}"
        raise HistoryFormatError(
            f"{where}: event {named} has EventType {short_repr(events[named]['EventType'])}, a name "
            f"as the status API writes it, but {other}; a history is one or the other (DTFx "
            f"histories use the EventType ints 0-{max(EventType)}, status-API answers the names)")
    if key == "historyEvents" and numbered is not None:
        raise HistoryFormatError(
            f"{where}: 'historyEvents' is the status API's list, whose EventType values are names, "
            f"but event {numbered} has EventType {short_repr(events[numbered]['EventType'])}, a "
            "DTFx int; put DTFx events under 'history'")
    if key == "historyEvents" or named is not None:
        if key == "history":
            document["historyEvents"] = document.pop("history")
        return STATUS_API, document
    validate_events(events, where)
    return DTFX, document


_EXPECTED_SHAPE = ("expected a dafx history file (an object with a 'history' list) or a JSON list "
                   "of host-format history events (or, for dafx replay, the status API's answer: "
                   "an object with 'historyEvents')")


def _event_type_styles(events: list[Any]) -> tuple[int | None, int | None]:
    """The index of the first event with an ``EventType`` name, and of the first with an int."""
    named = numbered = None
    for index, event in enumerate(events):
        kind = event.get("EventType") if isinstance(event, dict) else None
        if named is None and isinstance(kind, str):
            named = index
        elif numbered is None and isinstance(kind, int) and not isinstance(kind, bool):
            numbered = index
        if named is not None and numbered is not None:
            break
    return named, numbered


def validate_events(events: list[Any], where: str) -> None:
    """Check every event with :func:`validate_event`; the first bad one is named."""
    for index, event in enumerate(events):
        validate_event(event, index, where)


def validate_event(event: Any, index: int, where: str) -> None:
    """Check one DTFx event: its required fields, and the type of every field it has.

    Raises:
        HistoryFormatError: ``"{where}: event {index} ({kind}) has {field} {value};
            it must be {what is valid}"``.
    """
    if not isinstance(event, dict):
        raise HistoryFormatError(f"{where}: event {index} is not an object: {short_repr(event)}")
    missing = [k for k in ("EventType", "EventId", "Timestamp") if k not in event]
    if missing:
        raise HistoryFormatError(
            f"{where}: event {index} lacks {', '.join(missing)}; host-format events carry "
            "EventType (int), EventId, IsPlayed and Timestamp"
        )
    value = event["EventType"]
    if not _is_int(value) or value not in EventType._value2member_map_:
        raise HistoryFormatError(
            f"{where}: event {index} has EventType {short_repr(value)}; valid values "
            f"are the DTFx EventType ints 0-{max(EventType)} (22-28: the Durable Task "
            "protocol's entity events)"
        )
    kind = EventType(value)
    for name in ("Timestamp", "FireAt", "ScheduledStartTime"):
        text = event.get(name)
        if isinstance(text, str):
            try:
                parse_timestamp(text)
            except HistoryFormatError as exc:
                raise HistoryFormatError(
                    f"{where}: event {index} ({kind.name}) {name}: {exc}") from None
    found = _bad_field(event, _fields_of(kind))
    if found is not None:
        field_name, bad, expected = found
        raise HistoryFormatError(
            f"{where}: event {index} ({kind.name}) has {field_name} {short_repr(bad)}; it must be "
            f"{expected}")


REPLAY_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.ExecutionStarted: ("Name",),
    EventType.ExecutionCompleted: ("OrchestrationStatus",),
    EventType.TaskScheduled: ("Name",),
    EventType.TaskCompleted: ("TaskScheduledId", "Result"),
    EventType.TaskFailed: ("TaskScheduledId",),
    EventType.SubOrchestrationInstanceCreated: ("Name",),
    EventType.SubOrchestrationInstanceCompleted: ("TaskScheduledId", "Result"),
    EventType.SubOrchestrationInstanceFailed: ("TaskScheduledId",),
    EventType.TimerCreated: ("FireAt",),
    EventType.TimerFired: ("TimerId",),
    EventType.EventSent: ("InstanceId", "Name"),
    EventType.EventRaised: ("Name",),
}
"""The fields the SDK and the host replay read, per event type: a replay needs them."""


def check_replayable(events: list[Event], where: str) -> None:
    """What a replay needs beyond readable events (checked by :func:`validate_events` first).

    One execution (one ``ExecutionStarted``, after an ``OrchestratorStarted``),
    and the fields the SDK and the host replay read, by event index.
    """
    starts = [i for i, e in enumerate(events) if e["EventType"] == EventType.ExecutionStarted]
    if len(starts) != 1:
        raise HistoryFormatError(
            f"{where}: a history holds one execution, with one ExecutionStarted event; found "
            f"{len(starts)}" + (f" (events {', '.join(map(str, starts))})" if starts else ""))
    if not any(e["EventType"] == EventType.OrchestratorStarted for e in events[:starts[0]]):
        raise HistoryFormatError(
            f"{where}: event {starts[0]} (ExecutionStarted) has no OrchestratorStarted before it; "
            "every episode of a DTFx history begins with one")
    for index, event in enumerate(events):
        kind = EventType(event["EventType"])
        missing = [f for f in REPLAY_FIELDS.get(kind, ()) if f not in event]
        if missing:
            raise HistoryFormatError(
                f"{where}: event {index} ({kind.name}) lacks {', '.join(missing)}; a replay "
                "needs it")


def check_host_events(events: list[Event], where: str, written: frozenset[EventType]) -> None:
    """Refuse a history holding an event type its host never writes (``written``).

    Only the Functions host restricts them (:data:`DTFX_EVENTS`), so the one type a
    history can hold and its host not write is a Durable Task protocol entity event.
    """
    for index, event in enumerate(events):
        kind = EventType(event["EventType"])
        if kind not in written:
            raise HistoryFormatError(
                f"{where}: event {index} is {kind.name}, an entity event of the Durable Task "
                "protocol (durabletask workers); an Azure Functions app's history (DTFx) has "
                "no such event: its entity calls are EventSent and their answers EventRaised")


# -- the field checks: each returns None for a valid value, else what is valid --------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(value: Any) -> str | None:
    return None if _is_int(value) else "an integer"


def _optional_integer(value: Any) -> str | None:
    return None if value is None or _is_int(value) else "an integer or null"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _name(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string"


def _optional_name(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) and value else \
        "a non-empty string or null"


def _optional_text(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "a string or null"


def _optional_object(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict) else "an object or null"


def _timestamp(value: Any) -> str | None:
    return None if isinstance(value, str) else "an ISO timestamp string"   # parsed above


def _optional_timestamp(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "an ISO timestamp string or null"


def _optional_json_text(value: Any) -> str | None:
    """A payload: JSON text, as the SDK and the host exchange it, or null."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "JSON text (a string) or null"
    try:
        loads_bounded(value)
    except json.JSONDecodeError as exc:
        return f"JSON text or null (not JSON: {exc.msg} at column {exc.colno})"
    except ValueError as exc:
        return f"JSON text or null ({exc})"
    return None


def _orchestration_status(value: Any) -> str | None:
    if _is_int(value) and value in OrchestrationStatus._value2member_map_:
        return None
    return "one of the OrchestrationStatus ints " + ", ".join(
        f"{s.value} ({s.name})" for s in OrchestrationStatus)


_Spec = dict[str, Any]     # field -> a _Check, or a nested _Spec (an object or null)

_INSTANCE: _Spec = {"InstanceId": _optional_name, "ExecutionId": _optional_text}
_FIELDS: _Spec = {
    "EventId": _integer, "IsPlayed": _boolean, "Timestamp": _timestamp,
    "Name": _name, "Version": _optional_text, "Input": _optional_text,
    "Result": _optional_text, "Reason": _optional_text, "Details": _optional_text,
    "Data": _optional_text, "Correlation": _optional_text,
    "FailureDetails": _optional_object, "Tags": _optional_object,
    "TaskScheduledId": _integer, "TimerId": _integer, "Generation": _optional_integer,
    "FireAt": _timestamp, "ScheduledStartTime": _optional_timestamp,
    "OrchestrationStatus": _orchestration_status, "InstanceId": _optional_text,
    "OrchestrationInstance": _INSTANCE,
    "ParentInstance": {"Name": _optional_text, "Version": _optional_text,
                       "TaskScheduleId": _optional_integer, "OrchestrationInstance": _INSTANCE},
}
# Payloads the SDK decodes as JSON (ExecutionTerminated's Input and a failed
# ExecutionCompleted's Result are plain text).
_JSON_INPUT = {EventType.ExecutionStarted, EventType.TaskScheduled,
               EventType.SubOrchestrationInstanceCreated, EventType.EventSent, EventType.EventRaised}
_JSON_RESULT = {EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted}
_BY_KIND: dict[EventType, _Spec] = {
    kind: dict(_FIELDS,
               **({"Input": _optional_json_text} if kind in _JSON_INPUT else {}),
               **({"Result": _optional_json_text} if kind in _JSON_RESULT else {}))
    for kind in EventType
}


def _fields_of(kind: EventType) -> _Spec:
    return _BY_KIND[kind]


def _bad_field(values: dict[str, Any], spec: _Spec, prefix: str = "") -> tuple[str, Any, str] | None:
    """The first ``(field path, value, what is valid)`` in ``values`` that breaks ``spec``."""
    for name, value in values.items():
        check = spec.get(name)
        if check is None:
            continue                   # fields the readers do not use pass unchecked
        if isinstance(check, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                return prefix + name, value, "an object or null"
            found = _bad_field(value, check, f"{prefix}{name}.")
            if found is not None:
                return found
        else:
            expected = check(value)
            if expected is not None:
                return prefix + name, value, expected
    return None


def _check_document_fields(document: dict[str, Any], where: str) -> None:
    """The top-level fields of a dafx file or a status-API answer, when present."""
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "format": (lambda v: v == FILE_FORMAT, repr(FILE_FORMAT)),
        "version": (lambda v: _is_int(v) and 1 <= v <= FILE_VERSION,
                    f"an integer from 1 to {FILE_VERSION} (a newer dafx wrote this file?)"),
        "instanceId": (lambda v: v is None or isinstance(v, str) and bool(v),
                       "a non-empty string or null"),
        "name": (lambda v: v is None or isinstance(v, str) and bool(v), "a non-empty string or null"),
        "runtimeStatus": (lambda v: v is None or isinstance(v, str)
                          and v in OrchestrationStatus.__members__,
                          "null or one of " + ", ".join(OrchestrationStatus.__members__)),
    }
    for name, (valid, expected) in checks.items():
        if name in document and not valid(document[name]):
            raise HistoryFormatError(
                f"{where}: the document's {name!r} is {short_repr(document[name])}; it must be {expected}")


def find_started(events: list[Event]) -> Event | None:
    """The ExecutionStarted event of a history, if present."""
    for event in events:
        if event["EventType"] == EventType.ExecutionStarted:
            return event
    return None
