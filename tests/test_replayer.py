"""The Replayer: saved histories in every accepted shape, divergences, and clear format errors."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from dafx_testing import HistoryFormatError, Simulator
from dafx_testing.errors import ReplayError
from dafx_testing.history import EventType, OrchestrationStatus, load_history
from dafx_testing.historydiff import diff_histories
from dafx_testing.replayer import Replayer, ReplayResult
from dafx_testing.status_history import from_status_history, is_status_history
from scenarios.versioning.activities import register_activities

ROOT = Path(__file__).resolve().parent.parent
VERSIONING = ROOT / "scenarios" / "versioning"
HISTORIES = VERSIONING / "histories"
V1, V2, V3 = (VERSIONING / f"function_app_v{n}.py" for n in (1, 2, 3))
CONTENT_APPROVAL = ROOT / "scenarios" / "content_approval" / "function_app.py"
CHARGE_VS_FRAUD = (
    "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled "
    "an activity task with sequence number 1 named 'charge_payment', but the current "
    "orchestration replay instead scheduled an activity task named 'check_fraud' with this "
    "sequence number.  Was a change made to the orchestrator code after this instance had "
    "already started running?")


def status_view(history, show_output=True):
    """The status API's ``historyEvents`` for a DTFx history, as the extension builds it.

    A line-by-line rendering of ``DurableClient.GetDurableOrchestrationStatusAsync``
    (azure-functions-durable-extension): names for types, ids and inputs removed,
    schedules folded into their completions, episode markers dropped.
    """
    events, scheduled, dropped = copy.deepcopy(history), {}, set()

    def parse(text):
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return text

    for index, event in enumerate(events):
        kind = EventType(event["EventType"])
        event["EventType"] = kind.name
        if kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
            scheduled[f"{kind.name}_{event['EventId']}"] = (index, event["Name"],
                                                            event["Timestamp"])
            event.pop("Version", None)
            event.pop("Input", None)
        elif kind in (EventType.TaskCompleted, EventType.TaskFailed,
                      EventType.SubOrchestrationInstanceCompleted,
                      EventType.SubOrchestrationInstanceFailed):
            prefix = ("TaskScheduled" if kind in (EventType.TaskCompleted, EventType.TaskFailed)
                      else "SubOrchestrationInstanceCreated")
            found = scheduled.get(f"{prefix}_{event['TaskScheduledId']}")
            if found is not None:
                event["ScheduledTime"], event["FunctionName"] = found[2], found[1]
                dropped.add(found[0])
            event.pop("TaskScheduledId")
            if kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
                if show_output:
                    event["Result"] = parse(event["Result"])
                else:
                    event.pop("Result")
        elif kind == EventType.ExecutionStarted:
            event["FunctionName"] = event.pop("Name")
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags", "Input"):
                event.pop(key, None)
        elif kind == EventType.ExecutionCompleted:
            event["OrchestrationStatus"] = OrchestrationStatus(event["OrchestrationStatus"]).name
            if show_output:
                event["Result"] = parse(event["Result"])
            else:
                event.pop("Result")
        elif kind in (EventType.ExecutionTerminated, EventType.EventRaised):
            event.pop("Input", None)
        elif kind == EventType.TimerFired:
            event.pop("TimerId")
        elif kind in (EventType.OrchestratorStarted, EventType.OrchestratorCompleted):
            dropped.add(index)
        event.pop("EventId")
        event.pop("IsPlayed")
    return [event for index, event in enumerate(events) if index not in dropped]


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
    assert result.host_message == CHARGE_VS_FRAUD
    assert "context.version" in result.hint and "'order_fulfillment_v2'" in result.hint
    text = result.explain()
    assert "sequence number: 1" in text and CHARGE_VS_FRAUD in text and "hint:" in text


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
    assert CHARGE_VS_FRAUD in str(caught.value)


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
    document = v1_history(name)
    status = {"name": document["name"], "instanceId": document["instanceId"],
              "input": json.loads(document["history"][1]["Input"]),
              "historyEvents": status_view(document["history"])}
    assert is_status_history(status["historyEvents"])

    assert Replayer(V1).replay(status).ok
    assert Replayer(V2).replay(status).ok
    diverged = Replayer(V3).replay(status)
    assert diverged.host_message == CHARGE_VS_FRAUD
    assert diverged.instance_id == f"order-{name}"


def test_a_rebuilt_status_history_matches_the_stored_one_event_for_event():
    stored = v1_history("shipped")["history"]
    rebuilt = from_status_history(status_view(stored), "status.json",
                                  input=json.loads(stored[1]["Input"]), has_input=True)

    def without_inputs(events):
        return [{k: v for k, v in e.items() if k != "Input"} for e in events]

    # The same events, numbers, links and episodes; only the inputs the API drops differ.
    assert diff_histories(without_inputs(stored), without_inputs(rebuilt.events)).same
    changed = [line for line in diff_histories(stored, rebuilt.events).lines
               if line.startswith("  +")]
    assert [line.split()[3] for line in changed] == [
        "TaskScheduled", "TaskScheduled", "EventRaised", "TaskScheduled"]
    assert rebuilt.notes == ["1 event inputs were not included by the status API; they replayed "
                             "as null, so code that branches on them can diverge here but not in "
                             "the host"]


def test_status_histories_without_outputs_or_input_say_what_was_missing():
    document = v1_history("awaiting-approval")
    result = Replayer(V1).replay(status_view(document["history"], show_output=False))

    assert result.ok
    assert result.notes == (
        "the orchestration input was not included; it replayed as null",
        "2 activity results were not included by the status API; they replayed as null, so code "
        "that branches on them can diverge here but not in the host")


def test_the_sdk_status_object_is_accepted():
    document = v1_history("cancelled")
    status = DurableOrchestrationStatus.from_json({
        "name": "order_fulfillment", "instanceId": "order-cancelled",
        "createdTime": "2025-03-01T09:00:00Z", "lastUpdatedTime": "2025-03-03T09:00:00Z",
        "input": json.loads(document["history"][1]["Input"]), "runtimeStatus": "Completed",
        "historyEvents": status_view(document["history"])})

    result = Replayer(V3).replay(status)

    assert result.instance_id == "order-cancelled" and result.host_message == CHARGE_VS_FRAUD


def test_a_status_history_with_a_timer_and_an_event_race_replays():
    sim = Simulator(CONTENT_APPROVAL)
    instance_id = sim.start_new("content_approval", {"topic": "tides"})
    sim.run_until_idle()
    sim.raise_event(instance_id, "ApprovalDecision", False)
    status = sim.wait_for_completion(instance_id)

    result = Replayer(CONTENT_APPROVAL).replay({"instanceId": instance_id,
                                                "input": status.input,
                                                "historyEvents": status_view(status.history)})

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
    (_edited(lambda e: e[3].update(EventType=25)), "event 3 has EventType 25; valid values are "
                                                   "the DTFx EventType ints 0-20"),
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
