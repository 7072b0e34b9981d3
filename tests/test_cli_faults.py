"""``dafx sweep --faults``: a model-fault sweep from the command line.

The app is tests/apps/fault_app.py (a Writer asked by an activity, with and without the
orchestration's retry). ``--fake-llm`` names a function, written here into a module of the
test's own, that returns the scripted FakeLLM answering the app's model calls, so nothing
reaches the network.
"""

import json
import sys
from pathlib import Path

import pytest

from dafx_testing.cli import main
from dafx_testing.llm import FAULT_KINDS

APP = str(Path(__file__).parent / "apps" / "fault_app.py")
DRAFT = "A draft about tides."
MODULE = "dafx_cli_fault_fakes"
FAKES = f"""\
from dafx_testing.llm import FakeLLM


def writer():
    fake = FakeLLM()
    fake.agent("Writer").reply({DRAFT!r})
    return fake


def not_a_fake():
    return "Writer"


RUNS = []


def count_run():
    RUNS.append("run")


def runs():
    return len(RUNS)
"""
WRITER = ["--fake-llm", f"{MODULE}:writer"]


@pytest.fixture(autouse=True)
def fakes_module(tmp_path, monkeypatch):
    (tmp_path / f"{MODULE}.py").write_text(FAKES, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop(MODULE, None)


def sweep(orchestrator, *options):
    return main(["sweep", APP, orchestrator, "--input", '"tides"', *options])


def test_a_retried_model_call_survives_and_exits_0(capsys):
    code = sweep("draft_with_retry", "--advance", "1m", "--faults", "rate_limit", "timeout",
                 "--expect", "survive", *WRITER)

    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        "fault sweep: 1 model call(s) × 2 fault(s) = 2 run(s): 2 survived (seed 0, "
        "expect='survive'): ok",
        "call                                                   rate_limit               timeout",
        "#1 Writer (activity 'ask_writer' of instance 'sweep')  survived (+1 call, +5s)  "
        "survived (+1 call, +5s)",
        "survived runs repeated up to 1 model call(s) (baseline 1) and took up to 5s more "
        "virtual time: a cost, not a failure",
    ]


def test_without_advancing_to_the_retry_the_run_only_failed_cleanly(capsys):
    # The retry timer is 5 s away and nothing moves the clock: not survived, not broken.
    assert sweep("draft_with_retry", "--faults", "timeout", *WRITER) == 0
    assert sweep("draft_with_retry", "--faults", "timeout", "--expect", "survive", *WRITER) == 1
    assert "#1 Writer (activity 'ask_writer' of instance 'sweep')  failed cleanly ✗" in (
        capsys.readouterr().out)


def test_a_swallowed_fault_is_broken_and_exits_1_with_the_matrix_and_its_plan(capsys):
    code = sweep("draft_or_empty", "--faults", "rate_limit", "malformed_json", *WRITER)

    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[:6] == [
        "fault sweep: 1 model call(s) × 2 fault(s) = 2 run(s): 1 failed cleanly, 1 broken "
        "(seed 0): 1 failing run(s)",
        "call                                                            rate_limit  "
        "malformed_json",
        "#1 Writer (activity 'ask_writer_or_empty' of instance 'sweep')  broken ✗    "
        "failed cleanly",
        "call #1 Writer (activity 'ask_writer_or_empty' of instance 'sweep') × rate_limit: broken",
        "  - completed with another output while nothing failed: instance 'sweep' Completed "
        'with output "" (baseline: Completed with output "A draft about tides.")',
        '  reproduce: FaultPlan(call=1, fault="rate_limit")',
    ]


def test_json_gives_every_run_with_its_reproduction(capsys):
    code = sweep("draft_once", "--faults", "all", "--json", *WRITER)

    report = json.loads(capsys.readouterr().out)
    assert code == 0                        # failing cleanly is not broken
    assert (report["ok"], report["expect"], report["faults"]) == (True, None, list(FAULT_KINDS))
    assert report["calls"] == [{"number": 1, "agent": "Writer", "stream": False,
                                "caller": "activity 'ask_writer' of instance 'sweep'"}]
    assert [(run["fault"], run["verdict"], run["reproduce"]) for run in report["runs"]] == [
        (kind, "failed cleanly", f'FaultPlan(call=1, fault="{kind}")') for kind in FAULT_KINDS]


def test_html_writes_the_matrix_each_failing_plan_and_the_baseline_run(capsys, tmp_path):
    page = tmp_path / "faults.html"

    code = sweep("draft_or_empty", "--faults", "rate_limit", "malformed_json", *WRITER,
                 "--html", str(page))

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith("fault sweep: 1 model call(s) × 2 fault(s)")   # as without
    assert f"dafx: wrote the HTML report to {page}" in captured.err
    html = page.read_text(encoding="utf-8")
    assert "<h1>dafx sweep draft_or_empty --faults</h1>" in html
    assert '<h2>Model-fault sweep</h2>' in html
    assert '<td class="verdict-cell broken failing" title="FaultPlan(call=1, fault=&quot;' \
           'rate_limit&quot;): 1 model call(s)"><a href="#fault-run-1-rate_limit">broken ✗</a>' \
           in html
    assert '<td class="verdict-cell failed-cleanly"' in html
    assert "Reproduce: <code>FaultPlan(call=1, fault=&quot;rate_limit&quot;)</code>" in html
    assert "<dt>instances shown</dt><dd>the fault-free baseline run</dd>" in html
    assert '<h2>draft_or_empty <span class="muted mono">sweep</span>' in html   # the baseline


def test_reset_runs_before_every_run_and_effects_are_compared_with_the_baseline(capsys):
    # The "outside world" counts the runs: every fault run leaves another one than the baseline.
    code = sweep("draft_once", "--faults", "timeout", "unavailable", *WRITER,
                 "--reset", f"{MODULE}:count_run", "--effects", f"{MODULE}:runs")

    out = capsys.readouterr().out
    assert code == 1
    assert sys.modules[MODULE].RUNS == ["run"] * 3     # the baseline, then one per fault
    assert "  - the outside world differs: expected 1, got 2" in out
    assert "  - the outside world differs: expected 1, got 3" in out


def test_an_unknown_fault_kind_exits_2_naming_the_valid_ones(capsys):
    assert sweep("draft_once", "--faults", "slow", "timeout", *WRITER) == 2

    err = capsys.readouterr().err.splitlines()
    assert err == [
        "dafx: error: unknown --faults slow; valid: rate_limit, server_error, unavailable, "
        "timeout, connection_reset, malformed_json, stream_cut, content_filter (or all)",
        "hint: name one or more fault kinds, e.g. --faults rate_limit timeout",
    ]


@pytest.mark.parametrize("options, message", [
    (["--faults", "timeout"], "--faults needs the fake model that answers the app's model "
                              "calls: give --fake-llm MODULE:FUNCTION"),
    (["--faults", "timeout", "--fake-llm", f"{MODULE}:not_a_fake"],
     "--fake-llm returned str, not a FakeLLM"),
    (["--faults", "timeout", *WRITER, "--pairs", "--kinds", "activity"],
     "--pairs, --kinds: for crash sweeps; --faults makes a model-fault sweep, which makes "
     "no crashes"),
    (["--no-converge"], "--no-converge is for model-fault sweeps, and no --faults were given"),
    (["--expect", "survive"], "--expect is for model-fault sweeps, and no --faults were given"),
    ([*WRITER], "--fake-llm is for model-fault sweeps, and no --faults were given"),
])
def test_options_that_do_not_fit_exit_2_with_the_problem_named(capsys, options, message):
    assert sweep("draft_once", *options) == 2
    assert capsys.readouterr().err.splitlines()[0] == f"dafx: error: {message}"


def test_a_bad_expectation_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as stopped:
        sweep("draft_once", "--faults", "timeout", "--expect", "survived", *WRITER)
    assert stopped.value.code == 2
    assert "argument --expect: invalid choice: 'survived' (choose from " in (
        capsys.readouterr().err)


def test_help_says_what_faults_do(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["sweep", "--help"])

    out = " ".join(capsys.readouterr().out.split())
    assert stopped.value.code == 0
    assert "With --faults it makes no crashes: it fails model calls instead" in out
    assert "--faults KIND [KIND ...]" in out
    assert "rate_limit server_error unavailable timeout" in out
    assert "with --faults: 0 no run broken" in out


def test_json_gives_each_runs_cost_and_expectation(capsys):
    code = sweep("draft_with_retry", "--advance", "1m", "--faults", "rate_limit", "--json",
                 "--expect", "survive", *WRITER)

    run, = json.loads(capsys.readouterr().out)["runs"]
    assert code == 0
    assert (run["verdict"], run["expected"]) == ("survived", "survive")
    assert (run["extraModelCalls"], run["extraVirtualSeconds"]) == (1, 5.0)   # the 5 s retry


def test_isolation_and_no_converge_choose_how_the_fault_runs_are_made(capsys):
    code = sweep("draft_with_retry", "--advance", "1m", "--faults", "rate_limit", "timeout",
                 "--isolation", "rerun", "--no-converge", "--json", *WRITER)

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (document["isolation"], document["converged"], document["shard"]) == ("rerun", 0, None)
    assert [(run["verdict"], run["converged"]) for run in document["runs"]] == [
        ("survived", False)] * 2
