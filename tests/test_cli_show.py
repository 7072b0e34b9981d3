"""``dafx show``: saved histories as a text timeline, a Mermaid diagram, an HTML page or JSON."""

from __future__ import annotations

import json

import pytest

from dafx_testing.cli import EXIT_COMPLETED, EXIT_USAGE, main
from dafx_testing.core.history import load_history

HISTORY_HINT = ("hint: a history file is what Simulator.save_history writes, or a JSON list of "
                "host-format history events (EventType, EventId, Timestamp...)")


def show(capsys, *argv):
    code = main(["show", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_shows_the_status_the_timeline_and_the_conversation(capsys, trip):
    code, out, err = show(capsys, trip.files["trip-1"])

    assert code == EXIT_COMPLETED == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[:6] == ["instance   trip-1", "name       plan_trip", "status     Completed",
                         'input      {"city": "Oslo"}', lines[4],
                         f"file       {trip.files['trip-1']}"]
    assert json.loads(lines[4].split(None, 1)[1])["status"] == "confirmed"
    assert lines[6] == "events     24"
    assert "   +02:00:00  ep6   <- event 'Confirm' data=true" in lines
    assert "-> sub-orchestration send_notice #2 instance=notice-1" in out
    assert lines[-4:] == ["  user: Weather in Oslo?",
                          '  assistant: calls get_weather({"city": "Oslo"})',
                          lines[-2], f"  assistant: {trip.forecast}"]


def test_a_bare_event_list_and_a_folder_are_shown_too(capsys, trip, tmp_path):
    bare = tmp_path / "events.json"
    bare.write_text(json.dumps(load_history(trip.files["doomed-1"])["history"]), encoding="utf-8")

    code, out, _ = show(capsys, bare, trip.files["trip-1"].parent)

    assert code == EXIT_COMPLETED
    instances = [line.split()[1] for line in out.splitlines() if line.startswith("instance ")]
    assert instances == ["doomed-1", "doomed-1", "notice-1", "trip-1"]
    assert "status     Failed" in out
    assert "<- activity book_hotel #0 FAILED: Activity function 'book_hotel' failed" in out


def test_mermaid_prints_one_sequence_diagram(capsys, trip):
    code, out, _ = show(capsys, trip.files["trip-1"], "--format", "mermaid")

    assert code == EXIT_COMPLETED
    lines = out.splitlines()
    assert lines[:3] == ["sequenceDiagram", "    actor P0 as client",
                         "    participant O as plan_trip (trip-1)"]
    assert "    O->>P2: call #1 Oslo" in lines


def test_html_goes_to_stdout_or_to_the_file_given(capsys, trip, tmp_path):
    code, out, _ = show(capsys, trip.files["trip-1"], "--format", "html")
    assert code == EXIT_COMPLETED
    assert out.startswith("<!DOCTYPE html>") and "trip-1" in out

    target = tmp_path / "out" / "trip.html"
    code, out, err = show(capsys, trip.files["trip-1"].parent, "--html", target)
    assert code == EXIT_COMPLETED
    assert out == ""
    assert err == f"dafx: wrote 3 instance(s) to {target}\n"
    page = target.read_text(encoding="utf-8")
    assert all(f">{i}</a>" in page for i in ("trip-1", "notice-1", "doomed-1"))


def test_json_gives_each_instance_with_its_timeline_and_conversations(capsys, trip):
    code, out, _ = show(capsys, trip.files["trip-1"], "--json")

    assert code == EXIT_COMPLETED
    instance, = json.loads(out)["instances"]
    assert (instance["instanceId"], instance["runtimeStatus"], instance["events"]) == (
        "trip-1", "Completed", 24)
    assert instance["input"] == {"city": "Oslo"}
    assert instance["timeline"][0].endswith('started plan_trip input={"city": "Oslo"}')
    assert instance["conversations"] == [{
        "agent": "Forecaster", "session": instance["conversations"][0]["session"],
        "turns": [{"message": "Weather in Oslo?", "reply": trip.forecast, "errors": []}]}]
    assert instance["history"] == load_history(trip.files["trip-1"])["history"]


# --- unreadable histories ---------------------------------------------------------------


@pytest.mark.parametrize("content, problem", [
    (None, "history file not found: {path}"),
    ("{not json", "{path}: not JSON (Expecting property name enclosed in double quotes at line 1, "
                  "column 2)"),
    ('{"events": []}', "{path}: expected a dafx history file (an object with a 'history' list) or "
                       "a JSON list of host-format history events"),
    ('"just a string"', "{path}: expected a dafx history file"),
    ('[{"EventType": 0, "EventId": -1}]', "{path}: event 0 lacks Timestamp; host-format events "
                                          "carry EventType (int), EventId, IsPlayed and Timestamp"),
    ('[{"EventType": 42, "EventId": -1, "Timestamp": "2025-01-01T00:00:00Z"}]',
     "{path}: event 0 has EventType 42; valid values are the DTFx EventType ints 0-28"),
])
def test_an_unreadable_history_is_one_error_line_and_a_hint(capsys, tmp_path, content, problem):
    path = tmp_path / "history.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    code, out, err = show(capsys, path)

    assert code == EXIT_USAGE == 2
    assert out == ""
    message, hint = err.splitlines()
    assert message.startswith("dafx: error: " + problem.format(path=path))
    assert hint == HISTORY_HINT


def test_a_file_that_is_not_text_is_named(capsys, tmp_path):
    path = tmp_path / "history.json"
    path.write_bytes(b"\xff\xfe\x00binary")

    code, _, err = show(capsys, path)

    assert code == EXIT_USAGE
    assert err.startswith(f"dafx: error: cannot read history file {path}: 'utf-8' codec")


def test_an_empty_folder_is_named(capsys, tmp_path):
    code, _, err = show(capsys, tmp_path)

    assert code == EXIT_USAGE
    assert err.splitlines()[0] == (f"dafx: error: {tmp_path} is a folder with no history files "
                                   "(*.json) in it")


# --- options that do not go together -------------------------------------------------------


@pytest.mark.parametrize("options, message, hint", [
    (["--format", "mermaid", "--html", "x.html"],
     "--html writes an HTML page, but --format is mermaid", "drop --format, or use --format html"),
    (["--format", "html", "--json"], "--json and --format html are two outputs; pick one",
     "--json prints the histories as one JSON document for scripts"),
])
def test_conflicting_outputs_are_refused(capsys, trip, options, message, hint):
    code, out, err = show(capsys, trip.files["trip-1"], *options)

    assert code == EXIT_USAGE
    assert out == ""
    assert err.splitlines() == [f"dafx: error: {message}", f"hint: {hint}"]


def test_mermaid_draws_one_instance_and_says_so(capsys, trip):
    code, _, err = show(capsys, trip.files["trip-1"].parent, "--format", "mermaid")

    assert code == EXIT_USAGE
    assert err.splitlines()[0].startswith("dafx: error: --format mermaid draws one instance; "
                                          "FILES hold 3 (")
    assert err.splitlines()[1] == "hint: give one history file, or use --format html to see several"


def test_an_unknown_format_lists_the_valid_ones(capsys, trip):
    with pytest.raises(SystemExit) as stopped:
        main(["show", str(trip.files["trip-1"]), "--format", "svg"])

    assert stopped.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "invalid choice: 'svg' (choose from 'text', 'mermaid', 'html')" in err
    assert err.endswith("hint: 'dafx show --help' lists the options, with examples\n")


def test_debug_shows_the_traceback_instead(tmp_path):
    from dafx_testing.core.errors import HistoryFormatError

    with pytest.raises(HistoryFormatError, match="history file not found"):
        main(["show", str(tmp_path / "missing.json"), "--debug"])


def test_a_reader_that_goes_away_ends_the_command_quietly(capsys, trip, monkeypatch):
    from dafx_testing import cli

    def closed_pipe(_):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_print_instances", closed_pipe)
    code, _, err = show(capsys, trip.files["trip-1"])

    assert code == cli.EXIT_BROKEN_PIPE == 141
    assert err == ""
