"""The status API's ``historyEvents``, turned back into a DTFx history.

``GET /runtime/webhooks/durabletask/instances/{id}?showHistory=true`` (and the
Python client's ``get_status(..., show_history=True)``) does not return the
stored history. The extension reshapes it for people to read
(``DurableClient.GetDurableOrchestrationStatusAsync``):

* ``EventType`` (and ``ExecutionCompleted.OrchestrationStatus``) become names;
* ``EventId`` and ``IsPlayed`` are removed from every event, ``TaskScheduledId``
  from completions and ``TimerId`` from ``TimerFired``;
* ``OrchestratorStarted``/``OrchestratorCompleted`` (the episode boundaries)
  are removed;
* a ``TaskScheduled`` or ``SubOrchestrationInstanceCreated`` that has a
  completion is removed and folded into it as ``FunctionName`` and
  ``ScheduledTime``;
* inputs are removed (``ExecutionStarted``, ``TaskScheduled``, ``EventRaised``,
  ``ExecutionTerminated``), ``ExecutionStarted.Name`` becomes ``FunctionName``,
  and results are dropped unless ``showHistoryOutput=true`` (then they are
  parsed JSON, not text).

:func:`from_status_history` rebuilds what a replay needs: sequence numbers in
scheduling order (a folded schedule goes back to its ``ScheduledTime``, and
never after its own completion), completions keyed to their schedules, timers
to their ``FireAt``, one episode per incoming event, and ``null`` for payloads
the API left out. What cannot be recovered is said in the returned notes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.errors import HistoryFormatError
from ..core.history import (
    REPLAY_FIELDS,
    Event,
    EventType,
    OrchestrationStatus,
    parse_timestamp,
    validate_event,
)
from ..core.payloads import short_repr

__all__ = ["from_status_history", "StatusHistory"]

_SCHEDULES = {EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated,
              EventType.TimerCreated, EventType.EventSent, EventType.ExecutionCompleted}
_FOLDED = {EventType.TaskCompleted: EventType.TaskScheduled,
           EventType.TaskFailed: EventType.TaskScheduled,
           EventType.SubOrchestrationInstanceCompleted: EventType.SubOrchestrationInstanceCreated,
           EventType.SubOrchestrationInstanceFailed: EventType.SubOrchestrationInstanceCreated}
_TAKES_ID = {EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated,
             EventType.TimerCreated, EventType.EventSent, EventType.ExecutionCompleted}
_EPISODE_MARKERS = {EventType.OrchestratorStarted, EventType.OrchestratorCompleted}


@dataclass
class StatusHistory:
    """A history rebuilt from the status API.

    Attributes:
        events: DTFx events, ready for a replay.
        notes: what the status API did not include (the replay used ``null``).
    """

    events: list[Event]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Item:
    event: Event          # the rebuilt DTFx event
    kind: EventType
    time: datetime
    position: int         # index in the status list
    completes: _Item | None = None   # for folded schedules: their completion


def from_status_history(events: list[Any], where: str, *, instance_id: str | None = None,
                        input: Any = None, has_input: bool = False) -> StatusHistory:
    """Rebuild a DTFx history from the status API's ``historyEvents``.

    Args:
        events: the ``historyEvents`` list.
        where: names the source in error messages (a file path).
        instance_id: the instance's id (the status' ``instanceId``), if known.
        input: the orchestration input as the status API returned it (parsed JSON).
        has_input: whether ``input`` was given (it may be None itself).

    Raises:
        HistoryFormatError: an event is not an object, has an unknown
            ``EventType`` name, lacks a field the rebuild needs, or has a field
            of the wrong type (each event is checked by the same
            :func:`~dafx_testing.core.history.validate_event` as a DTFx history, by
            its index in ``events``).
    """
    incoming: list[_Item] = []
    schedules: list[_Item] = []
    missing = {"event inputs": 0, "activity and sub-orchestration results": 0}
    for index, raw in enumerate(events):
        item = _parse(raw, index, where)
        _fill_payloads(item, raw, missing, where)
        validate_event(item.event, index, where)
        if item.kind in _EPISODE_MARKERS:
            continue
        if item.kind in _SCHEDULES:
            schedules.append(item)
            continue
        incoming.append(item)
        folded = _FOLDED.get(item.kind)
        if folded is not None and "FunctionName" in raw:
            scheduled_at = raw.get("ScheduledTime") or raw["Timestamp"]
            schedule = _Item(_new(folded, scheduled_at, Name=raw["FunctionName"], Version="",
                                  Input=None, **({"InstanceId": None} if folded ==
                                                 EventType.SubOrchestrationInstanceCreated
                                                 else {})),
                             folded, _time(scheduled_at, index, where), index, completes=item)
            schedules.append(schedule)
    if not any(i.kind == EventType.ExecutionStarted for i in incoming):
        raise HistoryFormatError(f"{where}: the status history has no ExecutionStarted event; "
                                 "it cannot be replayed")
    ordered = _interleave(incoming, schedules)
    _number(ordered, {id(s.event): s.completes.event for s in schedules if s.completes}, where)
    started = next(e for e in ordered if e["EventType"] == EventType.ExecutionStarted)
    started["OrchestrationInstance"] = {"InstanceId": instance_id or "replayed-instance",
                                        "ExecutionId": "replayed-execution"}
    started["Input"] = (_dumps(input, "the status' input", where)
                        if has_input and input is not None else None)
    notes = []
    if not has_input:
        notes.append("the orchestration input was not included; it replayed as null")
    notes += [f"the status API does not include {what} ({count} here); they replayed as null, "
              "so code that branches on them can diverge here but not in the host"
              for what, count in missing.items() if count]
    return StatusHistory(ordered, notes)


def _parse(raw: Any, index: int, where: str) -> _Item:
    """One status event, checked, as a DTFx event (payloads are filled in afterwards)."""
    if not isinstance(raw, dict):
        raise HistoryFormatError(f"{where}: event {index} is not an object: {short_repr(raw)}")
    name = raw.get("EventType")
    if not isinstance(name, str) or name not in EventType.__members__:
        raise HistoryFormatError(
            f"{where}: event {index} has EventType {short_repr(name)}, which is not a DTFx event type; "
            f"valid names: {', '.join(t.name for t in EventType)}")
    kind = EventType[name]
    if "Timestamp" not in raw:
        raise HistoryFormatError(f"{where}: event {index} ({kind.name}) lacks Timestamp")
    time = _time(raw["Timestamp"], index, where, kind, "Timestamp")
    if "FunctionName" in raw and not (isinstance(raw["FunctionName"], str) and raw["FunctionName"]):
        raise HistoryFormatError(
            f"{where}: event {index} ({kind.name}) has FunctionName {short_repr(raw['FunctionName'])}; "
            "it must be a non-empty string (the function's name)")
    if raw.get("ScheduledTime") is not None:
        _time(raw["ScheduledTime"], index, where, kind, "ScheduledTime")
    fields = {k: v for k, v in raw.items()
              if k not in ("EventType", "EventId", "IsPlayed", "Timestamp", "FunctionName",
                           "ScheduledTime")}
    if kind == EventType.ExecutionStarted:
        fields.update(Name=raw["FunctionName"] if "FunctionName" in raw else raw.get("Name"),
                      Version="", ParentInstance=None)
    status = fields.get("OrchestrationStatus")
    if kind == EventType.ExecutionCompleted and isinstance(status, str):
        if status not in OrchestrationStatus.__members__:
            raise HistoryFormatError(
                f"{where}: event {index} (ExecutionCompleted) has OrchestrationStatus "
                f"{short_repr(status)}; valid: {', '.join(s.name for s in OrchestrationStatus)}")
        fields["OrchestrationStatus"] = int(OrchestrationStatus[status])
    lacking = [f for f in REPLAY_FIELDS.get(kind, ()) if fields.get(f) is None and f not in _REBUILT]
    if lacking:
        if kind == EventType.ExecutionStarted:
            lacking = ["FunctionName (the orchestrator's name)"]
        raise HistoryFormatError(f"{where}: event {index} ({kind.name}) lacks "
                                 f"{', '.join(lacking)}; a replay needs it")
    return _Item(_new(kind, raw["Timestamp"], **fields), kind, time, index)


# What the rebuild supplies itself (the status API drops them).
_REBUILT = {"TaskScheduledId", "TimerId", "Result"}


def _new(kind: EventType, timestamp: str, **fields: Any) -> Event:
    return {"EventType": int(kind), "EventId": -1, "IsPlayed": True, "Timestamp": timestamp,
            **fields}


def _time(text: Any, index: int, where: str, kind: EventType | None = None,
          field_name: str = "Timestamp") -> datetime:
    what = f"event {index}" + (f" ({kind.name})" if kind is not None else "")
    if not isinstance(text, str):
        raise HistoryFormatError(f"{where}: {what} has {field_name} {short_repr(text)}; it must be an "
                                 "ISO timestamp string")
    try:
        return parse_timestamp(text)
    except HistoryFormatError as exc:
        raise HistoryFormatError(f"{where}: {what} {field_name}: {exc}") from None


def _fill_payloads(item: _Item, raw: dict[str, Any], missing: dict[str, int], where: str) -> None:
    """Payloads come back parsed (or not at all); DTFx events carry JSON text."""
    event = item.event
    what = f"event {item.position} ({item.kind.name})"
    if item.kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
        if "Result" in raw:
            event["Result"] = _dumps(raw["Result"], f"{what} Result", where, compact=True)
        else:
            event["Result"] = "null"
            missing["activity and sub-orchestration results"] += 1
    elif item.kind == EventType.EventRaised:
        if "Input" not in raw:
            event["Input"] = None
            missing["event inputs"] += 1
        elif raw["Input"] is not None:
            event["Input"] = _dumps(raw["Input"], f"{what} Input", where, compact=True)
    elif item.kind == EventType.ExecutionCompleted and "Result" in raw and \
            not isinstance(raw["Result"], str):
        event["Result"] = _dumps(raw["Result"], f"{what} Result", where, compact=True)


def _dumps(value: Any, what: str, where: str, compact: bool = False) -> str:
    """A parsed payload back to JSON text; a value JSON cannot hold is the history's fault."""
    try:
        return json.dumps(value, separators=(",", ":") if compact else None, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise HistoryFormatError(f"{where}: {what} is not JSON: {type(exc).__name__}: "
                                 f"{str(exc):.80}") from None


def _interleave(incoming: list[_Item], schedules: list[_Item]) -> list[Event]:
    """Put every schedule in the episode it was made in; add the episode markers.

    A schedule kept in the list sits before the first incoming event after it
    (the API only removed events). A folded one goes before the first incoming
    event that is later than its ``ScheduledTime``, and at the latest before
    its own completion. Schedules in one episode keep time order.
    """
    slots: dict[int, list[_Item]] = {}
    for schedule in schedules:
        if schedule.completes is None:
            slot = next((n for n, e in enumerate(incoming) if e.position > schedule.position),
                        len(incoming))
        else:
            own = incoming.index(schedule.completes)
            slot = next((n for n, e in enumerate(incoming[:own]) if e.time > schedule.time), own)
        slots.setdefault(slot, []).append(schedule)
    ordered: list[Event] = []
    for n, item in enumerate(incoming + [None]):
        # the schedules of the episode that ends here
        batch = sorted(slots.get(n, []), key=lambda s: (s.time, s.position))
        ordered += [s.event for s in batch]
        if ordered:
            ordered.append(_new(EventType.OrchestratorCompleted, ordered[-1]["Timestamp"]))
        if item is not None:
            ordered += [_new(EventType.OrchestratorStarted, item.event["Timestamp"]), item.event]
    return ordered


def _number(ordered: list[Event], folded: dict[int, Event], where: str) -> None:
    """Give schedules their sequence numbers and point completions at them.

    ``folded`` maps ``id(schedule event)`` to the completion it was folded into.
    """
    next_id = 0
    unclaimed: dict[int, list[Event]] = {int(EventType.TaskScheduled): [],
                                         int(EventType.SubOrchestrationInstanceCreated): []}
    timers: list[Event] = []
    for event in ordered:
        kind = EventType(event["EventType"])
        if kind in _TAKES_ID:
            event["EventId"] = next_id
            next_id += 1
            completion = folded.get(id(event))
            if completion is not None:
                completion["TaskScheduledId"] = event["EventId"]
            elif kind == EventType.TimerCreated:
                timers.append(event)
            elif kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
                unclaimed[int(kind)].append(event)
        elif kind in _FOLDED and "TaskScheduledId" not in event:
            candidates = unclaimed[int(_FOLDED[kind])]
            if not candidates:
                raise HistoryFormatError(
                    f"{where}: a {kind.name} at {event['Timestamp']} has neither a FunctionName "
                    "nor a schedule before it; the status history is incomplete")
            event["TaskScheduledId"] = candidates.pop(0)["EventId"]
        elif kind == EventType.TimerFired:
            fire_at = event.get("FireAt")
            match = next((t for t in timers if fire_at is not None
                          and parse_timestamp(t["FireAt"]) == parse_timestamp(fire_at)),
                         timers[0] if timers else None)
            if match is None:
                raise HistoryFormatError(f"{where}: the TimerFired at {event['Timestamp']} has no "
                                         "TimerCreated before it")
            timers.remove(match)
            event["TimerId"] = match["EventId"]
