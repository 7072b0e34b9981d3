"""Mermaid sequence diagrams: participants declared once, arrows by direction, escaped text."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from dafx_testing.core.history import EventType, load_history, new_event
from dafx_testing.reports.mermaid import sequence_diagram

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
DECLARATION = re.compile(r"^    (actor|participant) (\w+) as (.+)$")
MESSAGE = re.compile(r"^    (\w+)(->>|-->>|-x|--x|-\))(\w+): (.+)$")
NOTE = re.compile(r"^    Note over O: (.+)$")


def diagram_of(trip, instance_id):
    return sequence_diagram(load_history(trip.files[instance_id])["history"])


def parse(diagram):
    """(declared aliases -> labels, messages as (from, arrow, to, text)); every line must parse."""
    lines = diagram.splitlines()
    assert lines[0] == "sequenceDiagram"
    declared, messages = {}, []
    for line in lines[1:]:
        if DECLARATION.match(line):
            _, alias, label = DECLARATION.match(line).groups()
            assert alias not in declared, f"{alias} declared twice"
            assert not messages, "participants are declared before the first message"
            declared[alias] = label
        elif MESSAGE.match(line):
            source, arrow, target, text = MESSAGE.match(line).groups()
            assert {source, target} <= set(declared), line
            messages.append((declared[source], arrow, declared[target], text))
        else:
            assert NOTE.match(line), f"unexpected line: {line!r}"
    return declared, messages


def test_the_trip_is_drawn_participant_by_participant(trip):
    declared, messages = parse(diagram_of(trip, "trip-1"))

    assert list(declared.values())[:2] == ["client", "plan_trip"]
    assert list(declared.values())[3:] == ["activity book_hotel",
                                           "sub-orchestration send_notice (notice-1)",
                                           "entity counter@trips", "timers"]
    agent = list(declared.values())[2]
    assert agent.startswith("agent forecaster@")
    assert messages == [
        ("client", "->>", "plan_trip", 'start plan_trip {"city": "Oslo"}'),
        ("plan_trip", "->>", agent, "call run #0 Weather in Oslo?"),
        (agent, "-->>", "plan_trip", f"run returned #0 {trip.forecast}"),
        ("plan_trip", "->>", "activity book_hotel", "call #1 Oslo"),
        ("activity book_hotel", "-->>", "plan_trip", "completed #1 hotel-oslo"),
        ("plan_trip", "->>", "sub-orchestration send_notice (notice-1)",
         "start #2 Booked hotel-oslo"),
        ("sub-orchestration send_notice (notice-1)", "-->>", "plan_trip",
         "completed #2 sent: Booked hotel-oslo"),
        ("plan_trip", "->>", "entity counter@trips", "call add #3 1"),
        ("entity counter@trips", "-->>", "plan_trip", "add returned #3 1"),
        ("plan_trip", "->>", "timers", "until 2025-01-02T00:00:00Z #4"),
        ("client", "->>", "plan_trip", "event Confirm true"),
        ("plan_trip", "->>", "client",
         'Completed {"status": "confirmed", "forecast": "Sunny and 24C in Osl...'),
    ]


def test_a_note_marks_each_move_of_the_virtual_clock(trip):
    notes = [line.strip() for line in diagram_of(trip, "trip-1").splitlines() if "Note" in line]

    assert notes == ["Note over O: +00:00:00 (2025-01-01T00:00:00Z)",
                     "Note over O: +02:00:00 (2025-01-01T02:00:00Z)"]


def test_failures_are_crossed_arrows(trip):
    _, messages = parse(diagram_of(trip, "doomed-1"))

    assert [(m[0], m[1], m[2]) for m in messages[2:]] == [
        ("activity book_hotel", "--x", "doomed"), ("doomed", "-x", "client")]


def test_a_sub_orchestration_is_started_by_its_parent(trip):
    declared, messages = parse(diagram_of(trip, "notice-1"))

    assert list(declared.values())[:2] == ["instance trip-1", "send_notice"]
    assert messages[-1][:3] == ("send_notice", "->>", "instance trip-1")


def test_signals_and_events_to_other_instances_are_open_arrows():
    signal = json.dumps({"op": "reset", "signal": True, "id": "r1", "input": None})
    history = [
        new_event(EventType.OrchestratorStarted, START),
        new_event(EventType.ExecutionStarted, START, Name="notifier"),
        new_event(EventType.EventSent, START, 0, InstanceId="@counter@k1", Name="op", Input=signal),
        new_event(EventType.EventSent, START, 1, InstanceId="other-1", Name="Wake", Input="true"),
    ]

    _, messages = parse(sequence_diagram(history))

    assert messages[1:] == [("notifier", "-)", "entity counter@k1", "signal reset #0"),
                            ("notifier", "-)", "instance other-1", "event Wake #1 true")]


def test_text_that_mermaid_would_read_as_syntax_is_encoded():
    history = [
        new_event(EventType.OrchestratorStarted, START),
        new_event(EventType.ExecutionStarted, START, Name="odd", Input='"a;b <i>c</i> #9829;"'),
    ]

    diagram = sequence_diagram(history, title="odd; <title>")

    assert "participant O as odd#59; #60;title#62;" in diagram
    assert diagram.splitlines()[-1].endswith(": start odd a#59;b #60;i#62;c#60;/i#62; #9829#59;")


def test_long_histories_keep_both_ends_and_say_what_was_left_out():
    history = [new_event(EventType.OrchestratorStarted, START),
               new_event(EventType.ExecutionStarted, START, Name="many")]
    history += [new_event(EventType.EventRaised, START, Name=f"e{n}", Input=str(n))
                for n in range(20)]

    lines = sequence_diagram(history, max_messages=6).splitlines()

    messages = [line for line in lines if "->>" in line]
    assert len(messages) == 6
    assert messages[0].endswith("start many") and messages[-1].endswith("event e19 19")
    assert "    Note over O: ... 15 messages left out ..." in lines
