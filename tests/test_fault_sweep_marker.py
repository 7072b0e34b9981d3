"""The fault_sweep marker: a test body swept with each model call failing each way.

The projects run the app of tests/apps/fault_app.py (a Writer asked by an activity, with and
without the orchestration's retry); the fake_llm fixture answers every model call, so nothing
reaches the network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

APP = (Path(__file__).parent / "apps" / "fault_app.py").read_text(encoding="utf-8")

SWEPT = """\
import pytest

DRAFT = "A draft about tides."


@pytest.fixture
def writer(fake_llm):
    fake_llm.agent("Writer").reply(DRAFT)      # scripted once: every run is served it afresh


def count_run():
    with open("runs.txt", "a") as runs:
        runs.write("run\\n")


@pytest.mark.fault_sweep(faults=["rate_limit", "timeout"], expect="survive")
def test_retried(dafx, writer, virtual_clock):
    count_run()
    status = dafx.wait_for_completion(dafx.start_new("draft_with_retry", "tides", instance_id="d"))
    assert status.output == DRAFT
    assert virtual_clock.now == dafx.now          # the clock follows the run's simulator


@pytest.mark.fault_sweep(faults=["rate_limit", "malformed_json"])
def test_swallowed(dafx, writer):
    count_run()
    dafx.wait_for_completion(dafx.start_new("draft_or_empty", "tides", instance_id="d"))
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = ignore:Potential duplicate Task completion:UserWarning\n")
    pytester.makepyfile(function_app=APP, test_faults=SWEPT)
    return pytester


def body_runs(pytester: pytest.Pytester) -> int:
    return (pytester.path / "runs.txt").read_text().count("run")


def test_a_surviving_sweep_passes_after_a_run_per_call_and_fault(project):
    result = project.runpytest("test_faults.py::test_retried", "--strict-markers")

    result.assert_outcomes(passed=1)
    assert body_runs(project) == 3                    # the baseline, then 1 call × 2 faults
    result.stdout.fnmatch_lines([
        "*= dafx fault sweeps =*",
        "test_faults.py::test_retried: 1 model call(s) × 2 fault(s) = 2 run(s): 2 survived; "
        "no failing run",
    ])


def test_the_marker_is_registered_with_help(project):
    result = project.runpytest("--markers")

    result.stdout.fnmatch_lines([
        "@pytest.mark.fault_sweep(faults=FAULT_KINDS, expect=None, effects=None): the test is a "
        "scenario over the dafx fixture; run it again with each model call failing each way*"])


def test_a_broken_sweep_fails_with_the_matrix_and_the_fault_plans(project):
    result = project.runpytest("test_faults.py::test_swallowed")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_swallowed _*",
        "fault sweep: 1 model call(s) × 2 fault(s) = 2 run(s): 1 failed cleanly, 1 broken "
        "(seed 0): 1 failing run(s)",
        "call * rate_limit  malformed_json",
        "#1 Writer (activity 'ask_writer_or_empty' of instance 'd')  broken ✗    failed cleanly",
        "call #1 Writer (activity 'ask_writer_or_empty' of instance 'd') × rate_limit: broken",
        "  - completed with another output while nothing failed: instance 'd' Completed with "
        'output "" (baseline: Completed with output "A draft about tides.")',
        '  reproduce: FaultPlan(call=1, fault="rate_limit")',
        "*- dafx -*",
        "reproduce: pytest test_faults.py::test_swallowed --dafx-seed=0 --dafx-sweep=points",
        "*= dafx fault sweeps =*",
        "test_faults.py::test_swallowed: 1 model call(s) × 2 fault(s) = 2 run(s): 1 failed "
        'cleanly, 1 broken; 1 failing run(s): FaultPlan(call=1, fault="rate_limit")',
    ])
    assert 'FaultPlan(call=1, fault="malformed_json")' not in result.stdout.str()
    assert "\nsimulator 1 of 1" not in result.stdout.str()     # the sweep shows its own runs


def test_off_runs_the_body_once_as_a_plain_test(project):
    result = project.runpytest("test_faults.py::test_swallowed", "--dafx-sweep=off")

    result.assert_outcomes(passed=1)
    assert body_runs(project) == 1
    assert "dafx fault sweeps" not in result.stdout.str()


def test_shards_split_a_fault_sweep_and_the_summary_adds_them_up(project):
    result = project.runpytest("test_faults.py::test_swallowed", "--dafx-sweep-shards=2")

    result.assert_outcomes(failed=1, passed=1)      # rate_limit is run #0, malformed_json #1
    assert body_runs(project) == 2 * 2              # each shard: the baseline, then its run
    result.stdout.fnmatch_lines([
        "*_ test_swallowed[[]dafx-shard-0-of-2[]] _*",
        "fault sweep: 1 model call(s) × 2 fault(s) = 1 of 2 run(s) (shard 0 of 2): 1 broken "
        "(seed 0): 1 failing run(s)",
        "call * rate_limit  malformed_json",
        "#1 Writer (activity 'ask_writer_or_empty' of instance 'd')  broken ✗    -",
        "reproduce: pytest 'test_faults.py::test_swallowed[[]dafx-shard-0-of-2[]]' --dafx-seed=0 "
        "--dafx-sweep=points --dafx-sweep-shards=2",
        "*= dafx fault sweeps =*",
        "test_faults.py::test_swallowed: 1 model call(s) × 2 fault(s) = 2 run(s): 1 failed "
        'cleanly, 1 broken in 2 shards; 1 failing run(s): FaultPlan(call=1, fault="rate_limit")',
    ])


def test_xdist_workers_share_a_fault_sweep(project, runpytest_child):
    result = runpytest_child("-p", "no:cacheprovider", "-n", "2",
                                          "test_faults.py::test_retried")

    result.assert_outcomes(passed=2)                # one shard per worker
    result.stdout.fnmatch_lines([
        "test_faults.py::test_retried: 1 model call(s) × 2 fault(s) = 2 run(s): 2 survived in "
        "2 shards; no failing run"])
    assert body_runs(project) == 2 * 2


def test_the_marker_takes_the_isolation_and_convergence_of_the_sweep(project):
    project.makepyfile(test_faults="""\
        import pytest


        @pytest.mark.fault_sweep(faults=["timeout"], isolation="rerun", converge=False)
        def test_retried(dafx, fake_llm):
            fake_llm.agent("Writer").reply("A draft.")
            dafx.wait_for_completion(dafx.start_new("draft_with_retry", "tides"))


        @pytest.mark.fault_sweep(faults=["timeout"], isolation="sideways")
        def test_sideways(dafx, fake_llm):
            fake_llm.agent("Writer").reply("A draft.")
        """)

    result = project.runpytest()

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "@pytest.mark.fault_sweep on test_faults.py::test_sideways: isolation='sideways': "
        "expected one of auto, fork, rerun",
        "test_faults.py::test_retried: 1 model call(s) × 1 fault(s) = 1 run(s): 1 survived; no "
        "failing run"])


def test_the_fake_can_be_scripted_in_the_body(project):
    project.makepyfile(test_faults="""\
        import pytest


        @pytest.mark.fault_sweep(faults=["server_error"], expect="survive")
        def test_retried(dafx, fake_llm):
            fake_llm.agent("Writer").reply("A draft.")     # the sweep empties it before each run
            status = dafx.wait_for_completion(dafx.start_new("draft_with_retry", "tides"))
            assert status.output == "A draft."
        """)

    result = project.runpytest()

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["test_faults.py::test_retried: 1 model call(s) × 1 fault(s) = "
                                 "1 run(s): 1 survived; no failing run"])


def test_a_broken_baseline_fails_before_any_fault_run(project):
    project.makepyfile(test_faults="""\
        import pytest


        @pytest.mark.fault_sweep(faults=["timeout"])
        def test_unscripted(dafx, fake_llm):
            with open("runs.txt", "a") as runs:
                runs.write("run\\n")
            dafx.wait_for_completion(dafx.start_new("draft_once", "tides"))
        """)

    result = project.runpytest()

    result.assert_outcomes(failed=1)
    assert body_runs(project) == 1
    result.stdout.fnmatch_lines([
        "fault sweep: the fault-free baseline run is broken, so no fault runs were made: each "
        "would be compared with it",
        "baseline: the fake model's script failed: ScriptExhausted: *",
        "test_faults.py::test_unscripted: the fault-free baseline run is broken, no fault runs",
    ])


def test_expect_per_agent_and_fault_kind(project):
    project.makepyfile(test_faults="""\
        import pytest


        @pytest.fixture
        def writer(fake_llm):
            fake_llm.agent("Writer").reply("A draft.")


        @pytest.mark.fault_sweep(faults=["timeout", "server_error"], expect={"timeout": "survive"})
        def test_timeouts_survive(dafx, writer):
            dafx.wait_for_completion(dafx.start_new("draft_once", "tides", instance_id="d"))


        @pytest.mark.fault_sweep(faults=["timeout"], expect={"Writer": {"timeout": None}})
        def test_writer_timeouts_may_fail(dafx, writer):
            dafx.wait_for_completion(dafx.start_new("draft_once", "tides", instance_id="d"))
        """)

    result = project.runpytest()

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_timeouts_survive _*",
        "fault sweep: 1 model call(s) × 2 fault(s) = 2 run(s): 2 failed cleanly (seed 0, "
        "expect={'timeout': 'survive'}): 1 failing run(s)",
        "call * timeout  * server_error",
        "#1 Writer (activity 'ask_writer' of instance 'd')  failed cleanly ✗  failed cleanly",
        "call #1 Writer (activity 'ask_writer' of instance 'd') × timeout: failed cleanly "
        "(expected to survive)",
    ])


def test_expect_naming_an_agent_the_baseline_never_called_fails_the_test_saying_so(project):
    project.makepyfile(test_faults="""\
        import pytest


        @pytest.mark.fault_sweep(faults=["timeout"], expect={"Writr": "survive"})
        def test_typo(dafx, fake_llm):
            fake_llm.agent("Writer").reply("A draft.")
            with open("runs.txt", "a") as runs:
                runs.write("run\\n")
            dafx.wait_for_completion(dafx.start_new("draft_once", "tides"))
        """)

    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "@pytest.mark.fault_sweep on test_faults.py::test_typo: expect names 'Writr', neither a "
        "fault kind nor an agent the fault-free baseline called; the agents it called: 'Writer'; "
        "fault kinds: *"])
    assert body_runs(project) == 1                    # the baseline, no fault run


def test_the_html_page_of_a_fault_swept_test_has_the_matrix_and_the_baseline_run(project):
    result = project.runpytest("test_faults.py::test_swallowed", "--dafx-html", "report")

    result.assert_outcomes(failed=1)
    folder = project.path / "report"
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert ('<span class="muted">failed; 1 instance(s); fault sweep of 1 model call(s) × 2 '
            "fault(s), 1 failing</span>") in index
    page = (folder / "test_faults.py__test_swallowed.html").read_text(encoding="utf-8")
    assert "<h2>Model-fault sweep</h2>" in page
    assert '<td class="verdict-cell broken failing"' in page
    assert '<td class="verdict-cell failed-cleanly"' in page
    assert "Reproduce: <code>FaultPlan(call=1, fault=&quot;rate_limit&quot;)</code>" in page
    assert "<dt>instances shown</dt><dd>the fault-free baseline run</dd>" in page
    assert '<h2>draft_or_empty <span class="muted mono">d</span>' in page     # the baseline
    failure = page.split('id="failure"><h2>Failure</h2><pre>')[1].split("</pre>")[0]
    assert failure.startswith("Failed: fault sweep: 1 model call(s) × 2 fault(s)")
    assert "\n" not in failure                          # the sweep's panel has the rest


WHERE = "@pytest.mark.fault_sweep on test_faults.py::test_draft: "


@pytest.mark.parametrize("marker, signature, message", [
    ("@pytest.mark.fault_sweep(fault=['timeout'])", "dafx, fake_llm",
     WHERE + "unexpected fault=...; it takes only the keywords faults, expect, effects, "
     "isolation, converge"),
    ("@pytest.mark.fault_sweep(['timeout'])", "dafx, fake_llm",
     WHERE + "unexpected ['timeout']; it takes only the keywords faults, expect, effects, "
     "isolation, converge"),
    ("@pytest.mark.fault_sweep(faults=['slow', 'timeout'])", "dafx, fake_llm",
     WHERE + "faults=['slow', 'timeout']: unknown fault kind(s) 'slow'; valid: rate_limit, "
     "server_error, unavailable, timeout, connection_reset, malformed_json, stream_cut, "
     "content_filter"),
    ("@pytest.mark.fault_sweep(faults='timeout')", "dafx, fake_llm",
     WHERE + "faults= takes a list of fault kinds, e.g. faults=['timeout'], not a single string"),
    ("@pytest.mark.fault_sweep(expect='survived')", "dafx, fake_llm",
     WHERE + "expect='survived': expected None (only broken runs fail) or 'survive' (runs that "
     "failed cleanly fail too), or a mapping of those by agent name and fault kind, e.g. "
     "{'Writer': 'survive', 'rate_limit': 'survive', 'Critic': {'timeout': 'survive'}}"),
    ("@pytest.mark.fault_sweep(faults=['timeout'], expect={'rate_limit': 'survive'})",
     "dafx, fake_llm",
     WHERE + "expect['rate_limit']: this sweep does not try 'rate_limit' (faults: timeout); add "
     "it to faults= or drop the entry"),
    ("@pytest.mark.fault_sweep", "fake_llm",
     WHERE + "the test must take the dafx fixture; its body runs once per model call and fault "
     "kind, each time on a fresh simulator passed as dafx"),
    ("@pytest.mark.fault_sweep\n@pytest.mark.crash_sweep", "dafx, fake_llm",
     WHERE.replace("fault_sweep", "crash_sweep") + "the test is also marked fault_sweep; a "
     "test is one sweep (split it into two tests, one per marker)"),
])
def test_a_misused_marker_fails_the_test_saying_how_to_use_it(project, marker, signature,
                                                              message):
    project.makepyfile(test_faults=f"import pytest\n\n\n{marker}\ndef test_draft({signature}):\n"
                                   "    open('runs.txt', 'a').write('run\\n')\n")

    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message.replace("[", "[[]")])
    assert not (project.path / "runs.txt").exists()          # refused before any run
