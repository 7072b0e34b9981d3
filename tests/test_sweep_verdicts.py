"""Sweep verdicts: harmless re-runs are information, ``once=`` makes them failures, and a
broken baseline fails the sweep before any crash run (issue 18)."""

import json
import os
from pathlib import Path

import azure.durable_functions as df
import pytest

from dafx_testing import Simulator, UnknownFunctionError
from dafx_testing.cli import main
from dafx_testing.reports.html_report import render_html
from dafx_testing.reports.json_output import sweep_json

app = df.DFApp()
CHARGES = []                  # a module-level ledger an activity (wrongly) appends to
SENT = {}                     # an outside world keyed by message: sending twice is harmless


@app.orchestration_trigger(context_name="context")
def chain(context):
    greetings = []
    for city in ("Tokyo", "Lima"):
        greetings.append((yield context.call_activity("say_hello", city)))
    return greetings


@app.activity_trigger(input_name="city")
def say_hello(city):
    return f"Hello {city}!"


@app.orchestration_trigger(context_name="context")
def notify(context):
    return (yield context.call_activity("send", context.get_input()))


@app.activity_trigger(input_name="message")
def send(message):
    SENT[message] = True      # keyed: a re-run leaves the same world
    return "sent"


@app.orchestration_trigger(context_name="context")
def pay(context):
    return (yield context.call_activity("charge", 30))


@app.activity_trigger(input_name="amount")
def charge(amount):
    CHARGES.append(amount)
    return "charged"          # the same output every time: only the ledger shows the re-run


@app.orchestration_trigger(context_name="context")
def doomed(context):
    return (yield context.call_activity("explode", "now"))


@app.activity_trigger(input_name="when")
def explode(when):
    raise RuntimeError(f"boom {when}")


@app.orchestration_trigger(context_name="context")
def waits(context):
    return (yield context.wait_for_external_event("go"))


@app.orchestration_trigger(context_name="context")
def reads_the_clock(context):
    from datetime import datetime

    if datetime.now().year > 2000:
        yield context.call_activity("say_hello", "clock")
    return "done"


@app.orchestration_trigger(context_name="context")
def parent(context):
    try:
        yield context.call_sub_orchestrator("doomed", None, instance_id="child")
    except Exception:
        return "handled"


def run(orchestrator, instance_id="x", data=None):
    def scenario(sim):
        CHARGES.clear()
        SENT.clear()
        sim.wait_for_completion(sim.start_new(orchestrator, data, instance_id=instance_id))
    return scenario


HERE = os.path.relpath(__file__)


def line_of(text):
    """The number of this file's line that starts with ``text`` (after indentation)."""
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.strip().startswith(text))


def lines_with(text, explanation):
    return [line for line in explanation.splitlines() if text in line]


# --- 1. re-runs: information unless observable or declared once ------------------------------


def test_a_pure_activity_that_runs_again_is_information_not_a_failure():
    report = Simulator(app).crash_sweep(run("chain"))

    assert report.ok, report.explain()          # before: "say_hello ran 2 times ... make it idempotent"
    assert report.failures == []
    assert {d.name for d in report.repeated_activities} == {"say_hello"}
    assert all(d.harmless and not d.failed for d in report.repeated_activities)
    first = report.repeated_activities[0]
    assert lines_with("no observable difference", report.explain()) == [
        f"{len(report.repeated_activities)} activity re-run(s) after a crash left no observable "
        f"difference, e.g. {first.describe()}: information, not a failure (at-least-once delivery "
        "re-runs activities). If one must run only once, declare it: once=['say_hello'] "
        "(dafx sweep --once say_hello); idempotent=['say_hello'] drops this line"]


def test_a_rerun_whose_effects_snapshot_matches_is_information():
    report = Simulator(app).crash_sweep(run("notify", data="hi"), effects=lambda: dict(SENT))

    assert report.ok, report.explain()
    assert [d.name for d in report.repeated_activities] == ["send", "send"]   # lost result, duplicate


def test_once_makes_a_harmless_rerun_a_failure():
    report = Simulator(app).crash_sweep(run("chain"), once=["Say_Hello"])

    assert not report.ok
    problem = report.failures[0].problems[0]
    assert problem.startswith("say_hello ran 3 times (baseline 2) after a crash at #")
    assert problem.endswith("; declared once=, so running it again is a failure: make it safe to "
                            "repeat (e.g. skip work already done, by an idempotency key) and drop "
                            "it from once=")
    assert report.repeated_activities == []


def test_idempotent_only_silences_the_information_line():
    report = Simulator(app).crash_sweep(run("chain"), idempotent=["say_hello"])

    assert report.ok and report.repeated_activities == []
    assert "no observable difference" not in report.explain()
    assert all(d.idempotent for d in report.duplicated_effects)


def test_a_rerun_that_changes_module_level_state_still_fails():
    report = Simulator(app).crash_sweep(run("pay"))

    assert not report.ok
    problems = report.failures[0].problems
    assert problems[0] == ("module-level state differs from the baseline's after the re-run: "
                           f"CHARGES in {HERE} (process memory, which no crash resets)")
    assert problems[1].startswith("charge ran 2 times (baseline 1)")
    assert problems[1].endswith("; make it idempotent")
    # Declared idempotent, the re-run is the user's call: not a failure, as before.
    assert Simulator(app).crash_sweep(run("pay"), idempotent=["charge"]).ok


def test_once_is_checked_before_any_run():
    ran = []
    with pytest.raises(UnknownFunctionError, match=r"once=\['sey_hello'\]: the app has no "
                                                    r"activity named 'sey_hello'; known "
                                                    r"activities: .*'say_hello'"):
        Simulator(app).crash_sweep(ran.append, once=["sey_hello"])
    with pytest.raises(ValueError, match="say_hello declared both idempotent= .* and once="):
        Simulator(app).crash_sweep(ran.append, once=["say_hello"], idempotent=["SAY_HELLO"])
    with pytest.raises(TypeError, match="take a list of activity names"):
        Simulator(app).crash_sweep(ran.append, once="say_hello")
    assert ran == []


def test_exploration_takes_once_too():
    assert Simulator(app).explore(run("chain"), max_examples=3, reorder=False) == 3
    from dafx_testing.checks.explore import ScheduleFailure

    with pytest.raises(ScheduleFailure, match="declared once="):
        Simulator(app).explore(run("chain"), max_examples=8, max_crashes=1, reorder=False,
                               once=["say_hello"])


# --- 2. a broken baseline fails the sweep, first and alone ----------------------------------


def test_a_baseline_that_leaves_an_instance_failed_is_not_ok():
    report = Simulator(app).crash_sweep(run("doomed", "d"))

    assert not report.ok and report.runs == 0      # before: ok, every crash run failed alike
    assert report.explain().splitlines() == [
        "crash sweep: the crash-free baseline run is broken (1 problem(s)), so no crash runs "
        "were made: each would be compared with it",
        f"baseline: instance 'd' (orchestrator 'doomed' at {HERE}:{line_of('def doomed(')}) ended "
        "Failed: Orchestrator function 'doomed' failed: Activity function 'explode' failed: "
        f"RuntimeError: boom now (activity 'explode' raised at {HERE}:"
        f"{line_of('raise RuntimeError(')})",
        "fix the baseline first: run the scenario on a plain Simulator (without crash_sweep) "
        "until it passes, then sweep again"]


def test_a_stuck_baseline_is_not_ok_and_names_the_scenario_line():
    def scenario(sim):
        sim.wait_for_completion(sim.start_new("waits", instance_id="w"))   # never raised

    report = Simulator(app).crash_sweep(scenario)               # before: WaitTimeoutError

    assert not report.ok and report.runs == 0
    line = report.explain().splitlines()[1]
    waited = line_of('sim.wait_for_completion(sim.start_new("waits"')
    assert line.startswith(f"baseline: the scenario raised WaitTimeoutError at {HERE}:{waited}: ")
    assert "instance 'w' (orchestrator 'waits') is still Running" in line


def test_a_non_deterministic_baseline_is_not_ok():
    report = Simulator(app).crash_sweep(run("reads_the_clock"))    # before: raised

    assert not report.ok and report.runs == 0
    assert report.baseline_problems[0].startswith(
        "the scenario raised NonDeterministicCallError in orchestrator 'reads_the_clock': "
        f"orchestrator code called datetime.now() at {HERE}:{line_of('if datetime.now()')} ")


def test_a_sub_orchestration_failure_its_parent_handles_is_no_baseline_problem():
    assert Simulator(app).crash_sweep(run("parent", "p"), kinds=["episode"]).ok


def test_a_bug_in_the_scenario_itself_still_raises():
    def buggy(sim):
        run("chain")(sim)
        raise KeyError("typo in the test")

    with pytest.raises(KeyError, match="typo in the test"):
        Simulator(app).crash_sweep(buggy)
    with pytest.raises(UnknownFunctionError, match="no orchestrator named 'chian'"):
        Simulator(app).crash_sweep(run("chian"))


def test_reports_show_the_broken_baseline_and_the_information():
    broken = Simulator(app).crash_sweep(run("doomed", "d"))
    document = sweep_json(broken)
    assert document["ok"] is False and document["runs"] == 0
    assert document["baselineProblems"] == broken.baseline_problems
    page = render_html(sweep=broken)
    assert "The crash-free baseline run is broken" in page and "boom now" in page

    harmless = sweep_json(Simulator(app).crash_sweep(run("chain")))
    assert harmless["ok"] is True and harmless["baselineProblems"] == []
    assert {r["name"] for r in harmless["repeatedActivities"]} == {"say_hello"}


# --- 3. dafx sweep: exit 1 when the app is wrong, 2 only for usage ---------------------------


CLI_APP = '''
import azure.durable_functions as df
from datetime import datetime

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def chain(context):
    greetings = []
    for city in ("Tokyo", "Lima", "Oslo"):
        greetings.append((yield context.call_activity("say_hello", city)))
    return greetings


@app.activity_trigger(input_name="city")
def say_hello(city):
    return f"Hello {city}!"


@app.orchestration_trigger(context_name="context")
def doomed(context):
    raise ValueError("no such order")
    yield


@app.orchestration_trigger(context_name="context")
def reads_the_clock(context):
    if datetime.now().year > 2000:
        yield context.call_activity("say_hello", "clock")
    return "done"
'''


@pytest.fixture
def cli_app(tmp_path):
    path = tmp_path / "function_app.py"
    path.write_text(CLI_APP, encoding="utf-8")
    return str(path)


def test_dafx_sweep_passes_a_function_chain_and_says_how_to_be_strict(cli_app, capsys):
    assert main(["sweep", cli_app, "chain"]) == 0                 # before: 1, "make it idempotent"
    out = capsys.readouterr().out
    assert "all invariants held" in out
    assert "(dafx sweep --once say_hello)" in out
    assert main(["sweep", cli_app, "chain", "--once", "say_hello", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failures"]


def test_dafx_sweep_exits_1_for_a_broken_baseline(cli_app, capsys):
    assert main(["sweep", cli_app, "doomed"]) == 1                # before: 0
    out = capsys.readouterr().out
    assert out.startswith("crash sweep: the crash-free baseline run is broken (1 problem(s))")
    assert ("baseline: instance 'sweep' (orchestrator 'doomed' at ") in out
    assert "ended Failed: Orchestrator function 'doomed' failed: no such order" in out


def test_dafx_sweep_exits_1_for_a_non_deterministic_baseline(cli_app, capsys):
    assert main(["sweep", cli_app, "reads_the_clock"]) == 1       # before: 2, as if bad usage
    out, err = capsys.readouterr()
    assert "baseline: the scenario raised NonDeterministicCallError" in out and err == ""


@pytest.mark.parametrize("arguments, message", [
    (["--once", "sey_hello"], "dafx: error: once=['sey_hello']: the app has no activity named "
                              "'sey_hello'; known activities: 'say_hello'"),
    (["--once", "say_hello", "--idempotent", "say_hello"],
     "dafx: error: say_hello given to both --once and --idempotent"),
])
def test_dafx_sweep_bad_declarations_are_usage_errors(cli_app, capsys, arguments, message):
    assert main(["sweep", cli_app, "chain", *arguments]) == 2
    assert capsys.readouterr().err.splitlines()[0] == message


# --- the crash_sweep marker ------------------------------------------------------------------


def test_the_marker_takes_once_and_names_a_broken_baseline(pytester):
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = ignore:Potential duplicate Task completion:UserWarning\n")
    pytester.makepyfile(function_app=CLI_APP, test_swept="""\
        import pytest


        @pytest.mark.crash_sweep(once=["say_hello"], kinds=["activity"])
        def test_strict(dafx):
            dafx.wait_for_completion(dafx.start_new("chain"))


        @pytest.mark.crash_sweep(kinds=["activity"])
        def test_lenient(dafx):
            dafx.wait_for_completion(dafx.start_new("chain"))


        @pytest.mark.crash_sweep
        def test_doomed(dafx):
            dafx.wait_for_completion(dafx.start_new("doomed"))
        """)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "*say_hello ran 4 times (baseline 3) after a crash at * declared once=*",
        "crash sweep: the crash-free baseline run is broken (1 problem(s)), *",
        "test_swept.py::test_doomed: * commit points, 0 crash runs, the crash-free baseline run "
        "is broken, no crash runs",
        "test_swept.py::test_lenient: * commit points, 3 crash runs, all invariants held",
    ])
