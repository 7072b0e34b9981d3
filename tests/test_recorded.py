"""One shape for an instance, whether it comes from a simulator, a history file or a bare list."""

from __future__ import annotations

import json

import pytest

from dafx_testing.core.errors import HistoryFormatError
from dafx_testing.core.history import EventType, load_history
from dafx_testing.reports.recorded import RecordedInstance, read_instances


def test_a_saved_file_gives_its_id_status_input_and_output(trip):
    instance, = read_instances([trip.files["trip-1"]])

    assert (instance.instance_id, instance.name, instance.runtime_status) == (
        "trip-1", "plan_trip", "Completed")
    assert instance.input == {"city": "Oslo"}
    assert instance.output["status"] == "confirmed"
    assert instance.source == str(trip.files["trip-1"])


def test_a_live_status_and_its_saved_file_agree(trip):
    live = RecordedInstance.of(trip.sim.get_status("trip-1"))
    saved, = read_instances([trip.files["trip-1"]])

    assert (live.instance_id, live.name, live.runtime_status, live.input, live.output) == (
        saved.instance_id, saved.name, saved.runtime_status, saved.input, saved.output)
    assert live.history == saved.history
    assert live.source is None


def test_a_bare_event_list_is_read_from_its_history(trip, tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(load_history(trip.files["doomed-1"])["history"]), encoding="utf-8")

    instance, = read_instances([bare])

    assert (instance.instance_id, instance.name, instance.runtime_status) == (
        "doomed-1", "doomed", "Failed")
    assert "no hotels in Atlantis" in instance.output


@pytest.mark.parametrize("cut, status", [
    (EventType.ExecutionCompleted, "Running"),      # cut before the end: still running
    (EventType.ExecutionStarted, "Pending"),        # nothing started yet
])
def test_without_a_recorded_status_it_is_read_from_the_history(trip, cut, status):
    events = load_history(trip.files["trip-1"])["history"]
    end = next(i for i, e in enumerate(events) if e["EventType"] == cut)

    assert RecordedInstance.of(events[:end]).runtime_status == status


def test_a_suspended_history_says_so(trip):
    events = load_history(trip.files["trip-1"])["history"][:3]
    events.append(dict(events[-1], EventType=int(EventType.ExecutionSuspended), Reason="paused"))

    assert RecordedInstance.of(events).runtime_status == "Suspended"


def test_folders_are_read_in_path_order(trip):
    folder = trip.files["trip-1"].parent

    assert [i.instance_id for i in read_instances([folder])] == ["doomed-1", "notice-1", "trip-1"]


def test_an_empty_folder_and_a_wrong_value_are_named(tmp_path):
    with pytest.raises(HistoryFormatError, match=f"{tmp_path} is a folder with no history files"):
        read_instances([tmp_path])
    with pytest.raises(HistoryFormatError, match="cannot show a str as an instance"):
        RecordedInstance.of("trip-1.json")
