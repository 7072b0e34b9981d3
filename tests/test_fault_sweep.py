"""Model-fault sweeps and fault plans: every model call failed every way, each run judged.

The app (tests/apps/fault_app.py) asks a Writer three ways: an activity the orchestration
retries (survives), the same activity without a retry (fails cleanly), and an activity that
swallows the model error (broken: another output, or a wait nothing ends). The durable agent
``Writer`` shows the Agent Framework's own fallback.

The faults that make the openai client back off for real (its retries of 429, 5xx and
connection errors sleep on the Agent Framework's own event-loop thread, outside virtual time)
are left out of the agent sweeps to keep the suite fast.
"""

from __future__ import annotations

import json

import pytest

from dafx_testing import ArgumentError, FaultPlan, FaultSweepReport, Simulator
from dafx_testing.llm import FAULT_KINDS
from dafx_testing.reports.json_output import fault_sweep_json

pytestmark = pytest.mark.dafx_app("apps/fault_app.py")

DRAFT = "A draft about tides."
QUICK = ("content_filter", "malformed_json", "stream_cut")   # no real client back-off


@pytest.fixture
def sim(dafx, fake_llm):
    fake_llm.agent("Writer").reply(DRAFT)       # one reply: the sweep serves it afresh per run
    return dafx


def orchestrate(name):
    def scenario(sim):
        sim.wait_for_completion(sim.start_new(name, "tides", instance_id="draft"))
    return scenario


# -- FaultPlan --------------------------------------------------------------------------------


def test_a_fault_plan_fails_the_numbered_call_in_a_plain_run(dafx_factory, fake_llm):
    fake_llm.agent("Writer").reply(DRAFT)
    sim = dafx_factory(fault_plan=FaultPlan(call=1, fault="rate_limit"))

    status = sim.wait_for_completion(sim.start_new("draft_with_retry", "tides"))

    assert (status.runtime_status, status.output) == ("Completed", DRAFT)
    assert sim.model_calls.injected == [(1, "rate_limit")]
    assert len(sim.model_calls.requests) == 2                # the retried activity asked again
    attempts = [(call.attempt, call.error is None) for call in sim.activity_calls("ask_writer")]
    assert attempts == [(1, False), (2, True)]
    assert "RateLimitError" in repr(sim.activity_calls("ask_writer")[0].error)


def test_two_planned_faults_defeat_the_agent_frameworks_fallback_and_leave_an_error_reply(
        dafx_factory, fake_llm):
    # agent_framework_durabletask/_entities.py:249-273 retries a failed streaming run once
    # without streaming; when that fails too, :197-214 stores an error response and returns
    # it, so the orchestration gets an empty .text and completes.
    fake_llm.agent("Writer").reply(DRAFT)
    sim = dafx_factory(fault_plan=FaultPlan({1: "content_filter", 2: "content_filter"}))

    status = sim.wait_for_completion(sim.start_new("agent_draft", "tides"))

    assert (status.runtime_status, status.output) == ("Completed", "")
    session, = sim.agent_sessions("Writer")
    assert session.turns[0].errors and session.turns[0].reply == ""
    assert [r.stream for r in sim.model_calls.requests] == [True, False]


def test_a_plan_is_written_three_ways_and_prints_its_reproduction():
    one = FaultPlan(call=3, fault="rate_limit")
    assert one == FaultPlan({3: "rate_limit"}) == FaultPlan([(3, "rate_limit")])
    assert repr(one) == 'FaultPlan(call=3, fault="rate_limit")'
    assert repr(FaultPlan({5: "timeout", 3: "rate_limit"})) == \
        'FaultPlan({3: "rate_limit", 5: "timeout"})'
    assert eval(repr(FaultPlan({3: "timeout", 4: "unavailable"}))) == FaultPlan(  # noqa: S307
        [(4, "unavailable"), (3, "timeout")])
    assert FaultPlan().fault_at(1) is None and one.fault_at(3) == "rate_limit"
    with pytest.raises(AttributeError):
        one.faults = ()  # type: ignore[misc]


@pytest.mark.parametrize(("arguments", "message"), [
    ({"call": 1, "fault": "slow"}, "unknown fault kind 'slow' for call 1; use one of rate_limit, "),
    ({"call": 0, "fault": "timeout"}, "numbered from 1"),
    ({"call": 1}, "give call= and fault= together"),
])
def test_a_bad_plan_names_what_is_valid(arguments, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        FaultPlan(**arguments)


def test_a_simulator_refuses_a_plan_that_is_not_a_fault_plan():
    with pytest.raises(ArgumentError, match=r"fault_plan=\{3: 'timeout'\}.*expected a FaultPlan"):
        Simulator("tests/apps/hello_app.py", fault_plan={3: "timeout"})


# -- verdicts --------------------------------------------------------------------------------


def test_an_orchestration_that_retries_its_model_activity_survives_every_fault(sim, fake_llm):
    report = sim.fault_sweep(orchestrate("draft_with_retry"), expect="survive")

    assert report.ok, report.explain()
    assert report.faults == FAULT_KINDS
    call, = report.calls
    assert (call.number, call.agent, call.caller) == (
        1, "Writer", "activity 'ask_writer' of instance 'draft'")
    assert {run.verdict for run in report.runs} == {"survived"}
    assert {run.model_calls for run in report.runs} == {2}       # the retry asked again
    with pytest.raises(AssertionError, match="served 0, 1 queued"):
        fake_llm.assert_all_used()       # the sweep leaves the script as it found it


def test_an_orchestration_without_a_retry_fails_cleanly(sim):
    report = sim.fault_sweep(orchestrate("draft_once"), faults=["server_error", "timeout"])

    assert report.ok, report.explain()                 # failing cleanly is not broken...
    assert [run.verdict for run in report.runs] == ["failed cleanly"] * 2
    assert "instance 'draft' ended Failed" in report.runs[0].reasons[0]
    assert "InternalServerError" in report.runs[0].reasons[0]
    strict = sim.fault_sweep(orchestrate("draft_once"), faults=["timeout"], expect="survive")
    assert not strict.ok                               # ...unless the app promised to survive
    assert 'reproduce: FaultPlan(call=1, fault="timeout")' in strict.explain()


def test_a_swallowed_fault_that_changes_the_output_is_broken(sim):
    report = sim.fault_sweep(orchestrate("draft_or_empty"), faults=["rate_limit", "malformed_json"])

    assert not report.ok
    assert report.verdict(1, "rate_limit") == "broken"
    reason, = report.runs[0].reasons
    assert reason.startswith("completed with another output while nothing failed: instance "
                             "'draft' Completed with output \"\"")
    # A JSON decode error is no openai.OpenAIError: the activity raises, the instance fails.
    assert report.verdict(1, "malformed_json") == "failed cleanly"


def test_an_orchestration_left_waiting_for_an_event_nothing_sends_is_broken(sim):
    def scenario(sim):
        sim.start_new("draft_then_wait", "tides", instance_id="draft")
        sim.run_until_idle()

    report = sim.fault_sweep(scenario, faults=["timeout"])

    run, = report.runs
    assert run.verdict == "broken"
    assert run.reasons == ["instance 'draft' is stuck Running with nothing to wake it: it waits "
                           "only for external event(s) 'DraftReady', which nothing sends"]


def test_an_instance_waiting_for_its_retry_timer_has_not_failed_or_broken(sim):
    def scenario(sim):                                 # ends before the 5 s retry interval
        sim.start_new("draft_with_retry", "tides", instance_id="draft")
        sim.run_until_idle()

    run, = sim.fault_sweep(scenario, faults=["timeout"]).runs

    assert run.verdict == "failed cleanly"
    assert run.reasons[0].startswith("instance 'draft' has not finished (Running, waiting for a "
                                     "timer at 2025-01-01T00:00:05")


def test_the_durable_agent_survives_one_fault_through_its_non_streaming_fallback(sim):
    report = sim.fault_sweep(orchestrate("agent_draft"), faults=QUICK, expect="survive")

    assert report.ok, report.explain()
    call, = report.calls
    assert call.agent == "Writer" and call.stream and call.caller.startswith("entity '@dafx-writer@")
    assert {run.model_calls for run in report.runs} == {2}       # streaming, then non-streaming


def test_an_agent_session_holding_an_error_reply_is_broken(dafx, fake_llm):
    # A flaky model: the first request of each run fails anyway (a fault rule, restored for
    # every run). The baseline survives through the fallback; one more fault defeats it.
    fake_llm.agent("Writer").fault("content_filter").reply(DRAFT)

    report = dafx.fault_sweep(orchestrate("agent_draft"), faults=["stream_cut"])

    assert [call.stream for call in report.calls] == [True, False]
    # Call 1 cut mid-stream: the entity falls back, the fallback meets the flaky 400 (not
    # retried), the entity stores an error reply. Call 2 (the non-streaming fallback) cut: the
    # openai client retries a dropped connection itself (max_retries=2), so it survives.
    assert [run.verdict for run in report.runs] == ["broken", "survived"]
    assert [run.model_calls for run in report.runs] == [2, 3]
    reasons = report.runs[0].reasons
    assert reasons[0].startswith("agent session @dafx-writer@")
    assert "holds an error reply for request " in reasons[0]
    assert "the next turn sends the model two user messages in a row" in reasons[0]
    assert reasons[1] == ("completed with another output while nothing failed: instance 'draft' "
                          'Completed with output "" (baseline: Completed with output '
                          '"A draft about tides.")')


def test_a_conversation_with_user_turns_in_a_row_or_no_reply_is_corrupt():
    from dafx_testing.checks.fault_sweep import _session_problems

    ask = {"$type": "request", "correlationId": "a", "messages": []}
    again = {**ask, "correlationId": "b"}
    answer = {"$type": "response", "correlationId": "b", "messages": []}

    assert _session_problems([ask, again, answer]) == [
        "holds two user turns in a row (request 'a' has no reply before the next request)"]
    assert _session_problems([ask]) == ["holds request 'a' with no response"]
    assert _session_problems([again, answer]) == []


def test_a_scenario_that_raises_past_the_durable_machinery_is_broken(sim):
    def scenario(sim):
        status = sim.wait_for_completion(sim.start_new("draft_once", "tides", instance_id="d"))
        if status.runtime_status == "Failed":
            raise RuntimeError("the app's caller crashed on the failed draft")

    run, = sim.fault_sweep(scenario, faults=["unavailable"]).runs

    assert run.verdict == "broken"
    assert ("an exception escaped the durable machinery: the scenario raised RuntimeError: "
            "the app's caller crashed on the failed draft") in run.reasons


def test_changed_effects_are_broken(sim):
    ledger = []

    def scenario(sim):
        ledger.clear()
        status = sim.wait_for_completion(sim.start_new("draft_with_retry", "t", instance_id="d"))
        ledger.extend(call.name for call in sim.activity_calls())   # one entry per attempt
        assert status.output == DRAFT

    run, = sim.fault_sweep(scenario, faults=["timeout"], effects=lambda: list(ledger)).runs

    assert run.verdict == "broken"
    assert run.reasons == ["the outside world differs: expected [\"ask_writer\"], got "
                           "[\"ask_writer\", \"ask_writer\"]"]


def test_a_baseline_without_model_calls_is_not_ok(sim):
    report = sim.fault_sweep(lambda sim: None)

    assert not report.ok and report.runs == []
    assert "made no model calls" in report.explain()


def test_bad_sweep_arguments_list_what_is_valid(sim):
    with pytest.raises(ArgumentError, match="unknown fault kind\\(s\\) 'slow'; valid: rate_limit, "):
        sim.fault_sweep(orchestrate("draft_once"), faults=["slow"])
    with pytest.raises(TypeError, match=r"faults=\['timeout'\]"):
        sim.fault_sweep(orchestrate("draft_once"), faults="timeout")
    with pytest.raises(ArgumentError, match="expect='survived'"):
        sim.fault_sweep(orchestrate("draft_once"), expect="survived")


# -- the report -------------------------------------------------------------------------------


def test_the_report_explains_a_matrix_and_reproductions(sim):
    report = sim.fault_sweep(orchestrate("draft_or_empty"),
                             faults=["rate_limit", "malformed_json", "content_filter"])

    assert isinstance(report, FaultSweepReport)
    text = report.explain()
    assert text.splitlines()[:3] == [
        "fault sweep: 1 model call(s) × 3 fault(s) = 3 run(s): 1 failed cleanly, 2 broken "
        "(seed 0): 2 failing run(s)",
        "call                                                            rate_limit  malformed_json  "
        "content_filter",
        "#1 Writer (activity 'ask_writer_or_empty' of instance 'draft')  broken ✗    "
        "failed cleanly  broken ✗",
    ]
    assert text.count("reproduce: ") == 2
    assert 'reproduce: FaultPlan(call=1, fault="content_filter")' in text


def test_the_report_as_json(sim):
    report = sim.fault_sweep(orchestrate("draft_once"), faults=["timeout"], expect="survive")

    document = json.loads(json.dumps(fault_sweep_json(report)))

    assert document["ok"] is False and document["expect"] == "survive"
    assert document["calls"] == [{"number": 1, "agent": "Writer", "stream": False,
                                  "caller": "activity 'ask_writer' of instance 'draft'"}]
    run, = document["runs"]
    assert {k: run[k] for k in ("call", "agent", "fault", "verdict", "ok", "modelCalls",
                                "reproduce")} == {
        "call": 1, "agent": "Writer", "fault": "timeout", "verdict": "failed cleanly",
        "ok": False, "modelCalls": 1, "reproduce": 'FaultPlan(call=1, fault="timeout")'}
