"""The SDK warnings the simulator provokes on purpose stay out of users' runs; theirs do not."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

# Two activities: a crash after the first makes the SDK see its completion twice.
APP = (Path(__file__).parent / "apps" / "checkout_app.py").read_text(encoding="utf-8")

# No filterwarnings in the project: what a user's project sees.
TESTS = """\
import warnings

import pytest


def test_checkout(dafx):
    dafx.wait_for_completion(dafx.start_new("checkout", "book"))


# Rerun (not forked) crash runs deliver their duplicate completions in this process.
@pytest.mark.crash_sweep(idempotent=["reserve", "charge"], isolation="rerun")
def test_checkout_survives_crashes(dafx):
    dafx.wait_for_completion(dafx.start_new("checkout", "book"))


def test_warns_itself():
    warnings.warn("the project's own warning", UserWarning)
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.Pytester]:
    """The project, run in this process as a fresh one would run it."""
    # azure.functions gives its df_loads notice once per process: let this run see it.
    notice = importlib.import_module("azure.functions._durable_functions")
    monkeypatch.setattr(notice, "_no_expected_type_notice_emitted", False)
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(function_app=APP, test_warnings=TESTS)
    with warnings.catch_warnings():
        warnings.resetwarnings()        # the inner run starts without this session's filters
        yield pytester


def test_only_the_projects_own_warnings_are_reported(project):
    result = project.runpytest()

    result.assert_outcomes(passed=3, warnings=1)
    output = result.stdout.str()
    assert "the project's own warning" in output
    assert "Potential duplicate Task completion" not in output
    assert "df_loads" not in output


def test_warnings_as_errors_fail_only_the_projects_own(project):
    result = project.runpytest("-W", "error")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_warnings.py::test_warns_itself - UserWarning: *"])
