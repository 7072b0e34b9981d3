"""The Simulator: one object that runs a Durable Functions app in memory.

It composes the pieces (app index, task hub, virtual clock, worker) and offers
the public API. Work happens only inside :meth:`Simulator.run_until_idle`,
:meth:`Simulator.advance` and :meth:`Simulator.wait_for_completion`; the other
calls enqueue messages exactly as the durable client would, so what an
instance sees depends only on the order of your calls, the seed and the
virtual clock.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import functools
import importlib
import inspect
import json
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
)

from .agents.sessions import AgentSession, agent_entity_name, agent_of, read_session, session_key
from .checks.fault_sweep import Expectation, FaultSweepReport, fault_sweep
from .checks.sweep import SweepReport, crash_sweep
from .core.async_bridge import call_off_loop, run_sync
from .core.clock import VirtualClock
from .core.crash import CommitPoint, CrashLog, CrashPlan
from .core.errors import (
    ArgumentError,
    DafxError,
    HistoryFormatError,
    InstanceStateError,
    NonDeterminismError,
    WaitTimeoutError,
)
from .core.history import (
    STATUS_API,
    Event,
    EventType,
    OrchestrationStatus,
    check_host_events,
    check_replayable,
    find_started,
    load_history,
    new_event,
    parse_timestamp,
    read_document,
    save_history,
)
from .core.hub import Instance, TaskHub
from .core.messages import EntityRequest
from .core.payloads import decode_input, decode_json, decode_state, encode, short_repr
from .core.seeded import RandomStream, random_uuid4, seeded_uuid4
from .core.virtual_loop import VirtualTimeLoop
from .functions import fast_timestamps
from .functions.activities import ActivityCall, ActivityLedger
from .functions.app import ACTIVITY, ENTITY, ORCHESTRATOR, AppIndex, index_app
from .functions.entities import DEFAULT_BATCH_SIZE, EntityRef, entity_key, scheduler_id
from .functions.host import HostReplay
from .functions.orchestrations import AZURE_STORAGE_TIMER_LIMITS, TimerLimits, call_handle, context_json
from .functions.worker import (
    EpisodeCheck,
    HttpCall,
    HttpHandler,
    PrefixCache,
    Settings,
    Worker,
    execution_of,
)
from .llm.faults import FAULT_KINDS
from .llm.plan import FaultPlan, ModelCalls, injecting
from .llm.runs import numbering

if TYPE_CHECKING:
    from .functions.client import InMemoryClient
    from .functions.http import HttpTestClient

__all__ = ["Simulator", "InstanceStatus", "EntityStatus", "HttpCall"]


@dataclass(frozen=True)
class HostSimulator:
    """Where another host's simulator lives, and the SDK whose objects it accepts."""

    sdk: str       # loaded only if this module is: an app for that host imported it
    path: str
    name: str
    replayer: str  # "module:Class" of its Replayer

    def load(self, reference: str | None = None) -> Any:
        module, _, name = (reference or f"{self.path}:{self.name}").partition(":")
        return getattr(importlib.import_module(module), name)

    def claims(self, app: Any) -> bool:
        """Whether ``app`` is for this host: a file that imports its SDK, or an object it accepts."""
        if isinstance(app, (str, os.PathLike)):       # a file: what does it import?
            return _imports(app, self.sdk.partition(".")[0])
        return self.sdk in sys.modules and self.load().accepts(app)


HOST_SIMULATORS = (HostSimulator("durabletask.worker", "dafx_testing.durabletask.simulator",
                                 "DurableTaskSimulator",
                                 "dafx_testing.durabletask.replayer:Replayer"),)
"""The other hosts' simulators, by module path: they import this one (tests/test_layout.py
checks that each is a front end), so it names them instead of importing them."""


def _driving(method: Callable[..., Any]) -> Callable[..., Any]:
    """Count calls that change the hub or do work (crash sweeps key convergence on it)."""

    @functools.wraps(method)
    def counted(self: Simulator, *args: Any, **kwargs: Any) -> Any:
        self.driving_calls += 1
        return method(self, *args, **kwargs)

    return counted


# The API's arguments, checked where they come in: (is it valid?, what is valid).
_Check = tuple[Callable[[Any], bool], str]
_ID: _Check = (lambda v: isinstance(v, str) and v != "", "a non-empty string (an instance id)")
_NEW_ID: _Check = (lambda v: v is None or isinstance(v, str) and v != "",
                   "a non-empty string, or None for a generated id")
_NAME: _Check = (lambda v: isinstance(v, str) and v != "", "a non-empty string (a name)")
_OPTIONAL_NAME: _Check = (lambda v: v is None or isinstance(v, str) and v != "",
                          "a non-empty string (a name) or None")
_REASON: _Check = (lambda v: v is None or isinstance(v, str), "a string or None")
_FLAG: _Check = (lambda v: isinstance(v, bool), "True or False")
_PATH: _Check = (lambda v: isinstance(v, (str, os.PathLike)), "a file path (str or os.PathLike)")
_DURATION: _Check = (lambda v: isinstance(v, timedelta) and v >= timedelta(0),
                     "a datetime.timedelta of zero or more, e.g. timedelta(hours=24)")
_HISTORY: _Check = (lambda v: isinstance(v, (str, os.PathLike, dict, list)),
                    "a history file path, a history document (a dict with a 'history' list of "
                    "host-format events) or a list of such events")
_FUNCTION: _Check = (callable, "a callable")


def _arguments(**checks: _Check) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Check the named arguments of a public method before it does anything.

    A bad one raises :class:`ArgumentError` naming the call, the argument, the
    value and what is valid, instead of a ``TypeError`` deep inside (or nothing:
    ``instance_id=5`` used to create an instance).
    """

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def checked(*args: Any, **kwargs: Any) -> Any:
            given = signature.bind(*args, **kwargs).arguments
            for name, (valid, expected) in checks.items():
                if name in given and not valid(given[name]):
                    raise ArgumentError(
                        f"{method.__name__}({name}={short_repr(given[name])}): expected {expected}")
            return method(*args, **kwargs)

        return checked

    return decorate


def _later(now: datetime, delta: timedelta, call: str, argument: str) -> datetime:
    """``now + delta``, or an :class:`ArgumentError` when that is past the year 9999."""
    try:
        return now + delta
    except OverflowError:
        raise ArgumentError(
            f"{call}({argument}={delta!r}): the virtual clock ({now.isoformat()}) cannot move "
            f"that far; datetime ends in the year {datetime.max.year}") from None


def _determinism(guard: Any, allow: Sequence[str],
                 perturb: Any) -> tuple[Callable[[], AbstractContextManager[Any]], list[EpisodeCheck]]:
    """The guard factory and the perturbed-replay checks for the constructor's options."""
    from .checks.determinism import configure
    from .checks.guard import Guard

    if guard is None or isinstance(guard, (str, Guard)):
        return configure(guard, perturb, allow)
    _, checks = configure("off", perturb)      # a custom context-manager factory
    return guard, checks


class _Setting:
    """A Simulator attribute stored in the shared :class:`Settings` the worker reads."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, sim: Any, owner: type) -> Any:
        return self if sim is None else getattr(sim.settings, self.name)

    def __set__(self, sim: Any, value: Any) -> None:
        setattr(sim.settings, self.name, value)


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
    history: list[Event] = field(repr=False, default_factory=list)
    waiting_for: list[str] = field(default_factory=list)


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
    raw_state: str | None
    last_modified_time: datetime | None
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
        max_replayed_events: history events one instance may replay in one call
            (the sum of its history's length over its episodes) before it is
            declared runaway; the default stops a loop in seconds.
        raise_on_nondeterminism: raise :class:`NonDeterminismError` when a replay
            diverges (the instance is failed either way, as the host does).
        entity_batch_size: the most queued operations one entity batch runs
            (the extension's ``maxEntityOperationBatchSize``; 50 as on Consumption).
        guard: the non-deterministic API guard around orchestrator code:
            ``"error"`` (default: a call to the clock, random, uuid4, env, I/O...
            raises at your file:line), ``"warn"``, ``"off"``, a
            :class:`~dafx_testing.checks.guard.Guard`, or any context-manager factory.
        guard_allow: modules or call sites the guard lets through
            (``"pkg.mod"``, ``"path/file.py:123"``).
        perturb: replay every episode again under a perturbed world (other
            time, random seed, environment, hash seed where sets are used) and
            report any difference (default True); or a configured
            :class:`~dafx_testing.checks.determinism.PerturbedReplay`.
        episode_checks: more callables ``check(handle, episode)`` run after each
            committed episode; one that returns a :class:`NonDeterminismError`
            reports it like a replay divergence (the instance is not failed:
            the host would not notice yet).
        fast_timestamps: let the SDK read history timestamps with a parser
            that returns exactly what its dateutil parser would, several times
            faster (see :mod:`dafx_testing.functions.fast_timestamps`); default True.
        fault_plan: make numbered model calls fail (``FaultPlan(call=3,
            fault="rate_limit")``): the calls any active ``FakeLLM`` answers while
            this simulator works, counted from 1; ``sim.model_calls`` lists them.

    Example::

        sim = Simulator("function_app.py")
        iid = sim.start_new("approval_orchestrator", {"doc": 1})
        sim.run_until_idle()
        sim.raise_event(iid, "ApprovalDecision", True)
        assert sim.wait_for_completion(iid).runtime_status == "Completed"
    """

    timer_limits = _Setting()
    max_episodes = _Setting()
    max_history_events = _Setting()
    max_replayed_events = _Setting()
    raise_on_nondeterminism = _Setting()
    entity_batch_size = _Setting()
    guard = _Setting()
    episode_checks = _Setting()
    http_handler = _Setting()

    _worker_type: type[Worker] = Worker

    def __new__(cls, app: Any = None, **options: Any) -> Simulator:
        """The simulator for ``app``'s host: a subclass that :meth:`accepts` it, else this class.

        Other hosts' simulators extend this one from their own packages (they are
        front ends too), listed in :data:`HOST_SIMULATORS` and loaded only when
        their SDK is: a durabletask worker gets the durabletask host's simulator.
        """
        if cls is Simulator:
            host = host_of(app)
            if host is not None:
                return super().__new__(host.load())
        return super().__new__(cls)

    @classmethod
    def accepts(cls, app: Any) -> bool:
        """Whether this host's simulator runs the object ``app`` (a file is told by its imports)."""
        return True

    @staticmethod
    def _index(app: Any) -> Any:
        return index_app(app)

    def __init__(
        self,
        app: Any,
        *,
        start_time: datetime | str | None = None,
        seed: int = 0,
        http_handler: HttpHandler | None = None,
        timer_limits: TimerLimits = AZURE_STORAGE_TIMER_LIMITS,
        max_episodes: int = 10_000,
        max_history_events: int = 50_000,
        max_replayed_events: int = 200_000,
        raise_on_nondeterminism: bool = True,
        entity_batch_size: int = DEFAULT_BATCH_SIZE,
        guard: str | Callable[[], AbstractContextManager[Any]] | None = "error",
        guard_allow: Sequence[str] = (),
        perturb: Any = True,
        episode_checks: Sequence[EpisodeCheck] = (),
        crash_plan: CrashPlan | None = None,
        shuffle_seed: int | None = None,
        fast_timestamps: bool = True,
        fault_plan: FaultPlan | None = None,
    ) -> None:
        self._options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.index: AppIndex = self._index(app)
        try:
            self.clock = VirtualClock(start_time)
        except (TypeError, ValueError):
            raise ArgumentError(
                f"Simulator(start_time={short_repr(start_time)}): expected a datetime or an "
                "ISO-8601 string, e.g. '2025-01-01T09:00:00Z'") from None
        self.seed = seed
        self.hub = TaskHub()
        guard_factory, checks = _determinism(guard, guard_allow, perturb)
        self.settings = Settings(
            timer_limits=timer_limits, max_episodes=max_episodes,
            max_history_events=max_history_events, max_replayed_events=max_replayed_events,
            raise_on_nondeterminism=raise_on_nondeterminism,
            entity_batch_size=entity_batch_size, guard=guard_factory,
            episode_checks=checks + list(episode_checks), http_handler=http_handler,
            shuffle_seed=shuffle_seed)
        self.crash_log = CrashLog(plan=crash_plan)
        self._ledger = ActivityLedger()
        self._rng = random.Random(seed)
        self._host_rng = random.Random(f"{seed}/host")
        self._random = RandomStream(f"{seed}/random")
        self._worker = self._worker_type(self.index, self.hub, self.clock, self._ledger,
                                         self.settings, seed, self.crash_log)
        self._fast_timestamps = fast_timestamps
        self.driving_calls = 0
        # Called with (method, path, response) for each sim.http answer (a fault sweep records them).
        self.http_observers: list[Callable[[str, str, Any], None]] = []
        self.after_step: Callable[[], None] | None = None   # observer hook for sweeps
        if fault_plan is not None and not isinstance(fault_plan, FaultPlan):
            raise ArgumentError(f"Simulator(fault_plan={short_repr(fault_plan)}): expected a "
                                'FaultPlan, e.g. FaultPlan(call=3, fault="rate_limit"), or None')
        # Numbers the model calls while this simulator works, failing those the plan names.
        self.model_calls: ModelCalls | None = None if fault_plan is None else ModelCalls(fault_plan)

    @functools.cached_property
    def client(self) -> InMemoryClient:
        """The SDK's real ``DurableOrchestrationClient``, served in memory by this simulator.

        Its methods are coroutines: ``await sim.client.start_new("orch", None, value)``.
        """
        from .functions.client import InMemoryClient

        return InMemoryClient(self)

    @functools.cached_property
    def http(self) -> HttpTestClient:
        """HTTP requests to the app's functions and management URLs: ``sim.http.post("/api/...")``."""
        from .functions.http import HttpTestClient

        return HttpTestClient(self)

    @property
    def nondeterminism(self) -> list[NonDeterminismError]:
        """Every non-determinism found so far (raised or not)."""
        return self._worker.nondeterminism

    @property
    def crashes(self) -> list[CommitPoint]:
        """The crashes injected so far by the ``crash_plan``."""
        return list(self.crash_log.crashed)

    @property
    def commit_points(self) -> list[CommitPoint]:
        """Every commit point the run has passed, in order."""
        return list(self.crash_log.points)

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

    @_driving
    @_arguments(name=_NAME, instance_id=_NEW_ID)
    def start_new(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Schedule a new orchestration instance; returns its id.

        The instance runs on the next :meth:`run_until_idle`. Reusing the id of
        a finished instance replaces it (as the host does); an unfinished one is
        an error, as is an id the extension's ``StartNewAsync`` refuses ('@'
        first, ``/ \\ ? #`` or a control character, over 256 characters).
        """
        from .functions.client import already_exists_message, instance_id_error

        info = self.index.get(ORCHESTRATOR, name)
        invalid = instance_id_error(instance_id)
        if invalid is not None:
            raise ArgumentError(
                f"start_new: instance id {instance_id!r} is invalid: the host's StartNewAsync throws "
                f"ArgumentException '{invalid}' (the HTTP API answers 400 with it, and the "
                "SDK's client.start_new raises it)")
        raw_input = None if input is None else json.dumps(encode(input, f"the input of {name!r}"))
        instance_id = instance_id or self._new_id()
        existing = self.hub.instances.get(instance_id)
        if existing is not None and not existing.is_terminal:
            raise InstanceStateError(
                f"instance {instance_id!r} already exists and is {existing.runtime_status}: the "
                f"host refuses the start with '{already_exists_message(existing.runtime_status)}' "
                "(HTTP 500); use another instance_id or terminate it first"
            )
        self._worker.create_instance(instance_id, info.name, raw_input, parent=None)
        return instance_id

    @_driving
    @_arguments(instance_id=_ID, name=_NAME)
    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an external event (as the host's ``raiseEvent`` API with a JSON body)."""
        instance = self._require_running(instance_id, "raise an event to")
        payload = encode(data, f"the data of event {name!r}")
        self.hub.deliver(instance.instance_id,
                         new_event(EventType.EventRaised, self.now, Name=name, Input=payload))

    @_driving
    @_arguments(instance_id=_ID, reason=_REASON)
    def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """Terminate an instance; a no-op for finished ones (the host answers 410)."""
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            self.hub.deliver(instance_id,
                             new_event(EventType.ExecutionTerminated, self.now, Input=reason))

    @_driving
    @_arguments(instance_id=_ID, reason=_REASON)
    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        """Suspend an instance: events keep arriving, but nothing is processed until resumed."""
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            self.hub.deliver(instance_id,
                             new_event(EventType.ExecutionSuspended, self.now, Reason=reason))

    @_driving
    @_arguments(instance_id=_ID, reason=_REASON)
    def resume(self, instance_id: str, reason: str | None = None) -> None:
        """Resume a suspended instance; what arrived meanwhile is then processed in order."""
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            self.hub.deliver(instance_id,
                             new_event(EventType.ExecutionResumed, self.now, Reason=reason))

    @_driving
    @_arguments(instance_id=_ID)
    def purge(self, instance_id: str) -> None:
        """Delete an instance and its history from the task hub, whatever its status.

        Azure Storage's tracking store purges a running instance too (no status
        check); messages, timers and results still on their way to it are then
        dropped, as the host drops messages for an instance it cannot find.
        """
        instance = self.hub.get(instance_id)   # InstanceNotFoundError for an unknown id (404)
        link = instance.parent
        parent = self.hub.instances.get(link.instance_id) if link else None
        if link and parent and not instance.is_terminal and parent.execution_id == link.execution_id:
            # Its messages are then discarded (DurableTask.AzureStorage 1.17.5,
            # AzureStorageOrchestrationService.cs:782-800,1038-1040): the parent waits forever.
            parent.dropped_starts.append(
                f"sub-orchestration {instance.name!r} [#{link.task_id}] with instance id "
                f"{instance_id!r} was purged while {instance.runtime_status}: its result never "
                "comes and this instance waits for it forever")
        self.hub.purge(instance_id)

    @_driving
    @_arguments(instance_id=_ID, reason=_REASON)
    def rewind(self, instance_id: str, reason: str | None = None) -> None:
        """Rewind a Failed instance: its failed tasks run again on the next episode.

        As the Azure Storage provider does, the failed tasks' scheduling and
        failure events and the failed completion are blanked out of the history
        (kept as ``GenericEvent`` records), so replay schedules those tasks again
        with their original sequence numbers.
        """
        from .functions.client import REWIND_NOT_FAILED

        instance = self.hub.get(instance_id)
        if instance.runtime_status != "Failed":
            raise InstanceStateError(
                f"cannot rewind instance {instance_id!r}: it is {instance.runtime_status}; only "
                f"Failed instances can be rewound (the host: '{REWIND_NOT_FAILED}')")
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
        self.hub.replace_history(instance, instance.history)
        instance.runtime_status = "Running"
        instance.output = None
        self.hub.deliver(instance_id, new_event(EventType.GenericEvent, self.now, Data=reason))

    @_driving
    @_arguments(instance_id=_ID, new_instance_id=_FLAG)
    def restart(self, instance_id: str, new_instance_id: bool = True) -> str:
        """Start the instance's orchestrator again with the same input; returns the new id."""
        from .functions.client import already_exists_message

        instance = self.hub.get(instance_id)
        if not new_instance_id and not instance.is_terminal:
            raise InstanceStateError(
                f"cannot restart instance {instance_id!r} under its own id: it is "
                f"{instance.runtime_status}, and the host refuses the start with "
                f"'{already_exists_message(instance.runtime_status)}' (HTTP 500); terminate it "
                "first or restart with a new id")
        target = self._new_id() if new_instance_id else instance_id
        self._worker.create_instance(target, instance.name, instance.input, parent=None)
        return target

    @_driving
    @_arguments(operation=_NAME)
    def signal_entity(self, entity: EntityRef, operation: str, input: Any = None) -> None:
        """Queue a one-way operation for an entity (as the client's ``signal_entity``)."""
        name, key = entity_key(entity)
        info = self.index.get(ENTITY, name)
        payload = None if input is None else json.dumps(encode(input, f"the input of {operation!r}"))
        self.hub.send_to_entity(scheduler_id(info.name, key), info.name.lower(), key, EntityRequest(
            operation=operation, input=payload, is_signal=True, request_id=self._new_uuid()))

    @staticmethod
    def _entity_id(entity: Any) -> str:
        """The hub's id of an entity reference: ``@name@key``, the name lowercased as by the host."""
        return scheduler_id(*entity_key(entity))

    def get_entity(self, entity: EntityRef) -> EntityStatus | None:
        """The entity's existence, state and queue; None if it was never addressed."""
        record = self.hub.entities.get(self._entity_id(entity))
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

    # -- agents (Agent Framework durable agents) --

    @property
    def agents(self) -> list[str]:
        """The durable agents the app registers (one ``dafx-{name}`` entity each)."""
        names = (agent_of(info.name) for info in self.index.functions if info.kind == ENTITY)
        return [name for name in names if name is not None]

    def agent_session(self, agent: str, session_id: str) -> AgentSession:
        """The conversation stored for one session of ``agent``, in a readable form.

        ``session_id`` is the key the HTTP reply names (``session_id`` or the
        ``x-ms-session-id`` header), or its ``@agent@key`` form. A session the
        agent never saw is empty (no turns).
        """
        info = self._agent_entity(agent)
        name = agent_of(info.name)
        assert name is not None, "found by its agent entity name"
        key = session_key(session_id)
        status = self.get_entity((info.name, key))
        return read_session(name, key, status.raw_state if status is not None and status.exists else None)

    def agent_sessions(self, agent: str) -> list[AgentSession]:
        """Every session of ``agent`` that has stored state, in the order they were created."""
        info = self._agent_entity(agent)
        return [self.agent_session(agent, record.key) for record in self.hub.entities.values()
                if record.name == info.name.lower() and record.exists]

    def _agent_entity(self, agent: str) -> Any:
        info = self.index.find(ENTITY, agent_entity_name(agent))
        if info is None:
            known = ", ".join(repr(name) for name in self.agents) or "none"
            raise DafxError(f"the app has no durable agent {agent!r} (no entity "
                            f"{agent_entity_name(agent)!r}); its agents: {known}")
        return info

    # -- observing --

    def list_instances(self, created_from: datetime | None = None,
                       created_to: datetime | None = None,
                       runtime_status: list[str] | None = None,
                       instance_id_prefix: str | None = None) -> list[InstanceStatus]:
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

    @_arguments(instance_id=_ID)
    def get_status(self, instance_id: str) -> InstanceStatus:
        """The instance's status, output, custom status and history."""
        instance = self.hub.get(instance_id)
        return InstanceStatus(
            instance_id=instance.instance_id,
            name=instance.name,
            runtime_status=instance.runtime_status,
            input=decode_input(instance.input),
            output=self._output(instance),
            custom_status=decode_json(instance.custom_status),
            created_time=instance.created_time,
            last_updated_time=instance.last_updated_time,
            history=copy.deepcopy(instance.history),
            waiting_for=list(instance.waiting_for),
        )

    @staticmethod
    def _output(instance: Instance) -> Any:
        """The decoded output; a failed or terminated instance's is the host's message text."""
        if instance.runtime_status in ("Failed", "Terminated"):
            return instance.output
        return decode_json(instance.output)

    @_arguments(name=_NAME, fn=_FUNCTION)
    def mock_activity(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Run ``fn(input)`` instead of the activity's code (input/output still go over the wire)."""
        info = self.index.get(ACTIVITY, name)
        self._ledger.mock(info.name, fn)

    @property
    def entity_operations(self) -> Counter:
        """How many times each entity operation ran (``"counter.add"`` -> n), retries included."""
        return Counter(self._ledger.entity_operations)

    def crash_sweep(self, scenario: Callable[[Simulator], Any], *, pairs: bool = False,
                    idempotent: Sequence[str] = (), effects: Callable[[], Any] | None = None,
                    kinds: Sequence[str] | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    shard: tuple[int, int] | None = None,
                    isolation: str = "auto", once: Sequence[str] = (),
                    prune: bool = True) -> SweepReport:
        """Run ``scenario`` with a crash at every commit point; see :func:`crash_sweep`.

        Each run gets a fresh simulator built with this one's options; this
        simulator itself is left untouched. ``shard=(index, count)`` runs only
        this process's share of the points (the shards add up to the whole sweep).
        ``isolation="rerun"`` runs the scenario from the start for each point
        instead of forking crash runs off one run (what ``"auto"`` does for long
        scenarios on Linux); apps that keep state outside the process (files, a
        database) need it. An activity that runs again after a crash is a
        failure only when that leaves an observable difference or when it is
        named in ``once``; otherwise the report lists it as information
        (``idempotent`` names are left out of that list). A broken baseline (an
        instance Failed, a wait that timed out, a non-determinism check) makes
        the report not ok, with no crash runs. The crash runs that provably converge at
        once (a message given back, work lost that changed nothing durable, the worker's
        memory lost) are decided without running them (``report.decided``);
        ``prune=False`` runs every one, with the same verdicts.

        Example::

            def scenario(sim):
                service.reset()
                iid = sim.start_new("content_approval", {"topic": "tides"})
                sim.run_until_idle()
                sim.raise_event(iid, "ApprovalDecision", True)
                sim.wait_for_completion(iid)

            report = sim.crash_sweep(scenario, idempotent=["draft_content"])
            assert report.ok, report.explain()
        """
        return crash_sweep(self._fresh, scenario, pairs=pairs, idempotent=idempotent,
                           effects=effects, kinds=kinds, seed=self.seed, progress=progress,
                           shard=shard, isolation=isolation, once=once, prune=prune)

    def fault_sweep(self, scenario: Callable[[Simulator], Any], *,
                    faults: Sequence[str] = FAULT_KINDS, expect: Expectation = None,
                    effects: Callable[[], Any] | None = None,
                    shard: tuple[int, int] | None = None, isolation: str = "auto",
                    converge: bool = True) -> FaultSweepReport:
        """Run ``scenario`` with each model call failing each way; see :func:`fault_sweep`.

        The baseline numbers the model calls; each run gets a fresh simulator with
        ``FaultPlan(call=n, fault=kind)``. Script the fake before the sweep (its script is
        restored for every run); reset other fakes inside the scenario.

        ``expect``: None (only broken runs fail), ``"survive"`` (runs that failed cleanly fail
        too), or a mapping by agent name and fault kind: ``{"Writer": "survive"}``,
        ``{"rate_limit": "survive"}``, ``{"Writer": {"timeout": "survive"}}`` (the most
        specific entry decides a run).

        As for :meth:`crash_sweep`: ``shard=(index, count)`` makes only this process's share
        of the runs (the shards add up to the whole sweep); ``isolation="fork"`` forks each
        run off one more fault-free run, just before the worker step that makes its model
        call (``"auto"`` does where crash sweeps would; a process with other threads, such as
        the Agent Framework's event loop, reruns). A run whose state becomes the baseline's
        after its fault stops there, survived (``report.converged``); ``converge=False``
        runs every run to the end, with the same verdicts.

        Example::

            fake_llm.agent("Writer").reply("A draft.")
            report = sim.fault_sweep(scenario, faults=["rate_limit", "timeout"])
            assert report.ok, report.explain()
        """
        return fault_sweep(lambda plan: self._fresh(None, fault_plan=plan), scenario,
                           faults=faults, expect=expect, effects=effects, seed=self.seed,
                           shard=shard, isolation=isolation, converge=converge)

    def explore(self, scenario: Callable[[Simulator], Any], *, max_examples: int = 50,
                max_crashes: int = 3, reorder: bool = True, idempotent: Sequence[str] = (),
                effects: Callable[[], Any] | None = None, once: Sequence[str] = ()) -> int:
        """Let Hypothesis search crash schedules and completion orders that break ``scenario``.

        Returns how many schedules ran; raises
        :class:`~dafx_testing.checks.explore.ScheduleFailure` with the minimal failing
        schedule and the line that reproduces it. See :func:`~dafx_testing.checks.explore.explore`.
        """
        from .checks.explore import explore

        return explore(self._fresh, scenario, max_examples=max_examples, max_crashes=max_crashes,
                       reorder=reorder, idempotent=idempotent, effects=effects, seed=self.seed,
                       once=once)

    def attach_prefix_cache(self, cache: PrefixCache) -> None:
        """Share episode outcomes with other runs of one scenario (used by crash sweeps)."""
        self._worker.prefix_cache = cache

    def _fresh(self, crash_plan: CrashPlan | None,
               shuffle_seed: int | None = None, **overrides: Any) -> Simulator:
        """A new simulator like this one (options, later settings, mocks), with a crash plan."""
        options = dict(self._options, crash_plan=crash_plan, shuffle_seed=shuffle_seed, **overrides)
        del options["app"]
        sim = Simulator(self._fresh_app(), **options)
        for setting in dataclasses.fields(Settings):      # settings changed after creation
            if setting.name != "shuffle_seed":
                setattr(sim.settings, setting.name, getattr(self.settings, setting.name))
        sim._ledger.mocks.update(self._ledger.mocks)
        return sim

    def _fresh_app(self) -> Any:
        """What a fresh simulator like this one runs: the same indexed app."""
        return self.index

    @_arguments(name=_OPTIONAL_NAME)
    def activity_calls(self, name: str | None = None) -> list[ActivityCall]:
        """Every activity execution so far (of ``name``, or all), in order."""
        if name is not None:
            self.index.get(ACTIVITY, name)
        return self._ledger.calls_to(name)

    # -- doing work --

    @contextlib.contextmanager
    def host_code(self) -> Iterator[None]:
        """The world the app's code runs in while the simulator works.

        The wall clock reads virtual time, and ``uuid.uuid4()`` and ``random``
        draw from streams seeded by ``seed`` (see :mod:`dafx_testing.core.seeded`), so
        ids and numbers that HTTP handlers, activities, entities and libraries (a
        client's retry jitter) make up are the same on every run of a scenario (a
        retry still draws new ones, as on a real host).
        A fake LLM numbers the replies it serves meanwhile as this simulator's
        (see :mod:`dafx_testing.llm.runs`), so their ids are the same on every run too.
        """
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.clock.bound())
            stack.enter_context(seeded_uuid4(self._host_rng))
            stack.enter_context(self._random.owning())
            stack.enter_context(numbering(self))
            if self._fast_timestamps:
                stack.enter_context(fast_timestamps.swapped_in())
            if self.model_calls is not None:
                stack.enter_context(injecting(self.model_calls))
            yield

    def run_async(self, awaitable: Awaitable[Any]) -> Any:
        """Await host-side code (an HTTP handler, a client call) with its sleeps in virtual time.

        The coroutine runs on a :class:`~dafx_testing.core.virtual_loop.VirtualTimeLoop`:
        whenever it waits for a timer (``asyncio.sleep(1)`` in a polling loop),
        the simulator advances its clock by that much instead, running the work
        that comes due, so the wait costs no real time. Called from a running
        loop (an ``async def`` test), it runs on a helper thread.
        """
        with self.host_code():
            return run_sync(awaitable, lambda: VirtualTimeLoop(lambda: self.now, self.advance))

    @_driving
    def run_until_idle(self) -> None:
        """Do all work that is due now: activities, episodes, due timers. Never moves the clock.

        Work whose model calls take time (``fake.latency``) stays in flight until
        :meth:`advance` or a wait reaches the moment it lands.
        """
        self._worker.new_drive()
        call_off_loop(self._work)

    def _work(self) -> None:
        """Step the worker until nothing is due (where no event loop runs, as the worker's pool)."""
        with self.host_code():
            while self._worker.step():
                if self.after_step is not None:
                    self.after_step()

    def fingerprint(self) -> str:
        """A hash of the task hub and the work in flight: equal fingerprints behave alike."""
        return self._worker.fingerprint()

    @_driving
    @_arguments(delta=_DURATION)
    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``, firing timers in order, and run until idle.

        Results held back by slow model calls (``fake.latency``) land in order too.
        """
        target = _later(self.now, delta, "advance", "delta")
        with self.host_code():
            self.run_until_idle()
            while True:
                next_due = self._worker.next_due()
                if next_due is None or next_due > target:
                    break
                self.clock.move_to(max(next_due, self.now))
                self.run_until_idle()
            self.clock.move_to(target)
            self.run_until_idle()

    @_driving
    @_arguments(instance_id=_ID, timeout=_DURATION)
    def wait_for_completion(self, instance_id: str,
                            timeout: timedelta = timedelta(days=30)) -> InstanceStatus:
        """Run, skipping virtual time to each next timer, until the instance finishes.

        Raises:
            WaitTimeoutError: the instance is still waiting when nothing more can
                happen before ``timeout`` of virtual time has passed (the message
                says what it waits for).
        """
        deadline = _later(self.now, timeout, "wait_for_completion", "timeout")
        self._run_until(instance_id, lambda instance: instance.is_terminal, deadline)
        return self.get_status(instance_id)

    def _run_until(self, instance_id: str, done: Callable[[Instance], bool], deadline: datetime,
                   time_passes: bool = False) -> None:
        """Run, skipping virtual time to each next timer, until ``done(instance)``.

        Raises :class:`WaitTimeoutError` (saying what the instance waits for) when nothing
        more can happen before ``deadline``; with ``time_passes`` (a client that waited
        that long) the clock is moved to the deadline first.
        """
        with self.host_code():
            while True:
                self.run_until_idle()
                instance = self.hub.get(instance_id)
                if done(instance):
                    return
                next_due = self._worker.next_due()
                if next_due is None or next_due > deadline:
                    message = self._stuck_message(instance, deadline)
                    if time_passes:
                        self.clock.move_to(deadline)
                        self.run_until_idle()
                    raise WaitTimeoutError(message)
                self.clock.move_to(max(next_due, self.now))

    @_arguments(instance_id=_ID)
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
        execution = execution_of(instance)
        body = json.dumps(context_json(execution, instance.history, True, self.timer_limits))
        # The wall clock reads what it read in the last episode: framework code may stamp
        # action inputs with it (the Agent Framework's RunRequest.created_at).
        with VirtualClock(_last_episode_time(instance.history) or self.now).bound():
            state = call_handle(info.handler, body)
        outcome = HostReplay(instance_id=instance.instance_id, execution_id=instance.execution_id,
                             name=instance.name, parent_instance_id=execution.parent_instance_id,
                             catalog=self._worker.catalog).replay(instance.history, state)
        if outcome.divergence is not None:
            raise outcome.divergence
        previous = self._worker.last_state.get(instance_id)
        if previous is None:
            return
        for key in ("actions", "output", "isDone", "error"):
            if state.get(key) != previous.get(key):
                raise AssertionError(
                    f"replaying instance {instance_id!r} gave a different {key!r}:\n"
                    f"  last episode: {previous.get(key)!r}\n  replay:       {state.get(key)!r}"
                )

    # -- history files --

    @_arguments(instance_id=_ID, path=_PATH)
    def save_history(self, instance_id: str, path: str | os.PathLike) -> None:
        """Write the instance's current history to a JSON file (host event format)."""
        instance = self.hub.get(instance_id)
        save_history(path, {"instanceId": instance.instance_id, "name": instance.name,
                            "runtimeStatus": instance.runtime_status, "history": instance.history})

    @_driving
    @_arguments(source=_HISTORY, instance_id=_NEW_ID)
    def load_history(self, source: str | os.PathLike | dict[str, Any],
                     instance_id: str | None = None) -> str:
        """Import an instance from a saved history; it continues under the current code.

        Outstanding work in the history (activities not completed, timers not
        fired, sub-orchestrations not finished) is queued again, as the host's
        queues would still hold it. Returns the instance id.
        """
        if isinstance(source, (str, os.PathLike)):
            where = os.fspath(source)
            document = load_history(source)
        else:
            where = "load_history(source)"
            form, document = read_document(source, where)
            if form == STATUS_API:
                raise HistoryFormatError(
                    f"{where}: this is the status API's history (EventType names); it lacks the "
                    "inputs and results an instance continues from. Load the stored DTFx "
                    "history (Simulator.save_history's file), or replay this one with Replayer")
        events = copy.deepcopy(document["history"])
        started = find_started(events)
        if started is None:
            raise HistoryFormatError(f"{where}: the history has no ExecutionStarted event; it "
                                     "cannot be resumed")
        orchestration = started.get("OrchestrationInstance") or {}
        instance_id = instance_id or document.get("instanceId") or orchestration.get("InstanceId")
        if not isinstance(instance_id, str) or not instance_id:
            raise HistoryFormatError(f"{where}: the history names no instance id (no 'instanceId', "
                                     "no ExecutionStarted OrchestrationInstance.InstanceId); pass "
                                     "instance_id=")
        name = started.get("Name") or document.get("name")
        if not isinstance(name, str) or not name:
            raise HistoryFormatError(f"{where}: the history names no orchestrator (no "
                                     "ExecutionStarted 'Name', no 'name'); it cannot be resumed")
        started["Name"] = name
        check_replayable(events, where)
        check_host_events(events, where, self._worker.history_events)
        instance = Instance(
            instance_id=instance_id, name=name,
            execution_id=orchestration.get("ExecutionId") or self._worker.new_execution_id(instance_id),
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
            self._worker.requeue_outstanding(instance)
        return instance_id

    # -- helpers --

    def _require_running(self, instance_id: str, action: str) -> Instance:
        instance = self.hub.get(instance_id)
        if instance.is_terminal:
            raise InstanceStateError(
                f"cannot {action} instance {instance_id!r}: it is {instance.runtime_status} "
                "(the host answers 410 Gone and drops the message)"
            )
        return instance

    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def _new_uuid(self) -> str:
        return str(random_uuid4(self._rng))

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
        landing = self._worker.in_flight.next_due()
        if landing is not None:
            waits.append(f"a slow model call that returns at {landing.isoformat()}")
        reason = "; waiting for " + " and ".join(waits) if waits else ""
        if instance.unmatched_events:   # names match exactly, case included, as in the SDK
            reason += ("; received event(s) " + ", ".join(repr(n) for n in instance.unmatched_events)
                       + ", which nothing awaits (buffered; event names match exactly)")
        for cause in self._worker.stall_causes(instance):   # what the host never answers
            reason += f"; {cause.rstrip('.')}"
        return (
            f"instance {instance.instance_id!r} (orchestrator {instance.name!r}) is still "
            f"{instance.runtime_status} at the deadline {deadline.isoformat()}{reason}. Raise the "
            "event with sim.raise_event(...), advance the clock, or allow a longer timeout."
        )


def host_of(app: Any) -> HostSimulator | None:
    """The other host ``app`` is for (None: the Functions host)."""
    return next((host for host in HOST_SIMULATORS if host.claims(app)), None)


def replayer_for(app: Any, **options: Any) -> Any:
    """The Replayer of ``app``'s host: a Functions app's, or another host's (same API)."""
    from .checks.replayer import Replayer

    host = host_of(app)
    return (host.load(host.replayer) if host is not None else Replayer)(app, **options)


def _imports(app: Any, package: str) -> bool:
    """Whether ``app`` names a Python file (``x.py`` or ``x.py:attr``) that imports ``package``."""
    if not isinstance(app, (str, os.PathLike)):
        return False
    file = Path(re.sub(r":[A-Za-z_]\w*$", "", os.fspath(app)))
    if file.suffix != ".py" or not file.is_file():
        return False
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return False
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    return any(name.split(".")[0] == package for name in imported)


def _last_episode_time(events: list[Event]) -> datetime | None:
    for event in reversed(events):
        if event["EventType"] == EventType.OrchestratorStarted:
            return parse_timestamp(event["Timestamp"])
    return None


def _last_completion(events: list[Event]) -> Event | None:
    for event in reversed(events):
        if event["EventType"] == EventType.ExecutionCompleted:
            return event
    return None
