"""Durable entities: batches through the SDK handle, state as the host stores it."""

import azure.durable_functions as df
import pytest

from dafx_testing import Simulator, UnknownFunctionError
from dafx_testing.core.history import EventType

app = df.DFApp()
CONTEXTS = []   # one context object per batch the entity function ran


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context):
    CONTEXTS.append(context)
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
    elif operation == "get":
        context.set_result(value)
    elif operation == "boom":
        context.set_state(value + 100)     # not rolled back when the operation fails
        raise RuntimeError("boom")
    elif operation == "reset":
        value = 0
    elif operation == "delete":
        context.destruct_on_exit()
        return
    context.set_state(value)


@app.orchestration_trigger(context_name="context")
def call_then_read(context):
    entity = df.EntityId("Counter", context.get_input())
    context.signal_entity(entity, "add", 1)        # one-way, but queued before the call
    return (yield context.call_entity(entity, "get"))


@app.orchestration_trigger(context_name="context")
def get_and_reset_together(context):
    entity = df.EntityId("Counter", "stale")
    return (yield context.task_all([context.call_entity(entity, "get"),
                                    context.call_entity(entity, "reset")]))


@app.orchestration_trigger(context_name="context")
def catches_entity_error(context):
    try:
        yield context.call_entity(df.EntityId("Counter", "err"), "boom")
    except Exception as error:
        return f"caught: {error}"


@app.orchestration_trigger(context_name="context")
def adds(context):
    key, amount, times = context.get_input()
    entity = df.EntityId("Counter", key)
    for _ in range(times):
        yield context.call_entity(entity, "add", amount)
    return (yield context.call_entity(entity, "get"))


@pytest.fixture
def sim():
    CONTEXTS.clear()
    return Simulator(app)


def test_state_is_kept_across_batches_as_the_stored_json_text(sim):
    for operation, value in [("add", 5), ("add", 3), ("get", None)]:
        sim.signal_entity(("Counter", "k1"), operation, value)
    sim.run_until_idle()
    assert sim.get_entity(("Counter", "k1")).raw_state == "8"
    assert len(CONTEXTS) == 3                       # three operations...
    assert len({id(c) for c in CONTEXTS}) == 1      # ...in one batch (one context)

    sim.signal_entity(("Counter", "k1"), "add", 2)
    sim.run_until_idle()
    assert sim.entity_state(("Counter", "k1")) == 10

    sim.signal_entity(("Counter", "k1"), "reset")
    sim.run_until_idle()
    entity = sim.get_entity(df.EntityId("Counter", "k1"))
    assert (entity.exists, entity.state, entity.raw_state) == (True, 0, "0")


def test_queued_operations_form_batches_of_the_configured_size(sim):
    sim.entity_batch_size = 2
    for amount in range(5):
        sim.signal_entity("@counter@b", "add", amount)

    sim.run_until_idle()

    assert len({id(c) for c in CONTEXTS}) == 3     # 2 + 2 + 1 operations
    assert sim.entity_state(("Counter", "b")) == 10


def test_a_signal_sent_before_a_call_is_processed_first(sim):
    status = sim.wait_for_completion(sim.start_new("call_then_read", "order"))

    assert status.output == 1
    sent = [e for e in status.history if e["EventType"] == EventType.EventSent]
    assert [e["InstanceId"] for e in sent] == ["@counter@order", "@counter@order"]
    assert [e["EventId"] for e in sent] == [0, 1]


def test_an_operation_that_raises_is_caught_in_the_orchestrator_without_rollback(sim):
    status = sim.wait_for_completion(sim.start_new("catches_entity_error"))

    assert status.output == "caught: boom"
    assert sim.entity_state(("Counter", "err")) == 100     # the SDK does not roll back
    raised = [e for e in status.history if e["EventType"] == EventType.EventRaised]
    assert '"exceptionType": "Error"' in raised[0]["Input"]


def test_an_operation_without_set_result_reports_the_previous_result_in_its_batch(sim):
    sim.signal_entity(("Counter", "stale"), "add", 7)
    sim.run_until_idle()

    status = sim.wait_for_completion(sim.start_new("get_and_reset_together"))

    assert status.output == [7, 7]        # reset never called set_result: the SDK quirk
    assert sim.entity_state(("Counter", "stale")) == 0


def test_destruct_on_exit_deletes_the_state(sim):
    sim.signal_entity(("Counter", "gone"), "add", 4)
    sim.signal_entity(("Counter", "gone"), "delete")
    sim.run_until_idle()

    entity = sim.get_entity(("Counter", "gone"))
    assert (entity.exists, entity.raw_state) == (False, None)
    assert sim.entity_state(("Counter", "gone")) is None


def test_a_signal_without_input_fails_get_input_as_in_the_sdk(sim):
    sim.signal_entity(("Counter", "k"), "add")
    sim.run_until_idle()

    assert sim.get_entity(("Counter", "k")).exists is False


def test_concurrent_orchestrations_on_one_entity_lose_no_update(sim):
    first = sim.start_new("adds", ["shared", 1, 5])
    second = sim.start_new("adds", ["shared", 10, 5])

    sim.run_until_idle()

    assert sim.entity_state(("Counter", "shared")) == 55
    finals = {sim.get_status(first).output, sim.get_status(second).output}
    assert 55 in finals


def test_entity_names_are_case_insensitive_and_unknown_ones_are_refused(sim):
    sim.signal_entity(("COUNTER", "x"), "add", 1)
    sim.run_until_idle()
    assert sim.entity_state(("counter", "x")) == 1
    assert sim.get_entity(("Counter", "never")) is None

    with pytest.raises(UnknownFunctionError, match="known entities: 'Counter'"):
        sim.signal_entity(("Gauge", "x"), "add", 1)
