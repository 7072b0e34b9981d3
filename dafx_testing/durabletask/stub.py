"""The sidecar as a durabletask client sees it: its RPCs, answered by a simulator.

A ``TaskHubGrpcClient`` calls ``self._stub.StartInstance(request)`` and friends
on a gRPC stub. :class:`DirectStub` answers the same calls from the simulator's
task hub, with the in-memory backend's answers and status codes
(``durabletask/testing/in_memory_backend.py``: ``ALREADY_EXISTS`` for a taken
id, ``NOT_FOUND`` for raising an event to an unknown instance,
``DEADLINE_EXCEEDED`` for a wait that runs out), so the client's own code turns
them into what it raises. :class:`AsyncDirectStub` is the same for
``AsyncTaskHubGrpcClient``.

Only the waits (``WaitForInstanceStart``/``WaitForInstanceCompletion``) run the
simulation, in virtual time, up to the wait's timeout; every other call reads
or enqueues, as a sidecar does, and returns at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Any

import grpc
from durabletask.entities import EntityInstanceId
from durabletask.internal import orchestrator_service_pb2 as pb
from google.protobuf import wrappers_pb2

from ..core.errors import WaitTimeoutError
from ..core.history import Event, EventType, new_event, parse_timestamp
from ..core.hub import Instance
from ..core.messages import EntityRequest
from .events import timestamp, to_proto

if TYPE_CHECKING:
    from .simulator import DurableTaskSimulator

__all__ = ["DirectStub", "AsyncDirectStub", "SidecarError"]

_STATUS = {"Running": pb.ORCHESTRATION_STATUS_RUNNING, "Completed": pb.ORCHESTRATION_STATUS_COMPLETED,
           "ContinuedAsNew": pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
           "Failed": pb.ORCHESTRATION_STATUS_FAILED, "Terminated": pb.ORCHESTRATION_STATUS_TERMINATED,
           "Pending": pb.ORCHESTRATION_STATUS_PENDING, "Suspended": pb.ORCHESTRATION_STATUS_SUSPENDED}


class SidecarError(grpc.RpcError):
    """A failed RPC, as grpc raises it: the client reads ``code()`` and ``details()``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def __str__(self) -> str:
        return f"{self._code.name}: {self._details}"


def _matches(instance: Instance, purge: pb.PurgeInstanceFilter) -> bool:
    """Whether a purge filter takes ``instance`` (created from inclusive, to exclusive)."""
    if purge.runtimeStatus and _STATUS[instance.runtime_status] not in purge.runtimeStatus:
        return False
    if purge.HasField("createdTimeFrom") and instance.created_time < purge.createdTimeFrom.ToDatetime(
            tzinfo=timezone.utc):
        return False
    return not (purge.HasField("createdTimeTo")
                and instance.created_time >= purge.createdTimeTo.ToDatetime(tzinfo=timezone.utc))


def _text(value: wrappers_pb2.StringValue | None) -> str | None:
    return value.value if value is not None and value.ByteSize() else None


class DirectStub:
    """The sidecar's RPCs, served by a :class:`DurableTaskSimulator`."""

    def __init__(self, sim: DurableTaskSimulator) -> None:
        self._sim = sim

    def _existing(self, instance_id: str) -> Instance:
        """The instance, or the in-memory backend's NOT_FOUND for an unknown id."""
        instance = self._sim.hub.instances.get(instance_id)
        if instance is None:
            raise SidecarError(grpc.StatusCode.NOT_FOUND,
                               f"Orchestration instance '{instance_id}' not found")
        return instance

    # -- orchestrations --

    def StartInstance(self, request: pb.CreateInstanceRequest, **_: Any) -> pb.CreateInstanceResponse:  # noqa: N802
        sim = self._sim
        instance_id = request.instanceId or sim._new_id()
        existing = sim.hub.instances.get(instance_id)
        if existing is not None:
            replaceable = list(request.orchestrationIdReusePolicy.replaceableStatus)
            if _STATUS[existing.runtime_status] not in replaceable:
                suffix = " with non-replaceable status" if replaceable else ""
                raise SidecarError(grpc.StatusCode.ALREADY_EXISTS,
                                   f"Orchestration instance '{instance_id}' already exists{suffix}")
            sim.hub.purge(instance_id)
        sim.driving_calls += 1
        sim._worker.create_instance(instance_id, request.name, _text(request.input), parent=None)
        return pb.CreateInstanceResponse(instanceId=instance_id)

    def GetInstance(self, request: pb.GetInstanceRequest, **_: Any) -> pb.GetInstanceResponse:  # noqa: N802
        instance = self._sim.hub.instances.get(request.instanceId)
        if instance is None:
            return pb.GetInstanceResponse(exists=False)
        return pb.GetInstanceResponse(exists=True, orchestrationState=self._state(
            instance, request.getInputsAndOutputs))

    def WaitForInstanceStart(self, request: pb.GetInstanceRequest, timeout: float | None = None,  # noqa: N802
                             **_: Any) -> pb.GetInstanceResponse:
        self._wait(request.instanceId, timeout, lambda i: i.runtime_status != "Pending", "start")
        return self.GetInstance(request)

    def WaitForInstanceCompletion(self, request: pb.GetInstanceRequest,  # noqa: N802
                                  timeout: float | None = None, **_: Any) -> pb.GetInstanceResponse:
        self._wait(request.instanceId, timeout, lambda i: i.is_terminal, "complete")
        return self.GetInstance(request)

    def _wait(self, instance_id: str, timeout: float | None, done: Any, what: str) -> None:
        """Run the simulation in virtual time until ``done`` or the timeout (DEADLINE_EXCEEDED)."""
        sim = self._sim
        limit = timedelta(seconds=timeout if timeout else 30)
        self._existing(instance_id)
        try:
            sim.wait_until(instance_id, done, limit)
        except WaitTimeoutError as stuck:
            raise SidecarError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"waited {limit.total_seconds():g} s of virtual time for "
                               f"instance {instance_id!r} to {what}: {stuck}") from None

    def RaiseEvent(self, request: pb.RaiseEventRequest, **_: Any) -> pb.RaiseEventResponse:  # noqa: N802
        sim = self._sim
        instance = self._existing(request.instanceId)
        sim.driving_calls += 1
        sim.hub.deliver(instance.instance_id, new_event(
            EventType.EventRaised, sim.now, Name=request.name, Input=_text(request.input)))
        return pb.RaiseEventResponse()

    def TerminateInstance(self, request: pb.TerminateRequest, **_: Any) -> pb.TerminateResponse:  # noqa: N802
        self._deliver(request.instanceId, new_event(
            EventType.ExecutionTerminated, self._sim.now, Input=_text(request.output),
            Recurse=request.recursive))
        return pb.TerminateResponse()

    def SuspendInstance(self, request: pb.SuspendRequest, **_: Any) -> pb.SuspendResponse:  # noqa: N802
        self._deliver(request.instanceId, new_event(
            EventType.ExecutionSuspended, self._sim.now, Input=_text(request.reason)))
        return pb.SuspendResponse()

    def ResumeInstance(self, request: pb.ResumeRequest, **_: Any) -> pb.ResumeResponse:  # noqa: N802
        self._deliver(request.instanceId, new_event(
            EventType.ExecutionResumed, self._sim.now, Input=_text(request.reason)))
        return pb.ResumeResponse()

    def _deliver(self, instance_id: str, event: Event) -> None:
        sim = self._sim
        instance = sim.hub.instances.get(instance_id)
        if instance is not None and not instance.is_terminal:
            sim.driving_calls += 1
            sim.hub.deliver(instance_id, event)

    def PurgeInstances(self, request: pb.PurgeInstancesRequest, **_: Any) -> pb.PurgeInstancesResponse:  # noqa: N802
        sim = self._sim
        if request.instanceId:
            chosen = [request.instanceId] if request.instanceId in sim.hub.instances else []
        elif request.HasField("purgeInstanceFilter"):
            chosen = [i.instance_id for i in sim.hub.instances.values()
                      if _matches(i, request.purgeInstanceFilter)]
        else:
            chosen = []
        # The in-memory backend's PurgeInstances: only finished instances go.
        purged = [iid for iid in chosen if sim.hub.instances[iid].is_terminal]
        for instance_id in purged:
            sim.driving_calls += 1
            sim.hub.purge(instance_id)
        return pb.PurgeInstancesResponse(deletedInstanceCount=len(purged),
                                         isComplete=wrappers_pb2.BoolValue(value=True))

    def RestartInstance(self, request: pb.RestartInstanceRequest, **_: Any) -> pb.RestartInstanceResponse:  # noqa: N802
        self._existing(request.instanceId)
        return pb.RestartInstanceResponse(
            instanceId=self._sim.restart(request.instanceId, request.restartWithNewInstanceId))

    def RewindInstance(self, request: pb.RewindInstanceRequest, **_: Any) -> pb.RewindInstanceResponse:  # noqa: N802
        sim = self._sim
        instance = self._existing(request.instanceId)
        if instance.runtime_status != "Failed":
            raise SidecarError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Orchestration instance '{request.instanceId}' is not in a failed state")
        sim.rewind(request.instanceId, _text(request.reason))
        return pb.RewindInstanceResponse()

    def StreamInstanceHistory(self, request: pb.StreamInstanceHistoryRequest,  # noqa: N802
                              **_: Any) -> Iterator[pb.HistoryChunk]:
        instance = self._existing(request.instanceId)
        yield pb.HistoryChunk(events=[to_proto(event) for event in instance.history])

    def QueryInstances(self, request: pb.QueryInstancesRequest, **_: Any) -> pb.QueryInstancesResponse:  # noqa: N802
        query = request.query
        wanted = set(query.runtimeStatus)
        prefix = _text(query.instanceIdPrefix) or ""
        states = [self._state(instance, query.fetchInputsAndOutputs)
                  for instance in self._sim.hub.instances.values()
                  if (not wanted or _STATUS[instance.runtime_status] in wanted)
                  and instance.instance_id.startswith(prefix)]
        return pb.QueryInstancesResponse(orchestrationState=states)

    def _state(self, instance: Instance, payloads: bool) -> pb.OrchestrationState:
        completion = next((e for e in reversed(instance.history)
                           if e["EventType"] == EventType.ExecutionCompleted), None)
        state = pb.OrchestrationState(
            instanceId=instance.instance_id, name=instance.name,
            orchestrationStatus=_STATUS[instance.runtime_status],
            createdTimestamp=timestamp(instance.created_time),
            lastUpdatedTimestamp=timestamp(instance.last_updated_time),
            executionId=wrappers_pb2.StringValue(value=instance.execution_id))
        if instance.parent is not None:
            state.parentInstanceId.value = instance.parent.instance_id
        if instance.custom_status is not None:
            state.customStatus.value = instance.custom_status
        if payloads and instance.input is not None:
            state.input.value = instance.input
        if completion is not None:
            state.completedTimestamp.CopyFrom(timestamp(parse_timestamp(completion["Timestamp"])))
            proto = to_proto(completion).executionCompleted
            if proto.HasField("failureDetails"):
                state.failureDetails.CopyFrom(proto.failureDetails)
            if payloads and proto.HasField("result"):
                state.output.CopyFrom(proto.result)
        return state

    # -- entities --

    def SignalEntity(self, request: pb.SignalEntityRequest, **_: Any) -> pb.SignalEntityResponse:  # noqa: N802
        sim = self._sim
        sim.driving_calls += 1
        sim._worker.send_to_entity(request.instanceId, EntityRequest(
            operation=request.name, input=_text(request.input), is_signal=True,
            request_id=request.requestId or sim._new_uuid()),
            request.scheduledTime.ToDatetime(tzinfo=timezone.utc)
            if request.HasField("scheduledTime") else None)
        return pb.SignalEntityResponse()

    def GetEntity(self, request: pb.GetEntityRequest, **_: Any) -> pb.GetEntityResponse:  # noqa: N802
        entity_id = str(EntityInstanceId.parse(request.instanceId))
        record = self._sim.hub.entities.get(entity_id)
        if record is None or not record.exists and not record.queue:
            return pb.GetEntityResponse(exists=False)
        metadata = pb.EntityMetadata(instanceId=entity_id, backlogQueueSize=len(record.queue))
        if record.last_modified_time is not None:
            metadata.lastModifiedTime.CopyFrom(timestamp(record.last_modified_time))
        if request.includeState and record.state is not None:
            metadata.serializedState.value = record.state
        if record.locked_by is not None:       # the holder: DTFx TaskEntityDispatcher.cs:443
            metadata.lockedBy.value = record.locked_by.owner
        return pb.GetEntityResponse(exists=True, entity=metadata)

    def __getattr__(self, name: str) -> Any:
        def unsupported(*_: Any, **__: Any) -> Any:
            raise SidecarError(grpc.StatusCode.UNIMPLEMENTED,
                               f"dafx does not simulate the sidecar's {name} call yet")
        if name[:1].isupper():
            return unsupported
        raise AttributeError(name)


class AsyncDirectStub:
    """:class:`DirectStub` for ``AsyncTaskHubGrpcClient``: the same answers, awaited.

    A wait runs the simulation on the calling thread; the async client's other
    calls return at once, as they would from a sidecar on loopback.
    """

    def __init__(self, sim: DurableTaskSimulator) -> None:
        self._direct = DirectStub(sim)

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._direct, name)
        if name == "StreamInstanceHistory":
            return _async_iter(call)

        async def rpc(*args: Any, **kwargs: Any) -> Any:
            return call(*args, **kwargs)

        return rpc


def _async_iter(call: Any) -> Any:
    async def stream(*args: Any, **kwargs: Any) -> Any:
        for chunk in call(*args, **kwargs):
            yield chunk
    return stream
