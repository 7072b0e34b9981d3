"""The SDK's own DurableOrchestrationClient against the simulated management API.

Every client method runs the SDK's real URL building and response parsing; the
assertions are what the SDK makes of the host's answers, quirks included. The
status-code table at the end checks the host's codes route by route.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
import pytest
import yarl
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from dafx_testing import DafxError, Simulator
from dafx_testing.core.async_bridge import run_sync
from dafx_testing.core.history import EventType
from dafx_testing.functions.client import InMemoryClient, ManagementApi

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def greet(context):
    return (yield context.call_activity("hello", context.get_input()))


@app.activity_trigger(input_name="name")
def hello(name):
    return f"Hello {name}"


@app.orchestration_trigger(context_name="context")
def approval(context):
    context.set_custom_status({"stage": "waiting"})
    decision = yield context.wait_for_external_event("Decision")
    return {"decision": decision, "type": type(decision).__name__}


@app.orchestration_trigger(context_name="context")
def sleeper(context):
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    return "woke"


@app.orchestration_trigger(context_name="context")
def flaky(context):
    return (yield context.call_activity("fragile", context.get_input()))


@app.activity_trigger(input_name="value")
def fragile(value):
    raise RuntimeError(f"cannot handle {value}")


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context):
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    elif context.operation_name == "set":
        value = context.get_input()
    context.set_state(value)


SDK_MODULE = importlib.import_module("azure.durable_functions.models.DurableOrchestrationClient")


@pytest.fixture
def sim():
    return Simulator(app)


@pytest.fixture
def client(sim):
    return InMemoryClient(sim)


def run(awaitable):
    return run_sync(awaitable)


def started(sim, name, value=None, instance_id=None):
    instance_id = sim.start_new(name, value, instance_id)
    sim.run_until_idle()
    return instance_id


# --- start_new ---------------------------------------------------------------------------


def test_start_new_schedules_an_instance_that_runs_on_the_next_read(client, sim):
    instance_id = run(client.start_new("approval", None, {"doc": 1}))

    assert sim.get_status(instance_id).runtime_status == "Pending"   # accepted, not yet run
    status = run(client.get_status(instance_id))
    assert status.runtime_status == OrchestrationRuntimeStatus.Running
    assert status.name == "approval"
    assert status.instance_id == instance_id
    assert status.custom_status == {"stage": "waiting"}
    assert status.created_time == sim.now
    # The SDK sends df_dumps(input) with json=, so the host stores a JSON string:
    # the status input is that string, while the orchestrator gets the dict.
    assert status.input_ == '{"doc": 1}'
    assert sim.get_status(instance_id).input == {"doc": 1}


def test_start_new_with_an_explicit_id_and_a_duplicate_while_running(client, sim):
    assert run(client.start_new("approval", "order-1")) == "order-1"

    with pytest.raises(Exception) as duplicate:
        run(client.start_new("approval", "order-1"))
    # 500 (Azure Storage's OrchestrationAlreadyExistsException reaches the generic
    # handler): the SDK surfaces the extension's error body as it is.
    assert duplicate.value.args[0] == {
        "Message": "Something went wrong while processing your request",
        "ExceptionMessage": "An Orchestration instance with the status Running already exists.",
        "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
        "StackTrace": None}

    run(client.terminate("order-1", "replace it"))
    assert run(client.start_new("greet", "order-1", "Ada")) == "order-1"   # finished: replaced
    assert sim.wait_for_completion("order-1").output == "Hello Ada"


def test_start_new_of_an_unknown_orchestrator_raises_the_hosts_message(client):
    with pytest.raises(Exception) as unknown:
        run(client.start_new("nope"))
    assert str(unknown.value) == (
        "The function 'nope' doesn't exist, is disabled, or is not an orchestrator function. "
        "Additional info: The following are the known orchestrator functions: "
        "'greet', 'approval', 'sleeper', 'flaky'.")


# --- get_status, get_status_all, get_status_by ----------------------------------------


def test_get_status_of_an_unknown_instance_is_a_falsy_status(client):
    status = run(client.get_status("missing"))
    # The host's 404 has no body; the SDK turns "" into an empty status.
    assert not status
    assert status.runtime_status is None
    assert status.message == ""


def test_get_status_with_history_puts_it_in_history_events_not_history(client, sim):
    instance_id = started(sim, "greet", "Ada")

    status = run(client.get_status(instance_id, show_history=True))
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed
    assert status.output == "Hello Ada"
    assert status.history is None          # SDK quirk: the host's key is historyEvents
    events = status.historyEvents
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
    assert events[0]["FunctionName"] == "greet"
    assert events[1]["FunctionName"] == "hello"
    assert events[1]["ScheduledTime"] == events[1]["Timestamp"]
    assert "Result" not in events[1]
    assert events[2]["OrchestrationStatus"] == "Completed"

    with_output = run(client.get_status(instance_id, show_history=True, show_history_output=True))
    assert with_output.historyEvents[1]["Result"] == "Hello Ada"
    assert with_output.historyEvents[2]["Result"] == "Hello Ada"


def test_get_status_cannot_hide_the_input(client, api, sim):
    instance_id = started(sim, "greet", "Ada")
    # The SDK only sends showInput when it is true, and the host defaults it to true.
    assert run(client.get_status(instance_id, show_input=False)).input_ == '"Ada"'
    hidden = api.handle("GET", f"{api.rpc_base_url}instances/{instance_id}?showInput=false")
    assert hidden.parsed()["input"] is None


def test_get_status_all_and_get_status_by_filter_as_the_host_does(client, sim):
    done = started(sim, "greet", "Ada", "batch-1")
    waiting = started(sim, "approval", None, "batch-2")
    sim.advance(timedelta(hours=1))
    later = started(sim, "approval", None, "other-1")

    assert [s.instance_id for s in run(client.get_status_all())] == [done, waiting, later]

    by_status = run(client.get_status_by(runtime_status=[OrchestrationRuntimeStatus.Running]))
    assert [s.instance_id for s in by_status] == [waiting, later]
    by_prefix = run(client.get_status_by(instance_id_prefix="batch-"))
    assert [s.instance_id for s in by_prefix] == [done, waiting]
    recent = run(client.get_status_by(created_time_from=sim.now - timedelta(minutes=1)))
    assert [s.instance_id for s in recent] == [later]
    early = run(client.get_status_by(created_time_to=sim.now - timedelta(minutes=1)))
    assert [s.instance_id for s in early] == [done, waiting]


# --- raise_event, terminate, suspend, resume ------------------------------------------


def test_raise_event_data_reaches_the_orchestrator_as_a_string(client, sim):
    instance_id = started(sim, "approval")

    run(client.raise_event(instance_id, "Decision", {"approved": False}))

    # Azure/azure-functions-durable-python#295: the SDK json.dumps the data and
    # sends it with json=, so the orchestrator receives the JSON text.
    assert sim.wait_for_completion(instance_id).output == {
        "decision": '{"approved": false}', "type": "str"}


def test_raise_event_to_a_finished_or_unknown_instance_raises(client, sim):
    done = started(sim, "greet", "Ada")
    with pytest.raises(Exception, match=f"Instance with ID {done} is gone"):
        run(client.raise_event(done, "Decision", True))
    with pytest.raises(Exception, match="No instance with ID missing found."):
        run(client.raise_event("missing", "Decision", True))


def test_terminate_a_running_instance_and_the_410_and_404_cases(client, sim):
    instance_id = started(sim, "approval")

    run(client.terminate(instance_id, "no longer needed"))
    status = run(client.get_status(instance_id))
    assert status.runtime_status == OrchestrationRuntimeStatus.Terminated
    assert status.output == "no longer needed"

    run(client.terminate(instance_id, "again"))          # 410 Gone: success for the SDK
    with pytest.raises(Exception, match="No instance with ID 'missing' found."):
        run(client.terminate("missing", "why"))


def test_suspend_holds_events_until_resume(client, sim):
    instance_id = started(sim, "approval")

    run(client.suspend(instance_id, "hold on"))
    run(client.raise_event(instance_id, "Decision", "yes"))
    assert run(client.get_status(instance_id)).runtime_status == OrchestrationRuntimeStatus.Suspended

    run(client.resume(instance_id, "go"))
    assert run(client.get_status(instance_id)).runtime_status == OrchestrationRuntimeStatus.Completed

    run(client.suspend(instance_id, "late"))             # 410 Gone: success for the SDK
    run(client.resume(instance_id, "late"))
    for method in (client.suspend, client.resume):
        with pytest.raises(Exception, match="No instance with ID 'missing' found."):
            run(method("missing", "why"))


# --- rewind, restart, purge ------------------------------------------------------------


def test_rewind_runs_the_failed_activity_again(client, sim):
    instance_id = started(sim, "flaky", 7)
    assert run(client.get_status(instance_id)).runtime_status == OrchestrationRuntimeStatus.Failed

    sim.mock_activity("fragile", lambda value: value * 6)
    run(client.rewind(instance_id, "fixed the bug"))

    status = run(client.get_status(instance_id))
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed
    assert status.output == 42


def test_rewind_of_a_healthy_or_unknown_instance_raises(client, sim):
    done = started(sim, "greet", "Ada")
    with pytest.raises(Exception) as healthy:
        run(client.rewind(done, "why"))
    # 410 Gone: the SDK raises its own text for it.
    assert str(healthy.value) == ("The rewind operation is only supported on failed "
                                  "orchestration instances.")
    with pytest.raises(Exception, match="No instance with ID missing found."):
        run(client.rewind("missing", "why"))


def test_restart_returns_the_check_status_payload_not_an_id(client, sim):
    done = started(sim, "greet", "Ada")

    restarted = run(client.restart(done))
    # SDK quirk: restart returns response[1], the host's 202 payload, when it has one.
    assert isinstance(restarted, dict)
    new_id = restarted["id"]
    assert new_id != done
    # The host builds the links from the request's origin: here, the RPC address.
    rpc_origin = str(yarl.URL(client.host.rpc_base_url).origin())
    assert restarted["statusQueryGetUri"].startswith(
        f"{rpc_origin}/runtime/webhooks/durabletask/instances/{new_id}?")
    assert sim.wait_for_completion(new_id).output == "Hello Ada"

    assert run(client.restart(done, restart_with_new_instance_id=False))["id"] == done
    assert sim.wait_for_completion(done).output == "Hello Ada"


def test_restart_conflicts_and_unknown_instances(client, sim):
    waiting = started(sim, "approval")
    with pytest.raises(Exception, match="unexpected status code 500"):
        run(client.restart(waiting, restart_with_new_instance_id=False))
    with pytest.raises(Exception, match="unexpected status code 400"):
        run(client.restart("missing"))


def test_purge_instance_history(client, sim):
    done = started(sim, "greet", "Ada")
    waiting = started(sim, "approval")

    assert run(client.purge_instance_history(done)).instances_deleted == 1
    assert not run(client.get_status(done))
    assert run(client.purge_instance_history("missing")).instances_deleted == 0   # 404
    # Azure Storage purges a running instance too (test_management_fidelity.py).
    assert run(client.purge_instance_history(waiting)).instances_deleted == 1


def test_purge_instance_history_by_deletes_the_instances_in_range(client, sim):
    first = started(sim, "greet", "Ada")
    waiting = started(sim, "approval")
    start = sim.now - timedelta(minutes=1)

    with pytest.raises(ValueError, match="created_time_from is required"):
        run(client.purge_instance_history_by())
    completed = [OrchestrationRuntimeStatus.Completed]
    result = run(client.purge_instance_history_by(created_time_from=start, runtime_status=completed))
    assert result.instances_deleted == 1
    assert [s.instance_id for s in sim.list_instances()] == [waiting]
    assert first not in sim.hub.instances
    # No status filter: the running one goes too (test_management_fidelity.py).
    assert run(client.purge_instance_history_by(created_time_from=start)).instances_deleted == 1
    assert run(client.purge_instance_history_by(created_time_from=start)).instances_deleted == 0


# --- entities ---------------------------------------------------------------------------


def test_signal_entity_then_read_its_state(client, sim):
    entity = df.EntityId("Counter", "k1")
    run(client.signal_entity(entity, "add", 5))
    run(client.signal_entity(entity, "add", 3))

    response = run(client.read_entity_state(entity))
    assert response.entity_exists
    assert response.entity_state == 8
    assert sim.entity_state(("Counter", "k1")) == 8

    missing = run(client.read_entity_state(df.EntityId("Counter", "never")))
    assert not missing.entity_exists
    assert missing.entity_state is None


def test_signal_entity_drops_falsy_inputs(client, sim):
    entity = df.EntityId("Counter", "k2")
    run(client.signal_entity(entity, "set", 7))
    run(client.signal_entity(entity, "set", 0))
    # The SDK sends no body for a falsy input (`if operation_input`), so the
    # operation gets a null input, on which the entity's get_input() fails:
    # the operation errors and the state stays 7.
    assert run(client.read_entity_state(entity)).entity_state == 7


def test_unknown_entity_functions_are_a_400(client):
    with pytest.raises(Exception, match="unexpected status code 400"):
        run(client.signal_entity(df.EntityId("Nope", "k"), "add", 1))
    with pytest.raises(Exception, match="unexpected status code 400"):
        run(client.read_entity_state(df.EntityId("Nope", "k")))


# --- wait_for_completion_or_create_check_status_response --------------------------------


def request_to(url="http://localhost:7071/api/start"):
    return func.HttpRequest("POST", url, body=b"")


def test_wait_returns_the_output_of_a_quick_instance(client, sim):
    instance_id = run(client.start_new("greet", None, "Ada"))

    response = run(client.wait_for_completion_or_create_check_status_response(
        request_to(), instance_id))
    assert response.status_code == 200
    # SDK quirk: a str output is sent as is, not as JSON, under application/json.
    assert response.get_body() == b"Hello Ada"
    assert response.headers["Content-Type"] == "application/json"


def test_wait_polls_in_virtual_time_and_times_out_with_a_check_status_response(client, sim):
    instance_id = run(client.start_new("sleeper"))
    began, wall = sim.now, time.monotonic()

    response = run(client.wait_for_completion_or_create_check_status_response(
        request_to(), instance_id))

    assert response.status_code == 202
    assert json.loads(response.get_body())["id"] == instance_id
    assert response.headers["Location"].startswith(
        "http://localhost:7071/runtime/webhooks/durabletask/instances/")
    assert sim.now - began == timedelta(seconds=10)       # the SDK's default timeout, virtual
    assert time.monotonic() - wall < 5


def test_wait_long_enough_sees_the_timer_fire(client, sim):
    instance_id = run(client.start_new("sleeper"))
    began = sim.now

    response = run(client.wait_for_completion_or_create_check_status_response(
        request_to(), instance_id, timeout_in_milliseconds=2 * 3_600_000,
        retry_interval_in_milliseconds=60_000))

    assert response.status_code == 200
    assert response.get_body() == b"woke"
    assert sim.now - began == timedelta(hours=1)          # stopped at the first poll after


def test_wait_reports_a_failure_as_500(client, sim):
    instance_id = run(client.start_new("flaky", None, 1))
    response = run(client.wait_for_completion_or_create_check_status_response(
        request_to(), instance_id))
    assert response.status_code == 500
    assert json.loads(response.get_body())["runtimeStatus"] == "Failed"


def test_polling_sleeps_outside_a_wait_are_real(sim):
    InMemoryClient(sim)
    before = sim.now
    asyncio.run(SDK_MODULE.sleep(0.001))
    assert sim.now == before


# --- management URLs and the binding -----------------------------------------------------


def test_check_status_urls_point_back_at_the_simulated_host(client):
    response = client.create_check_status_response(
        request_to("http://localhost:7071/api/orchestrators/greet"), "abc")
    links = json.loads(response.get_body())
    assert response.status_code == 202
    assert links["statusQueryGetUri"] == (
        "http://localhost:7071/runtime/webhooks/durabletask/instances/abc"
        "?taskHub=TestHubName&connection=Storage")
    assert links["sendEventPostUri"] == (
        "http://localhost:7071/runtime/webhooks/durabletask/instances/abc/raiseEvent/{eventName}"
        "?taskHub=TestHubName&connection=Storage")
    assert set(links) == {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                          "rewindPostUri", "purgeHistoryDeleteUri", "restartPostUri",
                          "suspendPostUri", "resumePostUri"}
    assert client.create_http_management_payload("abc") == links


def test_a_client_built_like_the_middleware_builds_it_reaches_the_simulator(sim):
    api = ManagementApi(sim)
    plain = df.DurableOrchestrationClient(api.binding_json())   # module-global transport
    instance_id = run(plain.start_new("greet", None, "Ada"))
    assert run(plain.get_status(instance_id)).output == "Hello Ada"


def test_other_urls_still_reach_the_original_transport(monkeypatch, sim):
    from dafx_testing.functions import client as client_module

    ManagementApi(sim)
    seen = []

    async def original(url, function_invocation_id=None):
        seen.append(url)
        return [200, {"real": True}]

    monkeypatch.setitem(client_module._ORIGINAL, "get_async_request", original)
    assert run(SDK_MODULE.get_async_request("http://127.0.0.1:17071/durabletask/instances/x")) \
        == [200, {"real": True}]
    assert seen == ["http://127.0.0.1:17071/durabletask/instances/x"]


# --- the host's routes and status codes, request by request ------------------------------


@pytest.fixture
def api(sim):
    return ManagementApi(sim)


@pytest.fixture
def instances(sim):
    return {"done": started(sim, "greet", "Ada", "done"),
            "waiting": started(sim, "approval", None, "waiting"),
            "failed": started(sim, "flaky", 1, "failed")}


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "orchestrators/greet", b'"\\"Ada\\""', 202),
    ("POST", "orchestrators/greet/new-id", b"", 202),
    ("POST", "orchestrators/waiting", b"", 400),                 # unknown orchestrator
    ("POST", "orchestrators/approval/waiting", b"", 500),        # already running
    ("POST", "orchestrators/approval/@waiting", b"", 400),       # an id StartNewAsync refuses
    ("POST", "orchestrators/greet", b"{not json", 400),
    ("GET", "orchestrators/greet", b"", 404),
    ("GET", "instances/waiting", b"", 202),
    ("GET", "instances/done", b"", 200),
    ("GET", "instances/failed", b"", 200),
    ("GET", "instances/failed?returnInternalServerErrorOnFailure=true", b"", 500),
    ("GET", "instances/missing", b"", 404),
    ("GET", "instances/", b"", 200),
    ("POST", "instances/waiting", b"", 404),
    ("POST", "instances/waiting/raiseEvent/Decision", b"true", 202),
    ("POST", "instances/done/raiseEvent/Decision", b"true", 410),
    ("POST", "instances/missing/raiseEvent/Decision", b"true", 404),
    ("POST", "instances/waiting/raiseEvent/Decision", b"{not json", 400),
    ("GET", "instances/waiting/raiseEvent/Decision", b"", 404),
    ("POST", "instances/waiting/terminate?reason=x", b"", 202),
    ("POST", "instances/done/terminate", b"", 410),
    ("POST", "instances/missing/terminate", b"", 404),
    ("POST", "instances/waiting/suspend", b"", 202),
    ("POST", "instances/done/resume", b"", 410),
    ("POST", "instances/failed/rewind?reason=x", b"", 202),
    ("POST", "instances/done/rewind", b"", 410),
    ("POST", "instances/waiting/rewind", b"", 500),
    ("POST", "instances/missing/rewind", b"", 404),
    ("POST", "instances/done/restart?restartWithNewInstanceId=false", b"", 202),
    ("POST", "instances/waiting/restart?restartWithNewInstanceId=false", b"", 500),
    ("POST", "instances/missing/restart", b"", 400),
    ("POST", "instances/done/unknown", b"", 404),
    ("DELETE", "instances/done", b"", 200),
    ("DELETE", "instances/waiting", b"", 200),
    ("DELETE", "instances/missing", b"", 404),
    ("DELETE", "instances/", b"", 400),                          # createdTimeFrom is required
    ("DELETE", "instances/?createdTimeFrom=2024-01-01T00:00:00.000000Z", b"", 200),
    ("DELETE", "instances/?createdTimeFrom=2030-01-01T00:00:00.000000Z", b"", 404),
    ("POST", "entities/Counter/k?op=add", b"2", 202),
    ("DELETE", "entities/Counter/k", b"", 202),
    ("POST", "entities/Nope/k?op=add", b"2", 400),
    ("GET", "entities/Counter/never", b"", 404),
    ("PUT", "entities/Counter/k", b"", 404),
    ("GET", "nothing/here", b"", 404),
])
def test_the_hosts_status_codes(api, instances, method, path, body, status):
    answer = api.handle(method, api.rpc_base_url + path, body, JSON)
    assert answer.status == status, answer


def test_the_webhook_urls_are_served_too(api, instances):
    answer = api.handle("GET", "http://localhost:7071/runtime/webhooks/durabletask/instances/"
                               "waiting?taskHub=TestHubName&connection=Storage")
    assert answer.status == 202
    assert answer.headers["Location"].endswith("/instances/waiting?taskHub=TestHubName"
                                               "&connection=Storage")
    assert answer.headers["Retry-After"] == "5"
    assert answer.parsed()["customStatus"] == {"stage": "waiting"}


def test_raise_event_needs_json_content(api, instances):
    answer = api.handle("POST", api.rpc_base_url + "instances/waiting/raiseEvent/Decision",
                        b"true", {"Content-Type": "text/plain"})
    assert answer.status == 400
    assert answer.parsed() == {"Message": "Only application/json request content is supported"}


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
def test_paths_are_decoded_as_the_host_decodes_them(api, sim, instances):
    # The SDK puts event names into the URL unquoted; yarl encodes, the host decodes.
    answer = api.handle("POST", api.rpc_base_url + "instances/waiting/raiseEvent/my decision",
                        b'"late"', JSON)
    assert answer.status == 202
    sim.run_until_idle()
    raised = [e["Name"] for e in sim.get_status("waiting").history
              if e["EventType"] == EventType.EventRaised]
    assert raised == ["my decision"]


def test_listing_is_paged_like_azure_storage(api, sim):
    for index in range(3):
        started(sim, "approval", None, f"page-{index}")
    first = api.handle("GET", api.rpc_base_url + "instances/?top=2")
    assert [s["instanceId"] for s in first.parsed()] == ["page-0", "page-1"]
    token = first.headers["x-ms-continuation-token"]
    rest = api.handle("GET", api.rpc_base_url + "instances/?top=2",
                      headers={"x-ms-continuation-token": token})
    assert [s["instanceId"] for s in rest.parsed()] == ["page-2"]
    assert "x-ms-continuation-token" not in rest.headers


def test_entity_listing_is_not_simulated_and_says_so(api):
    with pytest.raises(DafxError, match="does not serve"):
        api.handle("GET", api.rpc_base_url + "entities/Counter")
