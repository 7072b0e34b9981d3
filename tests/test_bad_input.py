"""Bad input never gets a traceback (issue 21): history files, command-line arguments, API calls.

One test per class of the issue, each with several examples. A bad history is refused by
every reader (``dafx replay``, ``dafx show``, ``Replayer``, ``Simulator.load_history``) with
the same message, naming the file, the event index, the field and what is valid; the
command line exits 2 with one error line and a hint, never "unexpected ..." or a
traceback; the API raises dafx's own errors naming the argument.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from datetime import timedelta
from pathlib import Path

import pytest

from dafx_testing import DafxError, HistoryFormatError, SerializationError, Simulator
from dafx_testing.checks.replayer import Replayer
from dafx_testing.cli import EXIT_USAGE, main
from dafx_testing.core.errors import ArgumentError, UnknownFunctionError

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "scenarios" / "versioning" / "histories"
V1 = ROOT / "scenarios" / "versioning" / "function_app_v1.py"
APPROVAL = str(ROOT / "scenarios" / "content_approval" / "function_app.py")
SAGA = str(ROOT / "scenarios" / "order_saga" / "function_app.py")
SHIPPED = json.loads((HISTORIES / "shipped.json").read_text("utf-8"))
# shipped.json: 1 ExecutionStarted, 2 TaskScheduled, 5 TaskCompleted, 10 TimerCreated,
# 13 EventRaised, 18 ExecutionCompleted.
DEEP = "[" * 50_000 + "]" * 50_000


def dafx(capsys, *argv):
    """``(exit code, stdout, stderr)`` of the command, checked for the fallback's signs."""
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected" not in err, err
    return code, out, err


def edited(edit, document=None):
    document = copy.deepcopy(SHIPPED if document is None else document)
    edit(document)
    return document


def event(index, **fields):
    return lambda document: document["history"][index].update(fields)


@functools.cache
def readers():
    """``Replayer.replay`` and ``Simulator.load_history`` of v1 (a refused history changes neither)."""
    return Replayer(V1).replay, Simulator(V1).load_history


def refused_everywhere(capsys, tmp_path, document):
    """Every reader refuses ``document``: the messages (file readers first, then in memory)."""
    path = tmp_path / "bad.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), "utf-8")
    messages = []
    code, out, err = dafx(capsys, "replay", "--app", V1, path)
    assert code == EXIT_USAGE, out + err
    messages.append(next(line for line in out.splitlines() if line.startswith("ERROR")))
    code, out, err = dafx(capsys, "show", path)
    assert code == EXIT_USAGE and out == "", out + err
    messages.append(err.splitlines()[0])
    for read in readers():
        with pytest.raises(HistoryFormatError) as caught:
            read(path)
        messages.append(str(caught.value))
    assert all(str(path) in message for message in messages), messages
    if not isinstance(document, str):
        for read in readers():
            with pytest.raises(HistoryFormatError) as caught:
                read(copy.deepcopy(document))
            messages.append(str(caught.value))
    return messages


# -- 1. values the reader passed on unchecked ----------------------------------------------


@pytest.mark.parametrize("edit, where", [
    (event(1, Input="{not json"), "event 1 (ExecutionStarted) has Input '{not json'; it must be "
                                  "JSON text or null (not JSON: Expecting property name"),
    (event(1, Input=5), "event 1 (ExecutionStarted) has Input 5; it must be JSON text (a string) "
                        "or null"),
    (event(1, OrchestrationInstance="order-shipped"),
     "event 1 (ExecutionStarted) has OrchestrationInstance 'order-shipped'; it must be an object "
     "or null"),
    (event(1, ParentInstance="parent"), "event 1 (ExecutionStarted) has ParentInstance 'parent'; "
                                        "it must be an object or null"),
    (event(1, OrchestrationInstance={"InstanceId": 7}),
     "event 1 (ExecutionStarted) has OrchestrationInstance.InstanceId 7; it must be a non-empty "
     "string or null"),
    (event(2, Timestamp=1740819600), "event 2 (TaskScheduled) has Timestamp 1740819600; it must "
                                     "be an ISO timestamp string"),
    (event(2, Timestamp=None), "event 2 (TaskScheduled) has Timestamp None; it must be an ISO "
                               "timestamp string"),
    (event(5, Result="not json"), "event 5 (TaskCompleted) has Result 'not json'; it must be "
                                  "JSON text or null"),
    (event(10, FireAt=3), "event 10 (TimerCreated) has FireAt 3; it must be an ISO timestamp"),
    (event(18, OrchestrationStatus=99), "event 18 (ExecutionCompleted) has OrchestrationStatus "
                                        "99; it must be one of the OrchestrationStatus ints 0 "
                                        "(Running), 1 (Completed)"),
    (lambda d: d.update(runtimeStatus=5), "the document's 'runtimeStatus' is 5; it must be null "
                                          "or one of Running, Completed"),
])
def test_every_field_is_checked_where_the_history_is_read(capsys, tmp_path, edit, where):
    for message in refused_everywhere(capsys, tmp_path, edited(edit)):
        assert where in message, message


def test_a_status_api_answer_is_checked_field_by_field_too(capsys, tmp_path):
    status = {"instanceId": "order-shipped", "input": {"id": "A-1001"}, "historyEvents": [
        {"EventType": "ExecutionStarted", "Timestamp": "2025-03-01T09:00:00Z",
         "FunctionName": "order_fulfillment"},
        {"EventType": "TaskCompleted", "Timestamp": "2025-03-01T09:00:00Z", "Result": "ok",
         "ScheduledTime": "2025-03-01T09:00:00Z", "FunctionName": "reserve_stock"}]}
    assert readers()[0](status).orchestrator == "order_fulfillment"
    for edit, where in [
        (lambda d: d["historyEvents"][1].update(ScheduledTime="noon"),
         "event 1 (TaskCompleted) ScheduledTime: not an ISO timestamp: 'noon'"),
        (lambda d: d["historyEvents"][1].update(FunctionName=5),
         "event 1 (TaskCompleted) has FunctionName 5; it must be a non-empty string"),
        (lambda d: d["historyEvents"][0].update(Timestamp=None),
         "event 0 (ExecutionStarted) has Timestamp None; it must be an ISO timestamp string"),
        (lambda d: d.update(instanceId=["order"]),
         "the document's 'instanceId' is ['order']; it must be a non-empty string or null"),
    ]:
        path = tmp_path / "status.json"
        path.write_text(json.dumps(edited(edit, status)), "utf-8")
        code, out, _ = dafx(capsys, "replay", "--app", V1, path)
        assert code == EXIT_USAGE
        assert f"ERROR     {path}: {where}" in out


# -- 2. garbage that replayed as OK ----------------------------------------------------------


@pytest.mark.parametrize("edit, where", [
    (event(2, EventType="TaskScheduled"),
     "event 2 has EventType 'TaskScheduled', a name as the status API writes it, but event 0 has "
     "EventType 12, a DTFx int; a history is one or the other"),
    (event(2, EventType=True), "event 2 has EventType True; valid values are the DTFx EventType "
                               "ints 0-28"),
    (event(2, EventId=False), "event 2 (TaskScheduled) has EventId False; it must be an integer"),
    (event(5, TaskScheduledId=True), "event 5 (TaskCompleted) has TaskScheduledId True; it must "
                                     "be an integer"),
    (event(18, OrchestrationStatus=True), "event 18 (ExecutionCompleted) has OrchestrationStatus "
                                          "True; it must be one of the OrchestrationStatus ints"),
    (lambda d: d.update(historyEvents=[]),
     "holds both 'history' (a dafx history file) and 'historyEvents' (a status-API answer)"),
    (lambda d: d.update(historyEvents=d.pop("history")),
     "holds both format 'dafx-history' (a dafx history file) and 'historyEvents'"),
    (lambda d: d.update(version=True), "the document's 'version' is True; it must be an integer "
                                       "from 1 to 1"),
])
def test_a_file_is_read_as_one_format_as_a_whole_and_bools_are_not_ints(capsys, tmp_path, edit,
                                                                        where):
    for message in refused_everywhere(capsys, tmp_path, edited(edit)):
        assert where in message, message


def test_status_events_under_a_dafx_file_format_are_a_mixture(capsys, tmp_path):
    document = {"format": "dafx-history", "version": 1, "history": [
        {"EventType": "ExecutionStarted", "Timestamp": "2025-03-01T09:00:00Z",
         "FunctionName": "order_fulfillment"}]}
    for message in refused_everywhere(capsys, tmp_path, document):
        assert ("event 0 has EventType 'ExecutionStarted', a name as the status API writes it, "
                "but the file says format 'dafx-history'") in message


# -- 3. wrong-typed names --------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, 5, "", ["order_fulfillment"]])
def test_an_execution_started_name_that_is_not_a_string_is_unreadable_input(capsys, tmp_path,
                                                                           name):
    messages = refused_everywhere(capsys, tmp_path, edited(event(1, Name=name)))

    for message in messages:
        assert f"event 1 (ExecutionStarted) has Name {name!r}; it must be a non-empty string" \
            in message
        assert "no longer defines" not in message and "_v2" not in message


# -- 4. deep nesting -------------------------------------------------------------------------


def test_deep_nesting_is_a_clear_error_in_files_payloads_and_values(capsys, tmp_path):
    for message in refused_everywhere(capsys, tmp_path, DEEP):
        assert "nested deeper than 500 levels" in message
    messages = refused_everywhere(capsys, tmp_path, edited(event(1, Input=DEEP)))
    assert all("event 1 (ExecutionStarted) has Input '[[[[" in m and
               "it must be JSON text or null (nested deeper than 500 levels)" in m for m in messages)

    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(HistoryFormatError, match="<history>: nested deeper than 500 levels"):
        readers()[0]({"history": [deep]})
    with pytest.raises(SerializationError, match=r"the input of 'content_approval' is not JSON-"
                                                 r"serializable: value of type 'list' at "
                                                 r"\$\[0\]\[0\].*nested deeper than 500 levels"):
        Simulator(APPROVAL).start_new("content_approval", deep)

    with pytest.raises(SystemExit) as stopped:
        main(["run", APPROVAL, "content_approval", "--input", DEEP])
    out, err = capsys.readouterr()
    assert stopped.value.code == EXIT_USAGE and out == ""
    assert "argument --input: --input is not JSON the host accepts: nested deeper than 500 " \
           "levels" in err


# -- 5. command-line arguments through the fallback ------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--advance", "99999999999d"], "argument --advance: duration '99999999999d' is too long: the "
                                    "virtual clock ends in the year 9999"),
    (["--advance", "3000000d"], "--advance 3000000 days, 0:00:00 moves the virtual clock from "
                                "2025-01-01T00:00:00+00:00 past the year 9999"),
    (["--start-time", "noon"], "argument --start-time: invalid start time 'noon'; use ISO-8601"),
    (["--start-time", "2025-13-01"], "argument --start-time: invalid start time '2025-13-01'"),
    (["--input", "NaN"], "argument --input: --input is not JSON the host accepts: NaN is not a "
                         "JSON number the host accepts"),
    (["--event", "Approval=-Infinity"], "the data of event 'Approval' is not JSON the host "
                                        "accepts: -Infinity"),
    (["--html", "/"], "--html '/' is a folder; --html takes the file to write"),
    (["--html", "{tmp}/"], "--html '{tmp}/' is a folder; --html takes the file to write"),
    (["--html", "{tmp}/missing/folder/"], "--html '{tmp}/missing/folder/' is a folder"),
    (["--html", "{tmp}/file.txt/run.html"], "--html '{tmp}/file.txt/run.html': {tmp}/file.txt "
                                            "is a file, so no folder can be made there"),
])
def test_bad_run_arguments_are_one_line_before_any_work(capsys, tmp_path, monkeypatch, argv,
                                                        message):
    (tmp_path / "file.txt").write_text("not a folder")
    monkeypatch.setattr(Simulator, "start_new", lambda *a, **k: pytest.fail("work ran"))
    argv = [arg.format(tmp=tmp_path) for arg in argv]

    if argv[0] in ("--html", "--advance") and "99999999999d" not in argv:
        code, out, err = dafx(capsys, "run", APPROVAL, "content_approval", *argv)
    else:
        with pytest.raises(SystemExit) as stopped:
            main(["run", APPROVAL, "content_approval", *argv])
        code, (out, err) = stopped.value.code, capsys.readouterr()

    assert code == EXIT_USAGE and out == ""
    assert message.format(tmp=tmp_path) in err
    assert "Traceback" not in err and "unexpected" not in err
    assert err.rstrip().splitlines()[-1].startswith("hint: ")


@pytest.mark.parametrize("argv", [["--html", "/"], ["--html", "{tmp}/file.txt/sweep.html"],
                                  ["--advance", "3000000d"]])
def test_a_sweep_checks_its_arguments_before_the_sweep(capsys, tmp_path, monkeypatch, argv):
    (tmp_path / "file.txt").write_text("not a folder")
    monkeypatch.setattr(Simulator, "crash_sweep", lambda *a, **k: pytest.fail("the sweep ran"))

    code, out, err = dafx(capsys, "sweep", SAGA, "place_order",
                          *[arg.format(tmp=tmp_path) for arg in argv])

    assert code == EXIT_USAGE and out == ""
    assert err.startswith("dafx: error: --")


def test_show_checks_its_output_before_reading(capsys, tmp_path):
    code, out, err = dafx(capsys, "show", HISTORIES / "shipped.json", "--html", tmp_path)

    assert code == EXIT_USAGE and out == ""
    assert err.splitlines()[0] == (f"dafx: error: --html {str(tmp_path)!r} is a folder; --html "
                                   "takes the file to write")


# -- 6. unknown names ------------------------------------------------------------------------


def test_unknown_activity_names_and_point_kinds_are_refused_listing_the_known_ones(capsys):
    ran = []
    sim = Simulator(SAGA)
    with pytest.raises(UnknownFunctionError, match=r"idempotent=\['no_such_activity'\]: the app "
                                                   r"has no activity named 'no_such_activity'; "
                                                   r"known activities: 'reserve_inventory'"):
        sim.crash_sweep(ran.append, idempotent=["no_such_activity"])
    with pytest.raises(UnknownFunctionError, match=r"idempotent=\['ship_order', 'shipp_order'\]"):
        sim.explore(ran.append, idempotent=["ship_order", "shipp_order"])
    with pytest.raises(ArgumentError, match=r"kinds=\['activity', 'meteor'\]: unknown crash point "
                                            r"kind\(s\) 'meteor'; valid: dequeue, episode, "
                                            r"activity, entity, after-commit, duplicate"):
        sim.crash_sweep(ran.append, kinds=["activity", "meteor"])
    assert ran == []

    code, out, err = dafx(capsys, "sweep", SAGA, "place_order", "--idempotent", "ship_order",
                          "nothing_like_this")
    assert code == EXIT_USAGE and out == ""
    assert err.splitlines()[0] == (
        "dafx: error: idempotent=['ship_order', 'nothing_like_this']: the app has no activity "
        "named 'nothing_like_this'; known activities: 'reserve_inventory', 'charge_payment', "
        "'ship_order', 'refund_payment', 'release_inventory'")


# -- 7. API values that are not JSON, and arguments of the wrong type -----------------------


def test_api_arguments_are_checked_naming_the_argument_and_what_is_valid():
    sim = Simulator(APPROVAL)
    iid = sim.start_new("content_approval", {"topic": "tides"})
    sim.run_until_idle()
    itself: list = []
    itself.append(itself)
    cases = [
        (lambda: sim.start_new("content_approval", {"x": math.nan}), SerializationError,
         "the input of 'content_approval' is not JSON-serializable: value of type 'float' at $.x "
         "(nan: the host's JSON has no NaN or Infinity)"),
        (lambda: sim.start_new("content_approval", [math.inf]), SerializationError,
         "value of type 'float' at $[0] (inf: the host's JSON has no NaN or Infinity)"),
        (lambda: sim.raise_event(iid, "ApprovalDecision", -math.inf), SerializationError,
         "the data of event 'ApprovalDecision' is not JSON-serializable: value of type 'float' "
         "at $ (-inf"),
        (lambda: sim.start_new("content_approval", {"items": itself}), SerializationError,
         "value of type 'list' at $.items[0] (it contains itself: a circular reference)"),
        (lambda: sim.start_new("content_approval", None, instance_id=5), ArgumentError,
         "start_new(instance_id=5): expected a non-empty string, or None for a generated id"),
        (lambda: sim.start_new(None), ArgumentError,
         "start_new(name=None): expected a non-empty string (a name)"),
        (lambda: sim.raise_event(iid, 5, True), ArgumentError,
         "raise_event(name=5): expected a non-empty string (a name)"),
        (lambda: sim.raise_event(5, "ApprovalDecision", True), ArgumentError,
         "raise_event(instance_id=5): expected a non-empty string (an instance id)"),
        (lambda: sim.terminate(iid, reason=["why"]), ArgumentError,
         "terminate(reason=['why']): expected a string or None"),
        (lambda: sim.advance(5), ArgumentError,
         "advance(delta=5): expected a datetime.timedelta of zero or more, e.g. "
         "timedelta(hours=24)"),
        (lambda: sim.advance(timedelta(hours=-1)), ArgumentError,
         "advance(delta=datetime.timedelta(days=-1, seconds=82800)): expected a datetime.timedelta "
         "of zero or more"),
        (lambda: sim.advance(timedelta.max), ArgumentError,
         "advance(delta=datetime.timedelta(days=999999999, seconds=86399, microseconds=999999)): "
         "the virtual clock (2025-01-01T00:00:00+00:00) cannot move that far"),
        (lambda: sim.wait_for_completion(iid, timeout=30), ArgumentError,
         "wait_for_completion(timeout=30): expected a datetime.timedelta"),
        (lambda: sim.load_history({}), HistoryFormatError,
         "load_history(source): expected a dafx history file (an object with a 'history' list) or "
         "a JSON list of host-format history events"),
        (lambda: sim.load_history({"history": {"0": {}}}), HistoryFormatError,
         "load_history(source): 'history' is a dict; expected a dafx history file"),
        (lambda: sim.load_history(5), ArgumentError,
         "load_history(source=5): expected a history file path, a history document (a dict with a "
         "'history' list of host-format events) or a list of such events"),
        (lambda: Simulator(APPROVAL, start_time="noon"), ArgumentError,
         "Simulator(start_time='noon'): expected a datetime or an ISO-8601 string"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as caught:
            call()
        assert isinstance(caught.value, DafxError)
        assert message in str(caught.value), str(caught.value)
    assert [s.runtime_status for s in sim.list_instances()] == ["Running"]   # nothing was started


def test_argument_errors_are_still_the_builtin_errors_they_were():
    sim = Simulator(APPROVAL)
    with pytest.raises(TypeError):
        sim.advance(5)
    with pytest.raises(ValueError):
        sim.advance(timedelta(hours=-1))
