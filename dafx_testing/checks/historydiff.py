"""Event-by-event differences between two histories of the same scenario.

Two runs of one scenario (two seeds, a run before and after a crash, old and
new code) record histories that differ in things that do not matter: instance
and execution ids, timestamps, entity request ids. :func:`diff_histories`
compares what does matter: which events, in which order, with which names,
sequence numbers, inputs and results. Timer times count relative to the
history's start; ids generated from the instance are replaced by stable names.
The result renders as a readable, aligned listing with context::

    from dafx_testing.checks.historydiff import diff_histories

    diff = diff_histories(before.history, after.history, labels=("before", "after"))
    assert diff.same, str(diff)
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.history import Event, EventType, OrchestrationStatus, parse_timestamp
from ..core.timeline import preview

__all__ = ["diff_histories", "HistoryDiff"]

_VOLATILE = ("EventType", "EventId", "Timestamp", "IsPlayed", "OrchestrationInstance",
             "ParentInstance", "Correlation", "ParentTraceContext", "Tags", "Generation",
             "ScheduledStartTime", "ScheduledTime", "Details", "FailureDetails", "Version")
_PREVIEW = 70
_LEADING = ("Name", "TaskScheduledId", "TimerId", "FireAt", "InstanceId", "OrchestrationStatus")


@dataclass(frozen=True)
class HistoryDiff:
    """Two histories compared.

    Attributes:
        labels: the names of the two sides.
        lengths: how many events each side has.
        first_difference: the index (in the first history) of the first event
            that differs, or None when they are the same.
        lines: the rendered listing (``str(diff)`` joins them).
    """

    labels: tuple[str, str]
    lengths: tuple[int, int]
    first_difference: int | None
    lines: tuple[str, ...]

    @property
    def same(self) -> bool:
        """True when no event differs."""
        return self.first_difference is None

    def __str__(self) -> str:
        return "\n".join(self.lines)


def diff_histories(a: Any, b: Any, *, labels: Sequence[str] = ("a", "b"),
                   context: int = 2) -> HistoryDiff:
    """Compare two histories event by event, ignoring ids and timestamps.

    Args:
        a, b: event lists (host format), or anything with a ``history`` list
            (``sim.get_status(...)``, a loaded history document).
        labels: names for the two sides in the listing.
        context: unchanged events shown around each difference.
    """
    left, right = _events(a), _events(b)
    keys_a, keys_b = _normalized(left), _normalized(right)
    names = (str(labels[0]), str(labels[1]))
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changes:
        return HistoryDiff(names, (len(left), len(right)), None,
                           (f"histories are the same ({len(left)} events, ids and timestamps "
                            "ignored)",))
    width = len(str(max(len(left), len(right))))
    lines = [f"histories differ at {names[0]} event {changes[0][1]} / {names[1]} event "
             f"{changes[0][3]} ({names[0]}: {len(left)} events, {names[1]}: {len(right)} events)",
             f"  (- only in {names[0]}, + only in {names[1]}, = in both; numbers are event "
             "indexes)"]
    blank = " " * width
    skipped = f"  {'':>{width * 2 + 4}} ..."
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            lines += [f"  - {i:>{width}} | {blank}  {keys_a[i]}" for i in range(i1, i2)]
            lines += [f"  + {blank} | {j:<{width}}  {keys_b[j]}" for j in range(j1, j2)]
            continue
        shown = set()
        if i1 > 0:                      # context after the previous difference
            shown |= set(range(i1, min(i2, i1 + context)))
        if i2 < len(left):              # context before the next one
            shown |= set(range(max(i1, i2 - context), i2))
        previous = i1 - 1
        for i in sorted(shown):
            if i > previous + 1:
                lines.append(skipped)
            lines.append(f"  = {i:>{width}} | {j1 + i - i1:<{width}}  {keys_a[i]}")
            previous = i
        if previous < i2 - 1:
            lines.append(skipped)
    return HistoryDiff(names, (len(left), len(right)), changes[0][1], tuple(lines))


def _events(value: Any) -> list[Event]:
    if isinstance(value, dict):
        value = value.get("history")
    elif not isinstance(value, list):
        value = getattr(value, "history", None)
    if not isinstance(value, list):
        raise TypeError("diff_histories compares event lists, or objects with a 'history' list "
                        "(an InstanceStatus, a loaded history document)")
    return value


def _normalized(events: list[Event]) -> list[str]:
    """One comparable line per event, without what differs between equivalent runs."""
    start: datetime | None = None
    execution_id = ""
    request_ids: dict[str, str] = {}
    lines = []
    for event in events:
        if start is None and "Timestamp" in event:
            start = parse_timestamp(event["Timestamp"])
        kind = event.get("EventType")
        name = EventType(kind).name if isinstance(kind, int) else str(kind)
        fields = {k: v for k, v in event.items() if k not in _VOLATILE}
        if kind == EventType.ExecutionStarted:
            execution_id = (event.get("OrchestrationInstance") or {}).get("ExecutionId") or ""
        if kind == EventType.ExecutionCompleted and isinstance(fields.get("OrchestrationStatus"),
                                                                int):
            fields["OrchestrationStatus"] = OrchestrationStatus(fields["OrchestrationStatus"]).name
        if "FireAt" in fields and start is not None:
            fields["FireAt"] = _offset(parse_timestamp(str(fields["FireAt"])) - start)
        if kind == EventType.SubOrchestrationInstanceCreated and execution_id and \
                str(fields.get("InstanceId", "")).startswith(execution_id):
            fields["InstanceId"] = "<execution>" + fields["InstanceId"][len(execution_id):]
        if kind == EventType.EventSent:
            fields["Input"] = _request(fields.get("Input"), request_ids, event.get("EventId"))
        if kind == EventType.EventRaised and fields.get("Name") in request_ids:
            fields["Name"] = request_ids[fields["Name"]]
        number = event.get("EventId", -1)
        label = f"{name} #{number}" if isinstance(number, int) and number >= 0 else name
        details = " ".join(f"{k}={_preview(fields[k])}" for k in sorted(fields, key=_field_order))
        lines.append(f"{label} {details}".rstrip())
    return lines


def _field_order(name: str) -> tuple[int, str]:
    """Identifying fields first, in a fixed order; payloads after them, alphabetically."""
    return (_LEADING.index(name), "") if name in _LEADING else (len(_LEADING), name)


def _request(raw: Any, request_ids: dict[str, str], event_id: Any) -> Any:
    """An entity RequestMessage without its generated ids (they name the response)."""
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return raw
    if not isinstance(message, dict):
        return raw
    if "id" in message:
        request_ids[str(message["id"])] = f"<response to #{event_id}>"
    return {k: v for k, v in message.items() if k not in ("id", "parent", "parentExecution")}


def _offset(delta: Any) -> str:
    seconds = delta.total_seconds()
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    day = f"{int(days)}d " if days else ""
    return f"start{sign}{day}{int(hours):02d}:{int(minutes):02d}:{secs:06.3f}"


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"),
                                                           default=str)
    return preview(text, _PREVIEW)
