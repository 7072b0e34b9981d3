"""One orchestrator episode: the host's context JSON in, the SDK's state out, replayed.

The SDK's generated handle is called exactly as the Python worker calls it: with
``func.OrchestrationContext(<json>)``. The JSON is what the extension builds in
``OrchestrationContextToString``: the full history (past events ``IsPlayed``,
then ``OrchestratorStarted`` and the new events), the input, the schema flags
and the storage provider's timer limits. The returned ``OrchestratorState`` (or
the one embedded after ``$OutOfProcData$`` when user code raised) then goes
through :class:`~dafx_testing.functions.host.HostReplay`.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func

from ..core.history import Event, EventType, new_event
from .host import FunctionCatalog, HostReplay, ReplayOutcome

OUT_OF_PROC_MARKER = "$OutOfProcData$:"
DEFAULT_HTTP_POLL_MS = 30_000


@dataclass(frozen=True)
class TimerLimits:
    """A storage provider's timer limits, sent to the SDK with every episode.

    Azure Storage (the default) caps one timer at 6 days and splits longer ones
    into 3-day chunks; providers without limits (MSSQL, Netherite, DTS) send
    none, which :data:`NO_TIMER_LIMITS` models.
    """

    long_running_interval: timedelta | None = timedelta(days=3)
    maximum_short_timer: timedelta | None = timedelta(days=6)


AZURE_STORAGE_TIMER_LIMITS = TimerLimits()
NO_TIMER_LIMITS = TimerLimits(None, None)


@dataclass
class Execution:
    """The identity of the execution an episode belongs to."""

    instance_id: str
    execution_id: str
    name: str
    parent_instance_id: str | None
    input: str | None   # ExecutionStarted.Input, JSON text


@dataclass
class Episode:
    """What one episode produced: the events it saw and the host's decisions."""

    started: Event
    events: list[Event]         # the full history the SDK was given
    body: str                   # the context JSON the handle was called with
    state: dict[str, Any]       # the SDK's OrchestratorState JSON
    outcome: ReplayOutcome
    waiting_for: list[str]      # external events the code still awaits (see awaited_events)
    suspended: bool             # the replay ended inside ExecutionSuspended
    host_replay: HostReplay | None = None   # to resume from next episode (see run_episode)
    unmatched_events: list[str] = field(default_factory=list)   # arrived, awaited by nothing yet


def run_episode(
    handle: Callable[..., Any],
    execution: Execution,
    past: list[Event],
    new_events: list[Event],
    now: datetime,
    catalog: FunctionCatalog,
    timer_limits: TimerLimits = AZURE_STORAGE_TIMER_LIMITS,
    guard: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    previous: HostReplay | None = None,
    past_pieces: list[str] | None = None,
) -> Episode:
    """Run one episode through the SDK handle, then replay it host-side.

    ``guard`` wraps the call into orchestrator code (the determinism guard
    watches for wall-clock, random and I/O calls there). ``previous`` is the
    host-side replay of this instance's last episode, if ``past`` is exactly
    what that episode committed: it goes on with the new events where that is
    equivalent to replaying everything again (see :meth:`HostReplay.resume`).
    ``past_pieces``: the cached JSON text of ``past``'s first events (see
    :func:`context_body`), or None to encode the whole history.
    """
    started = new_event(EventType.OrchestratorStarted, now)
    events = past + [started] + new_events
    body = context_body(execution, events, len(past), timer_limits, past_pieces)
    with guard():
        state = call_handle(handle, body)
    replay = previous
    outcome = replay.resume(events[replay.processed:], state) if replay is not None else None
    if replay is None or outcome is None:
        replay = HostReplay(
            instance_id=execution.instance_id,
            execution_id=execution.execution_id,
            name=execution.name,
            parent_instance_id=execution.parent_instance_id,
            catalog=catalog,
        )
        outcome = replay.replay(events, state)
    waiting, unmatched = awaited_events(state, events, replay.pending_names.values())
    return Episode(started, events, body, state, outcome, waiting,
                   replay.is_suspended, replay, unmatched)


def awaited_events(state: dict[str, Any], events: list[Event],
                   host_waits: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """External events the orchestrator code still awaits, and those nothing awaits yet.

    Counted as the Python SDK matches them, by exact name, one raised event per
    ``wait_for_external_event``: the host's own waiters match regardless of
    case, so an event named ``approved`` releases the host's waiter for
    ``Approved`` while the code, still waiting, never sees it. ``host_waits``
    are the names the host replay waited on; those the code did not (entity
    request ids) name entity responses, which are not external events.
    """
    waits: Counter[str] = Counter()
    _count_waits(state.get("actions") or [], waits)
    replies = set(host_waits).difference(waits)
    raised = Counter(event.get("Name") or "" for event in events
                     if event["EventType"] == EventType.EventRaised)
    return (sorted(name for name in waits if waits[name] > raised[name]),
            sorted(name for name in raised if raised[name] > waits[name] and name not in replies))


def _count_waits(actions: Any, waits: Counter[str]) -> None:
    """Count the WaitForExternalEvent actions (type 6) in the SDK's nested action lists."""
    if isinstance(actions, list):
        for action in actions:
            _count_waits(action, waits)
    elif isinstance(actions, dict):
        if actions.get("actionType") == 6:
            waits[str(actions.get("externalEventName"))] += 1
        _count_waits(actions.get("compoundActions") or [], waits)


def context_json(execution: Execution, history: list[Event], is_replaying: bool,
                 timer_limits: TimerLimits) -> dict[str, Any]:
    """The orchestration trigger payload, key for key as the extension builds it."""
    return {
        "history": history,
        "input": json.loads(execution.input) if execution.input is not None else None,
        "instanceId": execution.instance_id,
        "parentInstanceId": execution.parent_instance_id,
        "isReplaying": is_replaying,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
        "longRunningTimerIntervalDuration": _timespan(timer_limits.long_running_interval),
        "maximumShortTimerDuration": _timespan(timer_limits.maximum_short_timer),
        "defaultHttpAsyncRequestSleepTimeMillseconds": DEFAULT_HTTP_POLL_MS,
    }


def context_body(execution: Execution, events: list[Event], played: int,
                 timer_limits: TimerLimits, pieces: list[str] | None = None) -> str:
    """The context JSON text, ``json.dumps(context_json(...))``, without re-encoding the past.

    Encoding the whole history every episode makes a run's cost quadratic in
    its length. ``pieces`` holds ``json.dumps`` of ``events[:len(pieces)]``,
    all committed (``events[:played]`` is the history): it is extended to the
    whole past here, so each committed event is encoded once. ``json.dumps``
    of a list is its items' own ``json.dumps`` joined by ``", "`` in ``[]``,
    and ``"history"`` is the payload's first key, so the text is the same,
    byte for byte. A committed event is ``IsPlayed`` from its commit on (set
    before it), as the past is in the body; the new events, not yet played
    and about to change, are encoded afresh.
    """
    payload = context_json(execution, events, played > 0, timer_limits)
    if pieces is None:
        return json.dumps(payload)
    if len(pieces) > played:
        pieces.clear()          # not this history's: start over
    pieces.extend(map(json.dumps, events[len(pieces):played]))
    del payload["history"]
    history = ", ".join([*pieces, *map(json.dumps, events[played:])])
    return "".join(('{"history": [', history, "], ", json.dumps(payload)[1:]))


def call_handle(handle: Callable[..., Any], body: str) -> dict[str, Any]:
    """Call the generated handle; recover the state from ``$OutOfProcData$`` on errors."""
    try:
        return json.loads(handle(func.OrchestrationContext(body)))
    except Exception as exc:
        text = str(exc)
        marker = text.rfind(OUT_OF_PROC_MARKER)
        if marker >= 0:
            return json.loads(text[marker + len(OUT_OF_PROC_MARKER):])
        # The handle failed before producing a state (the host then fails the
        # instance with the exception's message and no actions).
        return {"isDone": False, "schemaVersion": 2, "actions": [[]],
                "error": f"{type(exc).__name__}: {exc}"}


def _timespan(value: timedelta | None) -> str | None:
    """A .NET TimeSpan string (``d.hh:mm:ss``) or None."""
    if value is None:
        return None
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{secs:02d}"
