"""The Simulator's API, driven through a real DFApp, checked against the host's rules."""

import json
import time
from datetime import datetime, timedelta, timezone

import azure.durable_functions as df
import pytest

from dafx_testing import (
    HistoryFormatError,
    InstanceNotFoundError,
    InstanceStateError,
    NonDeterminismError,
    RunawayOrchestrationError,
    SerializationError,
    Simulator,
    UnhandledHttpCallError,
    UnknownFunctionError,
    WaitTimeoutError,
)
from dafx_testing.core.history import EventType

app = df.DFApp()
FLAKY = {"failures_left": 0}
SEEN = {}


@app.orchestration_trigger(context_name="context")
def hello_sequence(context):
    city = context.get_input()
    first = yield context.call_activity("say_hello", city)
    second = yield context.call_activity(say_hello_async, first)
    return [first, second]


@app.activity_trigger(input_name="name")
def say_hello(name):
    return f"Hello {name}"


@app.activity_trigger(input_name="text")
async def say_hello_async(text):
    return text.upper()


@app.orchestration_trigger(context_name="context")
def with_retry(context):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)
    try:
        return (yield context.call_activity_with_retry("flaky", options, "payload"))
    except Exception as error:
        return f"gave up: {error}"


@app.activity_trigger(input_name="value")
def flaky(value):
    if FLAKY["failures_left"] > 0:
        FLAKY["failures_left"] -= 1
        raise ValueError("transient outage")
    return f"processed {value}"


@app.orchestration_trigger(context_name="context")
def sleeper(context):
    days = context.get_input()
    yield context.create_timer(context.current_utc_datetime + timedelta(days=days))
    return context.current_utc_datetime.isoformat()


@app.orchestration_trigger(context_name="context")
def one_event(context):
    return (yield context.wait_for_external_event("Ping"))


@app.orchestration_trigger(context_name="context")
def same_event_twice(context):
    first = yield context.wait_for_external_event("E")
    second = yield context.wait_for_external_event("E")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def fan_out(context):
    tasks = [context.call_activity("say_hello", name) for name in context.get_input()]
    return (yield context.task_all(tasks))


@app.orchestration_trigger(context_name="context")
def race(context):
    event = context.wait_for_external_event("Go")
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return "event"
    return "timeout"


@app.orchestration_trigger(context_name="context")
def race_without_cancel(context):
    event = context.wait_for_external_event("Go")
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    yield context.task_any([event, timer])
    return "done"


@app.orchestration_trigger(context_name="context")
def parent(context):
    child_result = yield context.call_sub_orchestrator("child", context.get_input())
    named = yield context.call_sub_orchestrator("child", 1, instance_id="explicit-child")
    return [child_result, named]


@app.orchestration_trigger(context_name="context")
def child(context):
    value = context.get_input()
    doubled = yield context.call_activity("double", value)
    return {"value": doubled, "me": context.instance_id, "parent": context.parent_instance_id}


@app.activity_trigger(input_name="n")
def double(n):
    return n * 2


@app.orchestration_trigger(context_name="context")
def failing_parent(context):
    try:
        yield context.call_sub_orchestrator("boom", None)
    except Exception as error:
        return f"child failed: {error}"


@app.orchestration_trigger(context_name="context")
def boom(context):
    yield context.call_activity("say_hello", "x")
    raise RuntimeError("kaput")


@app.orchestration_trigger(context_name="context")
def looper(context):
    count = context.get_input()
    yield context.call_activity("say_hello", str(count))
    if count < 3:
        context.continue_as_new(count + 1)
        return None
    return f"stopped at {count}"


@app.orchestration_trigger(context_name="context")
def status_and_ids(context):
    context.set_custom_status({"step": 1})
    replaying = [context.is_replaying]
    first = context.new_uuid()
    yield context.call_activity("record_replay", context.is_replaying)
    replaying.append(context.is_replaying)
    second = context.new_uuid()
    return {"uuids": [first, second], "now": context.current_utc_datetime.isoformat(),
            "replaying": replaying}


@app.activity_trigger(input_name="flag")
def record_replay(flag):
    SEEN.setdefault("replaying", []).append(flag)
    SEEN["activity_now"] = datetime.now(timezone.utc)
    SEEN["activity_time"] = time.time()
    return None


@app.orchestration_trigger(context_name="context")
def http_caller(context):
    response = yield context.call_http("GET", "https://api.example.test/items/1")
    return response


@app.orchestration_trigger(context_name="context")
def spins(context):
    while True:
        yield context.create_timer(context.current_utc_datetime)


@app.orchestration_trigger(context_name="context")
def ticks(context):
    for _ in range(context.get_input()):
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    return "done"


@app.orchestration_trigger(context_name="context")
def returns_set(context):
    yield context.call_activity("make_set", None)
    return "unreachable"


@app.activity_trigger(input_name="ignored")
def make_set(ignored):
    return {"tags": {"a", "b"}}


@app.orchestration_trigger(context_name="context")
def timer_then_activity(context):
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
    return (yield context.call_activity("say_hello", "later"))


@pytest.fixture
def sim():
    FLAKY["failures_left"] = 0
    SEEN.clear()
    return Simulator(app)


def kinds_and_ids(history):
    """(EventType name, EventId) of the scheduling and completion events."""
    skip = (EventType.OrchestratorStarted, EventType.OrchestratorCompleted)
    return [(EventType(e["EventType"]).name, e.get("EventId"), e.get("TaskScheduledId", e.get("TimerId")))
            for e in history if e["EventType"] not in skip]


def test_sequence_of_sync_and_async_activities(sim):
    instance_id = sim.start_new("hello_sequence", "Tokyo")
    assert sim.get_status(instance_id).runtime_status == "Pending"

    status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert status.output == ["Hello Tokyo", "HELLO TOKYO"]
    assert status.input == "Tokyo"
    assert [c.input for c in sim.activity_calls()] == ["Tokyo", "Hello Tokyo"]
    scheduled = [e for e in status.history if e["EventType"] == EventType.TaskScheduled]
    # Inputs on the wire: the DTFx parameters array around the SDK's df_dumps text.
    assert [e["Input"] for e in scheduled] == ['["\\"Tokyo\\""]', '["\\"Hello Tokyo\\""]']
    assert [e["EventId"] for e in scheduled] == [0, 1]
    sim.check_replay(instance_id)


def test_retry_that_fails_twice_then_succeeds_follows_the_host_id_rules(sim):
    FLAKY["failures_left"] = 2
    instance_id = sim.start_new("with_retry")

    status = sim.wait_for_completion(instance_id)

    assert status.output == "processed payload"
    assert kinds_and_ids(status.history) == [
        ("ExecutionStarted", -1, None),
        ("TaskScheduled", 0, None), ("TaskFailed", -1, 0),
        ("TimerCreated", 1, None), ("TimerFired", -1, 1),
        ("TaskScheduled", 2, None), ("TaskFailed", -1, 2),
        ("TimerCreated", 3, None), ("TimerFired", -1, 3),
        ("TaskScheduled", 4, None), ("TaskCompleted", -1, 4),
        ("ExecutionCompleted", 5, None),
    ]
    timers = [e["FireAt"] for e in status.history if e["EventType"] == EventType.TimerCreated]
    assert timers == ["2025-01-01T00:00:05Z", "2025-01-01T00:00:10Z"]
    assert [(c.attempt, type(c.error).__name__) for c in sim.activity_calls("flaky")] == [
        (1, "ValueError"), (2, "ValueError"), (3, "NoneType")]
    failed = next(e for e in status.history if e["EventType"] == EventType.TaskFailed)
    assert failed["Reason"] == "Activity function 'flaky' failed: ValueError: transient outage"
    sim.check_replay(instance_id)


def test_retry_exhausted_adds_one_immediate_timer_before_the_failure_surfaces(sim):
    FLAKY["failures_left"] = 5
    instance_id = sim.start_new("with_retry")

    status = sim.wait_for_completion(instance_id)

    assert status.output.startswith("gave up: Activity function 'flaky' failed: ValueError")
    assert [k[:2] for k in kinds_and_ids(status.history)][-5:] == [
        ("TaskScheduled", 4), ("TaskFailed", -1), ("TimerCreated", 5), ("TimerFired", -1),
        ("ExecutionCompleted", 6)]
    dummy = [e for e in status.history if e["EventType"] == EventType.TimerCreated][-1]
    assert dummy["FireAt"] == "2025-01-01T00:00:10Z"   # fires at once, not after another 5 s
    assert len(sim.activity_calls("flaky")) == 3


def test_ten_day_timer_is_split_into_three_day_chunks(sim):
    instance_id = sim.start_new("sleeper", 10)

    status = sim.wait_for_completion(instance_id)

    fire_times = [e["FireAt"] for e in status.history if e["EventType"] == EventType.TimerCreated]
    assert fire_times == ["2025-01-04T00:00:00Z", "2025-01-07T00:00:00Z", "2025-01-11T00:00:00Z"]
    assert status.output == "2025-01-11T00:00:00+00:00"
    assert sim.now == datetime(2025, 1, 11, tzinfo=timezone.utc)


def test_72_hour_timer_completes_in_virtual_time(sim):
    instance_id = sim.start_new("sleeper", 3)

    status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert sim.now - status.created_time == timedelta(hours=72)


def test_advance_fires_timers_only_when_the_clock_reaches_them(sim):
    instance_id = sim.start_new("timer_then_activity")
    sim.run_until_idle()
    sim.advance(timedelta(minutes=4, seconds=59))
    assert sim.get_status(instance_id).runtime_status == "Running"

    sim.advance(timedelta(seconds=1))

    assert sim.get_status(instance_id).output == "Hello later"
    assert sim.activity_calls("say_hello")[0].at == datetime(2025, 1, 1, 0, 5, tzinfo=timezone.utc)


def test_event_raised_before_the_orchestrator_waits_is_buffered(sim):
    instance_id = sim.start_new("one_event")
    sim.raise_event(instance_id, "Ping", {"n": 1})

    status = sim.wait_for_completion(instance_id)

    assert status.output == {"n": 1}


def test_two_waits_on_one_name_need_two_events_as_on_the_host(sim):
    # The SDK alone would hand the first buffered event to both waits and finish.
    instance_id = sim.start_new("same_event_twice")
    sim.raise_event(instance_id, "E", "first")
    sim.run_until_idle()
    assert sim.get_status(instance_id).runtime_status == "Running"

    sim.raise_event(instance_id, "E", "second")
    sim.run_until_idle()

    status = sim.get_status(instance_id)
    assert status.runtime_status == "Completed"
    assert status.output == ["first", "second"]


def test_task_all_fans_out_and_in(sim):
    instance_id = sim.start_new("fan_out", ["a", "b", "c"])

    status = sim.wait_for_completion(instance_id)

    assert status.output == ["Hello a", "Hello b", "Hello c"]
    scheduled = [e["EventId"] for e in status.history if e["EventType"] == EventType.TaskScheduled]
    assert scheduled == [0, 1, 2]
    sim.check_replay(instance_id)


def test_task_any_with_cancelled_timer_completes_at_once(sim):
    instance_id = sim.start_new("race")
    sim.run_until_idle()
    sim.raise_event(instance_id, "Go")

    sim.run_until_idle()

    assert sim.get_status(instance_id).output == "event"


def test_task_any_timeout_wins_when_no_event_arrives(sim):
    instance_id = sim.start_new("race")
    assert sim.wait_for_completion(instance_id).output == "timeout"


def test_an_uncancelled_timer_keeps_the_instance_running_until_it_fires(sim):
    instance_id = sim.start_new("race_without_cancel")
    sim.run_until_idle()
    sim.raise_event(instance_id, "Go")
    sim.run_until_idle()
    # DTFx completes an orchestration only when no task is still open.
    assert sim.get_status(instance_id).runtime_status == "Running"

    status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert status.last_updated_time - status.created_time == timedelta(hours=1)


def test_sub_orchestrations_with_default_and_explicit_instance_ids(sim):
    instance_id = sim.start_new("parent", 21, instance_id="the-parent")

    status = sim.wait_for_completion(instance_id)

    created = [e for e in status.history
               if e["EventType"] == EventType.SubOrchestrationInstanceCreated]
    execution_id = status.history[1]["OrchestrationInstance"]["ExecutionId"]
    assert created[0]["InstanceId"] == f"{execution_id}:0"
    assert created[1]["InstanceId"] == "explicit-child"
    assert status.output == [
        {"value": 42, "me": f"{execution_id}:0", "parent": "the-parent"},
        {"value": 2, "me": "explicit-child", "parent": "the-parent"},
    ]
    assert sim.get_status("explicit-child").runtime_status == "Completed"
    sim.check_replay(instance_id)


def test_a_failing_sub_orchestration_surfaces_in_the_parent(sim):
    instance_id = sim.start_new("failing_parent")

    status = sim.wait_for_completion(instance_id)

    assert status.output.startswith("child failed: Orchestrator function 'boom' failed: kaput")


def test_orchestrator_exception_fails_the_instance_with_the_host_message(sim):
    instance_id = sim.start_new("boom")

    status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Failed"
    assert status.output == "Orchestrator function 'boom' failed: kaput"
    completed = status.history[-2]
    assert completed["EventType"] == EventType.ExecutionCompleted
    assert completed["OrchestrationStatus"] == 3


def test_continue_as_new_three_times_starts_fresh_executions(sim):
    instance_id = sim.start_new("looper", 0)

    status = sim.wait_for_completion(instance_id)

    assert status.output == "stopped at 3"
    assert status.input == 3
    assert [c.input for c in sim.activity_calls("say_hello")] == ["0", "1", "2", "3"]
    # Only the last execution's history remains: one started event, fresh ids.
    started = [e for e in status.history if e["EventType"] == EventType.ExecutionStarted]
    assert len(started) == 1
    assert [e["EventId"] for e in status.history if e["EventType"] == EventType.TaskScheduled] == [0]


def test_terminate_a_waiting_instance(sim):
    instance_id = sim.start_new("one_event")
    sim.run_until_idle()

    sim.terminate(instance_id, "no longer needed")
    sim.run_until_idle()

    status = sim.get_status(instance_id)
    assert status.runtime_status == "Terminated"
    assert status.output == "no longer needed"
    sim.terminate(instance_id, "again")      # finished: a no-op, as the host's 410
    with pytest.raises(InstanceStateError, match="Terminated"):
        sim.raise_event(instance_id, "Ping", 1)


def test_suspend_holds_events_until_resume(sim):
    instance_id = sim.start_new("one_event")
    sim.run_until_idle()
    sim.suspend(instance_id, "maintenance")
    sim.run_until_idle()
    assert sim.get_status(instance_id).runtime_status == "Suspended"

    sim.raise_event(instance_id, "Ping", "while suspended")
    sim.run_until_idle()
    assert sim.get_status(instance_id).runtime_status == "Suspended"

    sim.resume(instance_id, "done")
    sim.run_until_idle()
    status = sim.get_status(instance_id)
    assert status.runtime_status == "Completed"
    assert status.output == "while suspended"


def test_purge_removes_instances_whatever_their_status(sim):
    """Azure Storage purges running instances too (see test_management_fidelity.py)."""
    waiting = sim.start_new("one_event")
    done = sim.start_new("hello_sequence", "x")
    sim.run_until_idle()

    sim.purge(waiting)
    sim.purge(done)

    for purged in (waiting, done):
        with pytest.raises(InstanceNotFoundError, match="no orchestration instance"):
            sim.get_status(purged)
    with pytest.raises(InstanceNotFoundError):
        sim.purge(done)


def test_custom_status_uuid_time_and_replay_flag(sim):
    instance_id = sim.start_new("status_and_ids")

    status = sim.wait_for_completion(instance_id)
    again = Simulator(app)
    repeat = again.wait_for_completion(again.start_new("status_and_ids"))

    assert status.custom_status == {"step": 1}
    assert status.output["now"] == "2025-01-01T00:00:00+00:00"
    assert status.output == repeat.output                      # same seed, same uuids
    assert len(set(status.output["uuids"])) == 2
    assert SEEN["replaying"] == [False, False]                  # first run of that code path
    # In the final episode the start is replayed history; after the last yield it is new.
    assert status.output["replaying"] == [True, False]
    assert SEEN["activity_now"] == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert SEEN["activity_time"] == datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()


def test_call_http_is_answered_by_the_handler(sim):
    requests = []

    def handler(call):
        requests.append(call)
        return {"statusCode": 200, "headers": {"x": "1"}, "content": '{"id": 1}'}

    sim.http_handler = handler
    status = sim.wait_for_completion(sim.start_new("http_caller"))

    assert status.output == {"statusCode": 200, "headers": {"x": "1"}, "content": '{"id": 1}'}
    assert (requests[0].method, requests[0].uri) == ("GET", "https://api.example.test/items/1")
    scheduled = next(e for e in status.history if e["EventType"] == EventType.TaskScheduled)
    assert scheduled["Name"] == "BuiltIn::HttpActivity"


def test_call_http_without_a_handler_fails_loudly_and_loses_nothing(sim):
    instance_id = sim.start_new("http_caller")

    with pytest.raises(UnhandledHttpCallError, match="GET https://api.example.test/items/1"):
        sim.run_until_idle()

    sim.http_handler = lambda call: 204
    assert sim.wait_for_completion(instance_id).output["statusCode"] == 204


def test_start_new_of_an_unknown_orchestrator_lists_the_known_ones(sim):
    with pytest.raises(UnknownFunctionError, match="known orchestrators: 'hello_sequence'"):
        sim.start_new("hello_sequense")


def test_non_serializable_input_names_type_and_path(sim):
    with pytest.raises(SerializationError, match=r"type 'set' at \$\.items\[1\]"):
        sim.start_new("hello_sequence", {"items": [1, {2, 3}]})


def test_non_serializable_activity_output_fails_the_task_with_the_path(sim):
    status = sim.wait_for_completion(sim.start_new("returns_set"))

    failed = next(e for e in status.history if e["EventType"] == EventType.TaskFailed)
    assert "type 'set' at $.tags" in failed["Reason"]
    assert status.runtime_status == "Failed"


def test_runaway_orchestrator_stops_with_the_cap_named(sim):
    sim.max_episodes = 50
    sim.start_new("spins", instance_id="spinner")

    with pytest.raises(RunawayOrchestrationError, match="'spinner'.*max_episodes=50"):
        sim.run_until_idle()


def test_a_loop_stops_on_the_replay_budget_long_before_max_episodes(sim):
    # Each episode replays the whole history, so a loop's cost grows with its square; the
    # replayed-events budget is what stops it in seconds under the default max_episodes.
    assert sim.max_replayed_events == 200_000 and sim.max_episodes == 10_000
    sim.max_replayed_events = 5_000
    sim.start_new("spins", instance_id="spinner")

    with pytest.raises(RunawayOrchestrationError,
                       match=r"'spinner'.*over max_replayed_events=5,000.*continue_as_new"):
        sim.run_until_idle()
    assert len(sim.get_status("spinner").history) < 250      # stopped after ~50 episodes


def test_the_replay_budget_starts_over_with_each_driving_call(sim):
    sim.max_replayed_events = 1_000
    instance_id = sim.start_new("ticks", 40)
    for _ in range(40):              # one timer, one episode per call: 40 * 80 events in all
        sim.advance(timedelta(minutes=1))

    status = sim.get_status(instance_id)
    assert status.output == "done" and len(status.history) > 150


def test_history_cap(sim):
    sim.max_history_events = 30
    sim.start_new("spins", instance_id="spinner")

    with pytest.raises(RunawayOrchestrationError, match="max_history_events=30"):
        sim.run_until_idle()


def test_wait_for_completion_explains_what_the_instance_waits_for(sim):
    instance_id = sim.start_new("one_event", instance_id="waiter")

    with pytest.raises(WaitTimeoutError, match="'waiter'.*waiting for external event\\(s\\) 'Ping'"):
        sim.wait_for_completion(instance_id, timeout=timedelta(hours=1))


def test_mock_activity_replaces_the_code_but_not_the_wire(sim):
    sim.mock_activity("SAY_HELLO", lambda name: {"mocked": name})

    status = sim.wait_for_completion(sim.start_new("fan_out", ["a"]))

    assert status.output == [{"mocked": "a"}]
    (call,) = sim.activity_calls("say_hello")
    assert call.mocked and call.result == {"mocked": "a"}
    with pytest.raises(UnknownFunctionError):
        sim.mock_activity("nope", lambda x: x)


def test_history_file_round_trip_continues_the_instance(sim, tmp_path):
    instance_id = sim.start_new("one_event", instance_id="saved")
    sim.run_until_idle()
    sim.save_history(instance_id, tmp_path / "saved.json")

    other = Simulator(app)
    assert other.load_history(tmp_path / "saved.json") == "saved"
    other.raise_event("saved", "Ping", 7)

    assert other.wait_for_completion("saved").output == 7
    document = json.loads((tmp_path / "saved.json").read_text())
    assert document["format"] == "dafx-history" and document["name"] == "one_event"


def test_loaded_history_requeues_work_that_was_in_flight(sim, tmp_path):
    instance_id = sim.start_new("timer_then_activity")
    sim.run_until_idle()
    sim.save_history(instance_id, tmp_path / "timer.json")

    other = Simulator(app)
    other.load_history(tmp_path / "timer.json")

    assert other.wait_for_completion(instance_id).output == "Hello later"


def test_loading_a_bad_history_file_is_a_clear_error(sim, tmp_path):
    (tmp_path / "bad.json").write_text('{"history": [{"EventType": 0}]}')

    with pytest.raises(HistoryFormatError, match="event 0 lacks EventId, Timestamp"):
        sim.load_history(tmp_path / "bad.json")


def test_a_history_that_names_no_instance_or_orchestrator_is_refused(sim):
    sim.start_new("one_event", instance_id="saved")
    sim.run_until_idle()
    sim.raise_event("saved", "Ping", 1)
    history = sim.wait_for_completion("saved").history
    started = next(e for e in history if e["EventType"] == EventType.ExecutionStarted)

    anonymous = [dict(e) for e in history]
    next(e for e in anonymous if e["EventType"] == EventType.ExecutionStarted).pop("OrchestrationInstance")
    with pytest.raises(HistoryFormatError, match="names no instance id.*pass instance_id="):
        Simulator(app).load_history({"history": anonymous})

    nameless = [dict(e) for e in history]
    next(e for e in nameless if e["EventType"] == EventType.ExecutionStarted).pop("Name")
    with pytest.raises(HistoryFormatError, match="names no orchestrator"):
        Simulator(app).load_history({"history": nameless}, instance_id="copy")
    assert started["Name"] == "one_event"


def test_a_durable_task_entity_event_in_a_functions_history_is_refused_and_nothing_loads(sim):
    # DTFx's EventType ends at ExecutionRewound (src/DurableTask.Core/History/EventType.cs in
    # Azure/durabletask); EntityOperationCalled is the Durable Task protocol's (durabletask
    # workers). Found by tests/test_history_properties.py: it was queued as a sub-orchestration.
    sim.start_new("hello_sequence", "Oslo", instance_id="saved")
    sim.run_until_idle()
    history = [dict(e) for e in sim.get_status("saved").history]
    scheduled = next(i for i, e in enumerate(history) if e["EventType"] == EventType.TaskScheduled)
    history[scheduled]["EventType"] = EventType.EntityOperationCalled

    other = Simulator(app)
    with pytest.raises(HistoryFormatError, match=(
            f"event {scheduled} is EntityOperationCalled, an entity event of the Durable Task "
            "protocol .*; an Azure Functions app's history \\(DTFx\\) has no such event")):
        other.load_history({"history": history})
    assert other.list_instances() == []


def test_renamed_activity_against_an_old_history_fails_with_the_dtfx_message(sim):
    old = Simulator(app)
    instance_id = old.start_new("hello_sequence", "Oslo")
    old.wait_for_completion(instance_id)
    history = old.get_status(instance_id).history
    # Keep the first episode only: say_hello was scheduled as task 0.
    first_episode_end = next(i for i, e in enumerate(history)
                             if e["EventType"] == EventType.OrchestratorCompleted)
    renamed = df.DFApp()

    @renamed.orchestration_trigger(context_name="context")
    def hello_sequence(context):
        return (yield context.call_activity("greet", context.get_input()))

    @renamed.activity_trigger(input_name="name")
    def greet(name):
        return name

    new = Simulator(renamed, raise_on_nondeterminism=False)
    new.load_history({"history": history[: first_episode_end + 1]})
    new.run_until_idle()

    status = new.get_status(instance_id)
    assert status.runtime_status == "Failed"
    assert status.output == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled an activity task with sequence number 0 named 'say_hello', but the current "
        "orchestration replay instead scheduled an activity task named 'greet' with this "
        "sequence number.  Was a change made to the orchestrator code after this instance had "
        "already started running?")
    (error,) = new.nondeterminism
    assert isinstance(error, NonDeterminismError) and error.sequence_number == 0


def test_same_seed_same_history_different_seed_different_ids():
    def run(seed):
        sim = Simulator(app, seed=seed)
        instance_id = sim.start_new("parent", 3)
        return instance_id, sim.wait_for_completion(instance_id).history

    assert run(7) == run(7)
    assert run(7)[0] != run(8)[0]


@app.orchestration_trigger(context_name="context")
def no_retry(context):
    return (yield context.call_activity("flaky", "once"))


def test_rewind_reruns_the_failed_activity_under_its_sequence_number(sim):
    FLAKY["failures_left"] = 1
    instance_id = sim.start_new("no_retry")
    assert sim.wait_for_completion(instance_id).runtime_status == "Failed"

    sim.rewind(instance_id, "fixed upstream")
    status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert status.output == "processed once"
    assert [e["EventId"] for e in status.history if e["EventType"] == EventType.TaskScheduled] == [0]
    rewound = [e for e in status.history if e["EventType"] == EventType.GenericEvent]
    assert any(e["Data"].startswith("Rewound:") for e in rewound)
    with pytest.raises(InstanceStateError, match="only Failed instances"):
        sim.rewind(instance_id)


def test_restart_runs_the_same_input_again(sim):
    first = sim.start_new("hello_sequence", "Lima")
    sim.wait_for_completion(first)

    second = sim.restart(first)
    same = sim.restart(first, new_instance_id=False)

    assert second != first and same == first
    assert sim.wait_for_completion(second).output == ["Hello Lima", "HELLO LIMA"]
    assert sim.wait_for_completion(first).input == "Lima"


def test_list_instances_filters(sim):
    early = sim.start_new("one_event", instance_id="job-1")
    sim.advance(timedelta(hours=1))
    done = sim.start_new("hello_sequence", "x", instance_id="job-2")
    sim.start_new("hello_sequence", "y", instance_id="other")
    sim.run_until_idle()

    def ids(**filters):
        return [s.instance_id for s in sim.list_instances(**filters)]

    assert ids() == ["job-1", "job-2", "other"]
    assert ids(instance_id_prefix="job-") == ["job-1", "job-2"]
    assert ids(runtime_status=["Running"]) == [early]
    assert ids(runtime_status=["Completed"], instance_id_prefix="job") == [done]
    assert ids(created_from=sim.now) == ["job-2", "other"]
    assert ids(created_to=sim.now - timedelta(minutes=1)) == ["job-1"]


@app.orchestration_trigger(context_name="context")
def reads_the_wall_clock(context):
    yield context.call_activity("say_hello", datetime.now().isoformat())


def test_the_determinism_guard_is_on_by_default(sim):
    from dafx_testing.core.errors import NonDeterministicCallError

    with pytest.raises(NonDeterministicCallError, match=r"datetime\.now\(\) at tests/test_simulator\.py"):
        sim.wait_for_completion(sim.start_new("reads_the_wall_clock"))

    relaxed = Simulator(app, guard="off", perturb=False)
    assert relaxed.wait_for_completion(relaxed.start_new("reads_the_wall_clock")).runtime_status == "Completed"
