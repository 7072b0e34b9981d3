"""A failing test's report through pytester: timelines, crashes, the seed, the reproduction line."""

from __future__ import annotations

import pytest

APP = """\
from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def nightly(context):
    for night in range(context.get_input()):
        yield context.create_timer(context.current_utc_datetime + timedelta(days=1))
        yield context.call_activity("backup", night)
    return "done"


@app.activity_trigger(input_name="night")
def backup(night):
    return f"backup {night}"
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(function_app=APP)
    return pytester


def test_a_failing_test_shows_the_timeline_and_the_reproduction_line(project):
    project.makepyfile(test_backups="""\
        def test_two_nights(dafx):
            instance_id = dafx.start_new("nightly", 2, instance_id="nightly-1")
            dafx.advance(__import__("datetime").timedelta(days=1))
            assert dafx.get_status(instance_id).runtime_status == "Completed"
        """)

    result = project.runpytest("--dafx-seed=12")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError*",
        "*- dafx -*",
        "reproduce: pytest test_backups.py::test_two_nights --dafx-seed=12",
        "simulator 1 of 1: function_app.py, seed 12, virtual time 2025-01-01T00:00:00+00:00 -> "
        "2025-01-02T00:00:00+00:00",
        "  crashes injected: none",
        "  instance 'nightly-1' (nightly): Running",
        "*+00:00:00  ep1   started nightly input=*",
        "*+00:00:00  ep1   -> timer #0 until 2025-01-02T00:00:00Z",
        "*+1d 00:00:00  ep2   <- timer #0 fired",
        "*+1d 00:00:00  ep2   -> activity backup #1 input=*",
        "*+1d 00:00:00  ep3   <- activity backup #1 result=\"backup 0\"",
        "*+1d 00:00:00  ep3   -> timer #2 until 2025-01-03T00:00:00Z",
    ])


def test_a_long_history_is_summarized_and_every_simulator_shown(project):
    project.makepyfile(test_long="""\
        from dafx_testing import CrashPlan


        def test_many_nights(dafx, dafx_factory):
            dafx.wait_for_completion(dafx.start_new("nightly", 25))
            crashing = dafx_factory(crash_plan=CrashPlan(kinds={"activity"}, times=1))
            crashing.wait_for_completion(crashing.start_new("nightly", 1, instance_id="small"))
            assert False, "look at the report"
        """)

    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "simulator 1 of 2: function_app.py, seed 0, *",
        "*+1d 00:00:00  ep2   <- timer #0 fired",
        "*... 62 events skipped ...",      # 25 nights of 4 events, started, completed
        "*COMPLETED #50 \"done\"",
        "simulator 2 of 2: *",
        "  crashes injected: #7 activity backup (small task 1)",
        "  instance 'small' (nightly): Completed",
    ])


def test_a_seed_marker_needs_no_seed_option_to_reproduce(project):
    project.makepyfile(test_pinned="""\
        import pytest


        @pytest.mark.dafx_seed(3)
        def test_pinned(dafx):
            dafx.start_new("nightly", 1)
            assert False
        """)

    result = project.runpytest("--dafx-seed=12")

    result.stdout.fnmatch_lines(["reproduce: pytest test_pinned.py::test_pinned",
                                 "simulator 1 of 1: function_app.py, seed 3, *"])


def test_passing_tests_and_tests_without_a_simulator_get_no_section(project):
    project.makepyfile(test_quiet="""\
        def test_passes(dafx):
            dafx.start_new("nightly", 1)


        def test_fails_without_dafx():
            assert False
        """)

    result = project.runpytest("-rA")

    result.assert_outcomes(passed=1, failed=1)
    assert "- dafx -" not in result.stdout.str()
