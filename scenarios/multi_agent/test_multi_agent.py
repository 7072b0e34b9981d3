"""Specialist agents chained, fanned out and branched on, each with its own fake model.

Every agent gets its own script (``fake_llm.agent(...)``), so a test states what
each specialist says and then checks what the others were told.
"""

import json

import pytest

from dafx_testing import Simulator
from dafx_testing.core.history import EventType

pytestmark = pytest.mark.dafx_app("function_app.py")


@pytest.fixture
def agents(dafx, fake_llm):
    """The fake model's script for one agent, by name."""
    return lambda name: fake_llm.agent(dafx.app.agents[name])


def test_chaining_hands_the_researchers_notes_to_the_writer(dafx, agents, fake_llm):
    agents("Researcher").reply("1. Tides follow the moon. 2. Two highs a day.")
    agents("Writer").reply("The moon pulls the sea twice a day.")

    status = dafx.wait_for_completion(dafx.start_new("write_article", "tides"))

    assert status.runtime_status == "Completed"
    assert status.output == {"notes": "1. Tides follow the moon. 2. Two highs a day.",
                             "article": "The moon pulls the sea twice a day."}
    writer_request, = fake_llm.requests_for("Writer")
    assert "Tides follow the moon" in writer_request.last_user_message
    dafx.check_replay(status.instance_id)


def test_fan_out_asks_both_reviewers_in_one_episode(dafx, agents):
    agents("Legal").reply("No legal issues.")
    agents("Style").reply("Shorten the first sentence.")

    status = dafx.wait_for_completion(dafx.start_new("review_article", "The moon pulls the sea."))

    assert status.output == {"legal": "No legal issues.", "style": "Shorten the first sentence."}
    kinds = [e["EventType"] for e in status.history]
    first_episode = kinds[:kinds.index(EventType.OrchestratorCompleted)]
    assert first_episode.count(EventType.EventSent) == 2            # both calls before any reply
    assert [len(dafx.agent_sessions(name)) for name in ("Legal", "Style")] == [1, 1]
    dafx.check_replay(status.instance_id)


@pytest.mark.parametrize("category, handler", [("bug", "Engineer"), ("question", "Support")])
def test_the_structured_triage_decides_who_answers(dafx, agents, fake_llm, category, handler):
    agents("Triage").reply(json.dumps({"category": category, "summary": "Saving fails"}))
    agents(handler).reply(f"{handler} here: try again after the update.")
    agents("Notifier").reply(f"{handler} has the ticket.")

    status = dafx.wait_for_completion(dafx.start_new("triage_ticket", "I cannot save my file."))

    assert status.output == {"category": category, "handled_by": handler,
                             "answer": f"{handler} here: try again after the update."}
    triage_request, = fake_llm.requests_for("Triage")
    assert triage_request.response_format["title"] == "Triage"          # the Pydantic model's schema
    assert set(triage_request.response_format["properties"]) == {"category", "summary"}
    assert fake_llm.requests_for("Support" if handler == "Engineer" else "Engineer") == []
    dafx.check_replay(status.instance_id)


def test_the_notice_is_signalled_and_the_orchestration_does_not_wait_for_it(dafx, agents):
    agents("Triage").reply(json.dumps({"category": "bug", "summary": "Saving fails"}))
    agents("Engineer").reply("On it.")
    agents("Notifier").reply("Engineer has the ticket.")

    status = dafx.wait_for_completion(dafx.start_new("triage_ticket", "I cannot save my file."))

    sent = [e for e in status.history if e["EventType"] == EventType.EventSent]
    answered = {e["Name"] for e in status.history if e["EventType"] == EventType.EventRaised}
    notice = [e for e in sent if "dafx-notifier" in e["InstanceId"]]
    assert len(sent) == 3 and len(notice) == 1
    assert json.loads(notice[0]["Input"])["signal"] is True
    assert json.loads(notice[0]["Input"])["id"] not in answered      # nobody waits for it
    session, = dafx.agent_sessions("Notifier")
    assert session.replies == ["Engineer has the ticket."]
    assert session.turns[0].orchestration_id == status.instance_id


def test_triage_survives_a_crash_at_every_point(dafx, agents):
    agents("Triage").respond_with(lambda request: json.dumps({"category": "bug", "summary": "Saving fails"}))
    agents("Engineer").respond_with(lambda request: "On it.")
    agents("Notifier").respond_with(lambda request: "Engineer has the ticket.")

    def scenario(sim: Simulator) -> None:
        status = sim.wait_for_completion(sim.start_new("triage_ticket", "I cannot save my file."))
        assert status.output["answer"] == "On it."

    report = dafx.crash_sweep(scenario)

    assert report.ok, report.explain()
    assert {p.name.lower() for p in report.points if p.kind == "entity"} == {
        "dafx-triage", "dafx-engineer", "dafx-notifier"}
    assert len(report.repeated_model_calls) == 3          # one per agent turn lost in a crash
