"""The Writer and the Critic on a Durable Task SDK worker, a person approving: approve,
reject and rewrite, run out of attempts, time out, crash anywhere.

The worker is ``worker.build_worker()``, unmodified; the simulator plays the sidecar.
Each agent gets its own fake model (recognised by its instructions: the durable
agent entity sends them, not the agent's name). The 24-hour review window is a
durable timer that only virtual time ever reaches.
"""

import json
import logging
from datetime import timedelta

import pytest
from durabletask.client import OrchestrationStatus

from dafx_testing.durabletask import attach
from dafx_testing.llm import LLMRequest

from . import worker as app

FIRST_DRAFT = "Tides: the moon pulls, the sea follows."
NOTE = "Clear, but the ending is abrupt."


def writer_model(request: LLMRequest) -> str:
    """Drafts once, then rewrites with the reviewer's feedback in view."""
    message = request.last_user_message or ""
    if message.startswith("Rewrite"):
        return f"Tides, revised ({message.split(': ', 1)[1]})."
    return FIRST_DRAFT


@pytest.fixture(autouse=True)
def _quiet_sdk_logs():
    logging.disable(logging.INFO)       # the SDK logs every episode at INFO
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture
def sim(dafx_factory, fake_llm):
    app.blog.reset()
    fake_llm.agent(app.WRITER, instructions=app.WRITER_INSTRUCTIONS).respond_with(writer_model)
    fake_llm.agent(app.CRITIC, instructions=app.CRITIC_INSTRUCTIONS).respond_with(lambda _: NOTE)
    return dafx_factory(app.build_worker())        # built once the fake supplies OPENAI_API_KEY


def start(sim, instance_id="post-1"):
    instance_id = sim.start_new("review_post", {"topic": "tides"}, instance_id=instance_id)
    sim.run_until_idle()
    return instance_id


def test_the_worker_registers_both_agents_the_orchestration_and_publish(sim):
    assert sim.agents == ["Writer", "Critic"]
    assert sim.index.names("orchestrator") == ["review_post"]
    assert sim.index.names("activity") == ["publish"]
    assert sim.index.names("entity") == ["dafx-writer", "dafx-critic"]


def test_an_approved_draft_is_published_once(sim, fake_llm):
    instance_id = start(sim)
    waiting = sim.get_status(instance_id)
    assert waiting.runtime_status == "Running"
    assert waiting.waiting_for == ["approval"]
    assert waiting.custom_status["stage"] == "awaiting_approval"
    assert (waiting.custom_status["draft"], waiting.custom_status["critic"]) == (FIRST_DRAFT, NOTE)

    sim.raise_event(instance_id, "approval", {"approved": True})
    status = sim.wait_for_completion(instance_id)

    assert status.output == {"status": "published", "attempt": 1, "draft": FIRST_DRAFT,
                             "url": "https://blog.example.test/posts/1"}
    assert status.custom_status == {"stage": "published", "attempt": 1}
    assert app.blog.posts == {instance_id: {"title": "tides", "body": FIRST_DRAFT,
                                            "url": "https://blog.example.test/posts/1",
                                            "at": sim.now.isoformat()}}    # virtual time
    critic_request, = fake_llm.requests_for("Critic")           # the chain: the draft went on
    assert FIRST_DRAFT in critic_request.last_user_message
    assert sim.nondeterminism == []
    sim.check_replay(instance_id)


def test_a_rejection_is_rewritten_in_the_same_session_and_each_turn_kept_once(sim, fake_llm):
    instance_id = start(sim)
    sim.advance(timedelta(hours=5))
    sim.raise_event(instance_id, "approval", {"approved": False, "feedback": "mention the sun"})
    sim.run_until_idle()
    second = sim.get_status(instance_id).custom_status
    assert (second["attempt"], second["draft"]) == (2, "Tides, revised (mention the sun).")
    sim.raise_event(instance_id, "approval", {"approved": True})
    status = sim.wait_for_completion(instance_id)

    assert (status.output["status"], status.output["attempt"]) == ("published", 2)
    assert app.blog.posts[instance_id]["body"] == "Tides, revised (mention the sun)."
    rewrite = fake_llm.requests_for("Writer")[-1]               # the model saw its first draft
    rewrite.assert_conversation("Write a short post about tides.", ("assistant", FIRST_DRAFT),
                                "mention the sun")
    session = sim.agent_session("Writer", second["writer_session"])
    assert session.user_messages == ["Write a short post about tides.",
                                     "Rewrite the post. Reviewer feedback: mention the sun"]
    assert session.replies == [FIRST_DRAFT, "Tides, revised (mention the sun)."]
    assert [len(s.turns) for s in sim.agent_sessions("Critic")] == [2]
    sim.check_replay(instance_id)           # agent calls 5 virtual hours apart replay the same


def test_after_three_rejections_the_post_is_dropped(sim):
    instance_id = start(sim)
    for round_number in range(app.MAX_ATTEMPTS):
        sim.raise_event(instance_id, "approval", {"approved": False, "feedback": f"no {round_number}"})
        sim.run_until_idle()

    status = sim.get_status(instance_id)
    assert status.runtime_status == "Completed"
    assert status.output == {"status": "rejected", "attempt": 3, "draft": "Tides, revised (no 1)."}
    writer, = sim.agent_sessions("Writer")
    assert len(writer.turns) == 3                      # a first draft and two rewrites, no fourth
    assert app.blog.posts == {} and sim.activity_calls("publish") == []


def test_no_decision_in_24_hours_escalates_in_virtual_time(sim):
    instance_id = start(sim)
    started = sim.now

    sim.advance(timedelta(hours=23, minutes=59))
    assert sim.get_status(instance_id).runtime_status == "Running"
    status = sim.wait_for_completion(instance_id)

    assert status.output == {"status": "escalated", "attempt": 1, "draft": FIRST_DRAFT,
                             "reason": "no decision within 24 hours"}
    assert sim.now - started == app.REVIEW_WINDOW                 # the clock moved 24 h
    assert status.last_updated_time - status.created_time == app.REVIEW_WINDOW
    assert app.blog.posts == {}
    sim.check_replay(instance_id)


def test_a_client_program_drives_the_review_through_a_real_taskhub_client(sim):
    client = sim.client                          # a TaskHubGrpcClient the simulator answers
    instance_id = client.schedule_new_orchestration(app.review_post, input={"topic": "tides"})
    started = client.wait_for_orchestration_start(instance_id)
    assert json.loads(started.serialized_custom_status)["stage"] == "awaiting_approval"

    client.raise_orchestration_event(instance_id, "approval", data={"approved": True})
    state = client.wait_for_orchestration_completion(instance_id, timeout=60)

    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert json.loads(state.serialized_output)["url"] == "https://blog.example.test/posts/1"
    assert list(app.blog.posts) == [instance_id]


def test_main_serves_until_ctrl_c_as_the_samples_do(fake_llm):
    with attach(idle_limit=timedelta(minutes=5)) as sim:
        app.main()                               # a DurableTaskSchedulerWorker, started and idle

    assert sim.agents == ["Writer", "Critic"]
    assert sim.index.names("orchestrator") == ["review_post"]
    assert sim.index.running == []               # Ctrl+C (after 5 idle virtual minutes) stopped it


def rejected_then_approved(sim):
    app.blog.reset()
    instance_id = start(sim)
    sim.raise_event(instance_id, "approval", {"approved": False, "feedback": "shorter"})
    sim.run_until_idle()
    sim.raise_event(instance_id, "approval", {"approved": True})
    assert sim.wait_for_completion(instance_id).output["status"] == "published"


def test_every_crash_point_keeps_one_post_and_every_conversation_intact(sim):
    runs = []

    def scenario(run):
        runs.append(run)
        rejected_then_approved(run)

    report = sim.crash_sweep(scenario, effects=app.blog.effects)

    assert report.ok, report.explain()
    assert sum(p.kind == "entity" for p in report.points) == 4     # two drafts, two critiques
    assert sum(p.kind == "activity" for p in report.points) == 1   # publish
    # A crash after publish ran but before its result was committed runs it again: the key
    # (the instance id) makes that a no-op, so the blog holds one post (the effects check).
    assert {d.name for d in report.repeated_activities} == {"publish"}
    assert len(report.repeated_model_calls) == 4       # each agent turn lost once: a cost
    baseline = runs[0]
    writer, = baseline.agent_sessions("Writer")
    critic, = baseline.agent_sessions("Critic")
    assert writer.replies == [FIRST_DRAFT, "Tides, revised (shorter)."]
    assert critic.replies == [NOTE, NOTE]
    assert critic.user_messages == [f"Critique this draft:\n{FIRST_DRAFT}",
                                    "Critique this draft:\nTides, revised (shorter)."]


def test_publish_does_run_again_after_a_crash_which_is_why_it_is_keyed(sim):
    report = sim.crash_sweep(rejected_then_approved, effects=app.blog.effects,
                             kinds=["activity", "duplicate"], once=["publish"])

    assert not report.ok
    assert sorted((p.kind, p.name) for f in report.failures for p in f.crashes) == [
        ("activity", "publish"), ("duplicate", "publish")]
    assert "publish ran 2 times (baseline 1)" in report.explain()
    assert all(problem.startswith("publish ran 2 times") for failure in report.failures
               for problem in failure.problems)             # nothing else broke: one post
