"""Model-fault sweeps over the specialists: what each agent call does with each model fault.

``write_article`` chains Researcher -> Writer, each a durable agent on one Chat Completions
client (the openai client's default ``max_retries=2``, openai/_constants.py:8). One fault on
either call is survived: the openai client resends a 429, 5xx, timeout or reset itself
(openai/_base_client.py:1815-1866), and the agent entity runs a failed streaming call again
without streaming (agent_framework_durabletask/_entities.py:249-272).

When the fallback fails too, the entity stores an error reply and returns it
(_entities.py:198-214); the orchestration's agent task loads it as a plain response
(agent_framework_azurefunctions/_orchestration.py:108-129) whose ``.text`` is "":

* ``write_article`` completes: the Writer writes from empty notes (broken: another output
  while nothing failed);
* ``triage_ticket`` asks for a ``Triage`` model, and an error reply does not parse into one
  (agent_framework_durabletask/_response_utils.py:59-70): the task fails
  (_orchestration.py:130-135) and the instance Fails, with the error reply left in the Triage
  session.

The openai client's back-off between retries takes virtual time (the simulator charges it to
the entity batch that made the call), so no test waits for it.
"""

import json

import pytest

from dafx_testing import FaultPlan
from dafx_testing.llm import FAULT_KINDS

pytestmark = pytest.mark.dafx_app("function_app.py")

NOTES = "1. Tides follow the moon. 2. Two highs a day."
ARTICLE = "The moon pulls the sea twice a day."
CLIENT_RETRIED = ("rate_limit", "server_error", "unavailable", "timeout", "connection_reset")
NOT_CLIENT_RETRIED = ("malformed_json", "stream_cut", "content_filter")


@pytest.fixture
def agents(dafx, fake_llm):
    """The fake model's script for one agent, by name."""
    return lambda name: fake_llm.agent(dafx.app.agents[name])


def run(name, request):
    def scenario(sim):
        sim.wait_for_completion(sim.start_new(name, request, instance_id="job"))
    return scenario


def test_one_fault_on_the_researcher_or_the_writer_is_survived(dafx, agents):
    agents("Researcher").reply(NOTES)
    agents("Writer").reply(ARTICLE)

    report = dafx.fault_sweep(run("write_article", "tides"), expect="survive")

    assert report.ok, report.explain()
    assert [(call.agent, call.stream) for call in report.calls] == [("Researcher", True),
                                                                    ("Writer", True)]
    assert len(report.runs) == 2 * len(FAULT_KINDS)
    assert {run.model_calls for run in report.runs} == {3}     # one retry each, a cost


def test_a_flaky_researcher_hands_the_writer_empty_notes(dafx, agents):
    # The Researcher's first request in every run gets a 400 content filter: the baseline
    # survives through the entity's non-streaming fallback (call #2).
    agents("Researcher").fault("content_filter").reply(NOTES)
    agents("Writer").reply(ARTICLE)

    report = dafx.fault_sweep(run("write_article", "tides"))

    assert [(call.agent, call.stream) for call in report.calls] == [
        ("Researcher", True), ("Researcher", False), ("Writer", True)]
    verdicts = {(run.call.number, run.fault): run.verdict for run in report.runs}
    assert verdicts == {
        # The client retries these, the retry meets the flaky 400, the entity falls back: fine.
        **{(1, kind): "survived" for kind in CLIENT_RETRIED},
        # Not retried by the client: the entity's one fallback meets the flaky 400.
        **{(1, kind): "broken" for kind in NOT_CLIENT_RETRIED},
        # The fallback itself: a body cut off is retried by the client (read inside the send),
        # a malformed body (parsed after the retry loop) and a 400 are not.
        **{(2, kind): "survived" for kind in (*CLIENT_RETRIED, "stream_cut")},
        (2, "malformed_json"): "broken", (2, "content_filter"): "broken",
        **{(3, kind): "survived" for kind in FAULT_KINDS},      # the Writer is not flaky
    }
    broken = report.runs[FAULT_KINDS.index("content_filter")]
    assert broken.reasons[0].startswith("agent session @dafx-researcher@")
    assert "holds an error reply" in broken.reasons[0]
    assert broken.reasons[1] == (
        "completed with another output while nothing failed: instance 'job' Completed with output "
        f'{{"notes":"","article":"{ARTICLE}"}} (baseline: Completed with output '
        f'{{"notes":"{NOTES}","article":"{ARTICLE}"}})')


def test_when_the_fallback_fails_too_the_writer_writes_from_nothing(dafx_factory, fake_llm):
    sim = dafx_factory(fault_plan=FaultPlan({1: "content_filter", 2: "content_filter"}))
    fake_llm.agent(sim.app.agents["Researcher"]).reply(NOTES)
    fake_llm.agent(sim.app.agents["Writer"]).reply(ARTICLE)

    status = sim.wait_for_completion(sim.start_new("write_article", "tides"))

    assert (status.runtime_status, status.output) == ("Completed", {"notes": "", "article": ARTICLE})
    writer_request, = fake_llm.requests_for("Writer")
    assert writer_request.last_user_message == "Write about tides from these notes:\n"
    session, = sim.agent_sessions("Researcher")
    assert session.turns[0].reply == "" and session.turns[0].errors


def test_a_failed_structured_answer_fails_the_triage(dafx, agents):
    agents("Triage").fault("content_filter").reply(json.dumps({"category": "bug",
                                                                "summary": "Saving fails"}))
    agents("Engineer").reply("On it.")
    agents("Notifier").reply("Engineer has the ticket.")

    report = dafx.fault_sweep(run("triage_ticket", "I cannot save my file."),
                              faults=["content_filter"])

    assert [(call.agent, call.stream) for call in report.calls] == [
        ("Triage", True), ("Triage", False), ("Engineer", True), ("Notifier", True)]
    assert [run.verdict for run in report.runs] == ["broken", "broken", "survived", "survived"]
    for triage in report.runs[:2]:
        session, failed = triage.reasons
        assert session.startswith("agent session @dafx-triage@") and "error reply" in session
        assert failed.startswith("instance 'job' ended Failed: Orchestrator function "
                                 "'triage_ticket' failed: Response value could not be parsed "
                                 "into required format Triage for corr")
