"""Slow models in virtual time: work commits when its model calls return.

``fake.latency(seconds)`` makes answers take time. Under the simulator that time
is virtual: the activity or agent entity batch that called the model has run,
but its result reaches the task hub only when the call returns, so a deadline
can pass first, the agent entity stays locked, and a crash meanwhile loses the
answer. Nothing here sleeps for real.
"""

from datetime import timedelta

import pytest

from dafx_testing import CrashPlan, Simulator
from dafx_testing.core.errors import WaitTimeoutError
from fakes.personas import EXPLANATION, JOKE, joker

pytestmark = pytest.mark.dafx_app("apps/deadline_app.py")


def seconds_since(sim, start):
    return (sim.now - start).total_seconds()


@pytest.fixture
def analyst(dafx, fake_llm):
    """The Analyst agent's script."""
    return fake_llm.agent(dafx.app.agents["Analyst"])


@pytest.mark.parametrize("latency, outcome, finished_after", [(5, "analysis", 5),
                                                              (120, "deadline", 60)])
def test_an_agent_call_races_the_orchestrations_deadline(dafx, analyst, latency, outcome,
                                                         finished_after):
    analyst.latency(latency).reply("analysis")
    start = dafx.now

    status = dafx.wait_for_completion(dafx.start_new("agent_or_deadline", "Q3 numbers"))

    assert status.output == outcome
    assert seconds_since(dafx, start) == finished_after


def test_an_activity_that_outlives_its_deadline_still_holds_the_orchestration_open(dafx,
                                                                                  fake_llm):
    # The host completes an orchestration only when none of its tasks is open: the timer
    # wins at 60 s, but the activity cannot be cancelled and the result waits for it.
    fake_llm.latency(120).reply("summary")
    start = dafx.now
    instance_id = dafx.start_new("summary_or_deadline", "the report")

    dafx.advance(timedelta(seconds=61))
    running = dafx.get_status(instance_id).runtime_status
    status = dafx.wait_for_completion(instance_id)

    assert running == "Running"
    assert status.output == "deadline"
    assert seconds_since(dafx, start) == 120


def test_a_slow_activity_completes_when_its_model_call_returns(dafx, fake_llm):
    fake_llm.latency(7).reply("summary")
    instance_id = dafx.start_new("summary_or_deadline", "the report")

    dafx.run_until_idle()                       # the activity ran; its result is in flight
    in_flight = dafx.get_status(instance_id).runtime_status
    status = dafx.wait_for_completion(instance_id)

    assert in_flight == "Running"
    assert status.output == "summary"
    completed = [e for e in dafx.hub.get(instance_id).history if e["EventType"] == 5]
    assert completed[0]["Timestamp"] == "2025-01-01T00:00:07Z"
    assert len(dafx.activity_calls("summarize")) == 1


def test_a_wait_that_ends_before_the_model_returns_says_so(dafx, analyst):
    analyst.latency(30).reply("analysis")
    instance_id = dafx.start_new("agent_or_deadline", "Q3 numbers")

    with pytest.raises(WaitTimeoutError,
                       match="slow model call that returns at 2025-01-01T00:00:30"):
        dafx.wait_for_completion(instance_id, timeout=timedelta(seconds=10))


def test_a_crash_loses_every_result_in_flight_and_the_work_runs_again(dafx, analyst, fake_llm):
    analyst.latency(10).respond_with(lambda request: "analysis")
    fake_llm.latency(20).respond_with(lambda request: "summary")
    dafx.crash_log.plan = CrashPlan(kinds={"entity"}, functions={"dafx-Analyst"}, times=1)
    start = dafx.now
    by_agent = dafx.start_new("agent_or_deadline", "Q3 numbers")
    by_activity = dafx.start_new("summary_or_deadline", "the report")

    agent_status = dafx.wait_for_completion(by_agent)
    activity_status = dafx.wait_for_completion(by_activity)

    # The Analyst's batch landed at 10 s and the worker died committing it; the summary,
    # due at 20 s, died with it. Both ran again from 10 s.
    assert [(point.kind, point.name) for point in dafx.crashes] == [("entity", "dafx-analyst")]
    assert (agent_status.output, activity_status.output) == ("analysis", "summary")
    assert seconds_since(dafx, start) == 30
    assert len(fake_llm.requests) == 4
    assert len(dafx.activity_calls("summarize")) == 2
    sessions = dafx.agent_sessions("Analyst")
    assert [session.replies for session in sessions] == [["analysis"]]


def test_a_sweep_over_slow_agents_recovers_at_every_point(dafx, analyst):
    analyst.latency(5).respond_with(lambda request: "analysis")

    def scenario(sim: Simulator):
        status = sim.wait_for_completion(sim.start_new("agent_or_deadline", "Q3 numbers"))
        assert status.output == "analysis"

    report = dafx.crash_sweep(scenario)

    assert report.ok, report.explain()
    assert report.runs > 0


@pytest.mark.dafx_app("../scenarios/joker/function_app.py")
def test_an_agent_request_times_out_in_virtual_time_with_the_handlers_500(dafx, fake_llm):
    fake_llm.agent(dafx.app.agents["Joker"]).latency(
        lambda request: 45 if request.index == 1 else 0).respond_with(joker)
    start = dafx.now
    waited = dafx.app.max_poll_retries * dafx.app.poll_interval_seconds

    slow = dafx.http.post("/api/agents/Joker/run", json={"message": "Tell me a pirate joke.",
                                                          "session_id": "s1"})
    gave_up_after = seconds_since(dafx, start)
    pending = dafx.agent_session("Joker", "s1").turns
    follow_up = dafx.http.post("/api/agents/Joker/run", json={"message": "Explain it.",
                                                               "session_id": "s1"})

    assert slow.status_code == 500
    assert slow.json()["status"] == "timeout"
    assert gave_up_after == waited == 30
    assert pending == []                              # the reply is still in flight
    # The entity ran the first request as it was signalled and stayed locked until that
    # reply landed 45 s later; then it answered the follow-up, which sees the first exchange.
    assert follow_up.status_code == 200
    assert follow_up.json()["response"] == EXPLANATION
    assert seconds_since(dafx, start) == 45
    fake_llm.last_request.assert_conversation(
        "Tell me a pirate joke.", ("assistant", JOKE), "Explain it.")
    assert dafx.agent_session("Joker", "s1").replies == [JOKE, EXPLANATION]
