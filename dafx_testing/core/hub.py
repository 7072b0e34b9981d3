"""The durable store: what Azure Storage or DTS would hold for a task hub.

Instances (their committed history, runtime status, output), the messages
waiting for each instance, the activity queue and the timers. Everything the
simulator keeps between steps lives here and nowhere else, so throwing away any
other state (a crash) loses nothing the host would keep.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InstanceNotFoundError
from .history import Event, EventType
from .messages import ActivityWork, EntityRequest

TERMINAL = ("Completed", "Failed", "Terminated")


@dataclass(frozen=True)
class ParentLink:
    """Where a sub-orchestration reports back: the parent's execution and task id."""

    instance_id: str
    execution_id: str
    task_id: int
    name: str


@dataclass
class Instance:
    """One orchestration instance as stored by the host.

    ``history`` is the current execution's committed history; ``inbox`` holds
    delivered messages (as history events) that no episode has processed yet.
    """

    instance_id: str
    name: str
    execution_id: str
    input: str | None
    created_time: datetime
    last_updated_time: datetime
    parent: ParentLink | None = None
    runtime_status: str = "Pending"
    history: list[Event] = field(default_factory=list)
    inbox: list[Event] = field(default_factory=list)
    output: str | None = None
    custom_status: str | None = None
    waiting_for: list[str] = field(default_factory=list)
    unmatched_events: list[str] = field(default_factory=list)  # raised, awaited by nothing (buffered)
    host_faults: list[str] = field(default_factory=list)   # calls the host faulted and never scheduled
    dropped_starts: list[str] = field(default_factory=list)  # sub-orchestrations DTFx never started
    history_digest: str = ""         # running hash of ``history``, kept by the hub
    settled: SettledHistory = field(default_factory=lambda: SettledHistory())
    context_pieces: list[str] = field(default_factory=list, compare=False, repr=False)
    """``json.dumps`` of each event of a prefix of ``history``, as the context JSON
    carries it: filled lazily by the worker (committed events never change), emptied
    with the history by :meth:`TaskHub.replace_history`."""

    @property
    def is_terminal(self) -> bool:
        return self.runtime_status in TERMINAL


@dataclass
class EntityRecord:
    """One entity as the host stores it: existence, state text and its request queue."""

    name: str
    key: str
    exists: bool = False
    state: str | None = None      # the entityState JSON text, verbatim
    last_modified_time: datetime | None = None
    batches: int = 0                 # batches committed so far
    aborted: str | None = None       # why its last batch was aborted (retried on the next message)
    queue: deque[EntityRequest] = field(default_factory=deque)
    locked_by: EntityLock | None = None   # the critical section holding it (Durable Task protocol)


@dataclass(frozen=True)
class EntityLock:
    """A critical section's lock request: which entities, for which orchestration."""

    section: str                     # the critical section id
    owner: str                       # the orchestration instance inside it
    owner_execution: str
    entities: tuple[str, ...]        # scheduler ids "@name@key", sorted


class TaskHub:
    """Instances, inboxes, entities, the activity queue and the timer queue."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.entities: dict[str, EntityRecord] = {}    # by scheduler id "@name@key"
        self.ready: deque[str] = deque()           # instances with inbox messages, FIFO
        self.entities_ready: deque[str] = deque()  # entities with queued requests, FIFO
        self.activities: deque[ActivityWork] = deque()
        self._timers: list[tuple[datetime, int, str, str, Event]] = []
        self._timer_seq = 0
        # Entity operations sent for later (a signal's scheduled time): (due, seq, id, request).
        self._entity_timers: list[tuple[datetime, int, str, EntityRequest]] = []
        self.lock_requests: list[EntityLock] = []    # critical sections waiting for their locks
        self._executions: dict[str, int] = {}

    def get(self, instance_id: str) -> Instance:
        try:
            return self.instances[instance_id]
        except KeyError:
            known = ", ".join(repr(i) for i in list(self.instances)[:10]) or "none"
            raise InstanceNotFoundError(
                f"no orchestration instance {instance_id!r} in the task hub; instances: {known}"
            ) from None

    def add(self, instance: Instance) -> None:
        self.instances[instance.instance_id] = instance
        self.replace_history(instance, instance.history)

    def append_history(self, instance: Instance, events: list[Event]) -> None:
        """Commit events to an instance's history (and its running digests)."""
        instance.history.extend(events)
        self._digest(instance, events)

    def replace_history(self, instance: Instance, events: list[Event]) -> None:
        """Set a whole new history (continue-as-new, rewind, loading a file)."""
        instance.history = events
        instance.history_digest = ""
        instance.context_pieces = []      # the events may differ (rewind edits them in place)
        instance.settled = SettledHistory()
        self._digest(instance, events)

    @staticmethod
    def _digest(instance: Instance, events: list[Event]) -> None:
        """Extend both running digests, encoding each event once."""
        encoded = [_encode(event) for event in events]
        instance.history_digest = _chain(encoded, instance.history_digest)
        instance.settled.add(events, encoded)

    def next_execution_number(self, instance_id: str) -> int:
        """How many executions this instance id has had; counts the new one."""
        number = self._executions.get(instance_id, 0)
        self._executions[instance_id] = number + 1
        return number

    def fingerprint(self) -> str:
        """A hash of everything durable: two hubs with equal fingerprints behave alike.

        Instances (status, output, settled history, inbox), entities (state and
        queue), the activity queue, pending timers and the ready orders; used by
        crash sweeps to notice that a recovered run has converged. A history is
        compared without the duplicate completions the host ignored, once they
        have been replayed (see :class:`SettledHistory`).
        """
        parts: list[Any] = []
        for instance in sorted(self.instances.values(), key=lambda i: i.instance_id):
            parts.append((instance.instance_id, instance.execution_id, instance.runtime_status,
                          instance.output, instance.custom_status, instance.settled.digest,
                          instance.settled.absorbing and not instance.is_terminal,
                          instance.inbox))
        for entity_id in sorted(self.entities):
            record = self.entities[entity_id]
            parts.append((entity_id, record.exists, record.state,
                          [(r.request_id, r.operation) for r in record.queue], record.locked_by))
        parts.append((self.lock_requests, sorted((t[0].isoformat(), t[2], t[3].request_id)
                                                 for t in self._entity_timers)))
        parts.append([(w.instance_id, w.execution_id, w.task_id, w.attempt) for w in self.activities])
        parts.append(sorted((t[0].isoformat(), t[2], t[3], json.dumps(t[4], sort_keys=True))
                            for t in self._timers))
        parts.append((list(self.ready), list(self.entities_ready)))
        return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def deliver(self, instance_id: str, event: Event, execution_id: str | None = None) -> bool:
        """Queue a message for an instance; dropped (False) if it cannot take it.

        Messages for a finished instance, or for an earlier execution (before a
        continue-as-new), are discarded as the host discards them.
        """
        instance = self.instances.get(instance_id)
        if instance is None or instance.is_terminal:
            return False
        if execution_id is not None and execution_id != instance.execution_id:
            return False
        instance.inbox.append(event)
        if instance_id not in self.ready:
            self.ready.append(instance_id)
        return True

    def send_to_entity(self, scheduler_id: str, name: str, key: str,
                       request: EntityRequest) -> None:
        """Queue an operation for an entity (created on first use, as the host does)."""
        record = self.entities.setdefault(scheduler_id, EntityRecord(name=name, key=key))
        record.queue.append(request)
        if scheduler_id not in self.entities_ready:
            self.entities_ready.append(scheduler_id)

    def schedule_timer(self, fire_at: datetime, instance_id: str, execution_id: str,
                       event: Event) -> None:
        heapq.heappush(self._timers, (fire_at, self._timer_seq, instance_id, execution_id, event))
        self._timer_seq += 1

    def schedule_entity_request(self, due: datetime, scheduler_id: str, name: str, key: str,
                                request: EntityRequest) -> None:
        """Queue an entity operation when the clock reaches ``due`` (a scheduled signal)."""
        self._entity_timers.append((due, self._timer_seq, scheduler_id, request))
        self._entity_timers.sort(key=lambda t: (t[0], t[1]))
        self._timer_seq += 1
        self.entities.setdefault(scheduler_id, EntityRecord(name=name, key=key))

    def next_timer(self) -> datetime | None:
        """When the earliest pending timer fires (None if there is none)."""
        while self._timers:
            fire_at, _, instance_id, execution_id, _ = self._timers[0]
            instance = self.instances.get(instance_id)
            if instance is None or instance.is_terminal or instance.execution_id != execution_id:
                heapq.heappop(self._timers)      # the host would drop it on delivery
                continue
            break
        moments = [self._timers[0][0]] if self._timers else []
        if self._entity_timers:
            moments.append(self._entity_timers[0][0])
        return min(moments, default=None)

    def fire_due_timers(self, now: datetime) -> int:
        """Deliver every timer due at ``now``; returns how many were delivered."""
        fired = 0
        while self._timers and self._timers[0][0] <= now:
            _, _, instance_id, execution_id, event = heapq.heappop(self._timers)
            fired += self.deliver(instance_id, event, execution_id)
        while self._entity_timers and self._entity_timers[0][0] <= now:
            _, _, scheduler_id, request = self._entity_timers.pop(0)
            record = self.entities[scheduler_id]
            self.send_to_entity(scheduler_id, record.name, record.key, request)
            fired += 1
        return fired

    def pending_timers(self, instance_id: str) -> list[datetime]:
        return sorted(t[0] for t in self._timers if t[2] == instance_id)

    def purge(self, instance_id: str) -> None:
        del self.instances[instance_id]
        if instance_id in self.ready:
            self.ready.remove(instance_id)


_COMPLETIONS = {EventType.TaskCompleted: "TaskScheduledId", EventType.TaskFailed: "TaskScheduledId",
                EventType.SubOrchestrationInstanceCompleted: "TaskScheduledId",
                EventType.SubOrchestrationInstanceFailed: "TaskScheduledId",
                EventType.TimerFired: "TimerId"}
_EPISODE_MARKERS = (EventType.OrchestratorStarted, EventType.OrchestratorCompleted)


@dataclass
class SettledHistory:
    """A history's digest without the duplicate completions the host ignored.

    A message delivered twice (at-least-once queues) puts a second completion
    of the same task in history; the host records it and ignores it on every
    replay. A crash run that met one can never equal the baseline event for
    event, yet it behaves alike once the orchestrator has replayed the
    duplicate as a past event and decided the same. So this digest skips such
    completions (and an episode made of nothing else), and ``absorbing`` stays
    True from the episode that received one until the next episode replays it.
    (A finished instance replays no more, so there it does not matter.) Crash
    sweeps compare this digest, which lets duplicate-delivery runs converge
    instead of running to the end.
    """

    digest: str = ""
    absorbing: bool = False
    completed: set[int | None] = field(default_factory=set)   # None: a completion naming no task

    def add(self, events: list[Event], encoded: list[bytes] | None = None) -> None:
        """Account for newly committed events: one episode, or a whole history.

        ``encoded``: the events as the hub already serialized them, if at hand.
        """
        if encoded is None:
            encoded = [_encode(event) for event in events]
        duplicates = False
        for episode in _episodes(list(zip(events, encoded))):
            kept = [(e, code) for e, code in episode if not self._is_duplicate(e)]
            if len(kept) < len(episode):
                duplicates = True
                if all(e["EventType"] in _EPISODE_MARKERS for e, _ in kept):
                    continue             # an episode that only received a duplicate
            self.digest = _chain([code for _, code in kept], self.digest)
        self.absorbing = duplicates

    def _is_duplicate(self, event: Event) -> bool:
        field_name = _COMPLETIONS.get(event["EventType"])
        if field_name is None:
            return False
        task_id = event.get(field_name)
        if task_id in self.completed:
            return True
        self.completed.add(task_id)
        return False


def _episodes(pairs: list[tuple[Event, bytes]]) -> list[list[tuple[Event, bytes]]]:
    """(event, encoding) pairs cut before each OrchestratorStarted."""
    episodes: list[list[tuple[Event, bytes]]] = []
    for pair in pairs:
        if pair[0]["EventType"] == EventType.OrchestratorStarted or not episodes:
            episodes.append([])
        episodes[-1].append(pair)
    return episodes


def digest_events(events: list[Event], previous: str = "") -> str:
    """A hash of ``events``, continuing a previous digest (histories are append-only)."""
    return _chain([_encode(event) for event in events], previous)


def _encode(event: Event) -> bytes:
    return json.dumps(event, sort_keys=True).encode()


def _chain(encoded: list[bytes], previous: str) -> str:
    hasher = hashlib.sha1(previous.encode())
    for code in encoded:
        hasher.update(code)
    return hasher.hexdigest()
