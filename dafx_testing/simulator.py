"""The Simulator: one object that runs a Durable Functions app in memory.

It composes the pieces (app index, task hub, virtual clock, episode runner,
activity runner) and owns the scheduler loop. Work happens only inside
:meth:`Simulator.run_until_idle`, :meth:`Simulator.advance` and
:meth:`Simulator.wait_for_completion`; the other calls enqueue messages exactly
as the durable client would, so what an instance sees depends only on the
order of your calls, the seed and the virtual clock.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Union

from .activities import (
    ActivityCall,
    ActivityLedger,
    ActivityOutcome,
    ActivityWork,
    failure,
    run_activity,
)
from .app import ACTIVITY, ENTITY, ORCHESTRATOR, AppIndex, index_app
from .clock import VirtualClock
from .entities import DEFAULT_BATCH_SIZE, EntityRef, EntityRequest, entity_key, run_batch, scheduler_id
from .errors import (
    DafxError,
    InstanceStateError,
    NonDeterminismError,
    RunawayOrchestrationError,
    UnhandledHttpCallError,
    UnknownFunctionError,
    WaitTimeoutError,
)
from .history import (
    Event,
    EventType,
    OrchestrationStatus,
    find_started,
    load_history,
    new_event,
    parse_timestamp,
    save_history,
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
from .hub import EntityRecord, Instance, ParentLink, TaskHub
from .orchestrations import (
    AZURE_STORAGE_TIMER_LIMITS,
    Episode,
    Execution,
    TimerLimits,
    call_handle,
    context_json,
    run_episode,
)
from .payloads import decode_input, decode_json, decode_state, encode

HttpHandler = Callable[["HttpCall"], Any]
EpisodeCheck = Callable[[Callable[..., Any], Episode], Optional[NonDeterminismError]]


@dataclass(frozen=True)
class HttpCall:
    """An orchestrator's ``call_http`` request, as your ``http_handler`` receives it."""

    method: str
    uri: str
    content: Optional[str]
    headers: Dict[str, Any]
    instance_id: str


@dataclass
class InstanceStatus:
    """A snapshot of one instance, like the host's status API returns.

    Attributes:
        instance_id, name: the instance and its orchestrator.
        runtime_status: ``"Pending"``, ``"Running"``, ``"Suspended"``,
            ``"Completed"``, ``"Failed"`` or ``"Terminated"``.
        input, output, custom_status: decoded values (a failure's output is its message).
        created_time, last_updated_time: virtual times.
        history: the current execution's history as host-format event dicts.
        waiting_for: external event names the orchestrator is waiting on.
    """

    instance_id: str
    name: str
    runtime_status: str
    input: Any
    output: Any
    custom_status: Any
    created_time: datetime
    last_updated_time: datetime
    history: List[Event] = field(repr=False, default_factory=list)
    waiting_for: List[str] = field(default_factory=list)


@dataclass
class EntityStatus:
    """A snapshot of one durable entity.

    Attributes:
        name, key: the entity id (``name`` as the host stores it, lower-cased).
        exists: False before its first state is set and after ``destruct_on_exit``.
        state: the decoded state; ``raw_state`` is the stored ``entityState`` text.
        last_modified_time: virtual time of the last batch that ran.
        pending_operations: queued operations not yet run.
    """

    name: str
    key: str
    exists: bool
    state: Any
    raw_state: Optional[str]
    last_modified_time: Optional[datetime]
    pending_operations: int


class Simulator:
    """Run a Durable Functions app's real code in memory, on a virtual clock.

    Args:
        app: a ``FunctionApp``/``DFApp`` object, ``"pkg.module:app"``, or a path
            to ``function_app.py``.
        start_time: the virtual clock's first instant (default 2025-01-01 UTC).
        seed: seeds generated instance and execution ids; same seed, same run.
        http_handler: answers orchestrators' ``call_http``: called with an
            :class:`HttpCall`, returns ``{"statusCode", "headers", "content"}``,
            a status int, or ``(status, content)``.
        timer_limits: the storage provider's timer limits (Azure Storage's by default).
        max_episodes: episodes one instance may run in one call before it is
            declared runaway.
        max_history_events: history length at which an execution is runaway.
        raise_on_nondeterminism: raise :class:`NonDeterminismError` when a replay
            diverges (the instance is failed either way, as the host does).
        entity_batch_size: the most queued operations one entity batch runs
            (the extension's ``maxEntityOperationBatchSize``; 50 as on Consumption).
        guard: a context-manager factory entered around every call into
            orchestrator code (the determinism API guard).
        episode_checks: callables ``check(handle, episode)`` run after each
            committed episode; one that returns a :class:`NonDeterminismError`
            reports it like a replay divergence (the instance is not failed:
            the host would not notice yet).

    Example::

        sim = Simulator("function_app.py")
        iid = sim.start_new("approval_orchestrator", {"doc": 1})
        sim.run_until_idle()
        sim.raise_event(iid, "ApprovalDecision", True)
        assert sim.wait_for_completion(iid).runtime_status == "Completed"
    """

    def __init__(
        self,
        app: Any,
        *,
        start_time: Union[datetime, str, None] = None,
        seed: int = 0,
        http_handler: Optional[HttpHandler] = None,
        timer_limits: TimerLimits = AZURE_STORAGE_TIMER_LIMITS,
        max_episodes: int = 10_000,
        max_history_events: int = 50_000,
        raise_on_nondeterminism: bool = True,
        entity_batch_size: int = DEFAULT_BATCH_SIZE,
        guard: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
        episode_checks: Sequence[EpisodeCheck] = (),
    ) -> None:
        self.index: AppIndex = index_app(app)
        self.clock = VirtualClock(start_time)
        self.seed = seed
        self.hub = TaskHub()
        self.http_handler = http_handler
        self.timer_limits = timer_limits
        self.max_episodes = max_episodes
        self.max_history_events = max_history_events
        self.raise_on_nondeterminism = raise_on_nondeterminism
        self.entity_batch_size = entity_batch_size
        self.guard = guard
        self.episode_checks = list(episode_checks)
        self.nondeterminism: List[NonDeterminismError] = []
        self._ledger = ActivityLedger()
        self._rng = random.Random(seed)
        self._episodes: Counter = Counter()
        self._last_state: Dict[str, Dict[str, Any]] = {}   # worker memory, not durable
        self._catalog = FunctionCatalog(
            activities=self.index.names(ACTIVITY),
            orchestrators=self.index.names(ORCHESTRATOR),
            entities=self.index.names(ENTITY),
        )

    # -- the clock --

    @property
    def now(self) -> datetime:
        """The virtual time (tz-aware UTC)."""
        return self.clock.now

    @property
    def app(self) -> Any:
        """The app object under simulation."""
        return self.index.app

    # -- starting and steering instances (enqueue only) --

    def start_new(self, name: str, input: Any = None, instance_id: Optional[str] = None) -> str:
        """Schedule a new orchestration instance; returns its id.

        The instance runs on the next :meth:`run_until_idle`. Reusing the id of
        a finished instance replaces it (as the host does); a running one is an error.
        """
        info = self.index.get(ORCHESTRATOR, name)
        raw_input = None if input is None else json.dumps(encode(input, f"the input of {name!r}"))
        instance_id = instance_id or self._new_id()
        existing = self.hub.instances.get(instance_id)
        if existing is not None and not existing.is_terminal:
            raise InstanceStateError(
                f"instance {instance_id!r} already exists and is {existing.runtime_status}; "
                "use another instance_id or terminate it first"
            )
        self._create_instance(instance_id, info.name, raw_input, parent=None)
        return instance_id

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an external event (as the host's ``raiseEvent`` API with a JSON body)."""
        instance = self._require_running(instance_id, "raise an event to")
        payload = encode(data, f"the data of event {name!r}")
        self.hub.deliver(instance.instance_id,
                         new_event(EventType.EventRaised, self.now, Name=name, Input=payload))

    def terminate(self, instance_id: str, reason: Optional[str] = None) -> None:
        """Terminate an instance; a no-op for finished ones (the host answers 410)."""
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            self.hub.deliver(instance_id,
                             new_event(EventType.ExecutionTerminated, self.now, Input=reason))

    def suspend(self, instance_id: str, reason: Optional[str] = None) -> None:
        """Suspend an instance: events keep arriving, but nothing is processed until resumed."""
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            self.hub.deliver(instance_id,
                             new_event(EventType.ExecutionSuspended, self.now, Reason=reason))

    def resume(self, instance_id: str, reason: Optional[str] = None) -> None:
        """Resume a suspended instance; what arrived meanwhile is then processed in order."""
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            self.hub.deliver(instance_id,
                             new_event(EventType.ExecutionResumed, self.now, Reason=reason))

    def purge(self, instance_id: str) -> None:
        """Delete a finished instance and its history from the task hub."""
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            raise InstanceStateError(
                f"instance {instance_id!r} is {instance.runtime_status}; only finished instances "
                "can be purged (terminate it first)"
            )
        self.hub.purge(instance_id)

    def rewind(self, instance_id: str, reason: Optional[str] = None) -> None:
        """Rewind a Failed instance: its failed tasks run again on the next episode.

        As the Azure Storage provider does, the failed tasks' scheduling and
        failure events and the failed completion are blanked out of the history
        (kept as ``GenericEvent`` records), so replay schedules those tasks again
        with their original sequence numbers.
        """
        instance = self.hub.get(instance_id)
        if instance.runtime_status != "Failed":
            raise InstanceStateError(
                f"cannot rewind instance {instance_id!r}: it is {instance.runtime_status}; only "
                "Failed instances can be rewound")
        failed = {e["TaskScheduledId"] for e in instance.history
                  if e["EventType"] in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed)}
        for index, event in enumerate(instance.history):
            kind = event["EventType"]
            rewound = (kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed,
                                EventType.ExecutionCompleted)
                       or (kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated)
                           and event["EventId"] in failed))
            if rewound:
                instance.history[index] = new_event(
                    EventType.GenericEvent, self.now, Data=f"Rewound: {json.dumps(event)}")
                instance.history[index]["IsPlayed"] = True
        instance.runtime_status = "Running"
        instance.output = None
        self.hub.deliver(instance_id, new_event(EventType.GenericEvent, self.now, Data=reason))

    def restart(self, instance_id: str, new_instance_id: bool = True) -> str:
        """Start the instance's orchestrator again with the same input; returns the new id."""
        instance = self.hub.get(instance_id)
        if not new_instance_id and not instance.is_terminal:
            raise InstanceStateError(
                f"cannot restart instance {instance_id!r} under its own id: it is "
                f"{instance.runtime_status}; terminate it first or restart with a new id")
        target = self._new_id() if new_instance_id else instance_id
        self._create_instance(target, instance.name, instance.input, parent=None)
        return target

    def signal_entity(self, entity: EntityRef, operation: str, input: Any = None) -> None:
        """Queue a one-way operation for an entity (as the client's ``signal_entity``)."""
        name, key = entity_key(entity)
        info = self.index.get(ENTITY, name)
        payload = None if input is None else json.dumps(encode(input, f"the input of {operation!r}"))
        self.hub.send_to_entity(scheduler_id(info.name, key), info.name.lower(), key, EntityRequest(
            operation=operation, input=payload, is_signal=True, request_id=self._new_uuid()))

    def get_entity(self, entity: EntityRef) -> Optional[EntityStatus]:
        """The entity's existence, state and queue; None if it was never addressed."""
        name, key = entity_key(entity)
        record = self.hub.entities.get(scheduler_id(name, key))
        if record is None:
            return None
        return EntityStatus(name=record.name, key=record.key, exists=record.exists,
                            state=decode_state(record.state), raw_state=record.state,
                            last_modified_time=record.last_modified_time,
                            pending_operations=len(record.queue))

    def entity_state(self, entity: EntityRef) -> Any:
        """The entity's decoded state (None if it does not exist)."""
        status = self.get_entity(entity)
        return status.state if status is not None and status.exists else None

    # -- observing --

    def list_instances(self, created_from: Optional[datetime] = None,
                       created_to: Optional[datetime] = None,
                       runtime_status: Optional[List[str]] = None,
                       instance_id_prefix: Optional[str] = None) -> List[InstanceStatus]:
        """Statuses of the instances matching every given filter, oldest first."""
        wanted = {s.lower() for s in runtime_status} if runtime_status else None
        found = []
        for instance in self.hub.instances.values():
            if created_from is not None and instance.created_time < created_from:
                continue
            if created_to is not None and instance.created_time > created_to:
                continue
            if wanted is not None and instance.runtime_status.lower() not in wanted:
                continue
            if instance_id_prefix and not instance.instance_id.startswith(instance_id_prefix):
                continue
            found.append(self.get_status(instance.instance_id))
        return sorted(found, key=lambda status: status.created_time)

    def get_status(self, instance_id: str) -> InstanceStatus:
        """The instance's status, output, custom status and history."""
        instance = self.hub.get(instance_id)
        terminal_message = instance.runtime_status in ("Failed", "Terminated")
        return InstanceStatus(
            instance_id=instance.instance_id,
            name=instance.name,
            runtime_status=instance.runtime_status,
            input=decode_input(instance.input),
            output=instance.output if terminal_message else decode_json(instance.output),
            custom_status=decode_json(instance.custom_status),
            created_time=instance.created_time,
            last_updated_time=instance.last_updated_time,
            history=copy.deepcopy(instance.history),
            waiting_for=list(instance.waiting_for),
        )

    def mock_activity(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Run ``fn(input)`` instead of the activity's code (input/output still go over the wire)."""
        info = self.index.get(ACTIVITY, name)
        self._ledger.mock(info.name, fn)

    def activity_calls(self, name: Optional[str] = None) -> List[ActivityCall]:
        """Every activity execution so far (of ``name``, or all), in order."""
        if name is not None:
            self.index.get(ACTIVITY, name)
        return self._ledger.calls_to(name)

    # -- doing work --

    def run_until_idle(self) -> None:
        """Do all work that is due now: activities, episodes, due timers. Never moves the clock."""
        self._episodes.clear()
        with self.clock.bound():
            while self._step():
                pass

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``, firing timers in order, and run until idle."""
        target = self.now + delta
        with self.clock.bound():
            self.run_until_idle()
            while True:
                next_timer = self.hub.next_timer()
                if next_timer is None or next_timer > target:
                    break
                self.clock.move_to(max(next_timer, self.now))
                self.run_until_idle()
            self.clock.move_to(target)
            self.run_until_idle()

    def wait_for_completion(self, instance_id: str,
                            timeout: timedelta = timedelta(days=30)) -> InstanceStatus:
        """Run, skipping virtual time to each next timer, until the instance finishes.

        Raises:
            WaitTimeoutError: the instance is still waiting when nothing more can
                happen before ``timeout`` of virtual time has passed (the message
                says what it waits for).
        """
        deadline = self.now + timeout
        with self.clock.bound():
            while True:
                self.run_until_idle()
                instance = self.hub.get(instance_id)
                if instance.is_terminal:
                    return self.get_status(instance_id)
                next_timer = self.hub.next_timer()
                if next_timer is None or next_timer > deadline:
                    raise WaitTimeoutError(self._stuck_message(instance, deadline))
                self.clock.move_to(max(next_timer, self.now))

    def check_replay(self, instance_id: str) -> None:
        """Replay the instance's whole history once more and check nothing changes.

        The SDK handle gets the complete history (every event already played);
        its actions and output must equal those of the last episode, and the
        host-side replay must find no divergence. This is what the host does
        every time it loads the instance, so a difference here is a
        non-determinism bug waiting to happen.

        Raises:
            NonDeterminismError: the host-side replay diverged.
            AssertionError: the SDK returned different actions or output.
        """
        instance = self.hub.get(instance_id)
        info = self.index.get(ORCHESTRATOR, instance.name)
        execution = self._execution(instance)
        body = json.dumps(context_json(execution, instance.history, True, self.timer_limits))
        state = call_handle(info.handler, body)
        outcome = HostReplay(instance_id=instance.instance_id, execution_id=instance.execution_id,
                             name=instance.name, parent_instance_id=execution.parent_instance_id,
                             catalog=self._catalog).replay(instance.history, state)
        if outcome.divergence is not None:
            raise outcome.divergence
        previous = self._last_state.get(instance_id)
        if previous is None:
            return
        for key in ("actions", "output", "isDone", "error"):
            if state.get(key) != previous.get(key):
                raise AssertionError(
                    f"replaying instance {instance_id!r} gave a different {key!r}:\n"
                    f"  last episode: {previous.get(key)!r}\n  replay:       {state.get(key)!r}"
                )

    # -- history files --

    def save_history(self, instance_id: str, path: Union[str, os.PathLike]) -> None:
        """Write the instance's current history to a JSON file (host event format)."""
        instance = self.hub.get(instance_id)
        save_history(path, {"instanceId": instance.instance_id, "name": instance.name,
                            "runtimeStatus": instance.runtime_status, "history": instance.history})

    def load_history(self, source: Union[str, os.PathLike, Dict[str, Any]],
                     instance_id: Optional[str] = None) -> str:
        """Import an instance from a saved history; it continues under the current code.

        Outstanding work in the history (activities not completed, timers not
        fired, sub-orchestrations not finished) is queued again, as the host's
        queues would still hold it. Returns the instance id.
        """
        document = source if isinstance(source, dict) else load_history(source)
        events = copy.deepcopy(document["history"])
        started = find_started(events)
        if started is None:
            raise DafxError("the history has no ExecutionStarted event; it cannot be resumed")
        orchestration = started.get("OrchestrationInstance") or {}
        instance_id = instance_id or document.get("instanceId") or orchestration.get("InstanceId")
        instance = Instance(
            instance_id=instance_id, name=started.get("Name") or document.get("name"),
            execution_id=orchestration.get("ExecutionId") or self._new_id(),
            input=started.get("Input"), created_time=self.now, last_updated_time=self.now,
            history=events)
        completion = _last_completion(events)
        if completion is not None:
            instance.runtime_status = OrchestrationStatus(completion["OrchestrationStatus"]).name
            instance.output = completion.get("Result")
        else:
            instance.runtime_status = "Running"
        for event in events:
            event["IsPlayed"] = True
        self.hub.add(instance)
        if not instance.is_terminal:
            self._requeue_outstanding(instance)
        return instance_id

    # -- the scheduler --

    def _step(self) -> bool:
        """Do one unit of work; False when there is nothing due."""
        self.hub.fire_due_timers(self.now)
        if self.hub.activities:
            self._run_activity(self.hub.activities.popleft())
            return True
        if self.hub.ready:
            self._run_episode(self.hub.get(self.hub.ready.popleft()))
            return True
        if self.hub.entities_ready:
            self._run_entity_batch(self.hub.entities[self.hub.entities_ready.popleft()])
            return True
        return False

    def _run_entity_batch(self, record: EntityRecord) -> None:
        requests = [record.queue.popleft()
                    for _ in range(min(self.entity_batch_size, len(record.queue)))]
        if record.queue:
            self.hub.entities_ready.append(scheduler_id(record.name, record.key))
        info = self.index.get(ENTITY, record.name)
        outcome = run_batch(info.handler, record.name, record.key, record.exists, record.state,
                            requests)
        record.exists, record.state = outcome.exists, outcome.state
        record.last_modified_time = self.now
        for operation in outcome.operations:
            request = operation.request
            if not request.is_signal and request.parent_instance_id:
                self.hub.deliver(request.parent_instance_id, new_event(
                    EventType.EventRaised, self.now, Name=request.request_id,
                    Input=operation.response_message()), request.parent_execution_id)

    def _run_activity(self, work: ActivityWork) -> None:
        if work.name == HTTP_ACTIVITY:
            outcome = self._run_http(work)
        else:
            info = self.index.find(ACTIVITY, work.name)
            if info is None:  # the app no longer has it (code changed under a loaded history)
                outcome = failure(work.name, UnknownFunctionError(
                    f"The function '{work.name}' doesn't exist, is disabled, or is not an "
                    "activity function."))
            else:
                outcome, call = run_activity(info.handler, info.trigger_param, work,
                                             self._ledger.mock_for(info.name), self.now)
                self._ledger.calls.append(call)
        self.hub.deliver(work.instance_id, _task_event(work.task_id, outcome, self.now),
                         work.execution_id)

    def _run_http(self, work: ActivityWork) -> ActivityOutcome:
        request = work.input if isinstance(work.input, dict) else json.loads(work.input)
        call = HttpCall(method=request.get("method", "GET"), uri=request.get("uri", ""),
                        content=request.get("content"), headers=request.get("headers") or {},
                        instance_id=work.instance_id)
        if self.http_handler is None:
            self.hub.activities.appendleft(work)   # keep the work item: nothing is lost
            raise UnhandledHttpCallError(
                f"instance {work.instance_id!r} called {call.method} {call.uri} with call_http and "
                "no http_handler is set; tests never reach the network. Pass "
                "Simulator(app, http_handler=lambda call: {'statusCode': 200, 'content': '...'})."
            )
        try:
            response = _http_response(self.http_handler(call))
        except Exception as exc:
            return failure(HTTP_ACTIVITY, exc)
        return ActivityOutcome(True, result=json.dumps(response))

    def _run_episode(self, instance: Instance) -> None:
        new_events, instance.inbox = instance.inbox, []
        self._episodes[instance.instance_id] += 1
        if self._episodes[instance.instance_id] > self.max_episodes:
            instance.inbox = new_events + instance.inbox
            raise RunawayOrchestrationError(
                f"instance {instance.instance_id!r} (orchestrator {instance.name!r}) ran more than "
                f"max_episodes={self.max_episodes} episodes without going idle: it loops (zero-delay "
                "timers, continue_as_new without waiting?). Raise Simulator(max_episodes=...) if "
                "that is intended."
            )
        info = self.index.find(ORCHESTRATOR, instance.name)
        if info is None:
            raise UnknownFunctionError(
                f"instance {instance.instance_id!r} runs orchestrator {instance.name!r}, which the "
                f"app no longer defines; known: {', '.join(self.index.names(ORCHESTRATOR))}"
            )
        execution = self._execution(instance)
        episode = run_episode(info.handler, execution, instance.history, new_events, self.now,
                              self._catalog, self.timer_limits, self.guard)
        outcome = episode.outcome
        self._last_state[instance.instance_id] = episode.state
        recorded = [episode.started, *new_events,
                    *(d.to_event(self.now) for d in outcome.decisions),
                    new_event(EventType.OrchestratorCompleted, self.now)]
        for event in recorded:
            event["IsPlayed"] = True
        instance.history.extend(recorded)
        instance.last_updated_time = self.now
        instance.waiting_for = episode.waiting_for
        if outcome.custom_status is not None:
            instance.custom_status = outcome.custom_status
        instance.runtime_status = "Suspended" if episode.suspended else "Running"
        for decision in outcome.decisions:
            self._dispatch(instance, decision, outcome.carried_events)
        if len(instance.history) > self.max_history_events:
            raise RunawayOrchestrationError(
                f"instance {instance.instance_id!r} (orchestrator {instance.name!r}) has "
                f"{len(instance.history)} history events, over max_history_events="
                f"{self.max_history_events}; use continue_as_new for long loops, or raise the cap."
            )
        divergences = [outcome.divergence] if outcome.divergence is not None else []
        divergences += [found for check in self.episode_checks
                        if (found := check(info.handler, episode)) is not None]
        if divergences:
            self.nondeterminism.extend(divergences)
            if self.raise_on_nondeterminism:
                raise divergences[0]

    def _dispatch(self, instance: Instance, decision: Decision, carried: List[Event]) -> None:
        """Turn one decision into messages, as the DTFx dispatcher does."""
        if decision.kind == SCHEDULE_TASK:
            self.hub.activities.append(ActivityWork(
                instance.instance_id, instance.execution_id, decision.id, decision.name,
                json.loads(decision.input)[0], decision.attempt))
        elif decision.kind == CREATE_TIMER:
            self.hub.schedule_timer(decision.fire_at, instance.instance_id, instance.execution_id,
                                    new_event(EventType.TimerFired, decision.fire_at,
                                              TimerId=decision.id,
                                              FireAt=decision.to_event(self.now)["FireAt"]))
        elif decision.kind == CREATE_SUB_ORCHESTRATION:
            self._start_child(instance, decision)
        elif decision.kind == SEND_EVENT:
            name, key = entity_key(decision.instance_id)
            self.hub.send_to_entity(decision.instance_id, name, key,
                                    EntityRequest.from_message(decision.input))
        elif decision.kind == COMPLETE:
            self._finish(instance, decision, carried)

    def _finish(self, instance: Instance, decision: Decision, carried: List[Event]) -> None:
        if decision.status == OrchestrationStatus.ContinuedAsNew:
            instance.history = []
            instance.execution_id = self._new_id()
            instance.input = decision.result
            pending, instance.inbox = instance.inbox, []
            self.hub.deliver(instance.instance_id, self._started_event(instance))
            for event in [*carried, *pending]:
                self.hub.deliver(instance.instance_id, event)
            return
        instance.runtime_status = decision.status.name
        instance.output = decision.result
        instance.waiting_for = []
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

    def _start_child(self, parent: Instance, decision: Decision) -> None:
        existing = self.hub.instances.get(decision.instance_id)
        if existing is not None and not existing.is_terminal:
            self.hub.deliver(parent.instance_id, new_event(
                EventType.SubOrchestrationInstanceFailed, self.now, TaskScheduledId=decision.id,
                Reason=f"An orchestration with instance ID '{decision.instance_id}' already "
                       f"exists and is {existing.runtime_status}.", Details=None),
                parent.execution_id)
            return
        link = ParentLink(parent.instance_id, parent.execution_id, decision.id, parent.name)
        self._create_instance(decision.instance_id, decision.name, decision.input, link)

    def _create_instance(self, instance_id: str, name: str, raw_input: Optional[str],
                         parent: Optional[ParentLink]) -> Instance:
        instance = Instance(instance_id=instance_id, name=name, execution_id=self._new_id(),
                            input=raw_input, created_time=self.now, last_updated_time=self.now,
                            parent=parent)
        self.hub.add(instance)
        self.hub.deliver(instance_id, self._started_event(instance))
        return instance

    def _started_event(self, instance: Instance) -> Event:
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

    def _requeue_outstanding(self, instance: Instance) -> None:
        """Re-create the queue messages a loaded in-flight history implies."""
        scheduled: Dict[int, Event] = {}
        for event in instance.history:
            kind = event["EventType"]
            if kind in (EventType.TaskScheduled, EventType.TimerCreated,
                        EventType.SubOrchestrationInstanceCreated):
                scheduled[event["EventId"]] = event
            elif kind in (EventType.TaskCompleted, EventType.TaskFailed,
                          EventType.SubOrchestrationInstanceCompleted,
                          EventType.SubOrchestrationInstanceFailed):
                scheduled.pop(event["TaskScheduledId"], None)
            elif kind == EventType.TimerFired:
                scheduled.pop(event["TimerId"], None)
        for task_id, event in scheduled.items():
            kind = event["EventType"]
            if kind == EventType.TaskScheduled:
                raw = event.get("Input")
                try:
                    parsed = json.loads(raw) if raw is not None else [None]
                    value = parsed[0] if isinstance(parsed, list) else raw
                except ValueError:
                    value = raw
                self._dispatch(instance, Decision(task_id, SCHEDULE_TASK, name=event["Name"],
                                                  input=json.dumps([value])), [])
            elif kind == EventType.TimerCreated:
                self._dispatch(instance, Decision(task_id, CREATE_TIMER,
                                                  fire_at=parse_timestamp(event["FireAt"])), [])
            elif event.get("InstanceId") not in self.hub.instances:
                self._start_child(instance, Decision(task_id, CREATE_SUB_ORCHESTRATION,
                                                     name=event["Name"], input=event.get("Input"),
                                                     instance_id=event.get("InstanceId")))

    # -- helpers --

    @staticmethod
    def _execution(instance: Instance) -> Execution:
        parent = instance.parent.instance_id if instance.parent else None
        return Execution(instance.instance_id, instance.execution_id, instance.name, parent,
                         instance.input)

    def _require_running(self, instance_id: str, action: str) -> Instance:
        instance = self.hub.get(instance_id)
        if instance.is_terminal:
            raise InstanceStateError(
                f"cannot {action} instance {instance_id!r}: it is {instance.runtime_status} "
                "(the host answers 410 Gone and drops the message)"
            )
        return instance

    def _new_id(self) -> str:
        return "%032x" % self._rng.getrandbits(128)

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _stuck_message(self, instance: Instance, deadline: datetime) -> str:
        waits = []
        if instance.waiting_for:
            waits.append("external event(s) " + ", ".join(repr(n) for n in instance.waiting_for))
        timers = self.hub.pending_timers(instance.instance_id)
        if timers:
            waits.append(f"a timer at {timers[0].isoformat()}")
        children = [i.instance_id for i in self.hub.instances.values()
                    if i.parent and i.parent.instance_id == instance.instance_id and not i.is_terminal]
        if children:
            waits.append("sub-orchestration(s) " + ", ".join(repr(c) for c in children))
        reason = "; waiting for " + " and ".join(waits) if waits else ""
        return (
            f"instance {instance.instance_id!r} (orchestrator {instance.name!r}) is still "
            f"{instance.runtime_status} at the deadline {deadline.isoformat()}{reason}. Raise the "
            "event with sim.raise_event(...), advance the clock, or allow a longer timeout."
        )


def _task_event(task_id: int, outcome: ActivityOutcome, now: datetime) -> Event:
    if outcome.ok:
        return new_event(EventType.TaskCompleted, now, TaskScheduledId=task_id,
                         Result=outcome.result)
    return new_event(EventType.TaskFailed, now, TaskScheduledId=task_id, Reason=outcome.reason,
                     Details=outcome.details)


def _http_response(value: Any) -> Dict[str, Any]:
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


def _last_completion(events: List[Event]) -> Optional[Event]:
    for event in reversed(events):
        if event["EventType"] == EventType.ExecutionCompleted:
            return event
    return None
