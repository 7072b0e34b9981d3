"""Host-side replay: what the Durable extension and DTFx do with an episode.

The Python SDK only turns history into *actions*; it checks nothing. The host
then replays those actions the way the extension's ``OutOfProcOrchestrationShim``
and DTFx's ``TaskOrchestrationContext`` do, and that replay is what allocates
sequence ids, matches them against history, detects non-determinism, buffers
external events and decides when an instance is complete. This module is a
Python rendering of that replay:

* :class:`HostReplay` processes the history events in order, exactly like
  ``TaskOrchestrationExecutor.ProcessEvent``; at ``ExecutionStarted`` it starts
  the shim coroutine over the SDK's actions (V2/V3: each action invoked and
  awaited in turn, task failures swallowed).
* Every schedule takes ``id_counter++`` and goes into the orchestrator action
  map; ``TaskScheduled``/``TimerCreated``/... events remove their entry or raise
  the DTFx non-determinism error with the same text.
* Whatever is left in the map at the end are the episode's new decisions.

Async C# tasks become tiny :class:`Future` objects and generator coroutines,
whose continuations run inline, like DTFx's synchronous scheduler.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..core.errors import NonDeterminismError
from ..core.history import (
    Event,
    EventType,
    OrchestrationStatus,
    format_timestamp,
    new_event,
    parse_timestamp,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

HTTP_ACTIVITY = "BuiltIn::HttpActivity"
"""The reserved activity name the extension uses for ``call_http``."""

DEFAULT_HTTP_POLL_MS = 30_000
_GUID_NAMESPACE = uuid.UUID("9e952959-5e33-4daf-827f-2fa12937b875")
"""``GuidManager.UrlNamespaceValue`` (extension GuidManager.cs:16), which
``DurableOrchestrationContext.NewGuid`` uses (DurableOrchestrationContext.cs:1233) for
entity request ids. The SDK's own ``new_uuid`` uses the *DNS* value ``...958...``
(GuidManager.cs:15) under the name ``URL_NAMESPACE``: two constants, not one."""

HANG_ISSUE = "azure-functions-durable-python#516"

# DTFx OrchestratorAction class names, used verbatim in its error messages.
SCHEDULE_TASK = "ScheduleTaskOrchestratorAction"
CREATE_TIMER = "CreateTimerOrchestratorAction"
CREATE_SUB_ORCHESTRATION = "CreateSubOrchestrationAction"
SEND_EVENT = "SendEventOrchestratorAction"
COMPLETE = "OrchestrationCompleteOrchestratorAction"


# --- futures and coroutines -------------------------------------------------------


class Cancelled(Exception):
    """A cancelled task (a timer the orchestrator cancelled)."""


class TaskFailure(Exception):
    """A task that completed with ``TaskFailed``/``SubOrchestrationInstanceFailed``."""


class HostArgumentError(Exception):
    """An action the host refuses outright (unknown function, bad payload)."""


class OrchestratorFailure(Exception):
    """The orchestrator function itself failed (its state carried an ``error``)."""


class Future:
    """A one-shot result whose callbacks run inline when it completes."""

    __slots__ = ("done", "value", "error", "_callbacks")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[Future], None]] = []

    def resolve(self, value: Any = None) -> None:
        self._finish(value, None)

    def fail(self, error: BaseException) -> None:
        self._finish(None, error)

    def _finish(self, value: Any, error: BaseException | None) -> None:
        if self.done:
            return
        self.done, self.value, self.error = True, value, error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def then(self, callback: Callable[[Future], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)


def completed(value: Any = None) -> Future:
    future = Future()
    future.resolve(value)
    return future


Coroutine = Generator[Future, Any, Any]


def spawn(coroutine: Coroutine) -> Future:
    """Drive a generator that yields futures; its return value resolves the result."""
    result = Future()

    def step(value: Any = None, error: BaseException | None = None) -> None:
        while True:
            try:
                awaited = coroutine.throw(error) if error is not None else coroutine.send(value)
            except StopIteration as stop:
                result.resolve(stop.value)
                return
            except Exception as exc:  # the coroutine's own exception faults its task
                result.fail(exc)
                return
            if not awaited.done:
                awaited.then(lambda f: step(f.value, f.error))
                return
            value, error = awaited.value, awaited.error

    step()
    return result


def when_all(futures: list[Future]) -> Future:
    """``Task.WhenAll``: completes when all have; faults with the first failure."""
    result = Future()
    remaining = [len(futures)]

    def child_done(_: Future) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            failed = next((f.error for f in futures if f.error is not None), None)
            if failed is not None:
                result.fail(failed)
            else:
                result.resolve([f.value for f in futures])

    if not futures:
        result.resolve([])
    for future in futures:
        future.then(child_done)
    return result


def when_any(futures: list[Future]) -> Future:
    """``Task.WhenAny``: completes (never faults) with the first child to finish."""
    result = Future()
    for future in futures:
        future.then(result.resolve)
    return result


# --- decisions ----------------------------------------------------------------------


@dataclass
class Decision:
    """One DTFx ``OrchestratorAction``: what the host will record and send."""

    id: int
    kind: str
    name: str | None = None
    input: str | None = None
    fire_at: datetime | None = None
    instance_id: str | None = None
    status: OrchestrationStatus | None = None
    result: str | None = None
    attempt: int = 1  # retry attempt of a scheduled task; not part of history
    origin: int = -1  # index of the SDK action that scheduled it (diagnostics); not history

    def to_event(self, timestamp: datetime) -> Event:
        """The history event the dispatcher records for this decision."""
        if self.kind == SCHEDULE_TASK:
            return new_event(EventType.TaskScheduled, timestamp, self.id,
                             Name=self.name, Version="", Input=self.input)
        if self.kind == CREATE_TIMER:
            if self.fire_at is None:
                raise self.lacking("fire_at")
            return new_event(EventType.TimerCreated, timestamp, self.id,
                             FireAt=format_timestamp(self.fire_at))
        if self.kind == CREATE_SUB_ORCHESTRATION:
            return new_event(EventType.SubOrchestrationInstanceCreated, timestamp, self.id,
                             Name=self.name, Version="", InstanceId=self.instance_id,
                             Input=self.input)
        if self.kind == SEND_EVENT:
            return new_event(EventType.EventSent, timestamp, self.id,
                             InstanceId=self.instance_id, Name=self.name, Input=self.input)
        if self.status is None:
            raise self.lacking("status")
        return new_event(EventType.ExecutionCompleted, timestamp, self.id,
                         OrchestrationStatus=int(self.status), Result=self.result,
                         FailureDetails=None)

    def describe(self) -> str:
        """How a person would name this action (same words as for history events)."""
        if self.kind == COMPLETE:
            if self.status is None:
                raise self.lacking("status")
            return f"completion ({self.status.name}) [#{self.id}]"
        # Render through the event it would record, so both sides read alike.
        return describe_scheduling_event(self.to_event(self.fire_at or _EPOCH))

    def lacking(self, what: str) -> ValueError:
        """The error for a decision without ``what``, which every decision of its kind has."""
        return ValueError(f"{self.kind} decision #{self.id} has no {what}")


def describe_scheduling_event(event: Event) -> str:
    kind = event["EventType"]
    label = {
        EventType.TaskScheduled: f"activity {event.get('Name')!r}",
        EventType.TimerCreated: f"timer until {event.get('FireAt')}",
        EventType.SubOrchestrationInstanceCreated: f"sub-orchestration {event.get('Name')!r}",
        EventType.EventSent: f"event {event.get('Name')!r} to {event.get('InstanceId')!r}",
    }.get(kind, EventType(kind).name)
    return f"{label} [#{event['EventId']}]"


@dataclass
class FunctionCatalog:
    """What the host knows is registered, for ``ThrowIfFunctionDoesNotExist``."""

    activities: list[str]
    orchestrators: list[str]
    entities: list[str]

    def missing(self, kind: str, name: str) -> str | None:
        """The extension's message if ``name`` is no registered ``kind`` function, else None.

        DurableTaskExtension.cs:1325-1346 (and the message builders after it).
        """
        known = {"activity": self.activities, "orchestrator": self.orchestrators,
                 "entity": self.entities}[kind]
        if kind == "activity" and name == HTTP_ACTIVITY:
            return None
        if name.lower() in (k.lower() for k in known):
            return None
        message = (f"The function '{name}' doesn't exist, is disabled, or is not an {kind} "
                   "function. Additional info: ")
        if known:
            joined = "', '".join(known)
            message += f"The following are the known {kind} functions: '{joined}'."
        else:
            message += f"No {kind} functions are currently registered!"
        return message

    def check(self, kind: str, name: str) -> None:
        """Raise the extension's ``ArgumentException`` for an unknown name (synchronous callers)."""
        message = self.missing(kind, name)
        if message is not None:
            raise HostArgumentError(message)


@dataclass
class ReplayOutcome:
    """What one episode decided.

    Attributes:
        decisions: new actions in the order DTFx records them (the last may be
            a completion, with status Completed/Failed/Terminated/ContinuedAsNew).
        custom_status: serialized custom status the shim set this episode, or None.
        carried_events: EventRaised events that arrived after continue-as-new
            and move to the next execution.
        divergence: the non-determinism found, if the instance failed for it.
        faults: why host calls faulted without failing the instance (the shim
            swallows them): what the instance will wait for forever.
    """

    decisions: list[Decision]
    custom_status: str | None = None
    carried_events: list[Event] = field(default_factory=list)
    divergence: NonDeterminismError | None = None
    faults: list[str] = field(default_factory=list)

    @property
    def completion(self) -> Decision | None:
        for decision in self.decisions:
            if decision.kind == COMPLETE:
                return decision
        return None


class _Divergence(Exception):
    def __init__(self, error: NonDeterminismError) -> None:
        super().__init__(error.host_message)
        self.error = error


# --- the replay ---------------------------------------------------------------------


class HostReplay:
    """Replay one episode of one execution the way the host does.

    Args:
        instance_id, execution_id, name, parent_instance_id: the execution.
        catalog: registered functions, for unknown-name failures.
        http_poll_ms: the extension's default 202-polling interval.
    """

    def __init__(self, *, instance_id: str, execution_id: str, name: str,
                 parent_instance_id: str | None, catalog: FunctionCatalog,
                 http_poll_ms: int = DEFAULT_HTTP_POLL_MS) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.name = name
        self.parent_instance_id = parent_instance_id
        self.catalog = catalog
        self.http_poll_ms = http_poll_ms

        self.id_counter = 0
        self.actions: dict[int, Decision] = {}          # DTFx orchestratorActionsMap
        self.suspended_actions: dict[int, Decision] = {}
        self.open_tasks: dict[int, Future] = {}
        self.pending_events: dict[str, list[Future]] = {}   # stacks: LIFO waiters
        self.pending_names: dict[str, str] = {}             # key -> name as the code wrote it
        self.buffered_events: dict[str, deque[str | None]] = {}  # FIFO events
        self.events_while_suspended: deque[Event] = deque()
        self.is_suspended = False
        self.now: datetime | None = None
        self.continue_as_new: Decision | None = None
        self.execution_done = False
        self.custom_status: str | None = None
        self.carried_events: list[Event] = []
        self.shim: Future | None = None
        self.output: str | None = None
        self.guid_counter = 0
        self._state: dict[str, Any] = {}
        self._actions: list[dict[str, Any]] = []     # the SDK's actions the shim walks
        self._exhausted = False                       # the shim walked past the last one
        self.resumable = False                        # see resume()
        self.processed = 0                            # history events replayed so far
        self.faults: list[str] = []                   # swallowed host-call faults (see _fault)
        self._origin = -1                             # the SDK action being invoked

    # -- entry point --

    def replay(self, events: list[Event], state: dict[str, Any]) -> ReplayOutcome:
        """Process ``events`` (past + this episode's) given the SDK's returned ``state``."""
        self._use(state)
        return self._process_all(events)

    def resume(self, events: list[Event], state: dict[str, Any]) -> ReplayOutcome | None:
        """Go on with the next episode's ``events`` (those since the last replay), if equivalent.

        A full replay starts over each episode: the shim walks the SDK's actions
        from the first while the whole history is processed again. When the new
        actions extend the ones this replay walked, and its shim is waiting on a
        task (not past its last action), starting over would redo what this
        object already did, in the same order, and reach the same state; so it
        goes on from here, processing only the new events. Returns None when that
        does not hold (anything ended, suspended, diverged or carried over), and
        the caller replays in full, which also finds any non-determinism.
        """
        if not self.resumable:
            return None
        actions = state.get("actions")
        if state.get("schemaVersion", 0) < 1 or not isinstance(actions, list) or len(actions) != 1:
            return None
        walked = self._actions
        if actions[0][:len(walked)] != walked:
            return None
        self._use(state)
        self.custom_status = None       # a full replay's shim sets it afresh, if the state has one
        self._set_custom_status()
        return self._process_all(events)

    def _use(self, state: dict[str, Any]) -> None:
        """Take this episode's OrchestratorState: the actions the shim walks."""
        self._state = state
        actions = state.get("actions") or []
        self._actions = actions[0] if len(actions) == 1 else []

    def _set_custom_status(self) -> None:
        if self._state.get("customStatus") is not None:
            self.custom_status = json.dumps(self._state["customStatus"], separators=(",", ":"))

    def _process_all(self, events: list[Event]) -> ReplayOutcome:
        self.processed += len(events)
        divergence = None
        try:
            for event in events:
                self._process(event)
            if not self.open_tasks and self.shim is not None and self.shim.done:
                error = self.shim.error
                if isinstance(error, OrchestratorFailure):
                    self._complete(OrchestrationStatus.Failed, str(error))
                elif error is not None:  # the shim itself threw (TaskOrchestrationShim wraps it)
                    self._complete(OrchestrationStatus.Failed,
                                   f"Orchestrator function '{self.name}' failed: {error}")
                else:
                    self._complete(OrchestrationStatus.Completed, self.output)
        except _Divergence as found:
            divergence = found.error
            self._complete(OrchestrationStatus.Failed, found.error.host_message)
        self.resumable = (divergence is None and self.shim is not None and not self.shim.done
                           and not self._exhausted and not self.execution_done
                           and self.continue_as_new is None and not self.is_suspended
                           and not self.events_while_suspended and not self.carried_events
                           and self._state.get("schemaVersion", 0) >= 1)
        return ReplayOutcome(
            decisions=list(self.actions.values()),
            custom_status=self.custom_status,
            carried_events=self.carried_events,
            divergence=divergence,
            faults=list(self.faults),
        )

    # -- TaskOrchestrationExecutor.ProcessEvent --

    def _process(self, event: Event) -> None:
        kind = event["EventType"]
        if self.is_suspended and kind not in (EventType.ExecutionResumed,
                                              EventType.ExecutionTerminated):
            if kind != EventType.ExecutionSuspended:
                self.events_while_suspended.append(event)
            return
        if kind == EventType.OrchestratorStarted:
            self.now = parse_timestamp(event["Timestamp"])
        elif kind == EventType.ExecutionStarted:
            self.shim = spawn(self._run_shim())
        elif kind == EventType.ExecutionTerminated:
            self._complete(OrchestrationStatus.Terminated, event.get("Input"))
        elif kind == EventType.TaskScheduled:
            self._match(event, SCHEDULE_TASK)
        elif kind == EventType.TimerCreated:
            self._match(event, CREATE_TIMER)
        elif kind == EventType.SubOrchestrationInstanceCreated:
            self._match(event, CREATE_SUB_ORCHESTRATION)
        elif kind == EventType.EventSent:
            self._match(event, SEND_EVENT)
        elif kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
            task = self.open_tasks.pop(event["TaskScheduledId"], None)
            if task is not None:
                task.resolve(event.get("Result"))
        elif kind in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed):
            task = self.open_tasks.pop(event["TaskScheduledId"], None)
            if task is not None:
                task.fail(TaskFailure(event.get("Reason")))
        elif kind == EventType.TimerFired:
            task = self.open_tasks.pop(event["TimerId"], None)
            if task is not None:
                task.resolve(str(event["TimerId"]))
        elif kind == EventType.EventRaised:
            if self.continue_as_new is not None:
                self.carried_events.append(event)   # AddEventToNextIteration
            else:
                self._raise_event(event.get("Name") or "", event.get("Input"))
        elif kind == EventType.ExecutionSuspended:
            self.is_suspended = True
            self.suspended_actions.update(self.actions)
            self.actions.clear()
        elif kind == EventType.ExecutionResumed:
            self.is_suspended = False
            self.actions.update(self.suspended_actions)
            self.suspended_actions.clear()
            while self.events_while_suspended:
                self._process(self.events_while_suspended.popleft())

    def _match(self, event: Event, expected_kind: str) -> None:
        """``Handle*Event``: the recorded schedule must match the replayed action."""
        task_id = event["EventId"]
        action = self.actions.get(task_id)
        if action is not None and action.kind == expected_kind and (
            expected_kind in (CREATE_TIMER,)
            or str(event.get("Name", "")).lower() == str(action.name or "").lower()
        ):
            del self.actions[task_id]
            return
        raise _Divergence(NonDeterminismError(
            instance_id=self.instance_id,
            sequence_number=task_id,
            expected=describe_scheduling_event(event),
            actual=action.describe() if action else None,
            host_message="Non-Deterministic workflow detected: "
                         + _nondeterminism_text(event, action, expected_kind),
            orchestrator_error=(self._state or {}).get("error") if action is None else None,
        ))

    # -- the out-of-proc shim --

    def _run_shim(self) -> Coroutine:
        state = self._state
        schema = state.get("schemaVersion", 0)
        actions = state.get("actions") or []
        self._set_custom_status()
        if schema >= 1:
            if len(actions) != 1:
                raise HostArgumentError(
                    f"With OOProc schema {schema}, expected actions array to be of length 1 "
                    f"in outer layer but got size: {len(actions)}")
            walked = 0
            while walked < len(self._actions):   # the latest episode's list (see resume)
                self._origin = walked
                task = self._invoke(self._actions[walked])
                walked += 1
                try:
                    yield task
                except Exception:
                    pass    # "Silently ignore exceptions thrown by user code"
            state = self._state
            self._exhausted = True
        else:
            for action_set in actions:
                tasks = []
                for action in action_set:
                    self._origin += 1
                    tasks.append(self._invoke(action))
                tasks = [t for t in tasks if t is not _FIRE_AND_FORGET]
                if tasks:
                    yield when_any(tasks)
        if state.get("error"):
            raise OrchestratorFailure(
                f"Orchestrator function '{self.name}' failed: {state['error']}")
        if state.get("isDone"):
            if "output" in state and state["output"] is not None:
                self.output = json.dumps(state["output"], separators=(",", ":"))
            return None
        yield Future()   # more work to do: wait forever (Task.Delay(Infinite))

    def _invoke(self, action: dict[str, Any]) -> Future:
        """``InvokeAPIFromAction``: one SDK action becomes host API calls."""
        kind = action.get("actionType")
        if kind == 0:
            return self._schedule_task(action["functionName"], action.get("input"))
        if kind == 1:
            fault = self._unknown("activity", action["functionName"])
            if fault is not None:
                return fault
            return spawn(self._keep_origin(self._with_retry(
                lambda attempt: self._schedule_task(action["functionName"], action.get("input"),
                                                    attempt),
                action["retryOptions"])))
        if kind == 2:
            return self._sub_orchestration(action)
        if kind == 3:
            fault = self._sub_orchestration_fault(action)
            if fault is not None:
                return fault
            return spawn(self._keep_origin(self._with_retry(
                lambda attempt: self._sub_orchestration(action), action["retryOptions"])))
        if kind == 4:
            self.continue_as_new = Decision(-1, COMPLETE, status=OrchestrationStatus.ContinuedAsNew,
                                            result=_serialize(action.get("input")))
            return _FIRE_AND_FORGET
        if kind == 5:
            timer, cancel = self._create_timer(parse_timestamp(action["fireAt"]))
            if action.get("isCanceled"):
                cancel()
            return timer
        if kind == 6:
            return self._wait_for_event(action["externalEventName"])
        if kind in (7, 9):
            return self._entity_message(action, signal=(kind == 9))
        if kind == 8:
            return spawn(self._keep_origin(self._call_http(action["httpRequest"])))
        if kind == 11:
            return when_any([self._invoke(child) for child in action["compoundActions"]])
        if kind == 12:
            return when_all([self._invoke(child) for child in action["compoundActions"]])
        raise HostArgumentError(
            f"Received an unexpected action type from the out-of-proc function: '${kind}'.")

    # -- host APIs (extension DurableOrchestrationContext over DTFx) --

    def _current_time(self) -> datetime:
        """``CurrentUtcDateTime``: the timestamp of the latest ``OrchestratorStarted``."""
        if self.now is None:
            raise HostArgumentError("the orchestration asked for the time before any "
                                    "OrchestratorStarted event")
        return self.now

    def _next_id(self) -> int:
        task_id = self.id_counter
        self.id_counter += 1
        return task_id

    def _open(self, decision: Decision) -> Future:
        decision.origin = self._origin
        self.actions[decision.id] = decision
        future = Future()
        self.open_tasks[decision.id] = future
        return future

    def _schedule_task(self, name: str, action_input: Any, attempt: int = 1) -> Future:
        fault = self._unknown("activity", name)
        if fault is not None:
            return fault
        # DTFx serializes the parameters array: one element, the action's input.
        return self._open(Decision(self._next_id(), SCHEDULE_TASK, name=name, attempt=attempt,
                                   input=json.dumps([action_input], separators=(",", ":"))))

    def _create_timer(self, fire_at: datetime):
        decision = Decision(self._next_id(), CREATE_TIMER, fire_at=fire_at)
        future = self._open(decision)

        def cancel() -> None:
            if not future.done:
                self.open_tasks.pop(decision.id, None)
                future.fail(Cancelled(f"timer #{decision.id} cancelled"))

        return future, cancel

    def _sub_orchestration(self, action: dict[str, Any]) -> Future:
        fault = self._sub_orchestration_fault(action)
        if fault is not None:
            return fault
        name = action["functionName"]
        instance_id = action.get("instanceId")
        task_id = self._next_id()
        return self._open(Decision(task_id, CREATE_SUB_ORCHESTRATION, name=name,
                                   instance_id=instance_id or f"{self.execution_id}:{task_id}",
                                   input=_serialize(action.get("input"))))

    def _sub_orchestration_fault(self, action: dict[str, Any]) -> Future | None:
        """The checks ``CallDurableTaskFunctionAsync`` makes before it schedules a child.

        All throw inside that async method (DurableOrchestrationContext.cs:563,597-607), so,
        like an unknown name, they fault the task and the shim swallows it.
        """
        name = action["functionName"]
        fault = self._unknown("orchestrator", name)
        if fault is not None:
            return fault
        instance_id = action.get("instanceId")
        if instance_id and instance_id.lower() in (self.instance_id.lower(),
                                                   (self.parent_instance_id or "").lower()):
            return self._fault(
                f"sub-orchestration {name!r} with instance id {instance_id!r}: the host refuses "
                "it (\"The instance ID of a sub-orchestration must be different than the instance "
                "ID of a parent orchestration.\"), never schedules it, and the instance stays "
                f"Running ({HANG_ISSUE})")
        if instance_id and instance_id.startswith("@"):
            return self._fault(
                f"sub-orchestration {name!r} with instance id {instance_id!r}: the host refuses "
                "ids starting with '@', never schedules it, and the instance stays Running "
                f"({HANG_ISSUE})")
        return None

    def _unknown(self, kind: str, name: str) -> Future | None:
        """``ThrowIfFunctionDoesNotExist`` as an awaited call meets it: a faulted task, or None.

        The check runs inside the async ``CallDurableTaskFunctionAsync``
        (DurableOrchestrationContext.cs:536-563), so its ``ArgumentException`` faults the
        returned task instead of escaping ``InvokeAPIFromAction``; ``ProcessAsyncActionsV2``
        awaits that task in a try/catch that swallows it (OutOfProcOrchestrationShim.cs:199-219).
        Nothing is scheduled, no sequence id is taken, the SDK's task never completes and the
        instance stays Running (azure-functions-durable-js#197, azure-functions-durable-python#516).
        """
        message = self.catalog.missing(kind, name)
        if message is None:
            return None
        return self._fault(f"{kind} {name!r} does not exist: the host never schedules it and the "
                           f"instance stays Running ({HANG_ISSUE}). Host: {message}")

    def _fault(self, cause: str) -> Future:
        """A task faulted by the host before it scheduled anything; ``cause`` is kept to explain the wait."""
        if cause not in self.faults:
            self.faults.append(cause)
        future = Future()
        future.fail(HostArgumentError(cause))
        return future

    def _keep_origin(self, coroutine: Coroutine) -> Coroutine:
        """Drive ``coroutine`` so that what it schedules later is credited to today's action."""
        origin = self._origin
        value: Any = None
        error: BaseException | None = None
        while True:
            self._origin = origin
            try:
                awaited = coroutine.throw(error) if error is not None else coroutine.send(value)
            except StopIteration as stop:
                return stop.value
            try:
                value, error = (yield awaited), None
            except Exception as exc:
                value, error = None, exc

    def _with_retry(self, call: Callable[[int], Future], options: dict[str, Any]) -> Coroutine:
        """DTFx ``RetryInterceptor``: constant backoff, then one immediate dummy timer."""
        attempts = int(options["maxNumberOfAttempts"])
        delay = timedelta(milliseconds=options["firstRetryIntervalInMilliseconds"])
        if delay > timedelta(days=6):   # AzureStorageDurabilityProvider.cs:68,178-187, checked inside the
            yield self._fault(         # async DurableOrchestrationContext.cs:548-558: faults, swallowed
                f"a retry interval of {delay}: the host never schedules the call and the instance stays "
                "Running. Host: The Azure Storage provider supports a maximum of 6 days for "
                "time-based delays (Parameter 'FirstRetryInterval')")
        last_error: BaseException | None = None
        for attempt in range(attempts):
            try:
                return (yield call(attempt + 1))
            except Exception as exc:
                last_error = exc
            if attempt + 1 == attempts:
                # "Dummy timer for back-compat": earlier DTFx scheduled an extra
                # delay timer here; history stays compatible with an immediate one.
                yield self._create_timer(self._current_time())[0]
                break
            if delay <= timedelta(0):
                break
            yield self._create_timer(self._current_time() + delay)[0]
        if last_error is None:      # no attempt made: DTFx fails on its null lastException too
            raise HostArgumentError(f"maxNumberOfAttempts is {attempts}: no attempt was made")
        raise last_error

    def _call_http(self, request: dict[str, Any]) -> Coroutine:
        """``CallHttpAsync``: the HTTP activity, then 202 polling only if the request asks for it.

        The loop runs while ``req.AsynchronousPatternEnabled`` (DurableOrchestrationContext.cs:275).
        The shim binds ``httpRequest`` through ``DurableHttpRequest``'s only constructor
        (DurableHttpRequest.cs:29-37); SDK 1.7's ``to_json`` sends no ``asynchronousPatternEnabled``,
        and Newtonsoft.Json passes a missing creator parameter as null, i.e. ``false`` for a bool:
        it never reads the C# default ``= true`` (JsonSerializerInternalReader.cs
        CreateObjectUsingCreatorWithParameters: ``creatorParameterValues`` stays null unless
        DefaultValueHandling.Populate, which uses ``[DefaultValue]``, not the parameter's default;
        DefaultContractResolver.CreatePropertyFromConstructorParameter never reads it, 10.0-13.0.4).
        So a Python orchestrator gets the 202 itself (azure-functions-durable-python#380).
        """
        response = yield self._schedule_task(HTTP_ACTIVITY, request)
        parsed = json.loads(response) if response else {}
        while parsed.get("statusCode") == 202 and request.get("asynchronousPatternEnabled") is True:
            headers = {k.lower(): v for k, v in (parsed.get("headers") or {}).items()}
            retry_after = headers.get("retry-after")
            wait = (timedelta(seconds=int(_first(retry_after))) if retry_after
                    else timedelta(milliseconds=self.http_poll_ms))
            yield self._create_timer(self._current_time() + wait)[0]
            poll_headers = {k: v for k, v in (request.get("headers") or {}).items()
                            if k.lower() != "x-functions-key"}
            request = {"method": "GET", "uri": _first(headers.get("location")),
                       "headers": poll_headers, "tokenSource": request.get("tokenSource")}
            response = yield self._schedule_task(HTTP_ACTIVITY, request)
            parsed = json.loads(response) if response else {}
        return response

    def _entity_message(self, action: dict[str, Any], signal: bool) -> Future:
        """``CallEntityAsync``/``SignalEntity``: an unknown entity hangs a call, fails a signal.

        A signal ``.Wait()``s the completed task and rethrows (DurableOrchestrationContext.cs:487-497),
        out of ``InvokeAPIFromAction``, so the instance fails; a call's fault is swallowed.
        """
        scheduler_id = action["instanceId"]
        entity_name = scheduler_id[1:].split("@", 1)[0]
        if signal:
            self.catalog.check("entity", entity_name)
        else:
            fault = self._unknown("entity", entity_name)
            if fault is not None:
                return fault
        request_id = self._new_guid()
        request: dict[str, Any] = {"op": action.get("operation"), "signal": signal,
                                   "id": request_id, "parent": self.instance_id,
                                   "parentExecution": self.execution_id}
        if action.get("input") is not None:
            request["input"] = json.dumps(action["input"])
        task_id = self._next_id()
        self.actions[task_id] = Decision(task_id, SEND_EVENT, name="op", instance_id=scheduler_id,
                                         input=json.dumps(request, separators=(",", ":")),
                                         origin=self._origin)
        if signal:
            return _FIRE_AND_FORGET
        return self._wait_for_event(request_id)

    def _new_guid(self) -> str:
        """A replay-safe GUID from instance id, current time and a counter (as the host)."""
        name = f"{self.instance_id}_{self.now:%Y-%m-%dT%H:%M:%S.%f}0Z_{self.guid_counter}"
        self.guid_counter += 1
        return str(uuid.uuid5(_GUID_NAMESPACE, name))

    def _wait_for_event(self, name: str) -> Future:
        """Waiters stack per name (LIFO); a buffered event (FIFO) satisfies it at once."""
        key = name.lower()
        future = Future()
        self.pending_events.setdefault(key, []).append(future)
        self.pending_names[key] = name
        buffered = self.buffered_events.get(key)
        if buffered:
            raw = buffered.popleft()
            if not buffered:
                del self.buffered_events[key]
            self._raise_event(name, raw)
        return future

    def _raise_event(self, name: str, raw_input: str | None) -> None:
        key = name.lower()
        waiters = self.pending_events.get(key)
        if waiters:
            waiter = waiters.pop()
            if not waiters:
                del self.pending_events[key]
            waiter.resolve(raw_input)
        else:
            self.buffered_events.setdefault(key, deque()).append(raw_input)

    def _complete(self, status: OrchestrationStatus, result: str | None) -> None:
        """``CompleteOrchestration``: the completion takes the next sequence id."""
        task_id = self._next_id()
        if status == OrchestrationStatus.Completed and self.continue_as_new is not None:
            decision = self.continue_as_new
        else:
            if self.execution_done:
                return
            self.execution_done = True
            decision = Decision(task_id, COMPLETE, status=status, result=result)
        decision.id = task_id
        self.actions[task_id] = decision


_FIRE_AND_FORGET = completed()


def _serialize(value: Any) -> str | None:
    """Newtonsoft ``SerializeInternal`` of a JToken: compact JSON, null stays null."""
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _first(value: Any) -> str:
    return value[0] if isinstance(value, list) else str(value)


def _nondeterminism_text(event: Event, action: Decision | None, expected_kind: str) -> str:
    """The DTFx ``NonDeterministicOrchestrationException`` messages, verbatim."""
    task_id = event["EventId"]
    name = event.get("Name")
    tail = "Was a change made to the orchestrator code after this instance had already started running?"
    kind = event["EventType"]
    if kind == EventType.TaskScheduled:
        if action is None:
            return (f"A previous execution of this orchestration scheduled an activity task with "
                    f"sequence ID {task_id} and name '{name}' (version ''), but the current "
                    f"replay execution hasn't (yet?) scheduled this task. {tail}")
        if action.kind != expected_kind:
            return (f"A previous execution of this orchestration scheduled an activity task with "
                    f"sequence number {task_id} named '{name}', but the current orchestration "
                    f"replay instead produced a {action.kind} action with this sequence number. "
                    f"{tail}")
        return (f"A previous execution of this orchestration scheduled an activity task with "
                f"sequence number {task_id} named '{name}', but the current orchestration replay "
                f"instead scheduled an activity task named '{action.name}' with this sequence "
                f"number.  {tail}")
    if kind == EventType.TimerCreated:
        if action is None:
            return (f"A previous execution of this orchestration scheduled a timer task with "
                    f"sequence number {task_id} but the current replay execution hasn't (yet?) "
                    f"scheduled this task. {tail}")
        return (f"A previous execution of this orchestration scheduled a timer task with sequence "
                f"number {task_id} named but the current orchestration replay instead produced a "
                f"{action.kind} action with this sequence number. {tail}")
    if kind == EventType.SubOrchestrationInstanceCreated:
        head = (f"A previous execution of this orchestration scheduled a sub-orchestration task "
                f"with sequence ID {task_id} and name '{name}' (version '', instance ID "
                f"'{event.get('InstanceId')}'), but the current ")
        if action is None:
            return head + f"replay execution hasn't (yet?) scheduled this task. {tail}"
        if action.kind != expected_kind:
            return head + (f"orchestration replay instead produced a {action.kind} action at "
                           f"this sequence number. {tail}")
        return head + (f"orchestration replay instead scheduled a sub-orchestration task with "
                       f"name {action.name} at this sequence number. {tail}")
    head = (f"A previous execution of this orchestration scheduled a send event task with "
            f"sequence ID {task_id}, type 'EventSent'")
    target = f"name '{name}', instance ID '{event.get('InstanceId')}'"
    if action is None:
        return (f"{head} {target}, but the current replay execution hasn't (yet?) scheduled this "
                f"task. {tail}")
    if action.kind != expected_kind:
        return (f"{head}, {target}, but the current orchestration replay instead scheduled a "
                f"{action.kind} task at this sequence number. {tail}")
    return (f"{head}, {target}), but the current orchestration replay instead scheduled a send "
            f"event task with name {action.name}at this sequence number. {tail}")
