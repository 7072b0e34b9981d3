"""The slogan workflow over its HTTP routes: an agent drafts, a person approves.

The reviewer is the test: it reads the pending request from the status route,
as a UI would, and answers through the ``respondUrl`` it names.
"""

import pytest

from dafx_testing import Simulator

pytestmark = pytest.mark.dafx_app("function_app.py")

SLOGAN = "Tides wait for no one."


@pytest.fixture
def sim(dafx, fake_llm):
    writer = dafx.app.agents["slogan-Writer"]
    fake_llm.agent(writer).respond_with(lambda request: f'  "{SLOGAN}"  ')
    return dafx


def start(sim) -> str:
    started = sim.http.post("/api/workflow/slogan/run", json="A slogan about tides")
    assert started.status_code == 202
    return started.json()["instanceId"]


def pending_request(sim, instance_id):
    status = sim.http.get(f"/api/workflow/slogan/status/{instance_id}").json()
    request, = status["pendingHumanInputRequests"]
    return request


def test_the_reviewer_approves_and_the_workflow_publishes(sim):
    instance_id = start(sim)
    sim.run_until_idle()

    request = pending_request(sim, instance_id)
    assert request["sourceExecutor"] == "review"
    assert request["requestType"].endswith(":ReviewRequest")
    answer = sim.http.post(request["respondUrl"], json="approve")

    assert answer.status_code == 200
    status = sim.wait_for_completion(instance_id)
    assert status.output == [f"Published: {SLOGAN}"]
    final = sim.http.get(f"/api/workflow/slogan/status/{instance_id}").json()
    assert (final["runtimeStatus"], final["output"]) == ("Completed", [f"Published: {SLOGAN}"])
    sim.check_replay(instance_id)


def test_a_rejection_carries_the_reason(sim):
    instance_id = start(sim)
    sim.run_until_idle()

    sim.http.post(pending_request(sim, instance_id)["respondUrl"], json="too wet")

    assert sim.wait_for_completion(instance_id).output == [f"Rejected (too wet): {SLOGAN}"]


def test_the_writer_runs_as_an_entity_with_one_conversation_per_run(sim):
    instance_id = start(sim)
    sim.run_until_idle()

    session = sim.agent_session("slogan-Writer", instance_id)
    assert session.user_messages == ["A slogan about tides"]
    assert session.turns[0].orchestration_id == instance_id
    assert [call.name for call in sim.activity_calls()] == ["dafx-slogan-polish",
                                                            "dafx-slogan-review"]


def test_waiting_for_the_response_times_out_in_virtual_time_while_a_person_is_asked(sim):
    started = sim.now

    reply = sim.http.post("/api/workflow/slogan/run", json="A slogan about tides",
                          params={"waitForResponse": "true", "timeoutSeconds": "20"})

    assert reply.status_code == 202                       # still waiting for the reviewer
    assert (sim.now - started).total_seconds() == 20
    assert pending_request(sim, reply.json()["instanceId"])["sourceExecutor"] == "review"


def test_responding_to_an_unknown_request_does_not_complete_the_run(sim):
    """The run keeps waiting, but its pending request drops out of the status route: the
    workflow publishes its status only while not replaying, the episode the bogus answer starts
    publishes none, and DTFx stores each episode's custom status, null included
    (TaskOrchestrationDispatcher.cs:725, DurableTask.Core 2.17.1), as production does."""
    instance_id = start(sim)
    sim.run_until_idle()
    request = pending_request(sim, instance_id)

    sim.http.post(f"/api/workflow/slogan/respond/{instance_id}/not-a-request", json="approve")
    sim.run_until_idle()

    assert sim.get_status(instance_id).runtime_status == "Running"
    assert sim.get_status(instance_id).custom_status is None
    status = sim.http.get(f"/api/workflow/slogan/status/{instance_id}").json()
    assert not status.get("pendingHumanInputRequests")
    sim.http.post(request["respondUrl"], json="approve")
    assert sim.wait_for_completion(instance_id).output == [f"Published: {SLOGAN}"]


def approved_run(sim: Simulator) -> None:
    instance_id = start(sim)
    sim.run_until_idle()
    sim.http.post(pending_request(sim, instance_id)["respondUrl"], json="approve")
    assert sim.wait_for_completion(instance_id).output == [f"Published: {SLOGAN}"]


def test_every_crash_point_of_an_approved_run_recovers(sim):
    report = sim.crash_sweep(approved_run, idempotent=["dafx-slogan-polish", "dafx-slogan-review"])

    assert report.ok, report.explain()
    assert {"entity", "activity", "episode"} <= {p.kind for p in report.points}
