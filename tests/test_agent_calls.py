"""Agent conversations read back from an orchestration's history alone."""

from __future__ import annotations

import json

from dafx_testing.core.history import EventType, load_history
from dafx_testing.reports.agent_calls import conversations_in


def history_of(trip, instance_id="trip-1"):
    return load_history(trip.files[instance_id])["history"]


def test_the_call_and_its_reply_become_a_turn_with_its_tool_call(trip):
    session, = conversations_in(history_of(trip))

    assert session.agent == "Forecaster"            # the reply's author, not the lower-cased entity
    assert session.user_messages == ["Weather in Oslo?"]
    assert session.replies == [trip.forecast]
    call, = session.tool_calls
    assert (call.name, call.arguments, call.result) == ("get_weather", {"city": "Oslo"},
                                                        "Sunny, 24C in Oslo")
    turn, = session.turns
    assert turn.orchestration_id == "trip-1"
    assert turn.usage["total_token_count"] > 0
    assert session.transcript().splitlines()[1:] == [
        "  user: Weather in Oslo?",
        '  assistant: calls get_weather({"city": "Oslo"})',
        f"  tool: {call.call_id} -> 'Sunny, 24C in Oslo'",
        f"  assistant: {trip.forecast}"]


def test_the_history_agrees_with_the_agents_stored_state(trip):
    from_history, = conversations_in(history_of(trip))
    stored, = trip.sim.agent_sessions("Forecaster")

    assert from_history.key == stored.key
    assert from_history.user_messages == stored.user_messages
    assert from_history.replies == stored.replies
    assert from_history.tool_calls == stored.tool_calls


def test_a_call_still_waiting_for_its_reply_is_a_pending_turn(trip):
    events = history_of(trip)
    reply = next(i for i, e in enumerate(events) if e["EventType"] == EventType.EventRaised)

    session, = conversations_in(events[:reply])

    assert session.replies == [None]
    assert session.transcript().endswith("(no response yet)")


def test_a_failed_agent_call_shows_its_error(trip):
    events = [dict(e) for e in history_of(trip)]
    reply = next(e for e in events if e["EventType"] == EventType.EventRaised)
    reply["Input"] = json.dumps({"result": "model unavailable", "exceptionType": "Error"})

    session, = conversations_in(events)

    assert session.turns[0].errors == ["model unavailable"]


def test_histories_without_agent_calls_have_no_conversations(trip):
    assert conversations_in(history_of(trip, "doomed-1")) == []
    assert conversations_in([]) == []
