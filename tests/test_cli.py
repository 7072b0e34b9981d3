"""The ``dafx run`` command: outcomes, exit codes, and usage errors that name the problem."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from dafx_testing.cli import (
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_RUNNING,
    EXIT_USAGE,
    _version,
    main,
    parse_duration,
)
from fakes.content_service import service

ROOT = Path(__file__).resolve().parents[1]
APP = "scenarios/content_approval/function_app.py"
TIDES = ["--input", '{"topic": "tides"}']


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch):
    """Run from the repository root, with a fresh content service ledger."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", sys.path[:])     # main() puts the cwd on sys.path
    service.reset()
    yield
    service.reset()


def run(capsys, *argv: str):
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def field(out: str, name: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith(name + " "))
    return line[len(name):].strip()


# --- outcomes --------------------------------------------------------------------------


def test_approval_completes_and_prints_the_timeline(capsys):
    code, out, err = run(capsys, APP, "content_approval", *TIDES,
                         "--event", "ApprovalDecision=true")

    assert code == EXIT_COMPLETED == 0
    assert field(out, "status") == "Completed"
    assert field(out, "output") == (
        '{"status": "published", "url": "https://content.example.test/posts/1"}')
    assert field(out, "custom") == '{"stage": "published"}'
    assert field(out, "clock") == "2025-01-01T00:00:00+00:00"
    assert "waiting" not in out
    for line in ("started content_approval",
                 "-> activity draft_content #0", "<- activity draft_content #0",
                 "-> activity notify_reviewer #1", "<- activity notify_reviewer #1",
                 "-> timer #2 until 2025-01-02T00:00:00Z",
                 "<- event 'ApprovalDecision' data=true",
                 "-> activity publish_content #3", "<- activity publish_content #3",
                 "COMPLETED #4"):
        assert line in out
    assert "escalate_for_review" not in out
    assert [call.operation for call in service.calls] == ["draft", "notify_reviewer", "publish"]
    assert service.calls[0].payload == "tides"
    assert err == ""


def test_advancing_past_the_deadline_escalates(capsys):
    code, out, _ = run(capsys, APP, "content_approval", *TIDES, "--advance", "24h")

    assert code == EXIT_COMPLETED
    assert field(out, "status") == "Completed"
    assert "escalated" in field(out, "output")
    assert field(out, "clock") == "2025-01-02T00:00:00+00:00"
    assert "+1d 00:00:00  ep4   <- timer #2 fired" in out
    assert "-> activity escalate_for_review #3" in out
    assert [call.operation for call in service.calls] == ["draft", "notify_reviewer", "escalate"]


def test_advancing_less_than_the_deadline_keeps_waiting(capsys):
    code, out, _ = run(capsys, APP, "content_approval", "--advance", "23h59m")

    assert code == EXIT_RUNNING
    assert field(out, "clock") == "2025-01-01T23:59:00+00:00"
    assert "fired" not in out


def test_without_event_or_advance_it_is_still_waiting(capsys):
    code, out, _ = run(capsys, APP, "content_approval", *TIDES)

    assert code == EXIT_RUNNING == 3
    assert field(out, "status") == "Running"
    assert field(out, "waiting") == "for event(s): ApprovalDecision"
    assert field(out, "custom") == (
        '{"stage": "awaiting_review", "reviewer": "reviewer@example.test"}')
    assert "output" not in out


def test_rejection_completes_with_the_rejection(capsys):
    code, out, _ = run(capsys, APP, "content_approval", *TIDES,
                       "--event", 'ApprovalDecision={"approved": false}')

    assert code == EXIT_COMPLETED
    assert field(out, "output") == '"Content rejected"'
    assert field(out, "custom") == '{"stage": "rejected"}'
    assert """<- event 'ApprovalDecision' data={"approved": false}""" in out
    assert "publish" not in [call.operation for call in service.calls]


def test_an_event_after_the_instance_finished_is_reported_and_skipped(capsys):
    code, out, err = run(capsys, APP, "content_approval",
                         "--event", "ApprovalDecision=false", "--event", "ApprovalDecision=true")

    assert code == EXIT_COMPLETED
    assert field(out, "output") == '"Content rejected"'
    assert "instance finished before event 'ApprovalDecision' was raised" in err


def test_the_seed_and_start_time_shape_the_run(capsys):
    _, first, _ = run(capsys, APP, "content_approval", "--seed", "7",
                      "--start-time", "2030-06-01T08:00:00Z")
    _, again, _ = run(capsys, APP, "content_approval", "--seed", "7",
                      "--start-time", "2030-06-01T08:00:00Z")
    _, other, _ = run(capsys, APP, "content_approval", "--seed", "8")

    assert field(first, "instance") == field(again, "instance") != field(other, "instance")
    assert field(first, "clock") == "2030-06-01T08:00:00+00:00"
    assert "-> timer #2 until 2030-06-02T08:00:00Z" in first


def test_a_failing_orchestration_exits_1(capsys, tmp_path):
    (tmp_path / "function_app.py").write_text(
        "import azure.durable_functions as df\n"
        "app = df.DFApp()\n"
        "@app.orchestration_trigger(context_name='context')\n"
        "def charge(context):\n"
        "    return (yield context.call_activity('card', context.get_input()))\n"
        "@app.activity_trigger(input_name='amount')\n"
        "def card(amount):\n"
        "    raise ValueError(f'card declined for {amount}')\n", encoding="utf-8")

    try:
        code, out, _ = run(capsys, str(tmp_path), "charge", "--input", "12")
    finally:
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "")).startswith(str(tmp_path)):
                del sys.modules[name]

    assert code == EXIT_FAILED == 1
    assert field(out, "status") == "Failed"
    assert "card declined for 12" in field(out, "output")
    assert "<- activity card #0 FAILED" in out


@pytest.fixture
def hello_app(tmp_path, monkeypatch):
    """``tmp_path/hello/function_app.py`` (tests/apps/hello_app.py), run from ``tmp_path``."""
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "function_app.py").write_text(
        (ROOT / "tests" / "apps" / "hello_app.py").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    yield folder
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "")).startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.mark.parametrize("app, where", [("hello", "."), (".", "hello"), ("hello/", "."),
                                        ("hello/function_app.py", ".")])
def test_a_folder_runs_the_app_in_it(capsys, monkeypatch, hello_app, app, where):
    monkeypatch.chdir(hello_app.parent / where)

    code, out, err = run(capsys, app, "hello", "--input", '"Oslo"')

    assert (code, err) == (EXIT_COMPLETED, "")
    assert field(out, "output") == '"hello Oslo"'


# --- usage errors ----------------------------------------------------------------------


@pytest.mark.parametrize("argv, problem", [
    (["--input", "{topic: tides}"], "--input is not valid JSON"),
    (["--input", "tides"], "Strings need JSON quotes"),
    (["--event", "ApprovalDecision"], "invalid --event 'ApprovalDecision'; use NAME=JSON"),
    (["--event", "=true"], "invalid --event '=true'"),
    (["--event", "ApprovalDecision=yes"], "the data of event 'ApprovalDecision' is not valid JSON"),
    (["--advance", "tomorrow"], "invalid duration 'tomorrow'"),
    (["--advance", "24"], "invalid duration '24'"),
    (["--seed", "x"], "invalid int value: 'x'"),
])
def test_bad_arguments_exit_2_naming_the_problem(capsys, argv, problem):
    with pytest.raises(SystemExit) as caught:
        main(["run", APP, "content_approval", *argv])

    assert caught.value.code == EXIT_USAGE == 2
    err = capsys.readouterr().err
    assert problem in err
    assert err.startswith("usage: dafx run")
    assert err.endswith("hint: 'dafx run --help' lists the options, with examples\n")
    assert service.calls == []        # nothing ran


def test_an_unknown_orchestrator_exits_2_listing_the_known_ones(capsys):
    code, out, err = run(capsys, APP, "content_aproval")

    assert code == EXIT_USAGE
    assert out == ""
    assert err.splitlines() == [
        "dafx: error: the app has no orchestrator named 'content_aproval'; known orchestrators: "
        "'content_approval'",
        "hint: use one of the names listed: a function's name, or the name given to its trigger "
        "(orchestration=..., activity=...)"]


def test_a_missing_app_file_exits_2_naming_it(capsys):
    code, out, err = run(capsys, "scenarios/nowhere/function_app.py", "content_approval")

    assert code == EXIT_USAGE
    assert out == ""
    assert "app file not found" in err
    assert str(ROOT / "scenarios" / "nowhere" / "function_app.py") in err


def test_a_bad_module_path_exits_2_naming_the_module(capsys):
    code, out, err = run(capsys, "scenarios.nowhere:app", "content_approval")

    assert code == EXIT_USAGE
    assert out == ""
    message, hint = err.splitlines()
    assert message == ("dafx: error: cannot import 'scenarios.nowhere' for app "
                       "'scenarios.nowhere:app': No module named 'scenarios.nowhere'. Use "
                       "'package.module:app' with the package importable, or a path to "
                       "function_app.py.")
    assert hint.startswith("hint: APP is a function_app.py path, its folder, or package.module:app")


def test_an_app_module_without_that_attribute_lists_its_apps(capsys):
    code, _, err = run(capsys, "scenarios.content_approval.function_app:ap", "content_approval")

    assert code == EXIT_USAGE
    assert err.splitlines()[0] == ("dafx: error: module 'scenarios.content_approval.function_app' "
                                   "has no attribute 'ap'; its apps: bp, app")


HOST_JSON_PROBLEM = (
    "is not valid JSON: Expecting property name enclosed in double quotes at line 3, column 22 "
    "(the Durable SDK parses it with Python's json module: strict JSON, no comments, no "
    "trailing commas)")
HOST_JSON_HINT = (
    "hint: fix it at that line and column: the Python worker fails to import "
    "azure.durable_functions with it too (dafx reads the host.json beside APP and, like the SDK, "
    "the one in the current directory)")


def test_an_invalid_host_json_beside_the_app_exits_2_naming_it(capsys, hello_app):
    (hello_app / "host.json").write_text('{\n  "version": "2.0",\n  "logging": {"x": 1,}\n}\n')

    code, out, err = run(capsys, "hello", "hello", "--input", '"Oslo"')

    assert (code, out) == (EXIT_USAGE, "")
    assert err.splitlines() == [f"dafx: error: hello/host.json {HOST_JSON_PROBLEM}", HOST_JSON_HINT]


def test_an_app_folder_without_function_app_py_exits_2_naming_what_was_looked_for(capsys,
                                                                                   tmp_path):
    (tmp_path / "blueprint").mkdir()
    (tmp_path / "blueprint" / "orders.py").write_text("")

    code, _, err = run(capsys, str(tmp_path / "blueprint"), "hello")

    assert code == EXIT_USAGE
    assert err.splitlines()[0] == (
        f"dafx: error: app file not found: folder '{tmp_path / 'blueprint'}' has no "
        f"function_app.py (looked for {tmp_path / 'blueprint' / 'function_app.py'}, the file the "
        "Python worker loads); its Python files: orders.py. Pass the app's folder, its file "
        f"(e.g. '{tmp_path / 'blueprint' / 'orders.py'}'), or 'package.module:app'")


def test_an_unexpected_error_is_one_line_unless_debug(capsys, monkeypatch):
    from dafx_testing.simulator import Simulator

    def broken(*args, **kwargs):
        raise RuntimeError("the store is on fire")

    monkeypatch.setattr(Simulator, "start_new", broken)
    code, out, err = run(capsys, APP, "content_approval")

    assert code == EXIT_USAGE
    assert out == ""
    assert err.splitlines() == [
        "dafx: error: unexpected RuntimeError: the store is on fire",
        "hint: this came from the app's code or from dafx itself; rerun with --debug for the "
        "traceback"]
    with pytest.raises(RuntimeError, match="the store is on fire"):
        main(["run", APP, "content_approval", "--debug"])


def test_ctrl_c_exits_130(capsys, monkeypatch):
    from dafx_testing.simulator import Simulator

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Simulator, "start_new", interrupted)
    code, _, err = run(capsys, APP, "content_approval")

    assert code == EXIT_INTERRUPTED == 130
    assert err == "dafx: interrupted\n"


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])

    assert caught.value.code == EXIT_USAGE
    assert capsys.readouterr().err.splitlines()[1:] == [
        "dafx: error: give a command: run, sweep, replay or show",
        "hint: 'dafx --help' lists the options, with examples"]


def test_the_exit_codes_are_distinct():
    assert len({EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_RUNNING}) == 4


# --- output for scripts and people ----------------------------------------------------------


def test_json_prints_the_status_and_history_as_one_document(capsys):
    code, out, err = run(capsys, APP, "content_approval", *TIDES, "--event",
                         "ApprovalDecision=true", "--json")

    assert code == EXIT_COMPLETED
    assert err == ""
    document = json.loads(out)
    assert document["runtimeStatus"] == "Completed"
    assert document["output"]["status"] == "published"
    assert document["input"] == {"topic": "tides"}
    assert document["customStatus"] == {"stage": "published"}
    assert document["waitingFor"] == []
    assert document["clock"] == "2025-01-01T00:00:00+00:00"
    assert [e["EventType"] for e in document["history"]][:2] == [12, 0]


def test_json_of_a_waiting_instance_names_what_it_waits_for(capsys):
    code, out, _ = run(capsys, APP, "content_approval", "--json")

    assert code == EXIT_RUNNING
    document = json.loads(out)
    assert (document["runtimeStatus"], document["waitingFor"]) == ("Running", ["ApprovalDecision"])


def test_html_writes_a_page_of_the_run_and_says_where(capsys, tmp_path):
    target = tmp_path / "run.html"
    code, out, err = run(capsys, APP, "content_approval", *TIDES, "--advance", "24h",
                         "--html", str(target))

    assert code == EXIT_COMPLETED
    assert field(out, "status") == "Completed"
    assert err == f"dafx: wrote the HTML report to {target}\n"
    page = target.read_text(encoding="utf-8")
    assert "<h1>dafx run content_approval</h1>" in page
    assert "escalate_for_review" in page and "+1d 00:00:00" in page


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as caught:
        main(["--version"])

    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith(f"dafx {version('dafx-testing')} "
                                              "(azure-functions-durable ")


@pytest.mark.parametrize("command", ["run", "sweep", "replay", "show"])
def test_every_command_has_help_with_examples_and_exit_codes(capsys, command):
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])

    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: dafx {command} ")
    examples = text[text.index("examples:"):text.index("exit codes:")]
    assert examples.count(f"dafx {command} ") >= 2
    assert "exit codes: 0 " in text and " 2 bad usage" in text
    assert "--json" in text and "--debug" in text


def test_the_top_level_help_lists_the_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])

    text = capsys.readouterr().out
    for command in ("run", "sweep", "replay", "show"):
        assert f"\n    {command} " in text
    assert "exit codes: 0 success, 1 the app failed" in text


# --- durations -------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("24h", timedelta(hours=24)),
    ("1d12h", timedelta(days=1, hours=12)),
    ("90s", timedelta(seconds=90)),
    ("30m", timedelta(minutes=30)),
    ("1.5h", timedelta(minutes=90)),
    ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ("2H", timedelta(hours=2)),
    ("0s", timedelta(0)),
])
def test_parse_duration_reads_unit_suffixed_numbers(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "24x", "1d-2h", "-1h", "24h later", "1..5h"])
def test_parse_duration_rejects_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse_duration(text)

    assert f"invalid duration {text!r}" in str(caught.value)
    assert "e.g. 24h, 1d12h, 90s" in str(caught.value)


# --- the installed command -------------------------------------------------------------


BESIDE_A_BROKEN_HOST_JSON = """\
import contextlib, io, json, sys
from dafx_testing.cli import main

def dafx(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit:
            code = exit.code
    return [code, out.getvalue(), err.getvalue()]

results = {"--version": dafx("--version"), "--help": dafx("--help"),
           "run --help": dafx("run", "--help"), "replay --help": dafx("replay", "--help")}
results["sdk imported"] = "azure.durable_functions" in sys.modules
results["run elsewhere"] = dafx("run", "elsewhere", "hello")
results["run ."] = dafx("run", ".", "hello")
print(json.dumps(results))
"""


def test_version_and_help_never_read_host_json_and_commands_name_a_broken_one(tmp_path):
    """Outside pytest the Durable SDK parses ./host.json when imported (under pytest it skips)."""
    (tmp_path / "host.json").write_text('{\n  "version": "2.0",\n  "logging": {"x": 1,}\n}\n')
    (tmp_path / "function_app.py").write_text(
        (ROOT / "tests" / "apps" / "hello_app.py").read_text(encoding="utf-8"))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "function_app.py").write_text(
        (tmp_path / "function_app.py").read_text())

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))   # this checkout's dafx
    done = subprocess.run([sys.executable, "-c", BESIDE_A_BROKEN_HOST_JSON], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["--version"][:2] == [0, f"{_version()}\n"]
    for command in ("--help", "run --help", "replay --help"):
        assert results[command][0] == 0 and results[command][1].startswith("usage: dafx")
    assert results["sdk imported"] is False
    assert results["run elsewhere"] == [EXIT_USAGE, "", (
        f"dafx: error: host.json in the current directory {HOST_JSON_PROBLEM}\n"
        f"{HOST_JSON_HINT}\n")]
    assert results["run ."] == [EXIT_USAGE, "", (
        f"dafx: error: host.json {HOST_JSON_PROBLEM}\n{HOST_JSON_HINT}\n")]


def test_the_dafx_console_script_runs_the_scenario():
    script = Path(sys.executable).with_name("dafx")
    assert script.exists(), f"console script not installed beside {sys.executable}"

    done = subprocess.run(
        [str(script), "run", APP, "content_approval", *TIDES, "--event", "ApprovalDecision=true"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert field(done.stdout, "status") == "Completed"
    assert "<- activity publish_content #3" in done.stdout
