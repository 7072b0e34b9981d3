"""The Replayer: saved histories in every accepted shape, divergences, and clear format errors."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest

from dafx_testing import HistoryFormatError, Simulator
from dafx_testing.checks.historydiff import diff_histories
from dafx_testing.checks.replayer import Replayer, ReplayResult
from dafx_testing.core.async_bridge import run_sync
from dafx_testing.core.errors import ReplayError
from dafx_testing.core.history import load_history
from dafx_testing.functions.status_history import from_status_history
from scenarios.versioning.activities import V3_DIVERGENCE, register_activities

ROOT = Path(__file__).resolve().parent.parent
VERSIONING = ROOT / "scenarios" / "versioning"
HISTORIES = VERSIONING / "histories"
V1, V2, V3 = (VERSIONING / f"function_app_v{n}.py" for n in (1, 2, 3))
CONTENT_APPROVAL = ROOT / "scenarios" / "content_approval" / "function_app.py"


def client_status(name, show_output=True):
    """What ``get_status(show_history=True)`` returns for a v1 history (the SDK's object)."""
    sim = Simulator(V1)
    instance_id = sim.load_history(HISTORIES / f"{name}.json")
    return run_sync(sim.client.get_status(instance_id, show_history=True,
                                          show_history_output=show_output))


def v1_history(name="shipped"):
    return load_history(HISTORIES / f"{name}.json")


def test_a_history_file_replays_under_the_code_that_recorded_it():
    result = Replayer(V1).replay(HISTORIES / "shipped.json")

    assert result.ok and result.divergence is None and result.failure is None
    assert (result.orchestrator, result.instance_id, result.events) == (
        "order_fulfillment", "order-shipped", 20)
    assert result.explain() == (f"ok: {HISTORIES / 'shipped.json'} (orchestrator "
                                "'order_fulfillment', instance 'order-shipped', 20 events) replays")
    assert result.hint is None and result.sequence_number is None


def test_an_incompatible_change_diverges_with_the_dtfx_message_and_a_versioning_hint():
    result = Replayer(V3).replay(HISTORIES / "awaiting-approval.json")

    assert not result.ok
    assert (result.sequence_number, result.expected, result.actual) == (
        1, "activity 'charge_payment' [#1]", "activity 'check_fraud' [#1]")
    assert result.host_message == V3_DIVERGENCE
    assert "context.version" in result.hint and "'order_fulfillment_v2'" in result.hint
    text = result.explain()
    assert "sequence number: 1" in text and V3_DIVERGENCE in text and "hint:" in text


@pytest.mark.parametrize("shape", ["file", "list", "list file", "document", "instance status"])
def test_every_accepted_shape_replays(tmp_path, shape):
    events = v1_history()["history"]
    source = {
        "file": HISTORIES / "shipped.json",
        "list": events,
        "document": v1_history(),
    }.get(shape)
    if shape == "list file":
        source = tmp_path / "bare.json"
        source.write_text(json.dumps(events), encoding="utf-8")
    if shape == "instance status":   # what sim.get_status(...) returns
        sim = Simulator(V1)
        source = sim.get_status(sim.load_history(HISTORIES / "shipped.json"))

    assert Replayer(V2).replay(source).ok
    assert not Replayer(V3).replay(source).ok


def test_a_directory_replays_file_by_file_in_path_order():
    results = Replayer(V2).replay_dir(HISTORIES)

    assert [Path(r.source).name for r in results] == [
        "awaiting-approval.json", "cancelled.json", "shipped.json"]
    assert all(isinstance(r, ReplayResult) and r.ok for r in results)


def test_raise_on_failure_raises_for_the_first_history_that_diverges():
    with pytest.raises(ReplayError) as caught:
        Replayer(V3, raise_on_failure=True).replay_dir(HISTORIES)

    assert caught.value.result.source.endswith("awaiting-approval.json")
    assert V3_DIVERGENCE in str(caught.value)


def test_a_missing_orchestrator_is_a_failure_that_lists_the_known_ones():
    result = Replayer(CONTENT_APPROVAL).replay(HISTORIES / "shipped.json")

    assert not result.ok and result.divergence is None
    assert result.failure == ("the app no longer defines orchestrator 'order_fulfillment' "
                              "(known: content_approval)")


def test_code_that_fails_on_replay_is_reported_with_the_hosts_failure_message():
    broken = df.DFApp()
    register_activities(broken)

    @broken.orchestration_trigger(context_name="context")
    def order_fulfillment(context):
        order = context.get_input()
        yield context.call_activity("reserve_stock", order)
        yield context.call_activity("charge_payment", order)
        approval = context.wait_for_external_event("ShipmentApproved")
        deadline = context.create_timer(context.current_utc_datetime + timedelta(days=2))
        if (yield context.task_any([approval, deadline])) != approval:
            return {"order": order["sku"], "status": "cancelled"}   # v1 orders have no sku
        deadline.cancel()
        tracking = yield context.call_activity("ship_order", order)
        return {"order": order["id"], "status": "shipped", "tracking": tracking}

    cancelled = Replayer(broken).replay(HISTORIES / "cancelled.json")
    shipped = Replayer(broken).replay(HISTORIES / "shipped.json")

    assert not cancelled.ok and cancelled.divergence is None
    assert cancelled.failure.startswith("Orchestrator function 'order_fulfillment' failed: ")
    assert "'sku'" in cancelled.failure and "failure: Orchestrator" in cancelled.explain()
    assert shipped.ok


# -- the status API's historyEvents -----------------------------------------------------


@pytest.mark.parametrize("name", ["awaiting-approval", "cancelled", "shipped"])
def test_status_api_histories_are_rebuilt_and_replay_like_the_stored_ones(name):
    status = client_status(name)

    assert Replayer(V1).replay(status).ok
    assert Replayer(V2).replay(status).ok
    diverged = Replayer(V3).replay(status)
    assert diverged.host_message == V3_DIVERGENCE
    assert diverged.instance_id == f"order-{name}"


def test_the_status_api_json_is_accepted_as_a_file(tmp_path):
    status = client_status("shipped")
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"name": status.name, "instanceId": status.instance_id,
                                "input": status.input_, "runtimeStatus": "Completed",
                                "historyEvents": status.historyEvents}), encoding="utf-8")

    assert Replayer(V3).replay(path).host_message == V3_DIVERGENCE


def test_a_rebuilt_status_history_matches_the_stored_one_event_for_event():
    stored = v1_history("shipped")["history"]
    status = client_status("shipped")
    rebuilt = from_status_history(status.historyEvents, "status.json", input=status.input_,
                                  has_input=True)

    def without_inputs(events):
        return [{k: v for k, v in e.items() if k != "Input"} for e in events]

    # The same events, numbers, links and episodes; only the inputs the API drops differ.
    assert diff_histories(without_inputs(stored), without_inputs(rebuilt.events)).same
    changed = [line for line in diff_histories(stored, rebuilt.events).lines
               if line.startswith("  +")]
    assert [line.split()[3] for line in changed] == [
        "TaskScheduled", "TaskScheduled", "EventRaised", "TaskScheduled"]
    assert rebuilt.notes == ["the status API does not include event inputs (1 here); they "
                             "replayed as null, so code that branches on them can diverge here "
                             "but not in the host"]


def test_status_histories_without_outputs_or_input_say_what_was_missing():
    status = client_status("awaiting-approval", show_output=False)
    result = Replayer(V1).replay(status.historyEvents)

    assert result.ok
    assert result.notes == (
        "the orchestration input was not included; it replayed as null",
        "the status API does not include activity and sub-orchestration results (2 here); they "
        "replayed as null, so code that branches on them can diverge here but not in the host")


def test_a_status_history_with_a_timer_and_an_event_race_replays():
    sim = Simulator(CONTENT_APPROVAL)
    instance_id = sim.start_new("content_approval", {"topic": "tides"})
    sim.run_until_idle()
    sim.raise_event(instance_id, "ApprovalDecision", False)
    sim.wait_for_completion(instance_id)
    status = run_sync(sim.client.get_status(instance_id, show_history=True,
                                            show_history_output=True))

    result = Replayer(CONTENT_APPROVAL).replay(status)

    assert result.ok, result.explain()


# -- malformed histories --------------------------------------------------------------


def _write(tmp_path, content, name="broken.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return path


def _edited(edit):
    events = v1_history()["history"]
    edit(events)
    return events


@pytest.mark.parametrize("content, message", [
    ('{"history": [', "not JSON (Expecting value at line 1, column 14)"),
    ({"events": []}, "expected a dafx history file (an object with a 'history' list)"),
    (7, "expected a history (a dafx history file, a JSON list of DTFx events, or a status with "
        "historyEvents), got int"),
    (_edited(lambda e: e[3].update(EventType=35)), "event 3 has EventType 35; valid values are "
                                                   "the DTFx EventType ints 0-28"),
    ([{"EventType": "TaskSchedueld", "Timestamp": "2025-03-01T09:00:00Z"}],
     "event 0 has EventType 'TaskSchedueld', which is not a DTFx event type"),
    (_edited(lambda e: e[5].pop("Result")), "event 5 (TaskCompleted) lacks Result; a replay "
                                            "needs it"),
    (_edited(lambda e: e[5].pop("TaskScheduledId")), "event 5 (TaskCompleted) lacks "
                                                     "TaskScheduledId"),
    (_edited(lambda e: e[2].pop("Timestamp")), "event 2 lacks Timestamp"),
    (_edited(lambda e: e[2].update(Timestamp="yesterday")),
     "event 2 (TaskScheduled) Timestamp: not an ISO timestamp: 'yesterday'"),
    (_edited(lambda e: e[5].update(TaskScheduledId="0")), "event 5 (TaskCompleted) has "
                                                          "TaskScheduledId '0'; it must be an "
                                                          "integer"),
    (_edited(lambda e: e.pop(0)), "event 0 (ExecutionStarted) has no OrchestratorStarted before "
                                  "it"),
    (_edited(lambda e: e.append(copy.deepcopy(e[1]))), "one ExecutionStarted event; found 2 "
                                                       "(events 1, 20)"),
    (_edited(lambda e: e.__setitem__(4, "OrchestratorStarted")),
     "event 4 is not an object: 'OrchestratorStarted'"),
    # DTFx's EventType ends at ExecutionRewound (src/DurableTask.Core/History/EventType.cs):
    # the Functions host cannot have written this history (as Simulator.load_history refuses).
    (_edited(lambda e: e[2].update(EventType=23)),
     "event 2 is EntityOperationCalled, an entity event of the Durable Task protocol"),
])
def test_malformed_history_files_name_the_file_the_event_and_the_problem(tmp_path, content,
                                                                         message):
    path = _write(tmp_path, content)

    with pytest.raises(HistoryFormatError) as caught:
        Replayer(V1).replay(path)

    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_a_missing_file_or_an_empty_directory_is_named(tmp_path):
    with pytest.raises(HistoryFormatError, match="history file not found: .*absent.json"):
        Replayer(V1).replay(tmp_path / "absent.json")
    with pytest.raises(HistoryFormatError, match="holds no history files matching '\\*.json'"):
        Replayer(V1).replay_dir(tmp_path)
    with pytest.raises(HistoryFormatError, match="is not a directory of history files"):
        Replayer(V1).replay_dir(tmp_path / "absent")
