"""The plugin's configuration surface through pytester: options, ini values, markers, precedence."""

from __future__ import annotations

import pytest

APP = """\
import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def hello(context):
    return "hello " + context.get_input()
"""

# Each test prints what its simulator was given (on a line of its own, past pytest's progress).
SHOWS_SETTINGS = """\
import pytest


def test_unmarked(dafx):
    print("\\nSETTINGS", dafx.seed, dafx.now.isoformat(), dafx.guard.mode)


@pytest.mark.dafx_seed(9)
def test_marked(dafx):
    print("\\nSETTINGS", dafx.seed, dafx.now.isoformat(), dafx.guard.mode)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose ini names the app; tests add ini lines with ``configure``."""
    pytester.makepyfile(function_app=APP, test_settings=SHOWS_SETTINGS)
    return pytester


def configure(pytester: pytest.Pytester, *lines: str) -> None:
    pytester.makeini("\n".join([
        "[pytest]", "dafx_app = function_app.py",
        "asyncio_default_fixture_loop_scope = function",    # silence pytest-asyncio's notice
        *lines]) + "\n")


def settings_lines(pytester: pytest.Pytester, *args: str) -> list:
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=2)
    return sorted(line for line in result.outlines if line.startswith("SETTINGS"))


def test_defaults_are_seed_0_the_first_of_2025_and_the_error_guard(project):
    configure(project)

    assert settings_lines(project) == [
        "SETTINGS 0 2025-01-01T00:00:00+00:00 error",
        "SETTINGS 9 2025-01-01T00:00:00+00:00 error",       # the marker
    ]


def test_ini_values_configure_every_simulator(project):
    configure(project, "dafx_seed = 3", "dafx_start_time = 2030-05-01T08:30:00Z",
              "dafx_guard = warn")

    assert settings_lines(project) == [
        "SETTINGS 3 2030-05-01T08:30:00+00:00 warn",
        "SETTINGS 9 2030-05-01T08:30:00+00:00 warn",
    ]


def test_marker_over_command_line_over_ini(project):
    configure(project, "dafx_seed = 3")

    assert settings_lines(project, "--dafx-seed=5") == [
        "SETTINGS 5 2025-01-01T00:00:00+00:00 error",
        "SETTINGS 9 2025-01-01T00:00:00+00:00 error",
    ]


def test_the_header_shows_the_effective_configuration(project):
    configure(project, "dafx_start_time = 2030-05-01T08:30:00+02:00", "dafx_guard = off")

    result = project.runpytest("--dafx-seed=4", "--dafx-sweep=pairs", "--co")

    result.stdout.fnmatch_lines([
        "dafx: app function_app.py, seed 4, start 2030-05-01T06:30:00+00:00, guard off, "
        "crash sweeps pairs",
    ])


@pytest.mark.parametrize("args, ini, message", [
    (["--dafx-seed=seven"], "", "--dafx-seed: 'seven' is not valid; expected an integer, e.g. 7"),
    ([], "dafx_seed = 1.5", "the ini value dafx_seed: '1.5' is not valid; expected an integer*"),
    ([], "dafx_start_time = tomorrow",
     "the ini value dafx_start_time: 'tomorrow' is not valid; expected an ISO 8601 time, e.g. *"),
    ([], "dafx_guard = strict",
     "the ini value dafx_guard: 'strict' is not valid; expected one of error, warn, off"),
    (["--dafx-sweep=all"], "",
     "--dafx-sweep: 'all' is not valid; expected one of off, points, pairs"),
    ([], "dafx_sweep = some",
     "the ini value dafx_sweep: 'some' is not valid; expected one of off, points, pairs"),
    (["--dafx-sweep-shards=0"], "",
     "--dafx-sweep-shards: '0' is not valid; expected a positive integer or 'auto'"),
])
def test_a_bad_value_is_a_usage_error_naming_it_and_the_valid_ones(project, args, ini, message):
    configure(project, ini)

    result = project.runpytest(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_bad_seed_marker_names_the_test_and_the_fix(project):
    configure(project)
    project.makepyfile(test_bad_marker="""\
        import pytest


        @pytest.mark.dafx_seed("seven")
        def test_it(dafx):
            pass
        """)

    result = project.runpytest("test_bad_marker.py")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*UsageError: @pytest.mark.dafx_seed('seven') on test_bad_marker.py::test_it: the marker "
        "takes one integer, e.g. @pytest.mark.dafx_seed(7)",
    ])


def test_the_markers_are_registered_with_help(pytester):
    configure(pytester)

    result = pytester.runpytest("--markers")

    result.stdout.fnmatch_lines_random([
        "@pytest.mark.dafx_app(app): *",
        "@pytest.mark.dafx_seed(n): the seed of the simulators this test builds*",
        "@pytest.mark.crash_sweep(once=(), idempotent=(), kinds=None, effects=None, isolation='auto'): *",
        "@pytest.mark.fake_llm(*",
    ])


def test_the_markers_pass_strict_markers(project):
    configure(project)

    result = project.runpytest("--strict-markers")

    result.assert_outcomes(passed=2)


def test_every_option_and_ini_value_is_in_the_help(pytester):
    configure(pytester)

    result = pytester.runpytest("--help")

    result.stdout.fnmatch_lines_random([
        "dafx-testing (in-memory Durable Functions):",
        "*--dafx-seed=N*", "*--dafx-sweep=MODE*", "*--dafx-sweep-shards=N*",
        "*--dafx-record*", "*--dafx-update-goldens*",
        "*dafx_app (string):*", "*dafx_seed (string):*", "*dafx_start_time (string):*",
        "*dafx_guard (string):*", "*dafx_sweep (string):*", "*dafx_sweep_shards (string):*",
        "*dafx_record (bool):*", "*dafx_update_goldens (bool):*",
    ])
