"""Host-format timestamps and history files: round trips, and errors that point at the problem."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from dafx_testing import HistoryFormatError
from dafx_testing.core.history import (
    EventType,
    format_timestamp,
    load_history,
    new_event,
    parse_timestamp,
    save_history,
)

UTC = timezone.utc
T0 = datetime(2025, 1, 1, 12, 30, 45, tzinfo=UTC)


def events():
    return [
        new_event(EventType.OrchestratorStarted, T0),
        new_event(EventType.ExecutionStarted, T0, Name="hello", Input='"Tokyo"'),
        new_event(EventType.TaskScheduled, T0, event_id=0, Name="greet", Input='["\\"Tokyo\\""]'),
        new_event(EventType.OrchestratorCompleted, T0 + timedelta(microseconds=1500)),
    ]


# --- timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize("moment, text", [
    (datetime(2025, 1, 1, tzinfo=UTC), "2025-01-01T00:00:00Z"),
    (datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=UTC), "2025-01-01T00:00:00.5Z"),
    (datetime(2025, 1, 1, 0, 0, 0, 120000, tzinfo=UTC), "2025-01-01T00:00:00.12Z"),
    (datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC), "2025-01-01T00:00:00.000001Z"),
    (datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), "2025-01-01T00:00:00.123456Z"),
    (datetime(2025, 6, 30, 23, 59, 59, 10, tzinfo=UTC), "2025-06-30T23:59:59.00001Z"),
])
def test_format_timestamp_drops_trailing_fraction_zeros_like_dotnet(moment, text):
    assert format_timestamp(moment) == text


def test_format_timestamp_converts_to_utc():
    plus_two = timezone(timedelta(hours=2))

    assert format_timestamp(datetime(2025, 3, 1, 1, 0, tzinfo=plus_two)) == "2025-02-28T23:00:00Z"


@pytest.mark.parametrize("text, expected", [
    ("2025-01-01T00:00:00Z", datetime(2025, 1, 1, tzinfo=UTC)),
    ("2025-01-01T00:00:00.5Z", datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ("2025-01-01T00:00:00.12Z", datetime(2025, 1, 1, 0, 0, 0, 120000, tzinfo=UTC)),
    ("2025-01-01T00:00:00.123456Z", datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    # .NET writes up to seven digits (100 ns ticks); the seventh is below Python's resolution.
    ("2025-01-01T00:00:00.1234567Z", datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    ("2025-01-01T00:00:00.0000001Z", datetime(2025, 1, 1, tzinfo=UTC)),
    ("2025-01-01T02:00:00+02:00", datetime(2025, 1, 1, tzinfo=UTC)),
    ("2025-01-01T00:00:00", datetime(2025, 1, 1, tzinfo=UTC)),          # naive is UTC
    ("2025-01-01T00:00:00.75", datetime(2025, 1, 1, 0, 0, 0, 750000, tzinfo=UTC)),
    ("  2025-01-01T00:00:00Z\n", datetime(2025, 1, 1, tzinfo=UTC)),
])
def test_parse_timestamp_reads_host_and_sdk_forms_as_aware_utc(text, expected):
    moment = parse_timestamp(text)

    assert moment == expected
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text, expected", [
    ("2025-01-01T02:00:00.1234567+02:00", datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    ("2024-12-31T19:00:00.25-05:00", datetime(2025, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
    ("2025-01-01T05:30:00.5+05:30", datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
])
def test_parse_timestamp_keeps_an_offset_that_follows_a_fraction(text, expected):
    assert parse_timestamp(text) == expected


def test_parse_timestamp_inverts_format_timestamp():
    for moment in (T0, T0 + timedelta(microseconds=10), T0 + timedelta(microseconds=999999)):
        assert parse_timestamp(format_timestamp(moment)) == moment


@pytest.mark.parametrize("text", ["yesterday", "", "2025-13-01T00:00:00Z", "2025-01-01T25:00:00Z"])
def test_parse_timestamp_rejects_non_iso_text(text):
    with pytest.raises(HistoryFormatError, match="not an ISO timestamp") as caught:
        parse_timestamp(text)

    assert repr(text) in str(caught.value)
    assert isinstance(caught.value, ValueError)


# --- history files ---------------------------------------------------------------------


def test_save_then_load_round_trips_the_document(tmp_path):
    document = {"instanceId": "abc", "name": "hello", "input": '"Tokyo"', "history": events()}
    target = tmp_path / "nested" / "dir" / "order-1.json"

    returned = save_history(target, document)
    loaded = load_history(target)

    assert returned == target
    assert loaded == {"format": "dafx-history", "version": 1, **document}
    on_disk = json.loads(target.read_text(encoding="utf-8"))
    assert (on_disk["format"], on_disk["version"]) == ("dafx-history", 1)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "history.json"
    target.write_text("old contents", encoding="utf-8")

    save_history(target, {"history": events()})
    save_history(str(target), {"history": events()[:1]})

    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]
    assert len(load_history(target)["history"]) == 1


def test_a_failed_save_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "history.json"
    save_history(target, {"history": events()})
    before = target.read_text(encoding="utf-8")

    with pytest.raises(TypeError):
        save_history(target, {"history": [{"EventType": 0, "Input": object()}]})

    assert target.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_a_bare_list_of_host_events_loads(tmp_path):
    source = tmp_path / "exported.json"
    source.write_text(json.dumps(events()), encoding="utf-8")

    assert load_history(source) == {"history": events()}


def test_a_missing_file_is_a_history_format_error(tmp_path):
    with pytest.raises(HistoryFormatError, match="history file not found") as caught:
        load_history(tmp_path / "absent.json")

    assert "absent.json" in str(caught.value)


def test_non_json_names_line_and_column(tmp_path):
    source = tmp_path / "broken.json"
    source.write_text('{\n  "history": [\n    {"EventType": 0,,}\n  ]\n}\n', encoding="utf-8")

    with pytest.raises(HistoryFormatError) as caught:
        load_history(source)

    message = str(caught.value)
    assert str(source) in message
    assert "not JSON" in message and "line 3, column 21" in message


@pytest.mark.parametrize("content", [
    {"events": []},
    {"history": {"0": {}}},
    "just a string",
    42,
])
def test_a_wrong_top_level_shape_says_what_is_expected(tmp_path, content):
    source = tmp_path / "shape.json"
    source.write_text(json.dumps(content), encoding="utf-8")

    with pytest.raises(HistoryFormatError) as caught:
        load_history(source)

    message = str(caught.value)
    assert "an object with a 'history' list" in message
    assert "JSON list of host-format history events" in message


@pytest.mark.parametrize("missing", ["EventType", "EventId", "Timestamp"])
def test_an_event_missing_a_required_field_is_named_by_index(tmp_path, missing):
    history = events()
    del history[2][missing]
    source = tmp_path / "partial.json"
    source.write_text(json.dumps({"history": history}), encoding="utf-8")

    with pytest.raises(HistoryFormatError) as caught:
        load_history(source)

    message = str(caught.value)
    assert f"event 2 lacks {missing}" in message
    assert str(source) in message


def test_an_event_that_is_not_an_object_is_named_by_index(tmp_path):
    source = tmp_path / "odd.json"
    source.write_text(json.dumps(events()[:1] + ["TaskScheduled"]), encoding="utf-8")

    with pytest.raises(HistoryFormatError, match="event 1 is not an object: 'TaskScheduled'"):
        load_history(source)


@pytest.mark.parametrize("event_type", [29, -1, "TaskScheduled", 4.0])
def test_an_event_type_out_of_range_is_rejected(tmp_path, event_type):
    history = events()
    history[1]["EventType"] = event_type
    source = tmp_path / "types.json"
    source.write_text(json.dumps(history), encoding="utf-8")

    with pytest.raises(HistoryFormatError) as caught:
        load_history(source)

    message = str(caught.value)
    assert f"event 1 has EventType {event_type!r}" in message
    assert "0-28" in message


def test_every_dtfx_event_type_is_accepted(tmp_path):
    history = [new_event(kind, T0) for kind in EventType]
    source = tmp_path / "all.json"
    source.write_text(json.dumps(history), encoding="utf-8")

    # DTFx's 0-21, then the Durable Task protocol's entity events (22-28).
    assert [e["EventType"] for e in load_history(source)["history"]] == list(range(29))
