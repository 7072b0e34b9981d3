"""One history, two spellings: the durabletask protocol's events and the hub's.

The task hub keeps every host's history in DTFx's shape (``{"EventType": 4,
"EventId": 0, "Name": ..., "Input": ...}``), so timelines, Mermaid diagrams,
goldens, history diffs and the HTML report read a durabletask instance exactly
as they read a Functions one. The durabletask worker speaks protobuf
``HistoryEvent``s. The two are the same model (the protocol was cut from DTFx's
``HistoryEvent`` classes): each event kind is the oneof field of the same name,
each field the same word in camelCase. So the mapping is mechanical and
lossless, both ways: :func:`to_event` and :func:`to_proto`.

A few display fields are added for the reports (``Reason`` on failures, as DTFx
spells a failure's message); :func:`to_proto` ignores them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as pb
from google.protobuf import json_format, timestamp_pb2

from ..core.history import Event, EventType, format_timestamp, parse_timestamp

__all__ = ["to_event", "to_proto", "timestamp", "failure_message"]

_ENVELOPE = ("EventType", "EventId", "IsPlayed", "Timestamp")
_DISPLAY = ("Reason",)
_VERBATIM = {"tags", "properties"}     # user keys: never re-cased


def _pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return {key[:1].upper() + key[1:]: (item if key in _VERBATIM else _pascal(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_pascal(item) for item in value]
    return value


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = key[:1].lower() + key[1:]
            out[name] = item if name in _VERBATIM else _camel(item)
        return out
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def kind_of(event: pb.HistoryEvent) -> str:
    """The event's kind as the protocol names it (``"taskScheduled"``)."""
    kind = event.WhichOneof("eventType")
    if kind is None:
        raise ValueError(f"a HistoryEvent with no event kind: {event!r}")
    return kind


def to_event(event: pb.HistoryEvent, moment: datetime | None = None) -> Event:
    """The hub's (DTFx-shaped) event for a protocol event.

    ``moment`` stamps it when the protocol event carries no timestamp (the
    backend stamps what it records, as a real one would).
    """
    kind = kind_of(event)
    body = json_format.MessageToDict(getattr(event, kind), use_integers_for_enums=True)
    if moment is None or event.HasField("timestamp") and event.timestamp.seconds:
        moment = event.timestamp.ToDatetime(tzinfo=timezone.utc)
    out: Event = {"EventType": int(EventType[kind[0].upper() + kind[1:]]),
                  "EventId": event.eventId, "IsPlayed": False,
                  "Timestamp": format_timestamp(moment)}
    out.update(_pascal(body))
    failure = out.get("FailureDetails")
    if isinstance(failure, dict):
        out["Reason"] = failure_message(failure)
    return out


def to_proto(event: Event) -> pb.HistoryEvent:
    """The protocol event for one of the hub's events (the inverse of :func:`to_event`)."""
    name = EventType(event["EventType"]).name
    kind = name[0].lower() + name[1:]
    body = _camel({key: value for key, value in event.items()
                   if key not in _ENVELOPE and key not in _DISPLAY})
    proto = pb.HistoryEvent(eventId=event.get("EventId", -1),
                            timestamp=timestamp(parse_timestamp(event["Timestamp"])))
    inner = getattr(proto, kind)
    inner.SetInParent()       # marks the kind even when its message is empty (orchestratorStarted)
    json_format.ParseDict(body, inner, ignore_unknown_fields=True)
    return proto


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment.astimezone(timezone.utc).replace(tzinfo=None))
    return stamp


def failure_message(details: dict[str, Any]) -> str:
    """``ErrorType: ErrorMessage``, as a failure reads in a timeline."""
    kind, message = details.get("ErrorType", ""), details.get("ErrorMessage", "")
    return f"{kind}: {message}" if kind else message
