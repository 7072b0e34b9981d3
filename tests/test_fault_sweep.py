"""Model-fault sweeps and fault plans: every model call failed every way, each run judged.

The app (tests/apps/fault_app.py) asks a Writer three ways: an activity the orchestration
retries (survives), the same activity without a retry (fails cleanly), and an activity that
swallows the model error (broken: another output, or a wait nothing ends). The durable agent
``Writer`` shows the Agent Framework's own fallback.

The faults that make the openai client back off for real (its retries of 429, 5xx and
connection errors sleep on the Agent Framework's own event-loop thread, outside virtual time)
are left out of the agent sweeps to keep the suite fast.

tests/apps/locked_app.py holds an entity that keeps a model error in its state, which does not
serialize: a fault leaves the entity locked.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime, timedelta
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from dafx_testing import ArgumentError, FaultPlan, FaultSweepReport, Simulator
from dafx_testing.checks.fault_sweep import ExpectationError, duration, expectation_for
from dafx_testing.core.hub import EntityLock, EntityRecord
from dafx_testing.core.in_flight import InFlight
from dafx_testing.core.messages import EntityRequest
from dafx_testing.llm import FAULT_KINDS
from dafx_testing.reports.html_report import render_html
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
    assert {(run.extra_model_calls, run.extra_time) for run in report.runs} == {
        (1, timedelta(seconds=5))}                               # the retry policy's interval
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
    assert run.explain().splitlines()[2:] == [      # a failing run says what the fault cost
        "  cost: 2 model call(s) (baseline 1), 5s more virtual time",
        '  reproduce: FaultPlan(call=1, fault="timeout")']


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


# -- entities left locked ---------------------------------------------------------------------


def signal_drafts(orchestrator):
    def scenario(sim):
        sim.wait_for_completion(sim.start_new(orchestrator, "tides", instance_id="draft"))
        sim.run_until_idle()                           # the entity's batch runs after the signal
    return scenario


@pytest.mark.dafx_app("apps/locked_app.py")
def test_an_entity_left_locked_by_an_aborted_batch_is_broken(dafx, fake_llm):
    # The entity keeps the model's exception in its state; the state does not serialize, so the
    # batch aborts and the signal goes back to a queue nothing will run. The orchestration's
    # output is the baseline's: the lock is the only sign.
    fake_llm.reply(DRAFT)

    report = dafx.fault_sweep(signal_drafts("draft_later"), faults=["rate_limit", "content_filter"])

    call, = report.calls
    assert call.caller == "entity '@drafts@tides'"
    assert [run.verdict for run in report.runs] == ["broken", "broken"]
    reason, = report.runs[0].reasons
    assert reason.startswith(
        "entity '@drafts@tides' is left locked: 1 queued operation(s) that no batch will ever run: "
        "'draft' (a signal); its last batch was aborted and is retried only when another message "
        "arrives: its batch of 1 operation(s) fails as a whole (TypeError: ")
    assert "RateLimitError" in reason and "BadRequestError" in report.runs[1].reasons[0]


@pytest.mark.dafx_app("apps/locked_app.py")
def test_a_call_queued_behind_the_lock_names_its_waiting_instance(dafx, fake_llm):
    fake_llm.reply(DRAFT)

    run, = dafx.fault_sweep(orchestrate("draft_and_read"), faults=["timeout"]).runs

    assert run.verdict == "broken"
    assert run.reasons[0].startswith("instance 'draft' is stuck Running with nothing to wake it: "
                                     "entity '@drafts@tides' (operation(s) 'draft'): ")
    assert run.reasons[1].startswith("entity '@drafts@tides' is left locked: 1 queued operation(s) "
                                     "that no batch will ever run: 'draft' (a call from instance "
                                     "'draft'); its last batch was aborted")


@pytest.mark.dafx_app("apps/locked_app.py")
def test_an_entity_whose_batch_commits_is_not_locked(dafx, fake_llm):
    fake_llm.reply(DRAFT)                              # SafeDrafts keeps the error's text

    report = dafx.fault_sweep(signal_drafts("safe_draft_later"), faults=["rate_limit"])

    assert report.ok and [run.verdict for run in report.runs] == ["survived"], report.explain()


@pytest.mark.dafx_app("apps/locked_app.py")
def test_an_entity_the_baseline_left_locked_too_is_not_counted_against_a_run(dafx, fake_llm):
    fake_llm.reply(DRAFT)

    def scenario(sim):
        sim.signal_entity(("SafeDrafts", "poisoned"), "poison")   # locked whatever the model does
        signal_drafts("safe_draft_later")(sim)

    report = dafx.fault_sweep(scenario, faults=["rate_limit"])

    assert [run.verdict for run in report.runs] == ["survived"], report.explain()


def test_an_entity_is_locked_only_when_nothing_will_ever_run_what_waits_for_it():
    from dafx_testing.checks.fault_sweep import _locked

    def entity(name, *operations, aborted=None, holder=None):
        record = EntityRecord(name, "k", aborted=aborted, locked_by=holder and EntityLock(
            f"section-{holder}", holder, "e1", (f"@{name}@k",)))
        record.queue.extend(EntityRequest(op, None, op == "add", f"r{n}", None if op == "add" else "i1")
                            for n, op in enumerate(operations))
        return f"@{name}@k", record

    def instance(iid, status="Running"):
        return iid, SimpleNamespace(execution_id="e1", runtime_status=status,
                                    is_terminal=status != "Running")

    entities = dict([entity("idle"), entity("ready", "add"), entity("running", "add"),
                     entity("aborted", "add", "get", aborted="its batch fails as a whole (boom)"),
                     entity("forgotten", "add"),
                     entity("held", "add", holder="live"), entity("stuck", holder="waiting"),
                     entity("orphaned", "add", holder="done"), entity("lost", holder="purged")])
    instances = dict([instance("live"), instance("waiting"), instance("done", "Completed")])
    in_flight = InFlight()
    in_flight.park(datetime(2025, 1, 1), "batch", lambda: None, lambda: None, busy="@running@k")
    sim = SimpleNamespace(hub=SimpleNamespace(entities=entities, entities_ready=deque(["@ready@k"]),
                                              instances=instances),
                          _worker=SimpleNamespace(in_flight=in_flight))

    assert _locked(sim, {"live": "", "waiting": "it waits only for external event(s) 'go'"}) == {
        "@aborted@k": "2 queued operation(s) that no batch will ever run: 'add' (a signal), 'get' "
                      "(a call from instance 'i1'); its last batch was aborted and is retried only "
                      "when another message arrives: its batch fails as a whole (boom)",
        "@forgotten@k": "1 queued operation(s) that no batch will ever run: 'add' (a signal); "
                        "nothing schedules a batch for it",
        "@stuck@k": "critical section 'section-waiting' of instance 'waiting' holds its lock for "
                    "good: the instance is stuck with nothing to wake it, inside the section; "
                    "every operation sent to it will wait",
        "@orphaned@k": "critical section 'section-done' of instance 'done' holds its lock for good: "
                       "the instance ended Completed without releasing it; 1 queued operation(s) "
                       "wait behind it: 'add' (a signal)",
        "@lost@k": "critical section 'section-purged' of instance 'purged' holds its lock for "
                   "good: the instance is gone without releasing it; every operation sent to it "
                   "will wait"}


def test_a_critical_section_stuck_holding_its_lock_leaves_the_entity_locked(fake_llm):
    from tests.apps import dt_locked_app

    fake_llm.reply(DRAFT)
    sim = Simulator(dt_locked_app.build_worker())

    def scenario(orchestrator):
        def run(sim):
            sim.start_new(orchestrator, "tides", instance_id="draft")
            sim.run_until_idle()
            sim.signal_entity(("ledger", "drafts"), "add", "by hand")   # waits for the lock
            sim.run_until_idle()
        return run

    inside, = sim.fault_sweep(scenario("record_draft"), faults=["rate_limit"]).runs
    outside, = sim.fault_sweep(scenario("record_draft_outside"), faults=["rate_limit"]).runs

    assert inside.verdict == "broken"
    assert inside.reasons[0] == ("instance 'draft' is stuck Running with nothing to wake it: it "
                                 "waits only for external event(s) 'retry', which nothing sends")
    assert inside.reasons[1].startswith(
        "entity '@ledger@drafts' is left locked: critical section '")
    assert inside.reasons[1].endswith(
        "' of instance 'draft' holds its lock for good: the instance is stuck with nothing to "
        "wake it, inside the section; 1 queued operation(s) wait behind it: 'add' (a signal)")
    assert len(inside.reasons) == 2
    # Waiting after the section ends: stuck too, but the ledger is free.
    assert outside.verdict == "broken" and len(outside.reasons) == 1
    assert "left locked" not in outside.reasons[0]


# -- expect: per agent, per fault kind ---------------------------------------------------------


def test_expect_per_agent_asks_the_agents_runs_to_survive(sim):
    report = sim.fault_sweep(orchestrate("draft_once"), faults=["timeout"],
                             expect={"Writer": "survive"})

    run, = report.runs
    assert (run.verdict, run.expected, run.ok, report.ok) == ("failed cleanly", "survive", False,
                                                               False)
    assert "expect={'Writer': 'survive'}" in report.explain().splitlines()[0]
    assert "× timeout: failed cleanly (expected to survive)" in report.explain()


def test_expect_per_fault_kind_asks_only_those_runs_to_survive(sim):
    report = sim.fault_sweep(orchestrate("draft_once"), faults=["timeout", "server_error"],
                             expect={"timeout": "survive"})

    assert [(run.fault, run.expected, run.ok) for run in report.runs] == [
        ("timeout", "survive", False), ("server_error", None, True)]
    assert report.matrix().splitlines()[1].endswith("failed cleanly ✗  failed cleanly")


def test_expect_nested_per_agent_and_fault_kind_can_exempt_a_run(sim):
    report = sim.fault_sweep(orchestrate("draft_once"), faults=["timeout", "server_error"],
                             expect={"server_error": "survive", "Writer": {"server_error": None}})

    assert report.ok, report.explain()
    assert [run.expected for run in report.runs] == [None, None]


def test_the_most_specific_expect_entry_decides():
    expect = {"rate_limit": "survive", "Critic": None, "Writer": {"timeout": "survive"}}

    assert expectation_for(expect, "Writer", "timeout") == "survive"       # the agent's kind
    assert expectation_for(expect, "Writer", "rate_limit") == "survive"    # then the kind
    assert expectation_for(expect, "Critic", "rate_limit") is None         # the agent's own
    assert expectation_for(expect, None, "rate_limit") == "survive"        # no agent: the kind
    assert expectation_for(expect, "Writer", "server_error") is None       # no entry
    assert expectation_for("survive", "Writer", "server_error") == "survive"
    assert expectation_for(None, "Writer", "server_error") is None


@pytest.mark.parametrize(("expect", "message"), [
    (["survive"], "expect=['survive']: expected None (only broken runs fail) or 'survive' (runs "
                  "that failed cleanly fail too), or a mapping of those by agent name and fault "
                  "kind, e.g. {'Writer': 'survive', 'rate_limit': 'survive', 'Critic': "
                  "{'timeout': 'survive'}}"),
    ({}, "expect={}: an empty mapping names no run"),
    ({("Writer", "timeout"): "survive"},
     "expect key ('Writer', 'timeout'): the keys are agent names or fault kinds (rate_limit, "
     "server_error, unavailable, timeout, connection_reset, malformed_json, stream_cut, "
     "content_filter); for some fault kinds of one agent, nest them: {'Writer': {'rate_limit': "
     "'survive'}}"),
    ({"Writer": "survived"}, "expect['Writer']='survived': expected 'survive' (anything but "
                             "survived fails) or None (only broken fails)"),
    ({"Writer": {"slow": "survive"}}, "expect['Writer'] key 'slow': not a fault kind; an agent's "
                                      "entry maps fault kinds (rate_limit, "),
    ({"Writer": {}}, "expect['Writer']={}: name the agent's fault kinds"),
    ({"rate_limit": "survive"}, "expect['rate_limit']: this sweep does not try 'rate_limit' "
                                "(faults: timeout); add it to faults= or drop the entry"),
    ({"Writer": {"unavailable": "survive"}},
     "expect['Writer']['unavailable']: this sweep does not try 'unavailable' (faults: timeout)"),
])
def test_a_bad_expect_names_what_is_valid_before_any_run(sim, expect, message):
    runs = []

    with pytest.raises(ArgumentError) as raised:
        sim.fault_sweep(lambda sim: runs.append(sim), faults=["timeout"], expect=expect)

    assert str(raised.value).startswith(message)
    assert runs == []


def test_expect_naming_an_agent_the_baseline_never_called_stops_before_any_fault_run(sim):
    runs = []

    def scenario(sim):
        runs.append(sim)
        orchestrate("draft_once")(sim)

    with pytest.raises(ExpectationError) as raised:
        sim.fault_sweep(scenario, faults=["timeout"], expect={"Writr": "survive"})

    assert str(raised.value) == (
        "expect names 'Writr', neither a fault kind nor an agent the fault-free baseline called; "
        "the agents it called: 'Writer'; fault kinds: rate_limit, server_error, unavailable, "
        "timeout, connection_reset, malformed_json, stream_cut, content_filter")
    assert len(runs) == 1                              # the baseline only


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


def test_the_matrix_shows_what_each_surviving_fault_cost(sim):
    report = sim.fault_sweep(orchestrate("draft_with_retry"), faults=["rate_limit", "timeout"])

    assert report.explain().splitlines()[1:] == [
        "call                                                   rate_limit               timeout",
        "#1 Writer (activity 'ask_writer' of instance 'draft')  survived (+1 call, +5s)  "
        "survived (+1 call, +5s)",
        "survived runs repeated up to 1 model call(s) (baseline 1) and took up to 5s more virtual "
        "time: a cost, not a failure",
    ]


@pytest.mark.parametrize(("seconds", "text"), [
    (5, "5s"), (0.25, "0.25s"), (90, "1m 30s"), (120, "2m"), (3600, "1h"), (7500, "2h 5m")])
def test_durations_read_short(seconds, text):
    assert duration(timedelta(seconds=seconds)) == text


class Cells(HTMLParser):
    """The fault matrix's cells (class, text), the page's ids and its text."""

    def __init__(self, html):
        super().__init__()
        self.cells, self.ids, self.text, self._cell = [], [], [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if "id" in values:
            self.ids.append(values["id"])
        if tag == "td" and "verdict-cell" in (values.get("class") or ""):
            self._cell = [values["class"], ""]

    def handle_endtag(self, tag):
        if tag == "td" and self._cell:
            self.cells.append((self._cell[0], " ".join(self._cell[1].split())))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell:
            self._cell[1] += data

    @property
    def visible(self):
        return " ".join(" ".join(self.text).split())


def test_the_html_page_has_the_matrix_in_coloured_cells_and_each_failing_runs_plan(sim):
    report = sim.fault_sweep(orchestrate("draft_or_empty"),
                             faults=["rate_limit", "malformed_json"])

    page = Cells(render_html(title="faults", fault_sweep=report))

    assert page.cells == [("verdict-cell broken failing", "broken ✗"),
                          ("verdict-cell failed-cleanly", "failed cleanly")]
    assert "fault-run-1-rate_limit" in page.ids and "fault-run-1-malformed_json" not in page.ids
    text = page.visible
    assert ("1 failing run(s): 1 model call(s) × 2 fault(s) = 2 run(s): 1 failed cleanly, "
            "1 broken, seed 0") in text
    assert ("Call #1 Writer (activity 'ask_writer_or_empty' of instance 'draft') × rate_limit: "
            "broken") in text
    assert ("completed with another output while nothing failed: instance 'draft' Completed "
            'with output "" (baseline: Completed with output "A draft about tides.")') in text
    assert 'Reproduce: FaultPlan(call=1, fault="rate_limit")' in text
    assert 'FaultPlan(call=1, fault="malformed_json")' not in text   # it failed cleanly: no plan


def test_the_html_page_shows_each_cells_cost_and_a_broken_baseline(sim):
    survived = sim.fault_sweep(orchestrate("draft_with_retry"), faults=["timeout"],
                               expect={"Writer": "survive"})
    page = Cells(render_html(fault_sweep=survived))

    assert page.cells == [("verdict-cell survived", "survived +1 call, +5s")]
    assert "No failing run: 1 model call(s) × 1 fault(s) = 1 run(s): 1 survived, seed 0, " \
           "expect={'Writer': 'survive'}" in page.visible

    broken = Cells(render_html(fault_sweep=sim.fault_sweep(lambda sim: None)))
    assert broken.cells == []
    assert "The fault-free baseline run is broken" in broken.visible
    assert "made no model calls" in broken.visible


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
