"""Host-side replay: DTFx's non-determinism messages and event delivery rules.

Each case records a history with one version of an orchestrator, then replays it
under changed code, as happens when an app is redeployed with instances in flight.
"""

from datetime import timedelta

import azure.durable_functions as df
import pytest

from dafx_testing import NonDeterminismError, Simulator

TAIL = "Was a change made to the orchestrator code after this instance had already started running?"


def app_with(orchestrator):
    """A DFApp with ``orchestrator`` registered as 'flow' plus the shared functions."""
    app = df.DFApp()
    app.orchestration_trigger(context_name="context", orchestration="flow")(orchestrator)

    @app.activity_trigger(input_name="value")
    def step(value):
        return value

    @app.activity_trigger(input_name="value")
    def other_step(value):
        return value

    @app.orchestration_trigger(context_name="context")
    def helper(context):
        return "helped"

    @app.orchestration_trigger(context_name="context")
    def other_helper(context):
        return "helped otherwise"

    return app


def replay_under(v1, v2):
    """Run v1 until it waits for 'Go', then let v2 take over; return v2's divergence."""
    first = Simulator(app_with(v1))
    instance_id = first.start_new("flow")
    first.run_until_idle()
    assert first.get_status(instance_id).waiting_for == ["Go"]

    second = Simulator(app_with(v2))
    second.load_history({"history": first.get_status(instance_id).history})
    second.raise_event(instance_id, "Go")
    with pytest.raises(NonDeterminismError) as caught:
        second.run_until_idle()
    status = second.get_status(instance_id)
    assert status.runtime_status == "Failed"
    assert status.output == caught.value.host_message
    return caught.value


def test_activity_replaced_by_a_timer():
    def v1(context):
        yield context.call_activity("step", 1)
        yield context.wait_for_external_event("Go")

    def v2(context):
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        yield context.wait_for_external_event("Go")

    error = replay_under(v1, v2)

    assert error.host_message == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled an activity task with sequence number 0 named 'step', but the current "
        "orchestration replay instead produced a CreateTimerOrchestratorAction action with this "
        f"sequence number. {TAIL}")
    assert error.expected == "activity 'step' [#0]"
    assert error.actual.startswith("timer until")


def test_activity_removed():
    def v1(context):
        yield context.call_activity("step", 1)
        yield context.call_activity("other_step", 2)
        yield context.wait_for_external_event("Go")

    def v2(context):
        yield context.call_activity("step", 1)
        yield context.wait_for_external_event("Go")

    error = replay_under(v1, v2)

    assert error.host_message == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled an activity task with sequence ID 1 and name 'other_step' (version ''), but "
        f"the current replay execution hasn't (yet?) scheduled this task. {TAIL}")
    assert error.actual is None


def test_timer_removed():
    def v1(context):
        yield context.create_timer(context.current_utc_datetime)
        yield context.wait_for_external_event("Go")

    def v2(context):
        yield context.wait_for_external_event("Go")

    error = replay_under(v1, v2)

    assert error.host_message == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled a timer task with sequence number 0 but the current replay execution hasn't "
        f"(yet?) scheduled this task. {TAIL}")


def test_sub_orchestration_renamed():
    def v1(context):
        yield context.call_sub_orchestrator("helper", None, instance_id="kid")
        yield context.wait_for_external_event("Go")

    def v2(context):
        yield context.call_sub_orchestrator("other_helper", None, instance_id="kid")
        yield context.wait_for_external_event("Go")

    error = replay_under(v1, v2)

    assert error.host_message == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled a sub-orchestration task with sequence ID 0 and name 'helper' (version '', "
        "instance ID 'kid'), but the current orchestration replay instead scheduled a "
        f"sub-orchestration task with name other_helper at this sequence number. {TAIL}")


def test_activity_name_case_does_not_matter_to_the_host():
    def v1(context):
        yield context.call_activity("step", 1)
        return (yield context.wait_for_external_event("Go"))

    def v2(context):
        yield context.call_activity("STEP", 1)
        return (yield context.wait_for_external_event("Go"))

    first = Simulator(app_with(v1))
    instance_id = first.start_new("flow")
    first.run_until_idle()
    second = Simulator(app_with(v2))
    second.load_history({"history": first.get_status(instance_id).history})
    second.raise_event(instance_id, "Go", "went")

    assert second.wait_for_completion(instance_id).output == "went"


def test_concurrent_waiters_on_one_name_are_served_last_first():
    def flow(context):
        early = context.wait_for_external_event("E")
        late = context.wait_for_external_event("E")
        return (yield context.task_all([early, late]))

    sim = Simulator(app_with(flow))
    instance_id = sim.start_new("flow")
    sim.run_until_idle()
    sim.raise_event(instance_id, "E", "first")
    sim.raise_event(instance_id, "E", "second")

    status = sim.wait_for_completion(instance_id)

    assert status.output == ["second", "first"]


def test_events_buffered_first_in_first_out():
    def flow(context):
        first = yield context.wait_for_external_event("E")
        second = yield context.wait_for_external_event("E")
        return [first, second]

    sim = Simulator(app_with(flow))
    instance_id = sim.start_new("flow")
    sim.run_until_idle()
    sim.raise_event(instance_id, "E", "one")
    sim.raise_event(instance_id, "E", "two")

    assert sim.wait_for_completion(instance_id).output == ["one", "two"]


def test_divergence_can_be_collected_instead_of_raised():
    def v1(context):
        yield context.call_activity("step", 1)
        yield context.wait_for_external_event("Go")

    def v2(context):
        yield context.call_activity("other_step", 1)
        yield context.wait_for_external_event("Go")

    first = Simulator(app_with(v1))
    instance_id = first.start_new("flow")
    first.run_until_idle()
    second = Simulator(app_with(v2), raise_on_nondeterminism=False)
    second.load_history({"history": first.get_status(instance_id).history})
    second.raise_event(instance_id, "Go")
    second.run_until_idle()

    assert [e.sequence_number for e in second.nondeterminism] == [0]
    assert "named 'step'" in str(second.nondeterminism[0])
