"""The Simulator for durabletask workers: the same API, the Durable Task SDK doing the work.

``Simulator(worker)`` returns a :class:`DurableTaskSimulator` when handed a
``TaskHubGrpcWorker`` (or a ``DurableTaskSchedulerWorker``, or an Agent
Framework ``DurableAIAgentWorker``). Everything a Functions simulation offers
works the same way: the task hub, the virtual clock, crash plans and sweeps,
exploration, fault sweeps, agent sessions, timelines and reports. What differs
is the wire: payloads are encoded with the worker's data converter, the
sidecar's rules decide ids and refusals, and :attr:`client` is a real
``TaskHubGrpcClient`` whose calls this simulator answers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from durabletask.client import AsyncTaskHubGrpcClient, TaskHubGrpcClient
from durabletask.entities import EntityInstanceId
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.serialization import JsonDataConverter

from ..agents.sessions import AgentSession, agent_of, read_session, session_key
from ..core.clock import VirtualClock
from ..core.errors import DafxError, InstanceStateError
from ..core.history import EventType, new_event
from ..core.hub import Instance
from ..core.messages import EntityRequest
from ..core.payloads import decode_json, short_repr
from ..simulator import Simulator, _driving
from .capture import CaptureStub
from .dispatch import DtWorker
from .events import to_proto
from .loading import load_worker
from .registry import ENTITY, ORCHESTRATOR, WorkerIndex, is_worker
from .stub import AsyncDirectStub, DirectStub

__all__ = ["DurableTaskSimulator"]


class DurableTaskSimulator(Simulator):
    """Run a durabletask worker's registered code in memory, on a virtual clock.

    Build it with ``Simulator(worker)``; see :class:`~dafx_testing.Simulator`
    for the options and the API.

    Example::

        worker = TaskHubGrpcWorker()
        worker.add_orchestrator(greeting)
        worker.add_activity(say_hello)
        sim = Simulator(worker)
        iid = sim.start_new("greeting", "Tokyo")
        assert sim.wait_for_completion(iid).output == "Hello, Tokyo!"
    """

    _worker_type = DtWorker
    _worker: DtWorker
    index: WorkerIndex  # type: ignore[assignment]

    @staticmethod
    def _entity_id(entity: Any) -> str:
        return entity_id(entity)

    @classmethod
    def accepts(cls, app: Any) -> bool:
        """A worker, or an object wrapping one."""
        return isinstance(app, WorkerIndex) or is_worker(app)

    @staticmethod
    def _index(app: Any) -> Any:
        if isinstance(app, (str, os.PathLike)):
            app = load_worker(os.fspath(app))
        return WorkerIndex.of(app)

    def _fresh_app(self) -> WorkerIndex:
        """A new index with the workers this simulator was built with (none under ``attach``:
        a scenario that runs the program attaches its workers to each run's simulator)."""
        if not hasattr(self, "_built_with"):
            self._built_with = (list(self.index.running), list(self.index.wrappers))
        workers, wrappers = self._built_with
        index = WorkerIndex(wrappers=list(wrappers))
        for worker in workers:
            index.start(worker)
        return index

    def attached(self, idle_limit: timedelta = timedelta(hours=1)) -> AbstractContextManager[Any]:
        """Serve every durabletask worker and client of the program from this simulator.

        What :func:`~dafx_testing.durabletask.programs.attach` does for a simulator of its
        own; a crash sweep's scenario uses it to run the program on each run's simulator::

            def scenario(sim):
                with sim.attached():
                    sample.main()
        """
        from .programs import attached

        return attached(self, idle_limit)

    @property
    def workers(self) -> list[Any]:
        """The ``TaskHubGrpcWorker``s whose registrations run here (or ran, if stopped)."""
        return list(self.index.workers)

    def _encode(self, value: Any) -> str | None:
        """A payload as a worker's data converter writes it (None stays absent)."""
        if value is None:
            return None
        workers = self.index.workers
        return (workers[0]._data_converter.serialize(value) if workers
                else JsonDataConverter().serialize(value))

    # -- clients --

    @functools.cached_property
    def client(self) -> TaskHubGrpcClient:  # type: ignore[override]
        """A real ``TaskHubGrpcClient`` whose sidecar calls this simulator answers.

        Waits (``wait_for_orchestration_completion``...) run the simulation in
        virtual time up to their timeout; everything else reads what is
        committed now, or enqueues, as against a real sidecar.
        """
        return bind_client(TaskHubGrpcClient(), self)

    @functools.cached_property
    def async_client(self) -> AsyncTaskHubGrpcClient:
        """The same as :attr:`client`, for ``AsyncTaskHubGrpcClient`` code."""
        return bind_client(AsyncTaskHubGrpcClient(), self)

    @property
    def http(self) -> Any:
        raise DafxError("a durabletask worker has no HTTP surface (sim.http is for Functions "
                        "apps); use sim.client, a real TaskHubGrpcClient served by this simulator")

    # -- starting and steering instances --

    @_driving
    def start_new(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Schedule a new orchestration instance of a registered orchestrator; returns its id."""
        info = self.index.get(ORCHESTRATOR, name)
        instance_id = instance_id or self._new_id()
        if instance_id in self.hub.instances:
            raise InstanceStateError(
                f"instance {instance_id!r} already exists ({self.hub.instances[instance_id].runtime_status})"
                f": the sidecar refuses the start with ALREADY_EXISTS \"Orchestration instance "
                f"'{instance_id}' already exists\"; use another instance_id or purge it first")
        self._worker.create_instance(instance_id, info.name, self._encode(input), parent=None)
        return instance_id

    @_driving
    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an external event (as ``raise_orchestration_event``)."""
        instance = self._require_running(instance_id, "raise an event to")
        self.hub.deliver(instance.instance_id, new_event(
            EventType.EventRaised, self.now, Name=name, Input=self._encode(data)))

    @_driving
    def terminate(self, instance_id: str, reason: Any = None) -> None:
        """Terminate an instance (``reason`` becomes its output, as ``terminate_orchestration``)."""
        self._send_if_running(instance_id, EventType.ExecutionTerminated, self._encode(reason))

    @_driving
    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self._send_if_running(instance_id, EventType.ExecutionSuspended, reason)

    @_driving
    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self._send_if_running(instance_id, EventType.ExecutionResumed, reason)

    def _send_if_running(self, instance_id: str, kind: EventType, payload: str | None) -> None:
        instance = self.hub.get(instance_id)
        if not instance.is_terminal:
            self.hub.deliver(instance_id, new_event(kind, self.now, Input=payload))

    @_driving
    def rewind(self, instance_id: str, reason: str | None = None) -> None:
        """Rewind a Failed instance: the worker replays it with its failed tasks taken out.

        Failed sub-orchestrations are rewound with it; the work runs on the next
        :meth:`run_until_idle`.
        """
        instance = self.hub.get(instance_id)
        if instance.runtime_status != "Failed":
            raise InstanceStateError(
                f"cannot rewind instance {instance_id!r}: it is {instance.runtime_status}; the "
                f"sidecar refuses with FAILED_PRECONDITION \"Orchestration instance "
                f"'{instance_id}' is not in a failed state\"")
        self._worker.prepare_rewind(instance, reason)

    # -- entities and agents --

    @_driving
    def signal_entity(self, entity: Any, operation: str, input: Any = None) -> None:
        """Queue a one-way operation for an entity (as the client's ``signal_entity``)."""
        self._worker.send_to_entity(self._entity_id(entity), EntityRequest(
            operation=operation, input=self._encode(input), is_signal=True,
            request_id=self._new_uuid()))

    @property
    def agents(self) -> list[str]:
        """The durable agents the worker registers, as they were named."""
        named = self.index.agent_names()
        if named is not None:
            return named
        return [name for info in self.index.functions if info.kind == ENTITY
                if (name := agent_of(info.name)) is not None]

    def agent(self, name: str) -> Any:
        """The Agent Framework agent registered as ``name`` (case folds).

        The framework sends a model only the agent's instructions, never its name, so
        script the fake with the agent itself: ``fake.agent(sim.agent("Writer")).reply(...)``.
        """
        found = self.index.agent(name)
        if found is None:
            known = ", ".join(repr(n) for n in self.agents) or "none"
            raise DafxError(f"no durable agent {name!r} is registered; agents: {known}")
        return found

    def agent_session(self, agent: str, session_id: str) -> AgentSession:
        """The conversation stored for one session of ``agent`` (names fold case)."""
        entity = self._agent_entity(agent).name
        key = session_key(session_id)
        record = self.hub.entities.get(f"@{entity}@{key}")
        raw = record.state if record is not None and record.exists else None
        return read_session(self._agent_name(agent), key, raw)

    def agent_sessions(self, agent: str) -> list[AgentSession]:
        entity = self._agent_entity(agent).name
        return [self.agent_session(agent, record.key) for record in self.hub.entities.values()
                if record.name == entity and record.exists]

    def _agent_name(self, agent: str) -> str:
        return next((name for name in self.agents if name.lower() == agent.lower()), agent)

    # -- observing --

    @staticmethod
    def _output(instance: Instance) -> Any:
        """The decoded output; a failed instance's is its failure, ``Type: message`` (a
        terminated one's is the JSON the client sent, decoded)."""
        if instance.runtime_status == "Failed":
            return _failure_text(instance)
        return decode_json(instance.output)

    # -- doing work --

    @contextlib.contextmanager
    def host_code(self) -> Iterator[None]:
        self._hosting = getattr(self, "_hosting", 0) + 1
        try:
            with super().host_code():
                yield
        finally:
            self._hosting -= 1

    @property
    def hosting(self) -> bool:
        """Whether the simulator is doing work now (its host code is running)."""
        return getattr(self, "_hosting", 0) > 0

    def nothing_unfinished(self) -> bool:
        """No instance unfinished, no message queued, nothing in flight: waiting changes nothing."""
        hub = self.hub
        return (not any(not i.is_terminal for i in hub.instances.values())
                and not hub.activities and not hub.ready and not hub.entities_ready
                and self._worker.next_due() is None)

    def wait_until(self, instance_id: str, done: Callable[[Instance], bool],
                   timeout: timedelta) -> None:
        """Run in virtual time until ``done(instance)``; a client's wait, which time passes for.

        Raises:
            WaitTimeoutError: ``timeout`` of virtual time passed first (the clock
                is then at the deadline, as after a real wait).
        """
        self.driving_calls += 1
        self._run_until(instance_id, done, self.now + timeout, time_passes=True)

    def check_replay(self, instance_id: str) -> None:
        """Run the instance's last episode again through the worker and check nothing changes.

        The worker gets the same request (the history before that episode, and
        the events it received); its actions and custom status must equal what
        it answered the first time.
        """
        instance = self.hub.get(instance_id)
        previous = self._worker.last_state.get(instance_id)
        if previous is None:
            return
        history = instance.history
        start = max(i for i, e in enumerate(history) if e["EventType"] == EventType.OrchestratorStarted)
        received = history[start:start + previous["received"]]
        request = pb.OrchestratorRequest(
            instanceId=instance_id, pastEvents=[to_proto(e) for e in history[:start]],
            newEvents=[to_proto(e) for e in received])
        request.executionId.value = instance.execution_id
        stub = CaptureStub()
        with VirtualClock(self.now).bound():
            worker = self.index.worker_for(ORCHESTRATOR, instance.name) or self.index.workers[0]
            worker._execute_orchestrator(request, stub, "check_replay")
        actions = [a.SerializeToString(deterministic=True) for a in stub.reply.actions]
        for key, now in (("actions", actions), ("customStatus", stub.reply.customStatus.value)):
            if now != previous[key]:
                raise AssertionError(f"replaying instance {instance_id!r} gave different {key}:\n"
                                     f"  last episode: {previous[key]!r}\n  replay:       {now!r}")


def bind_client(client: Any, sim: DurableTaskSimulator) -> Any:
    """Point a durabletask client (sync or async) at ``sim`` instead of a sidecar."""
    client._stub = AsyncDirectStub(sim) if isinstance(client, AsyncTaskHubGrpcClient) else DirectStub(sim)
    return client


def entity_id(entity: Any) -> str:
    """``@name@key`` (name lowercased, as ``EntityInstanceId`` does) for any entity reference."""
    if isinstance(entity, EntityInstanceId):
        return str(entity)
    if isinstance(entity, tuple) and len(entity) == 2:
        return str(EntityInstanceId(str(entity[0]), str(entity[1])))
    if isinstance(entity, str):
        try:
            return str(EntityInstanceId.parse(entity))
        except ValueError:
            pass
    raise DafxError(f"cannot use {short_repr(entity)} as an entity id; pass '@name@key', "
                    "(name, key) or an EntityInstanceId")


def _failure_text(instance: Instance) -> str | None:
    completion = next((e for e in reversed(instance.history)
                       if e["EventType"] == EventType.ExecutionCompleted), None)
    if completion is None:
        return instance.output
    details = completion.get("FailureDetails") or {}
    return completion.get("Reason") or json.dumps(details) or None
