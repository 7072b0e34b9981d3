"""Management API and retry limits as the host answers them (issue 16, items 7 and 8).

The target is the Durable Functions extension v2.13.7 (Azure/azure-functions-durable-extension
tag v2.13.7; the files cited are unchanged at dev a7c6d69) on the Azure Storage backend
(DurableTask.AzureStorage 1.17.5, DurableTask.Core 2.17.1). Every surface is checked: the
HTTP management API (``sim.http``), the SDK's own client (``sim.client``) and the Simulator.
"""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df
import pytest

from dafx_testing import Simulator
from dafx_testing.core.async_bridge import run_sync
from dafx_testing.core.errors import (
    ArgumentError,
    InstanceNotFoundError,
    InstanceStateError,
    WaitTimeoutError,
)
from dafx_testing.core.history import EventType

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def greet(context):
    return (yield context.call_activity("hello", context.get_input()))


@app.activity_trigger(input_name="name")
def hello(name):
    return f"Hello {name}"


@app.orchestration_trigger(context_name="context")
def approval(context):
    return (yield context.wait_for_external_event("Decision"))


@app.orchestration_trigger(context_name="context")
def flaky(context):
    return (yield context.call_activity("fragile", context.get_input()))


@app.activity_trigger(input_name="value")
def fragile(value):
    raise RuntimeError(f"cannot handle {value}")


@app.orchestration_trigger(context_name="context")
def slow_retries(context):
    days = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=days * 86_400_000,
                              max_number_of_attempts=2)
    return (yield context.call_activity_with_retry("fragile", options, "x"))


@app.orchestration_trigger(context_name="context")
def parent(context):
    return (yield context.call_sub_orchestrator("approval", None, "child-1"))


@pytest.fixture
def sim():
    return Simulator(app)


def started(sim, name, value=None, instance_id=None):
    instance_id = sim.start_new(name, value, instance_id)
    sim.run_until_idle()
    return instance_id


AT = "instanceId (Parameter 'Orchestration instance ids must not start with @.')"
CHARS = ("instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, "
         "or control characters.')")
LENGTH = "Instance ID lengths must not exceed 256 characters."


# --- item 7: instance ids StartNewAsync refuses ------------------------------------------


@pytest.mark.parametrize("instance_id, message", [
    ("@counter@k", AT),
    ("a/b", CHARS), ("a\\b", CHARS), ("a?b", CHARS), ("a#b", CHARS),
    ("tab\there", CHARS), ("del\x7f", CHARS), ("c1\x85", CHARS),
    ("x" * 257, LENGTH), ("\U0001F600" * 129, LENGTH),      # 258 UTF-16 code units
])
def test_simulator_start_new_refuses_the_ids_the_extension_refuses(sim, instance_id, message):
    """StartNewAsync (extension v2.13.7 DurableClient.cs:185-201) throws ArgumentException.

    The first two checks swap the constructor's arguments (text as paramName), so
    .NET Core's ``ArgumentException.Message`` reads ``instanceId (Parameter '...')``
    (dotnet/runtime ArgumentException.cs Message, Strings.resx Arg_ParamName_Name);
    ``string.Length`` counts UTF-16 code units; ``char.IsControl`` is category Cc.
    """
    with pytest.raises(ArgumentError) as refused:           # a DafxError and a ValueError
        sim.start_new("greet", "Ada", instance_id)
    assert f"ArgumentException '{message}'" in str(refused.value)
    assert not sim.hub.instances


@pytest.mark.parametrize("instance_id", ["x" * 256, "\U0001F600" * 128, "ok-é-中", "a b"])
def test_ids_at_the_limits_are_accepted(sim, instance_id):
    """256 UTF-16 code units is allowed (``Length > MaxInstanceIdLength``, DurableClient.cs:198)."""
    assert sim.wait_for_completion(sim.start_new("greet", "Ada", instance_id)).output == "Hello Ada"


@pytest.mark.parametrize("instance_id, message", [("@x", AT), ("x" * 300, LENGTH)])
def test_http_start_with_an_invalid_id_is_400_and_the_sdk_raises_its_text(sim, instance_id, message):
    """HandleStartOrchestratorRequestAsync lets StartNewAsync's ArgumentException reach the
    generic handler: 400 "One or more of the arguments submitted is incorrect" with the
    exception (HttpApiHandler.cs:442-445, HttpRequestMessageExtensions.cs:46-62); the SDK's
    start_new raises ``ExceptionMessage`` for a 400 (DurableOrchestrationClient.start_new).
    """
    answer = sim.http.post(f"/runtime/webhooks/durabletask/orchestrators/greet/{instance_id}")
    assert answer.status_code == 400
    assert answer.json() == {"Message": "One or more of the arguments submitted is incorrect",
                             "ExceptionMessage": message,
                             "ExceptionType": "System.ArgumentException", "StackTrace": None}
    with pytest.raises(Exception) as raised:
        run_sync(sim.client.start_new("greet", instance_id, "Ada"))
    assert str(raised.value) == message
    assert not sim.hub.instances


def test_the_sdk_does_not_escape_ids_so_slash_and_question_mark_never_reach_the_check(sim):
    """The SDK pastes the id into the URL unescaped (DurableOrchestrationClient._get_start_new_url).

    'a/b' adds a path segment that no route of HttpApiHandler.cs:136-179 matches: 404 with
    no body, which the SDK raises as ``Exception(None)``. With 'a?b' the host sees the id
    'a' and a query string, and starts instance 'a'.
    """
    with pytest.raises(Exception) as slashed:
        run_sync(sim.client.start_new("greet", "a/b", "Ada"))
    assert slashed.value.args == (None,)
    assert run_sync(sim.client.start_new("greet", "a?b", "Ada")) == "a"
    assert list(sim.hub.instances) == ["a"]


# --- item 7: starting or restarting a running id ----------------------------------------


ALREADY_RUNNING = {
    "Message": "Something went wrong while processing your request",
    "ExceptionMessage": "An Orchestration instance with the status Running already exists.",
    "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
    "StackTrace": None,
}


def test_start_of_a_running_id_is_500_not_409(sim):
    """Azure Storage throws OrchestrationAlreadyExistsException for a dedupe status
    (AzureStorageOrchestrationService.cs:1689-1694 in DurableTask.AzureStorage 1.17.5;
    ThrowExceptionOnInvalidDedupeStatus = true, AzureStorageDurabilityProviderFactory.cs:210;
    dedupe statuses Running/ContinuedAsNew/Pending/Suspended, OverridableStates.cs:35-41).
    It derives from InvalidOperationException (DurableTask.Core OrchestrationAlreadyExistsException.cs:23),
    which HandleStartOrchestratorRequestAsync does not catch (HttpApiHandler.cs:857-899), so
    the generic handler answers 500 (HttpApiHandler.cs:446-449).
    """
    waiting = started(sim, "approval", None, "order-1")
    answer = sim.http.post(f"/runtime/webhooks/durabletask/orchestrators/approval/{waiting}")
    assert answer.status_code == 500
    assert answer.json() == ALREADY_RUNNING
    with pytest.raises(Exception) as duplicate:       # the SDK raises the body for non-400 codes
        run_sync(sim.client.start_new("approval", waiting))
    assert duplicate.value.args == (ALREADY_RUNNING,)
    with pytest.raises(InstanceStateError, match="An Orchestration instance with the status "
                                                 "Running already exists."):
        sim.start_new("approval", None, waiting)
    pending = sim.start_new("approval", None, "order-2")          # not run yet: Pending
    with pytest.raises(InstanceStateError, match="with the status Pending already exists"):
        sim.start_new("approval", None, pending)


def test_restart_of_a_running_instance_under_its_own_id_is_500(sim):
    """RestartAsync calls StartNewAsync with the same id (DurableClient.cs:1142-1153); the
    restart handler catches only ArgumentException and JsonReaderException
    (HttpApiHandler.cs:939-946), so OrchestrationAlreadyExistsException becomes 500.
    """
    waiting = started(sim, "approval")
    answer = sim.http.post(f"/runtime/webhooks/durabletask/instances/{waiting}/restart",
                           params={"restartWithNewInstanceId": "false"})
    assert answer.status_code == 500
    assert answer.json() == ALREADY_RUNNING
    with pytest.raises(Exception, match="unexpected status code 500"):
        run_sync(sim.client.restart(waiting, restart_with_new_instance_id=False))
    with pytest.raises(InstanceStateError, match="with the status Running already exists"):
        sim.restart(waiting, new_instance_id=False)
    fresh = sim.http.post(f"/runtime/webhooks/durabletask/instances/{waiting}/restart")
    assert fresh.status_code == 202 and fresh.json()["id"] != waiting   # a new id is fine


# --- item 7: purge ----------------------------------------------------------------------


def test_purge_by_id_deletes_a_running_instance(sim):
    """HandleDeleteHistoryByIdRequestAsync checks existence only (HttpApiHandler.cs:554-567);
    the Azure Storage tracking store deletes the instance row and history with no status
    check (AzureTableTrackingStore.cs:801-834): 200 ``{"instancesDeleted": 1}``. What was
    on its way to the instance is dropped afterwards, the host finding no instance.
    """
    waiting = started(sim, "approval")
    answer = sim.http.delete(f"/runtime/webhooks/durabletask/instances/{waiting}")
    assert (answer.status_code, answer.json()) == (200, {"instancesDeleted": 1})
    assert sim.http.get(f"/runtime/webhooks/durabletask/instances/{waiting}").status_code == 404

    again = started(sim, "approval")
    assert run_sync(sim.client.purge_instance_history(again)).instances_deleted == 1
    third = started(sim, "approval")
    sim.purge(third)
    assert not sim.hub.instances
    with pytest.raises(InstanceNotFoundError):
        sim.raise_event(third, "Decision", True)
    sim.run_until_idle()


def test_a_parent_whose_running_child_was_purged_waits_forever_and_the_wait_says_so(sim):
    """Messages for the purged child's execution are discarded: no ExecutionStarted is left
    (AzureStorageOrchestrationService.cs:782-800,1038-1040, DurableTask.AzureStorage 1.17.5),
    so its result never reaches the parent.
    """
    waiting = started(sim, "parent")
    sim.purge("child-1")
    with pytest.raises(InstanceNotFoundError):
        sim.raise_event("child-1", "Decision", True)
    with pytest.raises(WaitTimeoutError, match="'child-1' was purged while Running: its result "
                                               "never comes"):
        sim.wait_for_completion(waiting, timeout=timedelta(days=1))
    assert sim.get_status(waiting).runtime_status == "Running"


def test_purge_by_filter_without_a_terminal_status_deletes_running_instances(sim):
    """Azure Storage keeps only the terminal statuses of the filter (Completed, Terminated,
    Canceled, Failed: AzureTableTrackingStore.cs:837-849) and adds no status condition when
    none is left (OrchestrationInstanceStatusQueryCondition.cs:133): no status, or only
    Running, purges every instance created in the range. An absent runtimeStatus is an
    empty list, not null (HttpApiHandler.cs:586, 719-739).
    """
    done = started(sim, "greet", "Ada")
    waiting = started(sim, "approval")
    since = (sim.now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    base = f"/runtime/webhooks/durabletask/instances/?createdTimeFrom={since}"

    only_running = sim.http.delete(base + "&runtimeStatus=Running")
    assert (only_running.status_code, only_running.json()) == (200, {"instancesDeleted": 2})
    assert not sim.hub.instances

    done = started(sim, "greet", "Ada")
    waiting = started(sim, "approval")
    completed = sim.http.delete(base + "&runtimeStatus=Running,Completed")
    assert completed.json() == {"instancesDeleted": 1}                   # Running is dropped
    assert list(sim.hub.instances) == [waiting]
    assert sim.http.delete(base).json() == {"instancesDeleted": 1}       # no status: all
    assert sim.http.delete(base).status_code == 404                      # nothing left
    assert done not in sim.hub.instances


# --- item 7: rewind ---------------------------------------------------------------------


def test_rewind_codes_of_extension_2_13(sim):
    """HandleRewindInstanceRequestAsync (HttpApiHandler.cs:949-976): 404 unknown, 410 Gone
    for Completed/Terminated/Canceled (empty bodies), 202 after RewindAsync; RewindAsync
    throws InvalidOperationException for any other non-Failed status (DurableClient.cs:446-452),
    which the generic handler answers 500 (HttpApiHandler.cs:446-449). The SDK raises its own
    texts for 404 and 410 and "unexpected payload" for the 500 (DurableOrchestrationClient.rewind).
    """
    base = "/runtime/webhooks/durabletask/instances"
    done, waiting, failed = (started(sim, "greet", "Ada"), started(sim, "approval"),
                             started(sim, "flaky", 1))

    assert sim.http.post(f"{base}/missing/rewind").status_code == 404
    gone = sim.http.post(f"{base}/{done}/rewind")
    assert (gone.status_code, gone.get_body()) == (410, b"")
    running = sim.http.post(f"{base}/{waiting}/rewind")
    assert running.status_code == 500
    assert running.json() == {
        "Message": "Something went wrong while processing your request",
        "ExceptionMessage": "The rewind operation is only supported on failed orchestration "
                            "instances.",
        "ExceptionType": "System.InvalidOperationException", "StackTrace": None}

    with pytest.raises(Exception, match="^No instance with ID missing found.$"):
        run_sync(sim.client.rewind("missing", "why"))
    with pytest.raises(Exception, match="^The rewind operation is only supported on failed"):
        run_sync(sim.client.rewind(done, "why"))
    with pytest.raises(Exception, match="^Received unexpected payload from the durable-extension"):
        run_sync(sim.client.rewind(waiting, "why"))
    with pytest.raises(InstanceStateError, match="only supported on failed orchestration"):
        sim.rewind(waiting)

    sim.mock_activity("fragile", lambda value: value * 42)
    assert sim.http.post(f"{base}/{failed}/rewind").status_code == 202
    assert sim.wait_for_completion(failed).output == 42


# --- item 8: the 6-day limit on retry intervals -----------------------------------------


def test_a_retry_interval_over_six_days_is_never_scheduled_and_the_wait_says_why(sim):
    """The extension validates retry intervals against the provider's 6-day maximum inside
    the async CallDurableTaskFunctionAsync (DurableOrchestrationContext.cs:548-558;
    AzureStorageDurabilityProvider.cs:68,178-187), so the ArgumentException faults the task
    and ProcessAsyncActionsV2 swallows it (OutOfProcOrchestrationShim.cs:199-219): no
    attempt is scheduled and the instance stays Running. Exactly 6 days is allowed (``>``).
    """
    stuck = sim.start_new("slow_retries", 7)
    sim.run_until_idle()
    status = sim.get_status(stuck)
    assert status.runtime_status == "Running"
    assert [e for e in status.history if e["EventType"] == EventType.TaskScheduled] == []
    with pytest.raises(WaitTimeoutError) as waited:
        sim.wait_for_completion(stuck, timeout=timedelta(days=30))
    assert ("The Azure Storage provider supports a maximum of 6 days for time-based delays "
            "(Parameter 'FirstRetryInterval')") in str(waited.value)

    fine = sim.wait_for_completion(sim.start_new("slow_retries", 6))
    assert fine.runtime_status == "Failed"                  # two attempts, six days apart
    assert fine.last_updated_time - fine.created_time >= timedelta(days=6)
