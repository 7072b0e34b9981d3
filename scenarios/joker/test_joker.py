"""The joker scenario: one durable agent over HTTP, sessions that survive crashes.

Each test drives ``POST /api/agents/Joker/run`` the way a client would. The
handler polls the agent entity with ``asyncio.sleep``; under the simulator those
sleeps move the virtual clock while the entity runs, so no test sleeps for real.
"""

import pytest

from dafx_testing import CrashPlan
from fakes.personas import EXPLANATION, JOKE, joker

pytestmark = pytest.mark.dafx_app("function_app.py")


@pytest.fixture
def sim(dafx, fake_llm):
    """The simulator, with the Joker agent's model answering as the joker persona."""
    fake_llm.agent(dafx.app.agents["Joker"]).respond_with(joker)
    return dafx


def ask(sim, message, session_id=None, **options):
    body = {"message": message, **({"session_id": session_id} if session_id else {})}
    return sim.http.post("/api/agents/Joker/run", json=body, **options)


def test_second_request_on_a_session_sees_the_first_exchange(sim, fake_llm):
    started = sim.now

    first = sim.http.post("/api/agents/Joker/run", data="Tell me a pirate joke.",
                          headers={"Content-Type": "text/plain"})
    session_id = first.headers["x-ms-session-id"]
    second = ask(sim, "Explain it.", session_id)

    assert (first.status_code, first.text) == (200, JOKE)
    assert first.mimetype == "text/plain"
    assert second.status_code == 200
    assert second.json()["response"] == EXPLANATION
    assert second.json()["session_id"] == session_id
    assert second.json()["message_count"] == 4          # two requests, two responses
    fake_llm.last_request.assert_conversation(
        "Tell me a pirate joke.", ("assistant", JOKE), "Explain it.")
    # Each request waited one poll interval (1 s) for the entity: virtual time only.
    assert (sim.now - started).total_seconds() == 2 * sim.app.poll_interval_seconds
    assert sim.agent_session("Joker", session_id).user_messages == ["Tell me a pirate joke.",
                                                                    "Explain it."]


def test_session_id_from_the_query_string_and_the_legacy_thread_id(sim):
    by_query = sim.http.post("/api/agents/Joker/run", data="Tell me a joke.",
                             params={"session_id": "s-query"})
    by_thread = ask(sim, "Explain it.", params={"thread_id": "s-query"})
    clash = sim.http.post("/api/agents/Joker/run", json={"message": "hi", "session_id": "a"},
                          params={"session_id": "b"})

    assert by_query.headers["x-ms-session-id"] == "s-query"
    assert by_thread.json()["session_id"] == "s-query"
    assert by_thread.json()["message_count"] == 4
    assert clash.status_code == 400
    assert "Conflicting session identifiers" in clash.text


def test_fire_and_forget_answers_202_and_the_reply_is_stored_later(sim):
    accepted = ask(sim, "Tell me a joke.", "s1", headers={"x-ms-wait-for-response": "false"})

    assert accepted.status_code == 202
    assert accepted.json()["status"] == "accepted"
    assert sim.agent_session("Joker", "s1").turns == []          # not processed yet

    sim.run_until_idle()
    state = sim.http.get("/runtime/webhooks/durabletask/entities/dafx-Joker/s1")   # a later poll
    assert state.status_code == 200
    turn = sim.agent_session("Joker", "s1").turns[0]
    assert turn.correlation_id == accepted.json()["correlation_id"]
    assert turn.reply == JOKE
    assert accepted.json()["correlation_id"] in state.text


def test_wait_for_response_in_the_body_and_the_header_wins(sim):
    body_says_no = sim.http.post("/api/agents/Joker/run",
                                 json={"message": "Tell me a joke.", "wait_for_response": False})
    header_says_yes = sim.http.post(
        "/api/agents/Joker/run", json={"message": "Tell me a joke.", "wait_for_response": False},
        headers={"x-ms-wait-for-response": "true"})

    assert body_says_no.status_code == 202
    assert header_says_yes.status_code == 200


def test_an_empty_message_is_a_400_and_the_health_check_lists_the_agent(sim):
    empty = sim.http.post("/api/agents/Joker/run", json={"message": ""})
    health = sim.http.get("/api/health")

    assert empty.status_code == 400
    assert health.status_code == 200
    assert health.json()["agents"][0]["name"] == "Joker"
    assert health.json()["agent_count"] == 1


def test_reset_forgets_the_conversation(sim, fake_llm):
    ask(sim, "Tell me a joke.", "s1")
    sim.signal_entity(("dafx-Joker", "s1"), "reset")
    sim.run_until_idle()
    ask(sim, "Explain it.", "s1")

    assert sim.agent_session("Joker", "s1").user_messages == ["Explain it."]
    assert [m["role"] for m in fake_llm.last_request.messages] == ["system", "user"]


def test_the_transcript_reads_like_the_conversation(sim):
    ask(sim, "Tell me a joke.", "s1")
    ask(sim, "Explain it.", "s1")

    assert str(sim.agent_session("Joker", "s1")) == "\n".join([
        "agent session Joker/s1: 2 turn(s)",
        "  user: Tell me a joke.",
        f"  assistant: {JOKE}",
        "  user: Explain it.",
        f"  assistant: {EXPLANATION}",
    ])


def test_session_ids_are_the_same_on_every_run_with_one_seed(sim):
    from dafx_testing import Simulator

    other = Simulator(sim.index)
    first = sim.http.post("/api/agents/Joker/run", data="Tell me a joke.")
    again = other.http.post("/api/agents/Joker/run", data="Tell me a joke.")

    assert first.headers["x-ms-session-id"] == again.headers["x-ms-session-id"]


def conversation(sim):
    """Two requests on one session, as a client would send them."""
    first = ask(sim, "Tell me a pirate joke.")
    session_id = first.json()["session_id"]
    second = ask(sim, "Explain it.", session_id)
    assert (first.json()["response"], second.json()["response"]) == (JOKE, EXPLANATION)
    assert sim.agent_session("Joker", session_id).user_messages == ["Tell me a pirate joke.",
                                                                    "Explain it."]


def test_a_crash_during_or_between_requests_keeps_the_conversation(sim):
    report = sim.crash_sweep(conversation)

    assert report.ok, report.explain()
    kinds = {point.kind for point in report.points}
    assert {"dequeue", "entity", "after-commit"} <= kinds
    # A crash after the model answered but before the entity committed re-runs the turn:
    # the model is called again (reported as cost), the conversation still holds it once.
    entity_crashes = [p for p in report.points if p.kind == "entity"]
    assert len(report.repeated_model_calls) == len(entity_crashes) == 2
    assert all(r.actual == r.expected + 1 for r in report.repeated_model_calls)
    assert "model call(s) repeated" in report.explain()


def test_an_entity_crash_mid_turn_is_invisible_to_the_client(sim, fake_llm):
    sim.crash_log.plan = CrashPlan(kinds={"entity"})

    reply = ask(sim, "Tell me a pirate joke.", "s1")

    assert reply.json()["response"] == JOKE
    assert [p.kind for p in sim.crashes] == ["entity"]
    assert len(fake_llm.requests) == 2                      # the lost turn ran again
    assert sim.agent_session("Joker", "s1").replies == [JOKE]
