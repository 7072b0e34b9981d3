"""Verdicts that match production: host behaviours read from the extension's and DTFx's C#.

Citations are to Azure/azure-functions-durable-extension at a7c6d69 (src/WebJobs.Extensions.
DurableTask/...), Azure/durabletask at durabletask.core-v2.17.1 / durabletask.azurestorage-v1.17.5
(the versions that extension references) and JamesNK/Newtonsoft.Json 10.0.1-13.0.4.
Where the host waits forever, the instance stays Running with nothing scheduled and
``wait_for_completion`` says why.
"""

from __future__ import annotations

import json
import traceback
import uuid
from datetime import datetime

import azure.durable_functions as df
import pytest

from dafx_testing import Replayer, Simulator, WaitTimeoutError
from dafx_testing.checks.determinism import PerturbedReplay
from dafx_testing.cli import EXIT_COMPLETED, main
from dafx_testing.core.errors import PerturbedReplayError
from dafx_testing.core.history import EventType

HOST_GUID_NAMESPACE = uuid.UUID("9e952959-5e33-4daf-827f-2fa12937b875")   # GuidManager.cs:16

app = df.DFApp()


@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context):
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
        context.set_result(value)
    elif context.operation_name == "poison":
        value = object()          # the batch's state cannot be serialized: the invocation throws
    context.set_state(value)


@app.orchestration_trigger(context_name="context")
def calls_unknown(context):
    kind = context.get_input()
    if kind == "activity":
        yield context.call_activity("no_such_activity", 1)
    elif kind == "activity_with_retry":
        yield context.call_activity_with_retry("no_such_activity", df.RetryOptions(1000, 3), 1)
    elif kind == "orchestrator":
        yield context.call_sub_orchestrator("no_such_orchestrator", 1)
    elif kind == "entity":
        yield context.call_entity(df.EntityId("NoSuchEntity", "k"), "add", 1)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def signals_unknown(context):
    context.signal_entity(df.EntityId("NoSuchEntity", "k"), "add", 1)
    yield context.call_activity("echo", 1)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def http_caller(context):
    return (yield context.call_http("POST", "https://api.example.test/jobs"))


@app.orchestration_trigger(context_name="context")
def counts(context):
    value = yield context.call_entity(df.EntityId("Counter", "k1"), "add", 1)
    return (yield context.call_activity("echo", value))


@app.orchestration_trigger(context_name="context")
def status_then_none(context):
    context.set_custom_status({"stage": "waiting"})
    yield context.wait_for_external_event("go")
    context.set_custom_status("")     # falsy: the SDK leaves customStatus out of its state
    yield context.wait_for_external_event("finish")
    return "done"


@app.orchestration_trigger(context_name="context")
def poisons(context):
    return (yield context.call_entity(df.EntityId("Counter", "p"), "poison"))


@app.orchestration_trigger(context_name="context")
def waits(context):
    return (yield context.wait_for_external_event("release"))


@app.orchestration_trigger(context_name="context")
def starts_kid(context):
    return (yield context.call_sub_orchestrator("waits", None, instance_id="kid"))


@pytest.fixture
def sim():
    return Simulator(app)


def _scheduled(status):
    return [EventType(e["EventType"]).name for e in status.history
            if e["EventType"] in (EventType.TaskScheduled, EventType.TimerCreated,
                                  EventType.SubOrchestrationInstanceCreated, EventType.EventSent)]


@pytest.mark.parametrize("kind, target", [
    ("activity", "activity 'no_such_activity'"),
    ("activity_with_retry", "activity 'no_such_activity'"),
    ("orchestrator", "orchestrator 'no_such_orchestrator'"),
    ("entity", "entity 'nosuchentity'"),
])
def test_a_call_to_an_unknown_function_leaves_the_instance_running_and_says_why(sim, kind, target):
    """``ThrowIfFunctionDoesNotExist`` (DurableTaskExtension.cs:1325-1346) runs inside the async
    ``CallDurableTaskFunctionAsync`` (ContextImplementations/DurableOrchestrationContext.cs:536-563;
    ``CallEntityAsync`` :1053-1064 goes there too), so it faults the returned task before any
    sequence id is taken; ``ProcessAsyncActionsV2`` awaits it in a try/catch that swallows it
    (Listener/OutOfProcOrchestrationShim.cs:199-219), then ``HandleDurableTaskReplay`` waits forever
    (:63-73). Nothing is scheduled; the instance stays Running (azure-functions-durable-js#197,
    azure-functions-durable-python#516).
    """
    instance_id = sim.start_new("calls_unknown", kind)
    sim.run_until_idle()

    status = sim.get_status(instance_id)
    assert status.runtime_status == "Running"
    assert _scheduled(status) == []
    with pytest.raises(WaitTimeoutError) as waited:
        sim.wait_for_completion(instance_id)
    message = str(waited.value)
    assert (f"{target} does not exist: the host never schedules it and the instance stays "
            "Running (azure-functions-durable-python#516)") in message
    assert "doesn't exist, is disabled, or is not an" in message     # the host's own words


def test_a_signal_to_an_unknown_entity_fails_the_instance(sim):
    """``SignalEntity`` ``.Wait()``s the task and rethrows its exception
    (ContextImplementations/DurableOrchestrationContext.cs:479-498) out of
    ``InvokeAPIFromAction``, outside the shim's try/catch (OutOfProcOrchestrationShim.cs:204), so
    the orchestration fails.
    """
    status = sim.wait_for_completion(sim.start_new("signals_unknown"))

    assert status.runtime_status == "Failed"
    assert status.output.startswith(
        "Orchestrator function 'signals_unknown' failed: The function 'nosuchentity' doesn't "
        "exist, is disabled, or is not an entity function.")


def test_call_http_hands_a_202_to_the_orchestrator_without_polling(sim):
    """The polling loop runs only ``while (... && req.AsynchronousPatternEnabled)``
    (ContextImplementations/DurableOrchestrationContext.cs:275). SDK 1.7's ``DurableHttpRequest.to_json``
    sends no ``asynchronousPatternEnabled``; the shim binds ``httpRequest`` through the type's only
    constructor (DurableHttpRequest.cs:29-37, ``bool asynchronousPatternEnabled = true``).
    Newtonsoft.Json fills a missing creator parameter with null: ``creatorParameterValues`` is
    ``new object[n]`` and only present (or, under DefaultValueHandling.Populate, ``[DefaultValue]``)
    values are set (Serialization/JsonSerializerInternalReader.cs:2027-2089 at 13.0.4, :1989-2051
    at 13.0.3); ``CreatePropertyFromConstructorParameter`` (DefaultContractResolver.cs:746-778) never
    reads ``ParameterInfo.DefaultValue``, and a null becomes ``default(bool)``
    (Utilities/ExpressionReflectionDelegateFactory.cs:397-399). The shim's ``ToObject`` uses the
    default settings (DefaultValueHandling.Include), so the flag is false and the 202 comes back
    as is after one HTTP call (azure-functions-durable-python#380).
    """
    calls = []

    def handler(call):
        calls.append(call)
        return 202, None, {"Location": "https://api.example.test/jobs/1", "Retry-After": "10"}

    sim.http_handler = handler
    status = sim.wait_for_completion(sim.start_new("http_caller"))

    assert status.runtime_status == "Completed"
    assert status.output["statusCode"] == 202
    assert status.output["headers"]["Location"] == "https://api.example.test/jobs/1"
    assert len(calls) == 1
    assert _scheduled(status) == ["TaskScheduled"]


def _host_request_id(instance_id: str, timestamp: str, counter: int) -> str:
    """``NewGuid``: uuid5 of ``{id}_{CurrentUtcDateTime:o}_{n}`` in the URL namespace
    (ContextImplementations/DurableOrchestrationContext.cs:1221-1234; GuidManager.cs:16,25-70,
    RFC 4122 byte order after ``SwapByteArrayValues``)."""
    return str(uuid.uuid5(HOST_GUID_NAMESPACE, f"{instance_id}_{timestamp}_{counter}"))


def test_entity_request_ids_are_the_hosts(sim):
    """Request ids come from ``NewGuid`` (DurableOrchestrationContext.cs:675) in
    ``GuidManager.UrlNamespaceValue`` = ``9e952959-...`` (GuidManager.cs:16), not the DNS value
    ``9e952958-...`` (:15) that the Python SDK's ``new_uuid`` uses."""
    instance_id = sim.start_new("counts", instance_id="abc")
    status = sim.wait_for_completion(instance_id)

    sent = next(e for e in status.history if e["EventType"] == EventType.EventSent)
    assert json.loads(sent["Input"])["id"] == _host_request_id(
        "abc", "2025-01-01T00:00:00.0000000Z", 0)
    assert status.output == 1


def _recorded_by_host() -> dict:
    """A history of ``counts`` as the host records it, request id computed independently."""
    iid, eid = "prod-1", "0f3c5e7a9b1d4e2f8a6c4b2d0e9f7a5c"
    request_id = _host_request_id(iid, "2025-03-04T05:06:07.1234560Z", 0)

    def event(kind, event_id=-1, at="2025-03-04T05:06:07.123456Z", **fields):
        return {"EventType": int(kind), "EventId": event_id, "IsPlayed": True, "Timestamp": at,
                **fields}

    later, last = "2025-03-04T05:06:08.5Z", "2025-03-04T05:06:09Z"
    request = {"op": "add", "input": "1", "id": request_id, "parent": iid, "parentExecution": eid}
    history = [
        event(EventType.OrchestratorStarted),
        event(EventType.ExecutionStarted, Name="counts", Version="", Input=None, Tags=None,
              OrchestrationInstance={"InstanceId": iid, "ExecutionId": eid}, ParentInstance=None,
              Correlation=None, ScheduledStartTime=None, Generation=0),
        event(EventType.EventSent, 0, InstanceId="@counter@k1", Name="op",
              Input=json.dumps(request)),
        event(EventType.OrchestratorCompleted),
        event(EventType.OrchestratorStarted, at=later),
        event(EventType.EventRaised, at=later, Name=request_id, Input=json.dumps({"result": "1"})),
        event(EventType.TaskScheduled, 1, at=later, Name="echo", Version="", Input="[1]"),
        event(EventType.OrchestratorCompleted, at=later),
        event(EventType.OrchestratorStarted, at=last),
        event(EventType.TaskCompleted, at=last, TaskScheduledId=1, Result="1"),
        event(EventType.ExecutionCompleted, 2, at=last, OrchestrationStatus=1, Result="1",
              FailureDetails=None),
        event(EventType.OrchestratorCompleted, at=last),
    ]
    return {"instanceId": iid, "name": "counts", "runtimeStatus": "Completed", "history": history}


def test_a_host_recorded_history_that_calls_an_entity_replays(tmp_path, capsys):
    """With another namespace the host-side waiter for the response (named by the request id,
    DurableOrchestrationContext.cs:697) never completes, the shim never reaches the next action,
    and the recorded TaskScheduled reads as non-determinism. ``dafx replay`` exits 0."""
    document = _recorded_by_host()
    result = Replayer(app).replay(document)
    assert result.ok, result.explain()

    path = tmp_path / "prod-1.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert main(["replay", "--app", __file__, str(path)]) == EXIT_COMPLETED
    assert capsys.readouterr().out.startswith("OK ")


def test_an_episode_without_custom_status_clears_it(sim):
    """DTFx stores every episode's status: ``runtimeState.Status = result?.CustomStatus``
    (DurableTask.Core/TaskOrchestrationDispatcher.cs:725), and Azure Storage writes
    ``Status ?? "null"`` (DurableTask.AzureStorage/Tracking/AzureTableTrackingStore.cs:1002 at
    v1.17.5). The status comes from a context made afresh per episode
    (Listener/TaskOrchestrationShim.cs:27,39-42), set only when the SDK's state has one
    (OutOfProcOrchestrationShim.cs:78-81), and the SDK omits a falsy ``customStatus``."""
    instance_id = sim.start_new("status_then_none")
    sim.run_until_idle()
    assert sim.get_status(instance_id).custom_status == {"stage": "waiting"}

    sim.raise_event(instance_id, "go", None)
    sim.run_until_idle()

    assert sim.get_status(instance_id).custom_status is None


def test_an_entity_batch_whose_invocation_throws_is_aborted_and_never_answers(sim):
    """``ExecuteOutOfProcBatch`` rethrows a failed invocation (Listener/TaskEntityShim.cs:589-600);
    it is captured as an internal error (DurableTaskExtension.cs:1053-1056), the batch is not
    committed (TaskEntityShim.cs:233-241) and the session is aborted (DurableTaskExtension.cs:1142,
    ContextImplementations/DurableEntityContext.cs:147-152): DTFx retries the messages, nothing
    commits, and the caller gets no reply."""
    sim.signal_entity(("Counter", "p"), "add", 5)
    sim.run_until_idle()
    instance_id = sim.start_new("poisons")
    sim.run_until_idle()

    entity = sim.get_entity(("Counter", "p"))
    assert (entity.state, entity.pending_operations) == (5, 1)
    status = sim.get_status(instance_id)
    assert status.runtime_status == "Running"
    assert not [e for e in status.history if e["EventType"] == EventType.EventRaised]

    sim.signal_entity(("Counter", "p"), "add", 1)     # retried with the poisoned request first
    sim.run_until_idle()
    assert (sim.entity_state(("Counter", "p")), sim.get_entity(("Counter", "p")).pending_operations) \
        == (5, 2)

    with pytest.raises(WaitTimeoutError) as waited:
        sim.wait_for_completion(instance_id)
    assert ("entity '@counter@p' (operation(s) 'poison'): its batch of 2 operation(s) fails as a "
            "whole (TypeError: ") in str(waited.value)
    assert "the extension aborts the session and retries it" in str(waited.value)


def test_a_sub_orchestration_whose_id_is_running_is_dropped_and_the_parent_waits(sim):
    """Sub-orchestration starts are not de-duplicated up front (DurableTask.AzureStorage/
    OrchestrationSessionManager.cs:245-248 at v1.17.5); the dispatcher drops an ExecutionStarted
    for an instance that already has one ("Duplicate start event",
    DurableTask.Core/TaskOrchestrationDispatcher.cs:799-813), so no reply ever comes."""
    first = sim.start_new("starts_kid")
    sim.run_until_idle()
    second = sim.start_new("starts_kid")
    sim.run_until_idle()

    status = sim.get_status(second)
    assert status.runtime_status == "Running"
    assert _scheduled(status) == ["SubOrchestrationInstanceCreated"]
    assert not [e for e in status.history if e["EventType"] in (
        EventType.SubOrchestrationInstanceCompleted, EventType.SubOrchestrationInstanceFailed)]

    sim.raise_event("kid", "release", "ok")
    assert sim.wait_for_completion(first).output == "ok"
    with pytest.raises(WaitTimeoutError) as waited:
        sim.wait_for_completion(second)
    assert ("sub-orchestration 'waits' [#0] with instance id 'kid': that instance is already "
            "Running, DTFx drops the duplicate ExecutionStarted and this instance waits for it "
            "forever") in str(waited.value)


# -- determinism reports that point at the code ------------------------------------------

flaky = df.DFApp()


@flaky.orchestration_trigger(context_name="context")
def branches_on_the_clock(context):
    yield context.call_activity("step_a", "first")
    if datetime.now().hour < 12:      # 00:00 virtual; the perturbed replay reads 12:13
        yield context.call_activity("step_a", "morning")        # line: recorded
    else:
        yield context.call_activity("step_b", "afternoon")      # line: diverged
    return "done"


@flaky.activity_trigger(input_name="value")
def step_a(value):
    return value


@flaky.activity_trigger(input_name="value")
def step_b(value):
    return value


def _line(marker: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(number for number, text in enumerate(source, start=1)
                    if text.rstrip().endswith(marker))


def test_a_perturbed_replay_divergence_names_the_orchestrator_and_both_lines():
    """The report names the orchestrator and where its generator stood when the SDK took the
    recorded and the diverging action; and it is not chained to the simulator's internal
    event-loop probe ("no running event loop")."""
    sim = Simulator(flaky, guard="off", perturb=False,
                    episode_checks=[PerturbedReplay(hash_seed=False)])
    with pytest.raises(PerturbedReplayError) as caught:
        sim.wait_for_completion(sim.start_new("branches_on_the_clock"))

    error = caught.value
    here = "tests/test_host_fidelity.py"
    defined = _line("def branches_on_the_clock(context):") - 1     # its decorator line
    assert error.orchestrator == f"'branches_on_the_clock' (branches_on_the_clock, {here}:{defined})"
    assert error.recorded_at == f"{here}:{_line('# line: recorded')}"
    assert error.diverged_at == f"{here}:{_line('# line: diverged')}"
    assert (f"(orchestrator {error.orchestrator}): replaying the same history under a perturbed "
            "world took another path at sequence number 1") in str(error)
    assert (f"recorded (this episode): activity 'step_a' [#1], scheduled at {error.recorded_at}"
            in str(error))
    assert f"perturbed replay:        activity 'step_b' [#1], scheduled at {error.diverged_at}" \
        in str(error)
    assert error.__cause__ is None and error.__context__ is None
    assert "no running event loop" not in "".join(traceback.format_exception(error))
