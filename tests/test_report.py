"""Timelines of real simulated runs: names, virtual time, failures, and long histories."""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df

from dafx_testing import Simulator
from dafx_testing.core.history import EventType
from dafx_testing.core.timeline import timeline, unwrap

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def greet_later(context):
    wait = timedelta(**context.get_input())
    yield context.create_timer(context.current_utc_datetime + wait)
    return (yield context.call_activity("greet", "Ana"))


@app.orchestration_trigger(context_name="context")
def reserve_stock(context):
    return (yield context.call_activity("reserve", 3))


@app.orchestration_trigger(context_name="context")
def greet_many(context):
    for number in range(context.get_input()):
        yield context.call_activity("greet", f"guest {number}")
    return "done"


@app.orchestration_trigger(context_name="context")
def fan_out(context):
    names = [f"guest {number}" for number in range(context.get_input())]
    results = yield context.task_all([context.call_activity("greet", name) for name in names])
    return len(results)


@app.orchestration_trigger(context_name="context")
def validate(context):
    return (yield context.call_activity("check", "draft"))


@app.orchestration_trigger(context_name="context")
def parent(context):
    return (yield context.call_sub_orchestrator("greet_many", 1, instance_id="child-1"))


@app.orchestration_trigger(context_name="context")
def approval(context):
    return (yield context.wait_for_external_event("Decision"))


@app.orchestration_trigger(context_name="context")
def count_up(context):
    counter = df.EntityId("Counter", "c1")
    total = yield context.call_entity(counter, "add", context.get_input())
    try:
        yield context.call_entity(counter, "add", "x")
    except Exception:
        pass
    return total


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter_entity(context):
    value = context.get_state(lambda: 0) + context.get_input()
    context.set_state(value)
    context.set_result(value)


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"hello {name}"


@app.activity_trigger(input_name="text")
def check(text: str) -> str:
    raise ValueError("short\nvague")


@app.activity_trigger(input_name="quantity")
def reserve(quantity: int) -> str:
    raise ValueError(f"out of stock: {quantity}")


def run(name: str, value=None):
    sim = Simulator(app)
    instance_id = sim.start_new(name, value, instance_id=f"{name}-1")
    status = sim.wait_for_completion(instance_id)
    return status, timeline(status.history).splitlines()


def only(lines, text):
    matches = [line for line in lines if text in line]
    assert len(matches) == 1, (text, lines)
    return matches[0]


def test_completions_name_the_activity_they_complete():
    status, lines = run("greet_many", 2)

    assert status.runtime_status == "Completed"
    assert "started greet_many input=" in lines[0]
    only(lines, "-> activity greet #0 input=")
    assert only(lines, "<- activity greet #0 result=").endswith('result="hello guest 0"')
    assert only(lines, "<- activity greet #1 result=").endswith('result="hello guest 1"')
    assert lines[-1].endswith('COMPLETED #2 "done"')


def test_each_line_is_one_meaningful_event_with_its_episode():
    status, lines = run("greet_many", 2)

    boundaries = (EventType.OrchestratorStarted, EventType.OrchestratorCompleted)
    assert len(lines) == sum(1 for e in status.history if e["EventType"] not in boundaries)
    episodes = [line.split()[1] for line in lines]
    assert episodes == ["ep1", "ep1", "ep2", "ep2", "ep3", "ep3"]


def test_a_timer_shows_the_virtual_time_that_passed():
    status, lines = run("greet_later", {"hours": 2, "minutes": 30})

    assert status.runtime_status == "Completed"
    assert only(lines, "-> timer #0 until").split() == [
        "+00:00:00", "ep1", "->", "timer", "#0", "until", "2025-01-01T02:30:00Z"]
    assert only(lines, "<- timer #0 fired").split()[:2] == ["+02:30:00", "ep2"]
    assert lines[-1].split()[0] == "+02:30:00"


def test_elapsed_time_past_a_day_shows_days():
    _, lines = run("greet_later", {"days": 3, "hours": 4, "minutes": 5, "seconds": 6})

    assert only(lines, "<- timer #0 fired").startswith("+3d 04:05:06  ep2")


def test_a_failed_activity_and_orchestration_show_their_reasons():
    status, lines = run("reserve_stock")

    assert status.runtime_status == "Failed"
    failed_task = only(lines, "<- activity reserve #0 FAILED: ")
    assert "Activity function 'reserve' failed: ValueError" in failed_task
    assert "FAILED #1 Orchestrator function 'reserve_stock' failed" in lines[-1]


def test_long_histories_keep_both_ends_and_count_what_was_skipped():
    sim = Simulator(app)
    instance_id = sim.start_new("greet_many", 20)
    history = sim.wait_for_completion(instance_id).history

    full = timeline(history, max_lines=None).splitlines()
    short = timeline(history, max_lines=10).splitlines()

    assert len(full) == 1 + 2 * 20 + 1
    assert "skipped" not in "\n".join(full)
    assert short[:5] == full[:5] and short[-5:] == full[-5:]
    assert short[5].strip() == f"... {len(full) - 10} events skipped ..."
    assert len(short) == 11


def test_the_default_limit_is_200_lines():
    sim = Simulator(app)
    instance_id = sim.start_new("fan_out", 100)
    history = sim.wait_for_completion(instance_id).history

    lines = timeline(history).splitlines()

    assert len(lines) == 201
    assert lines[100].strip() == "... 2 events skipped ..."


def test_sub_orchestrations_are_named_on_both_ends():
    status, lines = run("parent")

    assert status.runtime_status == "Completed"
    assert "instance=child-1" in only(lines, "-> sub-orchestration greet_many #0")
    assert only(lines, "<- sub-orchestration greet_many #0 result=").endswith('result="done"')


def test_raised_events_show_their_name_and_data():
    sim = Simulator(app)
    instance_id = sim.start_new("approval")
    sim.run_until_idle()
    sim.raise_event(instance_id, "Decision", {"approved": True})
    lines = timeline(sim.wait_for_completion(instance_id).history).splitlines()

    assert """<- event 'Decision' data={"approved": true}""" in only(lines, "<- event")


def test_long_values_are_cut_short():
    sim = Simulator(app)
    instance_id = sim.start_new("approval")
    sim.run_until_idle()
    sim.raise_event(instance_id, "Decision", "y" * 200)
    line = only(timeline(sim.wait_for_completion(instance_id).history).splitlines(), "<- event")

    data = line.split("data=", 1)[1]
    assert len(data) == 60
    assert data == '"' + "y" * 56 + "..."


def test_multi_line_reasons_stay_on_one_line():
    status, lines = run("validate")

    reasons = [e["Reason"] for e in status.history if e["EventType"] == EventType.TaskFailed]
    assert reasons == ["Activity function 'check' failed: ValueError: short\nvague"]
    assert len(lines) == 4
    assert only(lines, "<- activity check #0 FAILED").endswith(
        "FAILED: Activity function 'check' failed: ValueError: short vague")


def test_an_empty_history_renders_as_nothing():
    assert timeline([]) == ""


def test_a_history_exactly_at_the_limit_is_not_cut():
    sim = Simulator(app)
    history = sim.wait_for_completion(sim.start_new("greet_many", 3)).history
    full = timeline(history, max_lines=None)

    assert len(full.splitlines()) == 8
    assert timeline(history) == timeline(history, max_lines=8) == full
    assert "... 1 events skipped ..." in timeline(history, max_lines=7)


def test_inputs_show_the_value_passed_not_the_hosts_encoding():
    status, lines = run("greet_many", 1)

    started = status.history[1]["Input"]
    assert started == '"1"'     # the history keeps the host's form; only the display decodes
    assert lines[0].endswith("started greet_many input=1")
    assert only(lines, "-> activity greet #0").endswith('input="guest 0"')


def test_an_object_input_reads_as_the_json_the_user_passed():
    _, lines = run("greet_later", {"hours": 1})

    assert lines[0].endswith('started greet_later input={"hours": 1}')
    assert only(lines, "-> activity greet #1").endswith('input="Ana"')


def test_entity_calls_show_their_input_and_the_result_or_the_error():
    _, lines = run("count_up", 5)

    assert only(lines, "#0 input=").endswith("-> entity call add on @counter@c1 #0 input=5")
    assert only(lines, "#1 input=").endswith('-> entity call add on @counter@c1 #1 input="x"')
    responses = [line.split("  ep", 1)[1][4:] for line in lines if "<- entity" in line]
    assert responses[0] == "<- entity add on @counter@c1 response=5"
    assert responses[1].startswith("<- entity add on @counter@c1 FAILED: unsupported operand")


def test_unwrap_takes_off_only_the_hosts_string_layer():
    assert unwrap('"\\"tides\\""') == '"tides"'        # df_dumps text stored as a JSON string
    assert unwrap('"{\\"a\\": 1}"') == '{"a": 1}'
    assert unwrap('"tides"') == '"tides"'                 # raw JSON (an HTTP start): as is
    assert unwrap('{"a": 1}') == '{"a": 1}'
    assert unwrap(None) is None and unwrap("") == ""
