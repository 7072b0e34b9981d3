"""Agent Framework durable agents under the simulator: sessions read back, tools, pitfalls."""

import json

import pytest

from dafx_testing import CrashPlan
from dafx_testing.agents.sessions import conversation_problems, read_session
from dafx_testing.core.errors import DafxError, NonDeterminismError
from fakes.personas import forecaster

pytestmark = pytest.mark.dafx_app("apps/forecast_app.py")


@pytest.fixture
def sim(dafx, fake_llm):
    fake_llm.agent("Forecaster").respond_with(forecaster)
    return dafx


def state(*entries):
    return json.dumps({"schemaVersion": "1.1.0", "data": {"conversationHistory": list(entries)}})


def request(cid, text):
    return {"$type": "request", "correlationId": cid, "createdAt": "2025-01-01T00:00:00+00:00",
            "responseType": "text",
            "messages": [{"role": "user", "contents": [{"$type": "text", "text": text}]}]}


def response(cid, *messages):
    return {"$type": "response", "correlationId": cid, "createdAt": "2025-01-01T00:00:00+00:00",
            "messages": list(messages)}


def test_a_tool_call_and_its_result_are_read_back_from_the_session(sim, fake_llm):
    reply = sim.http.post("/api/agents/Forecaster/run", json={"message": "Weather in Oslo?",
                                                               "session_id": "s1"})

    assert reply.json()["response"] == "Forecast: Sunny, 24C in Oslo."
    session = sim.agent_session("Forecaster", "s1")
    call, = session.tool_calls
    assert (call.name, call.arguments, call.result) == ("get_weather", {"city": "Oslo"},
                                                        "Sunny, 24C in Oslo")
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant"]
    assert 'calls get_weather({"city": "Oslo"})' in session.transcript()
    assert len(fake_llm.requests) == 2                   # the tool loop: call, then answer


def test_sessions_are_listed_and_addressed_by_key_or_session_id_string(sim):
    for key in ("a", "b"):
        sim.http.post("/api/agents/Forecaster/run", json={"message": "Weather in Rome?",
                                                           "session_id": key})

    assert sim.agents == ["Forecaster"]
    assert [s.key for s in sim.agent_sessions("Forecaster")] == ["a", "b"]
    assert sim.agent_session("Forecaster", "@Forecaster@b").key == "b"
    assert sim.agent_session("Forecaster", "never-used").turns == []


def test_an_unknown_agent_is_named_with_the_known_ones(sim):
    with pytest.raises(DafxError, match=r"no durable agent 'Joker'.*'Forecaster'"):
        sim.agent_session("Joker", "s1")


def test_a_failing_model_is_stored_as_an_error_turn_after_the_streaming_fallback(sim, fake_llm):
    fake_llm.fault("content_filter", times=2)      # a 400: the SDK does not retry it

    reply = sim.http.post("/api/agents/Forecaster/run", json={"message": "Weather in Oslo?",
                                                               "session_id": "s1"})

    assert reply.status_code == 200
    turn, = sim.agent_session("Forecaster", "s1").turns
    assert turn.errors and turn.reply == ""
    assert len(fake_llm.requests) == 2                   # streaming, then the non-streaming retry


def test_yielding_a_fire_and_forget_call_fails_like_on_azure_functions(sim):
    status = sim.wait_for_completion(sim.start_new("yield_fire_and_forget"))

    assert status.runtime_status == "Failed"
    assert status.output == ("Orchestrator function 'yield_fire_and_forget' failed: "
                             "Exception: Attempted to convert an anonymous Action to JSON")


def test_a_replay_that_fails_before_a_recorded_task_names_the_failure(sim):
    from datetime import datetime, timezone

    from dafx_testing.core.history import EventType, new_event
    from dafx_testing.functions.host import HostReplay

    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    history = [new_event(EventType.OrchestratorStarted, now),
               new_event(EventType.ExecutionStarted, now, Name="x", Input=None),
               new_event(EventType.TaskScheduled, now, EventId=0, Name="polish")]
    state = {"isDone": False, "schemaVersion": 2, "actions": [[]], "error": "Exception: boom"}

    outcome = HostReplay(instance_id="i", execution_id="e", name="x", parent_instance_id=None,
                         catalog=sim._worker.catalog).replay(history, state)

    error = outcome.divergence
    assert isinstance(error, NonDeterminismError) and error.orchestrator_error == "Exception: boom"
    assert "that failure, not a code change" in str(error)


def test_a_crash_plan_on_the_agent_entity_repeats_the_model_call_not_the_turn(sim, fake_llm):
    sim.crash_log.plan = CrashPlan(functions={"dafx-Forecaster"}, kinds={"entity"})

    sim.http.post("/api/agents/Forecaster/run", json={"message": "Weather in Oslo?",
                                                       "session_id": "s1"})

    assert len(sim.crashes) == 1
    assert len(fake_llm.requests) == 4                   # the tool loop, twice
    assert sim.agent_session("Forecaster", "s1").replies == ["Forecast: Sunny, 24C in Oslo."]


def test_reading_a_stored_state_pairs_requests_with_responses():
    raw = state(request("c1", "hi"),
                response("c1", {"role": "assistant", "authorName": "Bot",
                                "contents": [{"$type": "text", "text": "hello"}]}),
                request("c2", "still there?"))

    session = read_session("Bot", "k", raw)

    assert session.user_messages == ["hi", "still there?"]
    assert session.replies == ["hello", None]
    assert session.turns[0].response[0].author == "Bot"
    assert "(no response yet)" in session.transcript()
    assert read_session("Bot", "k", None).turns == []


def test_conversation_problems_name_duplicates_and_orphans():
    reply = {"role": "assistant", "contents": [{"$type": "text", "text": "hello"}]}

    assert conversation_problems(state(request("c1", "hi"), response("c1", reply))) == []
    assert conversation_problems(state(request("c1", "hi"), request("c1", "hi"),
                                       response("c1", reply), response("c1", reply))) == [
        "the request 'c1' is stored 2 times", "the response 'c1' is stored 2 times"]
    assert conversation_problems(state(response("c9", reply))) == ["the response 'c9' has no request"]


def test_a_sweep_reports_a_conversation_that_stored_a_turn_twice():
    from collections import Counter

    from dafx_testing.checks.sweep import MODEL_CALLS, Observation, SweepReport, _compare

    reply = {"role": "assistant", "contents": [{"$type": "text", "text": "hello"}]}
    once = state(request("c1", "hi"), response("c1", reply))
    twice = state(request("c1", "hi"), request("c1", "hi"), response("c1", reply))

    def observed(conversation, model_calls):
        return Observation({}, {"@dafx-bot@s1": (True, conversation)}, {},
                           Counter({MODEL_CALLS: model_calls}), set(), None, None, [], [])

    report = SweepReport(points=[])
    _compare(observed(once, 1), observed(twice, 2), set(), report)

    failure, = report.failures
    assert "agent session @dafx-bot@s1: the request 'c1' is stored 2 times" in failure.problems
    repeated, = report.repeated_model_calls
    assert (repeated.expected, repeated.actual) == (1, 2)
