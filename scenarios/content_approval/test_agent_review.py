"""Content approval with the Writer agent: approve, reject with a rewrite, time out, crash.

The Writer's fake model drafts from the topic and rewrites from the feedback; the
reviewer's decision races a 24-hour timer that only virtual time ever reaches.
"""

from datetime import timedelta

import pytest

from dafx_testing.llm import LLMRequest
from fakes.content_service import service

pytestmark = pytest.mark.dafx_app("agent_app.py")

FIRST_DRAFT = "Tides: the moon pulls, the sea follows."
IDEMPOTENT = ["notify_reviewer", "publish_content", "escalate_for_review"]


def writer_model(request: LLMRequest) -> str:
    """Drafts once, then rewrites with the reviewer's feedback in view."""
    message = request.last_user_message or ""
    if message.startswith("Rewrite"):
        return f"Tides, revised ({message.split(': ', 1)[1]})."
    return FIRST_DRAFT


@pytest.fixture
def sim(dafx, fake_llm):
    service.reset()
    fake_llm.agent(dafx.app.agents["Writer"]).respond_with(writer_model)
    return dafx


def start(sim):
    instance_id = sim.start_new("agent_content_approval", {"topic": "tides"}, instance_id="post-1")
    sim.run_until_idle()
    return instance_id


def test_approved_draft_is_published(sim):
    instance_id = start(sim)
    assert sim.get_status(instance_id).custom_status == {"stage": "awaiting_review", "round": 1}

    sim.raise_event(instance_id, "ApprovalDecision", {"approved": True})
    status = sim.wait_for_completion(instance_id)

    assert status.output == {"status": "published", "rounds": 1,
                             "url": "https://content.example.test/posts/1"}
    assert service.effects("publish") == [("publish", FIRST_DRAFT)]
    assert sim.nondeterminism == []
    sim.check_replay(instance_id)


def test_rejection_with_feedback_gets_a_rewrite_in_the_same_session(sim, fake_llm):
    instance_id = start(sim)
    sim.advance(timedelta(hours=5))
    sim.raise_event(instance_id, "ApprovalDecision", {"approved": False, "feedback": "mention the sun"})
    sim.run_until_idle()
    sim.raise_event(instance_id, "ApprovalDecision", {"approved": True})
    status = sim.wait_for_completion(instance_id)

    assert status.output["rounds"] == 2
    assert service.effects("publish") == [("publish", "Tides, revised (mention the sun).")]
    rewrite = fake_llm.requests[-1]
    rewrite.assert_conversation("Write a short post about tides.", ("assistant", FIRST_DRAFT),
                                "mention the sun")
    session, = sim.agent_sessions("Writer")
    assert session.replies == [FIRST_DRAFT, "Tides, revised (mention the sun)."]
    sim.check_replay(instance_id)           # agent calls 5 virtual hours apart replay the same


def test_no_decision_in_24_hours_escalates(sim):
    instance_id = start(sim)

    sim.advance(timedelta(hours=24))

    status = sim.get_status(instance_id)
    assert status.output == {"status": "escalated", "rounds": 1,
                             "detail": "escalated to the editor-in-chief"}
    assert service.effects("escalate") == [("escalate", FIRST_DRAFT)]
    sim.check_replay(instance_id)


def rejected_then_approved(sim):
    service.reset()
    instance_id = start(sim)
    sim.raise_event(instance_id, "ApprovalDecision", {"approved": False, "feedback": "shorter"})
    sim.run_until_idle()
    sim.raise_event(instance_id, "ApprovalDecision", {"approved": True})
    assert sim.wait_for_completion(instance_id).output["rounds"] == 2


def test_every_crash_point_keeps_the_review_and_the_conversation(sim):
    report = sim.crash_sweep(rejected_then_approved, idempotent=IDEMPOTENT,
                             effects=service.effects)

    assert report.ok, report.explain()
    assert sum(p.kind == "entity" for p in report.points) == 2      # draft and rewrite
    assert len(report.repeated_model_calls) == 2
