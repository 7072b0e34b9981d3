"""Model-fault sweeps over the agent writer of content approval: is the published post the draft?

The approved path makes one model call, the Writer's draft, in a durable agent entity on a Chat
Completions client (the openai client's default ``max_retries=2``, openai/_constants.py:8).
One fault is survived, by the openai client's own retry (429, 5xx, timeout, reset:
openai/_base_client.py:1815-1866) or by the entity's non-streaming fallback
(agent_framework_durabletask/_entities.py:249-272).

When the fallback fails too, the entity stores an error reply and returns it
(_entities.py:198-214): the orchestration's ``.text`` is "", so the reviewer is sent an empty
draft and approving it publishes an empty post (the outside world differs: broken). A rewrite
in the same session then sends the model two user messages in a row.

The openai client's back-off between retries takes virtual time (the simulator charges it to
the entity batch that made the call), so no test waits for it.
"""

import pytest

from dafx_testing import FaultPlan
from dafx_testing.llm import FAULT_KINDS
from fakes.content_service import service

pytestmark = pytest.mark.dafx_app("agent_app.py")

DRAFT = "Tides: the moon pulls, the sea follows."
CLIENT_RETRIED = ("rate_limit", "server_error", "unavailable", "timeout", "connection_reset")
NOT_CLIENT_RETRIED = ("malformed_json", "stream_cut", "content_filter")


@pytest.fixture
def writer(dafx, fake_llm):
    service.reset()
    yield fake_llm.agent(dafx.app.agents["Writer"])
    service.reset()


def approved(sim):
    service.reset()
    instance_id = sim.start_new("agent_content_approval", {"topic": "tides"}, instance_id="post-1")
    sim.run_until_idle()
    sim.raise_event(instance_id, "ApprovalDecision", {"approved": True})
    sim.wait_for_completion(instance_id)


def test_one_fault_on_the_draft_still_publishes_the_draft(dafx, writer):
    writer.reply(DRAFT)

    report = dafx.fault_sweep(approved, expect="survive", effects=service.effects)

    assert report.ok, report.explain()
    call, = report.calls
    assert (call.number, call.agent, call.stream) == (1, "Writer", True)
    assert [run.fault for run in report.runs] == list(FAULT_KINDS)
    assert {run.model_calls for run in report.runs} == {2}
    assert service.effects("publish") == [("publish", DRAFT)]          # the last run's post


def test_a_flaky_writer_gets_an_empty_post_published(dafx, writer):
    writer.fault("content_filter").reply(DRAFT)   # every run's first request: a 400

    report = dafx.fault_sweep(approved, effects=service.effects)

    verdicts = {(run.call.number, run.fault): run.verdict for run in report.runs}
    assert verdicts == {
        **{(1, kind): "survived" for kind in CLIENT_RETRIED},
        **{(1, kind): "broken" for kind in NOT_CLIENT_RETRIED},     # the fallback meets the 400
        **{(2, kind): "survived" for kind in (*CLIENT_RETRIED, "stream_cut")},
        (2, "malformed_json"): "broken", (2, "content_filter"): "broken",
    }
    for run in report.runs:
        if run.verdict == "broken":
            assert "holds an error reply" in run.reasons[0]
            assert run.reasons[1].startswith("the outside world differs: expected ")
            assert run.reasons[1].endswith('got [["notify_reviewer", {"reviewer": '
                                           '"reviewer@example.test", "draft": ""}], '
                                           '["publish", ""]]')


def test_a_rewrite_after_a_failed_draft_sends_two_user_messages_in_a_row(dafx_factory, writer):
    sim = dafx_factory(fault_plan=FaultPlan({1: "content_filter", 2: "content_filter"}))
    writer.respond_with(lambda request: "Tides, shorter." if "Rewrite" in request.last_user_message
                        else DRAFT)
    instance_id = sim.start_new("agent_content_approval", {"topic": "tides"}, instance_id="post-1")
    sim.run_until_idle()
    assert service.effects() == [("notify_reviewer", {"reviewer": "reviewer@example.test",
                                                      "draft": ""})]

    sim.raise_event(instance_id, "ApprovalDecision", {"approved": False, "feedback": "shorter"})
    sim.run_until_idle()

    # The stored error message reaches the chat client (its error flag is not persisted,
    # agent_framework_durabletask/_durable_agent_state.py:634), which sends nothing for it
    # (agent_framework_openai/_chat_completion_client.py:1414-1416 and :1244).
    rewrite = sim.model_calls.requests[-1]
    assert [(m["role"], m["content"]) for m in rewrite.messages] == [
        ("system", "You write short, friendly blog posts."),
        ("user", "Write a short post about tides."),
        ("user", "Rewrite the post. Reviewer feedback: shorter")]
    session, = sim.agent_sessions("Writer")
    assert session.replies == ["", "Tides, shorter."]
