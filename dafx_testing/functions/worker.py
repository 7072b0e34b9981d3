"""The worker: the host's dispatchers, one unit of work at a time.

Each step takes one message from the task hub (an activity to run, an
instance's new events, an entity's queued operations), does the work, and then
commits its result to the hub in one go. Both sides of that commit are crash
points: when the :class:`~dafx_testing.core.crash.CrashLog` says the worker dies,
the uncommitted result is dropped and the message goes back to its queue, so
the work runs again from the store exactly as after a real worker restart.

An activity or entity batch whose model calls take virtual time commits when
they return: until then its result is in flight (:mod:`dafx_testing.core.in_flight`)
and an entity stays locked.
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..core.clock import VirtualClock, WorkTime
from ..core.crash import CrashLog
from ..core.errors import (
    NonDeterminismError,
    RunawayOrchestrationError,
    UnhandledHttpCallError,
    UnknownFunctionError,
)
from ..core.history import (
    DTFX_EVENTS,
    Event,
    EventType,
    OrchestrationStatus,
    new_event,
    parse_timestamp,
    unanswered,
)
from ..core.hub import EntityRecord, Instance, ParentLink, TaskHub, digest_events
from ..core.in_flight import InFlight
from ..core.latency import charge, metering
from ..core.messages import ActivityWork, EntityRequest
from ..core.sleeps import sleeps_charged
from ..core.virtual_loop import VirtualTimeLoop
from .activities import (
    ActivityLedger,
    ActivityOutcome,
    app_modules,
    failure,
    run_activity,
)
from .app import ACTIVITY, ENTITY, ORCHESTRATOR, AppIndex
from .entities import (
    DEFAULT_BATCH_SIZE,
    BatchOutcome,
    entity_key,
    run_batch,
    scheduler_id,
)
from .host import (
    COMPLETE,
    CREATE_SUB_ORCHESTRATION,
    CREATE_TIMER,
    HTTP_ACTIVITY,
    SCHEDULE_TASK,
    SEND_EVENT,
    Decision,
    FunctionCatalog,
    HostReplay,
)
from .orchestrations import (
    AZURE_STORAGE_TIMER_LIMITS,
    Episode,
    Execution,
    TimerLimits,
    run_episode,
)

HttpHandler = Callable[["HttpCall"], Any]
EpisodeCheck = Callable[[Callable[..., Any], Episode], NonDeterminismError | None]

_EXECUTION_NAMESPACE = uuid.UUID("5b1ae0f4-3b07-4b44-8d4e-8a2b4d0f5e6c")


@dataclass(frozen=True)
class HttpCall:
    """An orchestrator's ``call_http`` request, as your ``http_handler`` receives it."""

    method: str
    uri: str
    content: str | None
    headers: dict[str, Any]
    instance_id: str


@dataclass
class Settings:
    """The knobs of a simulation (see :class:`~dafx_testing.Simulator` for each)."""

    timer_limits: TimerLimits = AZURE_STORAGE_TIMER_LIMITS
    max_episodes: int = 10_000
    max_history_events: int = 50_000
    max_replayed_events: int = 200_000
    raise_on_nondeterminism: bool = True
    entity_batch_size: int = DEFAULT_BATCH_SIZE
    guard: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    episode_checks: list[EpisodeCheck] = field(default_factory=list)
    http_handler: HttpHandler | None = None
    shuffle_seed: int | None = None
    resume_host_replay: bool = True
    """Go on with an instance's host-side replay from its last episode where that
    is equivalent to replaying the whole history again (it is faster; off, for
    comparing, replays everything every episode)."""
    cached_context_json: bool = True
    """Build each episode's context JSON from each committed event's text, encoded
    once (:func:`~dafx_testing.functions.orchestrations.context_body`); off, for
    comparing, encodes the whole history every episode. The text is the same."""


class PrefixCache:
    """Episode outcomes of a baseline run, for crash runs to reuse until their first crash.

    Until a crash run's first crash it is the baseline, event for event, so an
    episode with the same instance, execution, history digest, new events and
    time would return what the baseline's did. Reusing the baseline's outcome
    skips the SDK replay, which is nearly all of a run's cost, and makes a
    sweep's prefixes cheap. Activities and entity batches still run, so the
    outside world evolves as it did. Only what committing needs is kept.
    """

    def __init__(self) -> None:
        self.episodes: dict[Any, Episode] = {}
        self.recording = True

    def remember(self, key: Any, episode: Episode) -> None:
        self.episodes[key] = Episode(episode.started, [], "", {}, episode.outcome,
                                     episode.waiting_for, episode.suspended,
                                     unmatched_events=episode.unmatched_events)


class Worker:
    """Runs the work queued in a task hub, step by step, with crash points around commits."""

    history_events: frozenset[EventType] = DTFX_EVENTS
    """The event types its host's histories hold (a loaded history is checked against them)."""

    def __init__(self, index: AppIndex, hub: TaskHub, clock: VirtualClock,
                 ledger: ActivityLedger, settings: Settings, seed: int, crashes: CrashLog) -> None:
        self.index = index
        self.hub = hub
        self.clock = clock
        self.ledger = ledger
        self.settings = settings
        self.seed = seed
        self.crashes = crashes
        self.catalog = FunctionCatalog(
            activities=index.names(ACTIVITY),
            orchestrators=index.names(ORCHESTRATOR),
            entities=index.names(ENTITY),
        )
        self.nondeterminism: list[NonDeterminismError] = []
        self.last_state: dict[str, dict[str, Any]] = {}   # worker memory, lost in a crash
        self.episodes: Counter = Counter()                  # committed episodes per drive call
        self.replayed: Counter = Counter()                  # history events replayed per drive call
        self.prefix_cache: PrefixCache | None = None     # set by crash sweeps
        # worker memory: each instance's host-side replay, with the history it has seen
        self.host_replays: dict[str, tuple[HostReplay, list[Event], int]] = {}
        self.in_flight = InFlight()                          # results waiting on slow models
        self._order = random.Random(settings.shuffle_seed) if settings.shuffle_seed is not None else None

    @property
    def now(self) -> datetime:
        return self.clock.now

    # -- the loop --

    def step(self) -> bool:
        """Do one unit of work; False when nothing is due."""
        self.hub.fire_due_timers(self.now)
        landed = self.in_flight.pop_due(self.now)
        if landed is not None:
            landed.commit()
            return True
        if self.hub.activities:
            self._activity_step(self._take(self.hub.activities))
            return True
        if self.hub.ready:
            self._episode_step(self.hub.get(self._take(self.hub.ready)))
            return True
        if self.hub.entities_ready:
            self._entity_step(self.hub.entities[self._take(self.hub.entities_ready)])
            return True
        return False

    def _take(self, queue: Any) -> Any:
        """The next message: FIFO, or a seeded pick when exploring other orders."""
        if self._order is None or len(queue) == 1:
            return queue.popleft()
        position = self._order.randrange(len(queue))
        queue.rotate(-position)
        item = queue.popleft()
        queue.rotate(position)
        return item

    def next_due(self) -> datetime | None:
        """The next instant something happens without outside input: a timer or a landing result."""
        moments = [m for m in (self.hub.next_timer(), self.in_flight.next_due()) if m is not None]
        return min(moments, default=None)

    def fingerprint(self) -> str:
        """The durable state plus the work in flight: two equal fingerprints behave alike."""
        return f"{self.hub.fingerprint()}/{self.in_flight.fingerprint()}"

    def _crash(self, kind: str, name: str, target: str, work: str) -> bool:
        crashed = self.crashes.reach(kind, name, target, work)
        if crashed:
            self.in_flight.abandon_all()  # the process died with its running work
            self.host_replays.clear()
            if kind == "after-commit":
                self.last_state.clear()   # nothing durable is lost; memory is
        return crashed

    # -- activities --

    def _activity_step(self, work: ActivityWork) -> None:
        point = (work.name, work.instance_id, f"task {work.task_id}")
        if self._crash("dequeue", *point):
            self.hub.activities.append(work)
            return
        with self.clock.working() as work_time, metering(on_charge=work_time.took) as taken:
            outcome = self._run_activity(work, work_time)
        self._complete(taken.seconds, ("activity", *point), outcome,
                       commit=lambda: self._commit_activity(work, outcome, point),
                       abandon=lambda: self.hub.activities.append(work))

    def _commit_activity(self, work: ActivityWork, outcome: ActivityOutcome,
                         point: tuple[str, str, str]) -> None:
        if self._crash("activity", *point):
            self.hub.activities.append(work)     # the completion was lost: it runs again
            return
        self.hub.deliver(work.instance_id, self.completion_event(work, outcome), work.execution_id)
        if self._crash("duplicate", *point):
            self.hub.activities.append(work)     # at-least-once: the message comes back
        self._crash("after-commit", *point)

    def completion_event(self, work: ActivityWork, outcome: ActivityOutcome) -> Event:
        """The ``TaskCompleted``/``TaskFailed`` message an activity's outcome sends back."""
        if outcome.ok:
            return new_event(EventType.TaskCompleted, self.now, TaskScheduledId=work.task_id,
                             Result=outcome.result)
        return new_event(EventType.TaskFailed, self.now, TaskScheduledId=work.task_id,
                         Reason=outcome.reason, Details=outcome.details)

    def _complete(self, seconds: float, point: tuple[str, ...], outcome: Any,
                  commit: Callable[[], None], abandon: Callable[[], None],
                  busy: str | None = None) -> None:
        """Commit a unit of work now, or ``seconds`` later in virtual time (slow models, sleeps).

        A parked result is labelled with its point and outcome, so that sweeps
        telling runs apart also tell apart what each has in flight.
        """
        if seconds <= 0:
            commit()
            return
        label = " / ".join((*point, repr(outcome)))
        self.in_flight.park(self.now + timedelta(seconds=seconds), label, commit, abandon,
                            busy)

    def _run_activity(self, work: ActivityWork, work_time: WorkTime) -> ActivityOutcome:
        """Run the activity's code; its sleeps take virtual time (``work_time``), not real time."""
        if work.name == HTTP_ACTIVITY:
            return self._run_http(work)
        info = self.index.find(ACTIVITY, work.name)
        if info is None:  # the app no longer has it (code changed under a loaded history)
            return failure(work.name, UnknownFunctionError(
                f"The function '{work.name}' doesn't exist, is disabled, or is not an "
                "activity function."))

        def loop() -> VirtualTimeLoop:
            # A wait on the activity's loop is the activity taking that much longer.
            return VirtualTimeLoop(work_time.now, lambda delta: charge(delta.total_seconds()))

        with sleeps_charged(app_modules(info.handler)):
            outcome, call = run_activity(info.handler, info.trigger_param, work,
                                         self.ledger.mock_for(info.name), self.now, loop)
        self.ledger.calls.append(call)
        return outcome

    def _run_http(self, work: ActivityWork) -> ActivityOutcome:
        request = work.input if isinstance(work.input, dict) else json.loads(work.input)
        call = HttpCall(method=request.get("method", "GET"), uri=request.get("uri", ""),
                        content=request.get("content"), headers=request.get("headers") or {},
                        instance_id=work.instance_id)
        handler = self.settings.http_handler
        if handler is None:
            self.hub.activities.appendleft(work)   # keep the work item: nothing is lost
            raise UnhandledHttpCallError(
                f"instance {work.instance_id!r} called {call.method} {call.uri} with call_http and "
                "no http_handler is set; tests never reach the network. Pass "
                "Simulator(app, http_handler=lambda call: {'statusCode': 200, 'content': '...'})."
            )
        try:
            response = _http_response(handler(call))
        except Exception as exc:
            return failure(HTTP_ACTIVITY, exc)
        return ActivityOutcome(True, result=json.dumps(response))

    # -- orchestrator episodes --

    def _take_episode(self, instance: Instance) -> tuple[list[Event], tuple[str, str, str]] | None:
        """The instance's new events and the episode's crash point; None when the worker dies
        taking them (they go back). Raises if the instance loops (see :meth:`_check_runaway`)."""
        new_events, instance.inbox = instance.inbox, []
        point = (instance.name, instance.instance_id, f"episode at event {len(instance.history)}")
        if self._crash("dequeue", *point):
            self._put_back(instance, new_events)
            return None
        self._check_runaway(instance, new_events)
        return new_events, point

    def _episode_step(self, instance: Instance) -> None:
        taken = self._take_episode(instance)
        if taken is None:
            return
        new_events, point = taken
        info = self.index.find(ORCHESTRATOR, instance.name)
        if info is None:
            instance.inbox = new_events + instance.inbox
            raise UnknownFunctionError(
                f"instance {instance.instance_id!r} runs orchestrator {instance.name!r}, which the "
                f"app no longer defines; known: {', '.join(self.index.names(ORCHESTRATOR))}"
            )
        cache = None if self.crashes.crashed else self.prefix_cache   # only until the first crash
        key = ((instance.instance_id, instance.execution_id, instance.history_digest,
                digest_events(new_events), self.now) if cache is not None else None)
        episode = cache.episodes.get(key) if cache is not None and not cache.recording else None
        replayed = episode is not None
        previous = self._host_replay_of(instance)
        if episode is None:
            settings = self.settings
            try:
                episode = run_episode(info.handler, execution_of(instance), instance.history,
                                      new_events, self.now, self.catalog, settings.timer_limits,
                                      settings.guard, previous,
                                      instance.context_pieces if settings.cached_context_json
                                      else None)
            except BaseException:
                self._put_back(instance, new_events)    # nothing was committed: lose nothing
                raise
            if cache is not None and cache.recording:
                cache.remember(key, episode)
        if self._crash("episode", *point):
            self._put_back(instance, new_events)
            return
        self._commit_episode(instance, new_events, episode)
        replay = episode.host_replay
        if replay is not None and replay.resumable and self.settings.resume_host_replay:
            self.host_replays[instance.instance_id] = (replay, instance.history,
                                                       len(instance.history))
        self.episodes[instance.instance_id] += 1
        if replayed:                # the cache kept no state: the last one is unknown
            self.last_state.pop(instance.instance_id, None)
        else:
            self.last_state[instance.instance_id] = episode.state
        self._crash("after-commit", *point)
        if not replayed:
            self._report(instance, info.handler, episode)

    def _host_replay_of(self, instance: Instance) -> HostReplay | None:
        """The replay of the instance's last episode, if the history is what that one committed.

        Taken out of memory: an episode that fails or crashes before committing
        leaves none behind, so the next one replays in full.
        """
        kept = self.host_replays.pop(instance.instance_id, None)
        if kept is None or not self.settings.resume_host_replay:
            return None
        replay, history, length = kept
        return replay if history is instance.history and len(history) == length else None

    def _put_back(self, instance: Instance, new_events: list[Event]) -> None:
        instance.inbox = new_events + instance.inbox
        if instance.instance_id not in self.hub.ready:
            self.hub.ready.append(instance.instance_id)

    def new_drive(self) -> None:
        """A driving call starts: the runaway budgets (episodes, replayed events) start over."""
        self.episodes.clear()
        self.replayed.clear()

    def _check_runaway(self, instance: Instance, new_events: list[Event]) -> None:
        """Stop an instance that loops before its next episode, naming the budget it exhausted.

        Each episode replays the whole history, so a loop's cost grows with the square
        of its length: the replayed-events budget stops it in seconds where the
        episode count alone would take an hour.
        """
        iid = instance.instance_id
        limit = self.settings.max_episodes
        if self.episodes[iid] >= limit:
            instance.inbox = new_events + instance.inbox
            raise RunawayOrchestrationError(
                f"instance {iid!r} (orchestrator {instance.name!r}) ran more than "
                f"max_episodes={limit} episodes without going idle: it loops (zero-delay "
                "timers, continue_as_new without waiting?). Raise Simulator(max_episodes=...) if "
                "that is intended."
            )
        replayed = self.replayed[iid] + len(instance.history) + len(new_events)
        cap = self.settings.max_replayed_events
        if replayed > cap:
            instance.inbox = new_events + instance.inbox
            raise RunawayOrchestrationError(
                f"instance {iid!r} (orchestrator {instance.name!r}) would replay {replayed:,} "
                f"history events in this call ({self.episodes[iid]} episodes, history of "
                f"{len(instance.history):,} events), over max_replayed_events={cap:,}: every episode "
                "replays the whole history, so a loop without waiting (zero-delay timers, a loop "
                "around activities) costs more each time. Use continue_as_new for long loops, or "
                "raise Simulator(max_replayed_events=...) for a long orchestration."
            )
        self.replayed[iid] = replayed

    def _commit_episode(self, instance: Instance, new_events: list[Event], episode: Episode) -> None:
        """Append the episode to history and send its messages: one atomic commit."""
        outcome = episode.outcome
        recorded = [episode.started, *new_events,
                    *(d.to_event(self.now) for d in outcome.decisions),
                    new_event(EventType.OrchestratorCompleted, self.now)]
        for event in recorded:
            event["IsPlayed"] = True
        self.hub.append_history(instance, recorded)
        instance.last_updated_time = self.now
        instance.waiting_for = episode.waiting_for
        instance.unmatched_events = episode.unmatched_events
        instance.host_faults = outcome.faults
        # DTFx stores each episode's status, null included (TaskOrchestrationDispatcher.cs:725,
        # core 2.17.1; AzureTableTrackingStore writes `Status ?? "null"`); the SDK omits a
        # falsy customStatus, so such an episode clears it.
        instance.custom_status = outcome.custom_status
        instance.runtime_status = "Suspended" if episode.suspended else "Running"
        for decision in outcome.decisions:
            self.dispatch(instance, decision, outcome.carried_events)

    def _report(self, instance: Instance, handle: Callable[..., Any], episode: Episode) -> None:
        """Enforce the history cap and surface non-determinism, after the commit."""
        limit = self.settings.max_history_events
        if len(instance.history) > limit:
            raise RunawayOrchestrationError(
                f"instance {instance.instance_id!r} (orchestrator {instance.name!r}) has "
                f"{len(instance.history)} history events, over max_history_events={limit}; use "
                "continue_as_new for long loops, or raise the cap."
            )
        found = [episode.outcome.divergence] if episode.outcome.divergence is not None else []
        found += [error for check in self.settings.episode_checks
                  if (error := check(handle, episode)) is not None]
        if found:
            self.nondeterminism.extend(found)
            if self.settings.raise_on_nondeterminism:
                raise found[0]

    # -- entities --

    def _take_batch(self, record: EntityRecord,
                    admits: Callable[[EntityRequest], bool] = lambda request: True,
                    ) -> tuple[list[EntityRequest], tuple[str, str, str]] | None:
        """The entity's next batch and its crash point; None while a running batch holds it
        (its commit puts the entity back in line), when nothing queued is ``admits``-ible
        (a lock holds the rest), or when the worker dies taking it."""
        entity_id = scheduler_id(record.name, record.key)
        if self.in_flight.is_busy(entity_id):
            return None
        requests = [r for r in record.queue if admits(r)][:self.settings.entity_batch_size]
        if not requests:
            return None
        for request in requests:
            record.queue.remove(request)
        point = (record.name, entity_id, f"batch {record.batches}")
        if self._crash("dequeue", *point):
            self._requeue_batch(record, requests)
            return None
        return requests, point

    def _entity_step(self, record: EntityRecord) -> None:
        taken = self._take_batch(record)
        if taken is None:
            return
        requests, point = taken
        entity_id = point[1]
        info = self.index.get(ENTITY, record.name)
        with metering() as model_time, sleeps_charged(app_modules(info.handler)):
            outcome = run_batch(info.handler, record.name, record.key, record.exists,
                                record.state, requests)
        if outcome.aborted is not None:
            # Nothing commits; the host retries with back-off for as long as the batch
            # fails. The same code fails the same way, so the retry waits for a new message.
            self.ledger.entity_operations.update(f"{record.name}.{r.operation}" for r in requests)
            record.queue.extendleft(reversed(requests))
            record.aborted = outcome.aborted
            return
        self.ledger.entity_operations.update(f"{record.name}.{r.operation}" for r in requests)
        self._complete(model_time.seconds, ("entity", *point), outcome,
                       commit=lambda: self._commit_batch(record, requests, outcome, point),
                       abandon=lambda: self._requeue_batch(record, requests), busy=entity_id)

    def _commit_batch(self, record: EntityRecord, requests: list[EntityRequest],
                      outcome: BatchOutcome, point: tuple[str, str, str]) -> None:
        entity_id = point[1]
        if self._crash("entity", *point):
            self._requeue_batch(record, requests)
            return
        record.exists, record.state = outcome.exists, outcome.state
        record.last_modified_time = self.now
        record.batches += 1
        record.aborted = None
        if record.queue and entity_id not in self.hub.entities_ready:
            self.hub.entities_ready.append(entity_id)
        for operation in outcome.operations:
            request = operation.request
            if not request.is_signal and request.parent_instance_id:
                self.hub.deliver(request.parent_instance_id, new_event(
                    EventType.EventRaised, self.now, Name=request.request_id,
                    Input=operation.response_message()), request.parent_execution_id)
        self._crash("after-commit", *point)

    def stall_causes(self, instance: Instance) -> list[str]:
        """Why the host will never answer some of what ``instance`` waits for, one line each.

        Calls the host faulted without scheduling them (unknown names), sub-orchestrations
        whose start DTFx dropped, and entity calls stuck in a batch the host keeps aborting.
        """
        causes = [*instance.host_faults, *instance.dropped_starts]
        for entity_id, record in self.hub.entities.items():
            if record.aborted is None:
                continue
            calls = [r.operation for r in record.queue if not r.is_signal
                     and r.parent_instance_id == instance.instance_id]
            if calls:
                operations = ", ".join(repr(op) for op in calls)
                causes.append(f"entity {entity_id!r} (operation(s) {operations}): {record.aborted}")
        return causes

    def _requeue_batch(self, record: EntityRecord, requests: list[EntityRequest]) -> None:
        record.queue.extendleft(reversed(requests))
        entity_id = scheduler_id(record.name, record.key)
        if entity_id not in self.hub.entities_ready:
            self.hub.entities_ready.append(entity_id)

    # -- turning decisions into messages (part of the episode's commit) --

    def dispatch(self, instance: Instance, decision: Decision, carried: list[Event]) -> None:
        """Turn one decision into messages, as the DTFx dispatcher does."""
        if decision.kind == SCHEDULE_TASK:
            if decision.name is None or decision.input is None:
                raise decision.lacking("name and input")
            self.hub.activities.append(ActivityWork(
                instance.instance_id, instance.execution_id, decision.id, decision.name,
                json.loads(decision.input)[0], decision.attempt))
        elif decision.kind == CREATE_TIMER:
            if decision.fire_at is None:
                raise decision.lacking("fire_at")
            self.hub.schedule_timer(decision.fire_at, instance.instance_id, instance.execution_id,
                                    new_event(EventType.TimerFired, decision.fire_at,
                                              TimerId=decision.id,
                                              FireAt=decision.to_event(self.now)["FireAt"]))
        elif decision.kind == CREATE_SUB_ORCHESTRATION:
            self.start_child(instance, decision)
        elif decision.kind == SEND_EVENT:
            if decision.instance_id is None or decision.input is None:
                raise decision.lacking("instance_id and input")
            name, key = entity_key(decision.instance_id)
            self.hub.send_to_entity(decision.instance_id, name, key,
                                    EntityRequest.from_message(decision.input))
        elif decision.kind == COMPLETE:
            self._finish(instance, decision, carried)

    def _finish(self, instance: Instance, decision: Decision, carried: list[Event]) -> None:
        if decision.status is None:
            raise decision.lacking("status")
        if decision.status == OrchestrationStatus.ContinuedAsNew:
            self.hub.replace_history(instance, [])
            instance.dropped_starts = []
            instance.execution_id = self.new_execution_id(instance.instance_id)
            instance.input = decision.result
            pending, instance.inbox = instance.inbox, []
            self.hub.deliver(instance.instance_id, self.started_event(instance))
            for event in [*carried, *pending]:
                self.hub.deliver(instance.instance_id, event)
            return
        instance.runtime_status = decision.status.name
        instance.output = decision.result
        instance.waiting_for = []
        instance.unmatched_events = []
        parent = instance.parent
        if parent is None:
            return
        if decision.status == OrchestrationStatus.Completed:
            event = new_event(EventType.SubOrchestrationInstanceCompleted, self.now,
                              TaskScheduledId=parent.task_id, Result=decision.result)
        else:
            event = new_event(EventType.SubOrchestrationInstanceFailed, self.now,
                              TaskScheduledId=parent.task_id, Reason=decision.result, Details=None)
        self.hub.deliver(parent.instance_id, event, parent.execution_id)

    def start_child(self, parent: Instance, decision: Decision) -> None:
        if decision.instance_id is None or decision.name is None:
            raise decision.lacking("instance_id and name")
        existing = self.hub.instances.get(decision.instance_id)
        if existing is not None and not existing.is_terminal:
            # Sub-orchestration starts are not de-duplicated up front (Azure Storage
            # OrchestrationSessionManager.cs:245-248); the dispatcher drops an ExecutionStarted
            # for an instance that has one ("Duplicate start event",
            # TaskOrchestrationDispatcher.cs:799-813, core 2.17.1). No reply ever comes.
            parent.dropped_starts.append(
                f"sub-orchestration {decision.name!r} [#{decision.id}] with instance id "
                f"{decision.instance_id!r}: that instance is already {existing.runtime_status}, "
                "DTFx drops the duplicate ExecutionStarted and this instance waits for it "
                "forever")
            return
        link = ParentLink(parent.instance_id, parent.execution_id, decision.id, parent.name)
        self.create_instance(decision.instance_id, decision.name, decision.input, link)

    def create_instance(self, instance_id: str, name: str, raw_input: str | None,
                        parent: ParentLink | None) -> Instance:
        """Store a new instance and send it its ExecutionStarted message."""
        instance = Instance(instance_id=instance_id, name=name,
                            execution_id=self.new_execution_id(instance_id), input=raw_input,
                            created_time=self.now, last_updated_time=self.now, parent=parent)
        self.hub.add(instance)
        self.hub.deliver(instance_id, self.started_event(instance))
        return instance

    def new_execution_id(self, instance_id: str) -> str:
        """A fresh execution id, derived from the seed, the instance and its execution count.

        Deriving it (rather than drawing from a shared random stream) keeps ids
        stable when crashes or another schedule change the order of work.
        """
        number = self.hub.next_execution_number(instance_id)
        return uuid.uuid5(_EXECUTION_NAMESPACE, f"{self.seed}/{instance_id}/{number}").hex

    def started_event(self, instance: Instance) -> Event:
        parent = instance.parent
        return new_event(
            EventType.ExecutionStarted, self.now,
            OrchestrationInstance={"InstanceId": instance.instance_id,
                                   "ExecutionId": instance.execution_id},
            ParentInstance=None if parent is None else {
                "Name": parent.name, "Version": "", "TaskScheduleId": parent.task_id,
                "OrchestrationInstance": {"InstanceId": parent.instance_id,
                                          "ExecutionId": parent.execution_id}},
            Name=instance.name, Version="", Input=instance.input, Tags=None,
            Correlation=None, ScheduledStartTime=None, Generation=0)

    def requeue_outstanding(self, instance: Instance) -> None:
        """Re-create the queue messages a loaded in-flight history implies."""
        for event in unanswered(instance.history):
            task_id = event["EventId"]
            kind = event["EventType"]
            if kind == EventType.TaskScheduled:
                raw = event.get("Input")
                try:
                    parsed = json.loads(raw) if raw is not None else [None]
                    value = parsed[0] if isinstance(parsed, list) else raw
                except ValueError:
                    value = raw
                self.dispatch(instance, Decision(task_id, SCHEDULE_TASK, name=event["Name"],
                                                 input=json.dumps([value])), [])
            elif kind == EventType.TimerCreated:
                self.dispatch(instance, Decision(task_id, CREATE_TIMER,
                                                 fire_at=parse_timestamp(event["FireAt"])), [])
            elif event.get("InstanceId") not in self.hub.instances:
                self.start_child(instance, Decision(task_id, CREATE_SUB_ORCHESTRATION,
                                                    name=event["Name"], input=event.get("Input"),
                                                    instance_id=event.get("InstanceId")))


def execution_of(instance: Instance) -> Execution:
    """The identity of the instance's current execution, for an episode."""
    parent = instance.parent.instance_id if instance.parent else None
    return Execution(instance.instance_id, instance.execution_id, instance.name, parent,
                     instance.input)


def _http_response(value: Any) -> dict[str, Any]:
    """Normalize an ``http_handler`` reply to the extension's DurableHttpResponse JSON."""
    if isinstance(value, int):
        return {"statusCode": value, "headers": {}, "content": None}
    if isinstance(value, tuple):
        status, content, *rest = value
        return {"statusCode": status, "headers": rest[0] if rest else {}, "content": content}
    if isinstance(value, dict) and "statusCode" in value:
        return {"statusCode": value["statusCode"], "headers": value.get("headers") or {},
                "content": value.get("content")}
    raise TypeError(
        f"http_handler returned {type(value).__name__}; return a dict with 'statusCode' "
        "(and optional 'headers', 'content'), a status int, or (status, content[, headers])"
    )
