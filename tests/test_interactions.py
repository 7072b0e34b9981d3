"""A history read as interactions: participants, directions, pairing, payloads in plain words."""

from __future__ import annotations

import json
from datetime import timedelta

from dafx_testing.core.history import EventType, load_history
from dafx_testing.reports.interactions import IN, OUT, Participant, decode_payload, read_interactions


def steps_of(trip, instance_id):
    return read_interactions(load_history(trip.files[instance_id])["history"])


def test_every_participant_kind_appears_with_a_readable_label(trip):
    steps = steps_of(trip, "trip-1")

    labels = list(dict.fromkeys(step.participant.label for step in steps))
    assert labels[0] == "client"
    assert labels[1].startswith("agent forecaster@") and labels[1].endswith("...")
    assert labels[2:] == ["activity book_hotel", "sub-orchestration send_notice (notice-1)",
                          "entity counter@trips", "timers"]


def test_calls_go_out_and_answers_come_back_with_the_same_sequence_number(trip):
    steps = steps_of(trip, "trip-1")

    calls = {s.task_id: s for s in steps if s.direction == OUT and s.task_id is not None}
    answers = {s.task_id: s for s in steps if s.reply}
    assert sorted(calls) == [0, 1, 2, 3, 4]
    assert sorted(answers) == [0, 1, 2, 3]              # the timer lost the race: never fired
    for task_id, answer in answers.items():
        assert answer.participant == calls[task_id].participant
        assert answer.at >= calls[task_id].at


def test_labels_episodes_and_virtual_time(trip):
    steps = steps_of(trip, "trip-1")

    assert [(s.direction, s.label) for s in steps] == [
        (IN, "start plan_trip"), (OUT, "call run"), (IN, "run returned"), (OUT, "call"),
        (IN, "completed"), (OUT, "start"), (IN, "completed"), (OUT, "call add"),
        (IN, "add returned"),
        (OUT, "until 2025-01-02T00:00:00Z"), (IN, "event Confirm"), (OUT, "Completed")]
    assert [s.episode for s in steps] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    assert steps[-2].elapsed == timedelta(hours=2)
    assert steps[0].elapsed == timedelta(0)
    assert not any(s.failed for s in steps)


def test_summaries_unwrap_the_hosts_encodings(trip):
    summaries = {(s.participant.kind, s.label): s.summary for s in steps_of(trip, "trip-1")}

    assert summaries[("client", "start plan_trip")] == '{"city": "Oslo"}'   # JSON in a JSON string
    assert summaries[("activity", "call")] == "Oslo"                        # the host's input array
    assert summaries[("agent", "call run")] == "Weather in Oslo?"           # the agent's RunRequest
    assert summaries[("agent", "run returned")] == trip.forecast             # its reply text
    assert summaries[("entity", "add returned")] == "1"                     # the ResponseMessage
    assert summaries[("client", "event Confirm")] == "true"
    assert json.loads(summaries[("client", "Completed")])["hotel"] == "hotel-oslo"


def test_failures_are_flagged_on_the_task_and_the_execution(trip):
    steps = steps_of(trip, "doomed-1")

    assert [(s.label, s.failed) for s in steps] == [
        ("start doomed", False), ("call", False), ("failed", True), ("Failed", True)]
    assert "ValueError: no hotels in Atlantis" in steps[2].summary
    assert steps[2].event == EventType.TaskFailed


def test_a_sub_orchestration_answers_to_its_parent_instance(trip):
    steps = steps_of(trip, "notice-1")

    parent = Participant("instance", key="trip-1")
    assert steps[0].participant == parent and steps[0].direction == IN
    assert steps[-1].participant == parent and steps[-1].label == "Completed"


def test_an_empty_history_has_no_interactions():
    assert read_interactions([]) == []


def test_decode_payload_unwraps_json_in_json_and_keeps_plain_text():
    assert decode_payload(None) is None
    assert decode_payload('"{\\"a\\": 1}"') == {"a": 1}
    assert decode_payload('"hello"') == "hello"
    assert decode_payload("not json") == "not json"
    assert decode_payload("null") is None
