"""What an instance waits for, after events it does not await have arrived.

The Python SDK matches an event to ``wait_for_external_event`` by exact name;
the host's waiters ignore case. ``waiting_for`` and the stuck-wait message
follow the orchestrator code, and name the events nothing awaits (buffered).
"""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df
import pytest

from dafx_testing import Simulator, WaitTimeoutError

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def approval(context):
    return (yield context.wait_for_external_event("Approved"))


@app.orchestration_trigger(context_name="context")
def count_then_approve(context):
    total = yield context.call_entity(df.EntityId("Counter", "c1"), "add", 1)
    decision = yield context.wait_for_external_event("Approved")
    return [total, decision]


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context):
    context.set_result(context.get_state(lambda: 0) + context.get_input())


def waiting(orchestrator: str, *events: str) -> tuple[Simulator, str]:
    sim = Simulator(app)
    instance_id = sim.start_new(orchestrator, instance_id="w-1")
    sim.run_until_idle()
    for name in events:
        sim.raise_event(instance_id, name, False)
    sim.run_until_idle()
    return sim, instance_id


def stuck_message(sim: Simulator, instance_id: str) -> str:
    with pytest.raises(WaitTimeoutError) as raised:
        sim.wait_for_completion(instance_id, timeout=timedelta(hours=1))
    return str(raised.value)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("other", ["Rejected", "approved"])
def test_an_event_under_another_name_leaves_the_wait_named(other):
    sim, instance_id = waiting("approval", other)

    status = sim.get_status(instance_id)
    assert status.runtime_status == "Running"
    assert status.waiting_for == ["Approved"]
    message = stuck_message(sim, instance_id)
    assert "waiting for external event(s) 'Approved'" in message
    assert f"received event(s) '{other}', which nothing awaits (buffered" in message


def test_the_awaited_event_still_completes_the_instance_after_a_stray_one():
    sim, instance_id = waiting("approval", "Rejected")
    sim.raise_event(instance_id, "Approved", True)

    status = sim.wait_for_completion(instance_id)
    assert (status.runtime_status, status.output, status.waiting_for) == ("Completed", True, [])


def test_entity_responses_are_neither_awaited_events_nor_stray_ones():
    sim, instance_id = waiting("count_then_approve")

    assert sim.get_status(instance_id).waiting_for == ["Approved"]
    message = stuck_message(sim, instance_id)
    assert "waiting for external event(s) 'Approved'." in message
    assert "received" not in message
