"""The durabletask host's dispatchers: the real worker runs each work item, the hub commits it.

A durabletask worker normally receives work items over gRPC from a sidecar (the
Durable Task Scheduler, or ``durabletask.testing.InMemoryOrchestrationBackend``)
and answers with ``Complete*Task`` calls. Here each step builds the work item the
sidecar would send, hands it to the worker's own ``_execute_orchestrator``,
``_execute_activity`` or ``_execute_entity_batch`` with a :class:`CaptureStub`
(the contract Microsoft's Functions integration of durabletask uses), and commits
the captured answer to the task hub as the sidecar would: confirming history
events, queue messages, timers, entity results. The worker's converters, payload
handling and failure details are the SDK's; there is no gRPC, no thread and no
real sleeping.

Everything around the steps is the Functions engine's (:class:`~dafx_testing.
functions.worker.Worker`): the queues and their order, the crash points on both
sides of every commit, work parked in flight while slow model calls take virtual
time, the runaway budgets. What the sidecar does with each answer follows
``durabletask/testing/in_memory_backend.py`` (``CompleteOrchestratorTask``,
``_process_*_action``, ``CompleteEntityTask``), minus its threads and real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from durabletask.entities import EntityInstanceId
from durabletask.internal import helpers
from durabletask.internal import orchestrator_service_pb2 as pb
from google.protobuf import wrappers_pb2

from ..checks.determinism import PerturbedReplay
from ..core.clock import VirtualClock
from ..core.crash import CrashLog
from ..core.history import Event, EventType, OrchestrationStatus, new_event, unanswered
from ..core.hub import EntityLock, EntityRecord, Instance, ParentLink, TaskHub
from ..core.latency import metering
from ..core.messages import ActivityWork, EntityRequest
from ..core.sleeps import sleeps_charged
from ..functions.activities import ActivityCall, ActivityLedger, app_modules
from ..functions.worker import Settings, Worker
from .capture import ActivityRun, CaptureStub, Observers
from .determinism import SDK_ERROR_TYPE, perturbed_divergence, sdk_divergence
from .events import timestamp, to_event, to_proto
from .locks import EntityLocks
from .registry import ACTIVITY, ENTITY, ORCHESTRATOR, WorkerIndex

__all__ = ["DtWorker"]


@dataclass
class _Protos:
    """An instance's history as protocol events, converted once per event (worker memory)."""

    history: list[Event]
    events: list[pb.HistoryEvent] = field(default_factory=list)


class DtWorker(Worker):
    """The Functions engine's worker, with the durabletask worker doing the work."""

    history_events = frozenset(EventType)       # the protocol's entity events included

    def __init__(self, index: WorkerIndex, hub: TaskHub, clock: VirtualClock,
                 ledger: ActivityLedger, settings: Settings, seed: int, crashes: CrashLog) -> None:
        super().__init__(index, hub, clock, ledger, settings, seed, crashes)  # type: ignore[arg-type]
        self.index: WorkerIndex = index  # type: ignore[assignment]
        self._protos: dict[str, _Protos] = {}          # worker memory: a cache, rebuilt at will
        self._known: dict[int, tuple[Event, pb.HistoryEvent]] = {}   # events made here, and whence
        self._observers = Observers()
        self._locks = EntityLocks(hub, lambda owner, event, execution: hub.deliver(
            owner, self._event(event, self.now), execution))

    def step(self) -> bool:
        """One unit of work; none while no worker is attached (the sidecar holds it)."""
        return bool(self.index.running) and super().step()

    def stall_causes(self, instance: Instance) -> list[str]:
        causes = super().stall_causes(instance) + self._locks.waits_of(instance.instance_id)
        if not self.index.running:
            causes.append("no durabletask worker is attached (started) to run its work")
        return causes

    def _sdk(self, kind: str, name: str) -> Any:
        worker = self.index.worker_for(kind, name)
        assert worker is not None, "step() runs nothing while no worker is attached"
        return worker

    def _crash(self, kind: str, name: str, target: str, work: str) -> bool:
        crashed = super()._crash(kind, name, target, work)
        if crashed:
            self._protos.clear()
            self._known.clear()
        return crashed

    # -- orchestrations --

    def _episode_step(self, instance: Instance) -> None:
        taken = self._take_episode(instance)
        if taken is None:
            return
        new_events, point = taken
        started = new_event(EventType.OrchestratorStarted, self.now)
        request = pb.OrchestratorRequest(
            instanceId=instance.instance_id,
            executionId=wrappers_pb2.StringValue(value=instance.execution_id),
            pastEvents=self._past(instance),
            newEvents=[self._proto(event) for event in (started, *new_events)])
        stub = CaptureStub()
        sdk = self._sdk(ORCHESTRATOR, instance.name)
        contexts: list[Any] = []

        def note_context(ctx: Any, _: Any, call: Callable[[], Any]) -> Any:
            contexts.append(ctx)
            return call()

        try:
            with self.settings.guard(), self._observers.observing(
                    sdk._registry.orchestrators, instance.name, note_context):
                sdk._execute_orchestrator(request, stub, str(len(instance.history)))
        except BaseException:
            self._put_back(instance, new_events)     # nothing was committed: lose nothing
            raise
        if stub.abandoned or stub.reply is None or self._crash("episode", *point):
            self._put_back(instance, new_events)
            return
        failure = self._commit_orchestration(instance, [started, *new_events], stub.reply)
        if contexts and not instance.is_terminal:
            # What the orchestration awaits and what it buffered, read off its context
            # (event names are casefolded by wait_for_external_event).
            instance.waiting_for = [name for name, waits in contexts[0]._pending_events.items()
                                    if waits]
            instance.unmatched_events = list(contexts[0]._received_events)
        self.episodes[instance.instance_id] += 1
        self.last_state[instance.instance_id] = {
            "actions": [a.SerializeToString(deterministic=True) for a in stub.reply.actions],
            "customStatus": stub.reply.customStatus.value, "received": 1 + len(new_events)}
        self._crash("after-commit", *point)
        if failure is not None and failure.errorType == SDK_ERROR_TYPE:
            self._report_sdk_nondeterminism(instance, failure)
        elif not any(a.HasField("rewindOrchestration") for a in stub.reply.actions):
            # (A rewind is the SDK rewriting history with a fresh execution id: no user code.)
            self._check_perturbed(instance, sdk, request, stub.reply)

    def _event(self, proto: pb.HistoryEvent, moment: datetime) -> Event:
        """The hub's event for a protocol event this worker made, remembered with it."""
        if not proto.timestamp.seconds:
            proto.timestamp.CopyFrom(timestamp(moment))
        event = to_event(proto)
        self._known[id(event)] = (event, proto)
        return event

    def _proto(self, event: Event) -> pb.HistoryEvent:
        """The protocol event for a hub event: the one it was made from, or converted back."""
        known = self._known.get(id(event))
        return known[1] if known is not None and known[0] is event else to_proto(event)

    def _past(self, instance: Instance) -> list[pb.HistoryEvent]:
        cached = self._protos.get(instance.instance_id)
        if cached is None or cached.history is not instance.history:
            cached = self._protos[instance.instance_id] = _Protos(instance.history)
        cached.events.extend(self._proto(e) for e in instance.history[len(cached.events):])
        return cached.events

    def _commit_orchestration(self, instance: Instance, received: list[Event],
                              reply: pb.OrchestratorResponse) -> pb.TaskFailureDetails | None:
        """Record the episode and send its messages, as the sidecar's ``CompleteOrchestratorTask``.

        Returns the failure details when the episode failed the instance.
        """
        rewind = next((a.rewindOrchestration for a in reply.actions
                       if a.HasField("rewindOrchestration")), None)
        if rewind is not None:
            self._rewound(instance, rewind)
            return None
        recorded = list(received)
        sends: list[Callable[[], object]] = []
        completion: pb.CompleteOrchestrationAction | None = None
        for action in reply.actions:
            kind = action.WhichOneof("orchestratorActionType")
            if kind == "completeOrchestration":
                completion = action.completeOrchestration
                continue
            confirmation, send = self._action(instance, action)
            if confirmation is not None:
                recorded.append(confirmation)
            sends.append(send)
        continued = (completion is not None and completion.orchestrationStatus
                     == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW)
        if not continued:
            recorded.append(new_event(EventType.OrchestratorCompleted, self.now))
        if completion is not None and not continued:
            recorded.append(self._event(helpers.new_execution_completed_event(
                completion.orchestrationStatus,
                completion.result.value if completion.HasField("result") else None,
                completion.failureDetails if completion.HasField("failureDetails") else None),
                self.now))
        for event in recorded:
            event["IsPlayed"] = True
        self.hub.append_history(instance, recorded)
        instance.last_updated_time = self.now
        # The sidecar stores the status each episode reports, none included (DTFx
        # TaskOrchestrationDispatcher stores ``Status`` per episode).
        instance.custom_status = reply.customStatus.value if reply.HasField("customStatus") else None
        for event in received:
            if event["EventType"] == EventType.ExecutionSuspended:
                instance.runtime_status = "Suspended"
            elif event["EventType"] == EventType.ExecutionResumed or instance.runtime_status == "Pending":
                instance.runtime_status = "Running"
        for send in sends:
            send()
        if completion is None:
            return None
        self._complete_instance(instance, completion)
        return completion.failureDetails if completion.HasField("failureDetails") else None

    def _action(self, instance: Instance,
                action: pb.OrchestratorAction) -> tuple[Event | None, Callable[[], object]]:
        """The history event confirming one action, and the message(s) it sends."""
        task_id = action.id
        kind = action.WhichOneof("orchestratorActionType")
        if kind == "scheduleTask":
            task = action.scheduleTask
            scheduled = pb.HistoryEvent(eventId=task_id, taskScheduled=pb.TaskScheduledEvent(
                name=task.name, version=task.version if task.HasField("version") else None,
                input=task.input if task.HasField("input") else None, tags=task.tags))
            work = ActivityWork(instance.instance_id, instance.execution_id, task_id, task.name,
                                task.input.value if task.HasField("input") else None)
            return self._event(scheduled, self.now), lambda: self.hub.activities.append(work)
        if kind == "createTimer":
            fire_at = action.createTimer.fireAt.ToDatetime(tzinfo=timezone.utc)
            created = self._event(helpers.new_timer_created_event(task_id, fire_at), self.now)
            fired = self._event(helpers.new_timer_fired_event(task_id, fire_at), fire_at)
            return created, lambda: self.hub.schedule_timer(
                fire_at, instance.instance_id, instance.execution_id, fired)
        if kind == "createSubOrchestration":
            child = action.createSubOrchestration
            created = self._event(pb.HistoryEvent(
                eventId=task_id, subOrchestrationInstanceCreated=pb.SubOrchestrationInstanceCreatedEvent(
                    instanceId=child.instanceId, name=child.name,
                    version=child.version if child.HasField("version") else None,
                    input=child.input if child.HasField("input") else None, tags=child.tags)), self.now)
            return created, lambda: self._start_child(instance, task_id, child)
        if kind == "sendEvent":
            send = action.sendEvent
            target = send.instance.instanceId
            data = send.data.value if send.HasField("data") else None
            sent = self._event(helpers.new_event_sent_event(task_id, target, data, name=send.name),
                            self.now)
            raised = new_event(EventType.EventRaised, self.now, Name=send.name, Input=data)
            return sent, lambda: self.hub.deliver(target, raised)
        if kind == "sendEntityMessage":
            return self._entity_message(instance, task_id, action.sendEntityMessage)
        if kind == "terminateOrchestration":
            stop = action.terminateOrchestration
            reason = stop.reason.value if stop.HasField("reason") else None
            terminated = new_event(EventType.ExecutionTerminated, self.now, Input=reason)
            return None, lambda: self.hub.deliver(stop.instanceId, terminated)
        raise NotImplementedError(
            f"instance {instance.instance_id!r} sent a {kind!r} action, which the simulated "
            "sidecar does not handle")

    def _entity_message(self, instance: Instance, task_id: int, message: pb.SendEntityMessageAction
                        ) -> tuple[Event | None, Callable[[], object]]:
        kind = message.WhichOneof("EntityMessageType")
        body = getattr(message, kind)
        confirmation = pb.HistoryEvent(eventId=task_id)
        getattr(confirmation, kind).CopyFrom(body)
        event = self._event(confirmation, self.now)
        if kind == "entityLockRequested":
            lock = EntityLock(body.criticalSectionId, instance.instance_id, instance.execution_id,
                              tuple(sorted(str(EntityInstanceId.parse(e)) for e in body.lockSet)))
            return event, lambda: self._locks.request(lock)
        if kind == "entityUnlockSent":
            return event, lambda: self._locks.unlock(str(EntityInstanceId.parse(
                body.targetInstanceId.value)), body.criticalSectionId)
        target = body.targetInstanceId.value
        called = kind == "entityOperationCalled"
        request = EntityRequest(
            operation=body.operation, input=body.input.value if body.HasField("input") else None,
            is_signal=not called, request_id=body.requestId,
            parent_instance_id=instance.instance_id,    # a signal's sender too: locks admit it
            parent_execution_id=instance.execution_id if called else None)
        due = (body.scheduledTime.ToDatetime(tzinfo=timezone.utc)
               if not called and body.HasField("scheduledTime") else None)
        return event, lambda: self.send_to_entity(target, request, due)

    # -- critical sections: the sidecar grants all of a section's locks at once, or queues it --

    # -- rewind: the worker rewrites the history, the sidecar stores it and rewinds children --

    def prepare_rewind(self, instance: Instance, reason: str | None) -> None:
        """Set a Failed instance running again with an ``executionRewound`` event to replay.

        As the in-memory backend's ``_prepare_rewind``: the worker answers that event
        with the history rewritten (failed tasks taken out), which :meth:`_rewound` stores.
        """
        instance.runtime_status = "Running"
        instance.output = None
        rewound = pb.HistoryEvent(eventId=-1, executionRewound=pb.ExecutionRewoundEvent(
            reason=None if reason is None else wrappers_pb2.StringValue(value=reason)))
        self.hub.deliver(instance.instance_id, self._event(rewound, self.now))

    def _rewound(self, instance: Instance, rewind: pb.RewindOrchestrationAction) -> None:
        """Store the worker's rewritten history and rewind what failed under it.

        As ``_process_rewind_orchestration_action``: sub-orchestrations created and not
        completed are rewound if they failed (started again if purged), and the
        instance is dispatched again to replay the clean history.
        """
        history = [self._event(event, self.now) for event in rewind.newHistory]
        history.append(new_event(EventType.OrchestratorCompleted, self.now))
        for event in history:
            event["IsPlayed"] = True
        self.hub.replace_history(instance, history)
        self._protos.pop(instance.instance_id, None)
        started = next(e for e in rewind.newHistory if e.HasField("executionStarted"))
        instance.execution_id = started.executionStarted.orchestrationInstance.executionId.value
        instance.last_updated_time = self.now
        reason = next((e.executionRewound.reason.value for e in reversed(rewind.newHistory)
                       if e.HasField("executionRewound")), None)
        completed = {e.subOrchestrationInstanceCompleted.taskScheduledId for e in rewind.newHistory
                     if e.HasField("subOrchestrationInstanceCompleted")}
        for proto in rewind.newHistory:
            if not proto.HasField("subOrchestrationInstanceCreated") or proto.eventId in completed:
                continue
            created = proto.subOrchestrationInstanceCreated
            link = ParentLink(instance.instance_id, instance.execution_id, proto.eventId, instance.name)
            child = self.hub.instances.get(created.instanceId)
            if child is None:
                self.create_instance(created.instanceId, created.name,
                                     created.input.value if created.HasField("input") else None, link)
            elif child.runtime_status == "Failed":
                child.parent = link
                self.prepare_rewind(child, reason)
        if instance.instance_id not in self.hub.ready:
            self.hub.ready.append(instance.instance_id)      # replay the clean history

    def send_to_entity(self, entity_id: str, request: EntityRequest,
                       due: datetime | None = None) -> None:
        """Queue an operation for an entity, now or when the clock reaches ``due``."""
        parsed = EntityInstanceId.parse(entity_id)
        if due is not None and due > self.now:
            self.hub.schedule_entity_request(due, str(parsed), parsed.entity, parsed.key, request)
        else:
            self.hub.send_to_entity(str(parsed), parsed.entity, parsed.key, request)

    def _start_child(self, parent: Instance, task_id: int,
                     body: pb.CreateSubOrchestrationAction) -> None:
        existing = self.hub.instances.get(body.instanceId)
        if existing is not None and not existing.is_terminal:
            # The in-memory backend's _create_instance_internal refuses the id; the
            # parent's task fails with the refusal.
            error = ValueError(f"Orchestration instance '{body.instanceId}' already exists")
            self.hub.deliver(parent.instance_id, self._event(
                helpers.new_sub_orchestration_failed_event(task_id, error), self.now),
                parent.execution_id)
            return
        link = ParentLink(parent.instance_id, parent.execution_id, task_id, parent.name)
        self.create_instance(body.instanceId, body.name,
                             body.input.value if body.HasField("input") else None, link)

    def _complete_instance(self, instance: Instance, completion: pb.CompleteOrchestrationAction) -> None:
        result = completion.result.value if completion.HasField("result") else None
        if completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
            self.hub.replace_history(instance, [])
            self._protos.pop(instance.instance_id, None)
            instance.execution_id = self.new_execution_id(instance.instance_id)
            instance.input = result
            pending, instance.inbox = instance.inbox, []
            self.hub.deliver(instance.instance_id, self.started_event(instance))
            for event in [*(self._event(e, self.now) for e in completion.carryoverEvents), *pending]:
                self.hub.deliver(instance.instance_id, event)
            return
        instance.runtime_status = OrchestrationStatus(completion.orchestrationStatus).name
        instance.output = result
        instance.waiting_for = []
        parent = instance.parent
        if parent is None:
            return
        if completion.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED:
            reply = pb.HistoryEvent(eventId=-1, subOrchestrationInstanceCompleted=(
                pb.SubOrchestrationInstanceCompletedEvent(
                    taskScheduledId=parent.task_id,
                    result=completion.result if completion.HasField("result") else None)))
        else:
            reply = pb.HistoryEvent(eventId=-1, subOrchestrationInstanceFailed=(
                pb.SubOrchestrationInstanceFailedEvent(
                    taskScheduledId=parent.task_id, failureDetails=completion.failureDetails)))
        self.hub.deliver(parent.instance_id, self._event(reply, self.now), parent.execution_id)

    def started_event(self, instance: Instance) -> Event:
        parent = instance.parent
        started = pb.ExecutionStartedEvent(
            name=instance.name,
            input=None if instance.input is None else wrappers_pb2.StringValue(value=instance.input),
            orchestrationInstance=pb.OrchestrationInstance(
                instanceId=instance.instance_id,
                executionId=wrappers_pb2.StringValue(value=instance.execution_id)))
        if parent is not None:
            started.parentInstance.CopyFrom(pb.ParentInstanceInfo(
                taskScheduledId=parent.task_id, name=wrappers_pb2.StringValue(value=parent.name),
                orchestrationInstance=pb.OrchestrationInstance(
                    instanceId=parent.instance_id,
                    executionId=wrappers_pb2.StringValue(value=parent.execution_id))))
        return self._event(pb.HistoryEvent(eventId=-1, executionStarted=started), self.now)

    def _check_perturbed(self, instance: Instance, sdk: Any, request: pb.OrchestratorRequest,
                         answer: pb.OrchestratorResponse) -> None:
        """Run the episode again in a perturbed world (the simulator's ``perturb``), after the commit."""
        for check in self.settings.episode_checks:
            if not isinstance(check, PerturbedReplay):
                continue     # the other checks read a Functions episode
            error = perturbed_divergence(check, sdk, request, answer, instance.name, CaptureStub)
            if error is not None:
                self.nondeterminism.append(error)
                if self.settings.raise_on_nondeterminism:
                    raise error

    def requeue_outstanding(self, instance: Instance) -> None:
        """Re-create the messages a loaded in-flight history implies (the sidecar's queues).

        Activities scheduled and not answered run again, timers not fired are set,
        sub-orchestrations not started are started, entity calls not answered are sent.
        """
        for event in unanswered(instance.history):
            proto = to_proto(event)
            kind = event["EventType"]
            if kind == EventType.TaskScheduled:
                task = proto.taskScheduled
                self.hub.activities.append(ActivityWork(
                    instance.instance_id, instance.execution_id, proto.eventId, task.name,
                    task.input.value if task.HasField("input") else None))
            elif kind == EventType.TimerCreated:
                fire_at = proto.timerCreated.fireAt.ToDatetime(tzinfo=timezone.utc)
                self.hub.schedule_timer(fire_at, instance.instance_id, instance.execution_id,
                                        self._event(helpers.new_timer_fired_event(
                                            proto.eventId, fire_at), fire_at))
            elif kind == EventType.SubOrchestrationInstanceCreated:
                child = proto.subOrchestrationInstanceCreated
                if child.instanceId not in self.hub.instances:
                    self._start_child(instance, proto.eventId, pb.CreateSubOrchestrationAction(
                        instanceId=child.instanceId, name=child.name,
                        input=child.input if child.HasField("input") else None))
            else:
                call = proto.entityOperationCalled
                self.send_to_entity(call.targetInstanceId.value, EntityRequest(
                    operation=call.operation,
                    input=call.input.value if call.HasField("input") else None, is_signal=False,
                    request_id=call.requestId, parent_instance_id=instance.instance_id,
                    parent_execution_id=instance.execution_id))

    def _report_sdk_nondeterminism(self, instance: Instance, failure: pb.TaskFailureDetails) -> None:
        """The SDK's replay check failed the instance: say so as dafx does, after the commit."""
        error = sdk_divergence(instance.instance_id, failure.errorType, failure.errorMessage)
        self.nondeterminism.append(error)
        if self.settings.raise_on_nondeterminism:
            raise error

    # -- activities --

    def _run_activity(self, work: ActivityWork, work_time: Any) -> Any:
        """Run the activity through the worker; the function is observed, never replaced."""
        sdk = self._sdk(ACTIVITY, work.name)
        fn = sdk._registry.activities.get(work.name)
        request = pb.ActivityRequest(
            name=work.name, taskId=work.task_id,
            input=None if work.input is None else wrappers_pb2.StringValue(value=work.input),
            orchestrationInstance=pb.OrchestrationInstance(instanceId=work.instance_id))
        stub = CaptureStub()
        mock = self.ledger.mock_for(work.name)
        run = ActivityRun(mocked=mock is not None)
        with (self._observers.observing(sdk._registry.activities, work.name, run.record, mock),
              sleeps_charged(app_modules(fn))):
            sdk._execute_activity(request, stub, str(work.task_id))
        if fn is not None:
            self.ledger.calls.append(ActivityCall(
                name=work.name, input=run.input, attempt=work.attempt,
                instance_id=work.instance_id, task_id=work.task_id, at=self.now,
                result=run.result, error=run.error, mocked=run.mocked))
        return stub.reply

    def completion_event(self, work: ActivityWork, outcome: Any) -> Event:
        reply: pb.ActivityResponse = outcome
        if reply.HasField("failureDetails") and reply.failureDetails.errorMessage:
            event = pb.HistoryEvent(eventId=-1, taskFailed=pb.TaskFailedEvent(
                taskScheduledId=work.task_id, failureDetails=reply.failureDetails))
        else:
            event = pb.HistoryEvent(eventId=-1, taskCompleted=pb.TaskCompletedEvent(
                taskScheduledId=work.task_id,
                result=reply.result if reply.HasField("result") else None))
        return self._event(event, self.now)

    # -- entities --

    def _entity_step(self, record: EntityRecord) -> None:
        lock = record.locked_by
        taken = self._take_batch(record, lambda r: lock is None or r.parent_instance_id == lock.owner)
        if taken is None:
            return
        requests, point = taken
        entity_id = point[1]
        request = pb.EntityRequest(
            instanceId=entity_id,
            entityState=None if record.state is None else wrappers_pb2.StringValue(value=record.state),
            operationRequests=[_operation_event(entity_id, r) for r in requests])
        stub = CaptureStub()
        registered = self.index.find(ENTITY, record.name)
        entity = registered.user_function if registered is not None else None
        with metering() as model_time, sleeps_charged(app_modules(entity)):
            self._sdk(ENTITY, record.name)._execute_entity_batch(request, stub, str(record.batches))
        self.ledger.entity_operations.update(f"{record.name}.{r.operation}" for r in requests)
        reply: pb.EntityBatchResult = stub.reply
        self._complete(model_time.seconds, ("entity", *point), _BatchLabel(reply),
                       commit=lambda: self._commit_entity(record, requests, reply, point),
                       abandon=lambda: self._requeue_batch(record, requests), busy=entity_id)

    def _commit_entity(self, record: EntityRecord, requests: list[EntityRequest],
                       reply: pb.EntityBatchResult, point: tuple[str, str, str]) -> None:
        entity_id = point[1]
        if self._crash("entity", *point):
            self._requeue_batch(record, requests)
            return
        record.state = reply.entityState.value if reply.HasField("entityState") else None
        record.exists = record.state is not None
        record.last_modified_time = self.now
        record.batches += 1
        if record.queue and entity_id not in self.hub.entities_ready:
            self.hub.entities_ready.append(entity_id)
        for info, result in zip(reply.operationInfos, reply.results):
            destination = info.responseDestination
            if not destination.instanceId:
                continue
            if result.HasField("success"):
                event = pb.HistoryEvent(eventId=-1, entityOperationCompleted=(
                    pb.EntityOperationCompletedEvent(
                        requestId=info.requestId,
                        output=result.success.result if result.success.HasField("result") else None)))
            else:
                event = pb.HistoryEvent(eventId=-1, entityOperationFailed=pb.EntityOperationFailedEvent(
                    requestId=info.requestId, failureDetails=result.failure.failureDetails))
            self.hub.deliver(destination.instanceId, self._event(event, self.now),
                             destination.executionId.value or None)
        for action in reply.actions:
            self._entity_action(entity_id, action)
        self._crash("after-commit", *point)

    def _entity_action(self, entity_id: str, action: pb.OperationAction) -> None:
        if action.HasField("sendSignal"):
            signal = action.sendSignal
            self.send_to_entity(signal.instanceId, EntityRequest(
                operation=signal.name, input=signal.input.value if signal.HasField("input") else None,
                is_signal=True, request_id=self.new_execution_id(f"{entity_id}/signal")),
                signal.scheduledTime.ToDatetime(tzinfo=timezone.utc)
                if signal.HasField("scheduledTime") else None)
        elif action.HasField("startNewOrchestration"):
            start = action.startNewOrchestration
            instance_id = start.instanceId or self.new_execution_id(f"{entity_id}/start")
            existing = self.hub.instances.get(instance_id)
            if existing is None or existing.is_terminal:
                self.create_instance(instance_id, start.name,
                                     start.input.value if start.HasField("input") else None, None)


@dataclass(frozen=True)
class _BatchLabel:
    """A batch result as sweeps tell parked work apart: its state and results, in text."""

    reply: pb.EntityBatchResult

    def __repr__(self) -> str:
        return repr((self.reply.entityState.value,
                     [r.SerializeToString(deterministic=True) for r in self.reply.results]))


def _operation_event(entity_id: str, request: EntityRequest) -> pb.HistoryEvent:
    """The V2 work item's ``operationRequests`` entry for one queued operation."""
    value = None if request.input is None else wrappers_pb2.StringValue(value=request.input)
    target = wrappers_pb2.StringValue(value=entity_id)
    if request.is_signal:
        return pb.HistoryEvent(eventId=-1, entityOperationSignaled=pb.EntityOperationSignaledEvent(
            requestId=request.request_id, operation=request.operation, input=value,
            targetInstanceId=target))
    return pb.HistoryEvent(eventId=-1, entityOperationCalled=pb.EntityOperationCalledEvent(
        requestId=request.request_id, operation=request.operation, input=value,
        parentInstanceId=wrappers_pb2.StringValue(value=request.parent_instance_id or ""),
        parentExecutionId=wrappers_pb2.StringValue(value=request.parent_execution_id or ""),
        targetInstanceId=target))
