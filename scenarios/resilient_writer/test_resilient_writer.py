"""The resilient writer: its orchestration retries the agent call and survives every model fault.

Each orchestration is swept with every fault kind and ``expect="survive"``; each scenario run
records the virtual time it took, so the tests show the retry's cost twice: one more model
call per fault, and the retry interval passed on the simulator's clock (no real waiting).
"""

from datetime import timedelta

import pytest

from dafx_testing import FaultPlan
from dafx_testing.llm import FAULT_KINDS

pytestmark = pytest.mark.dafx_app("function_app.py")

DRAFT = "The moon pulls the sea twice a day."
# The wait before the second and the third attempt.
WAITS = {"write_with_retry": (5.0, 5.0), "write_with_backoff": (2.0, 4.0)}
ORCHESTRATIONS = pytest.mark.parametrize("orchestration", sorted(WAITS))


def drafted(orchestration, elapsed):
    def scenario(sim):
        started = sim.now
        status = sim.wait_for_completion(sim.start_new(orchestration, "tides", instance_id="draft"))
        elapsed.append(((sim.now - started).total_seconds(), status.runtime_status, status.output))
    return scenario


@ORCHESTRATIONS
def test_every_model_fault_is_survived_at_the_cost_of_one_call_and_one_wait(
        dafx, fake_llm, orchestration):
    fake_llm.agent("Writer").reply(DRAFT)
    elapsed = []

    report = dafx.fault_sweep(drafted(orchestration, elapsed), expect="survive")

    assert report.ok, report.explain()
    assert report.faults == FAULT_KINDS
    call, = report.calls
    assert (call.agent, call.caller, call.stream) == (
        "Writer", "activity 'write_draft' of instance 'draft'", False)
    assert {run.verdict for run in report.runs} == {"survived"}
    assert (report.baseline_model_calls, {run.model_calls for run in report.runs}) == (1, {2})
    assert "survived runs repeated up to 1 model call(s) (baseline 1)" in report.explain()
    first_wait = WAITS[orchestration][0]
    assert elapsed == [(0.0, "Completed", DRAFT)] + [(first_wait, "Completed", DRAFT)] * 8


@ORCHESTRATIONS
def test_a_flaky_model_is_survived_too(dafx, fake_llm, orchestration):
    # The first request of every run gets a 400 content filter: the baseline already retries
    # once, and each run adds one more fault, which the third attempt absorbs. (The durable
    # agent breaks on five of these sixteen: scenarios/multi_agent/test_fault_sweep.py.)
    fake_llm.agent("Writer").fault("content_filter").reply(DRAFT)
    elapsed = []

    report = dafx.fault_sweep(drafted(orchestration, elapsed), expect="survive")

    assert report.ok, report.explain()
    assert len(report.calls) == 2 and len(report.runs) == 2 * len(FAULT_KINDS)
    assert {run.model_calls for run in report.runs} == {3}
    first, second = WAITS[orchestration]
    assert elapsed[0] == (first, "Completed", DRAFT)
    assert set(elapsed[1:]) == {(first + second, "Completed", DRAFT)}


@ORCHESTRATIONS
def test_the_retries_are_bounded_and_the_last_failure_fails_the_instance(
        dafx_factory, fake_llm, orchestration):
    sim = dafx_factory(fault_plan=FaultPlan({1: "rate_limit", 2: "content_filter",
                                             3: "malformed_json"}))
    fake_llm.agent("Writer").reply(DRAFT)

    status = sim.wait_for_completion(sim.start_new(orchestration, "tides"))

    assert status.runtime_status == "Failed"
    assert "Activity function 'write_draft' failed: ChatClientException" in status.output
    assert "Unterminated string" in status.output               # the third attempt's error
    assert len(sim.model_calls.requests) == 3                    # max_retries=0: one call each
    errors = [type(call.error).__name__ for call in sim.activity_calls("write_draft")]
    assert errors == ["ChatClientException", "OpenAIContentFilterException", "ChatClientException"]
    assert (sim.now - sim.get_status(status.instance_id).created_time).total_seconds() == \
        sum(WAITS[orchestration])


def test_the_backoff_loop_shows_the_failed_attempt_while_its_timer_runs(dafx_factory, fake_llm):
    sim = dafx_factory(fault_plan=FaultPlan(call=1, fault="unavailable"))
    fake_llm.agent("Writer").reply(DRAFT)

    instance_id = sim.start_new("write_with_backoff", "tides")
    sim.run_until_idle()

    waiting = sim.get_status(instance_id)
    assert waiting.runtime_status == "Running"
    assert waiting.custom_status["attempt"] == 1
    assert waiting.custom_status["error"].startswith(
        "Activity function 'write_draft' failed: ChatClientException")
    assert "Error code: 503" in waiting.custom_status["error"]
    sim.advance(timedelta(seconds=2))
    assert (sim.get_status(instance_id).runtime_status, sim.get_status(instance_id).output) == (
        "Completed", DRAFT)


def test_an_empty_answer_counts_as_a_failed_attempt(dafx, fake_llm):
    fake_llm.agent("Writer").reply("").reply(DRAFT)

    status = dafx.wait_for_completion(dafx.start_new("write_with_retry", "tides"))

    assert (status.runtime_status, status.output) == ("Completed", DRAFT)
    first, second = dafx.activity_calls("write_draft")
    assert repr(first.error) == "ValueError(\"the Writer answered no text about 'tides'\")"
    assert second.error is None
