"""``pytest --dafx-html DIR``: a page per test that used a simulator, and an index linking them."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from dafx_testing.pytest_plugin.html_pages import MAX_MESSAGE_LINES, failure_message

HELLO_APP = (Path(__file__).parent / "apps" / "hello_app.py").read_text(encoding="utf-8")

TESTS = """\
import pytest


def test_greets(dafx):
    dafx.wait_for_completion(dafx.start_new("hello", "Ada", instance_id="greets-ada"))


def test_greets_wrongly(dafx):
    status = dafx.wait_for_completion(dafx.start_new("hello", "Bo", instance_id="greets-bo"))
    assert status.output == "hi Bo"


@pytest.mark.crash_sweep(idempotent=["greet"])
def test_greeting_survives_crashes(dafx):
    dafx.wait_for_completion(dafx.start_new("hello", "Cy", instance_id="greets-cy"))


def test_without_a_simulator():
    pass
"""


# The greeting is an outside effect (a line in a file): a crash that makes it run twice shows.
LEDGER_APP = HELLO_APP.replace('    return "hello " + name', """\
    with open("greeted.txt", "a") as greeted:
        greeted.write(name + "\\n")
    return "hello " + name""")

LEDGER_SWEEP = """\
from pathlib import Path

import pytest


def greeted():
    return Path("greeted.txt").read_text().split()


# Rerun, not forked: forked runs would share the file.
@pytest.mark.crash_sweep(effects=greeted, isolation="rerun")
def test_greets_once(dafx):
    Path("greeted.txt").write_text("")
    dafx.wait_for_completion(dafx.start_new("hello", "Cy", instance_id="greets-cy"))
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = ignore:Potential duplicate Task completion:UserWarning\n")
    pytester.makepyfile(function_app=HELLO_APP, test_greetings=TESTS)
    return pytester


def links(index: str):
    """(badge, page) of each entry of the index, in order."""
    return re.findall(r'<span class="badge \w+">(\w+)</span> <a href="([^"]+)">', index)


def test_each_test_with_a_simulator_gets_a_page_and_the_index_links_them_failures_first(project):
    result = project.runpytest("--dafx-html", "report", "--dafx-seed=3")

    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*dafx: 3 HTML page(s), index at *index.html*"])
    folder = project.path / "report"
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert [badge for badge, _ in links(index)] == ["failed", "passed", "passed"]
    assert "test_without_a_simulator" not in index
    failing = (folder / links(index)[0][1]).read_text(encoding="utf-8")
    assert "test_greetings.py::test_greets_wrongly" in failing
    assert "greets-bo" in failing
    assert "pytest test_greetings.py::test_greets_wrongly --dafx-seed=3" in failing
    swept = next(page for _, page in links(index) if "survives" in page)
    assert "crash sweep" in (folder / swept).read_text(encoding="utf-8").lower()
    assert not re.search(r"(src|href)=\"https?:", index + failing)


def test_a_failing_tests_page_shows_its_assertion_message_as_text(project):
    project.runpytest("--dafx-html", "report", "-k", "wrongly").assert_outcomes(failed=1)

    page = (project.path / "report" / "test_greetings.py__test_greets_wrongly.html").read_text()
    assert ('<h2>Failure</h2><pre>AssertionError: assert &#x27;hello Bo&#x27; == &#x27;hi Bo&#x27;'
            in page)


def test_a_swept_tests_page_shows_the_sweeps_crash_free_baseline_run(project):
    project.runpytest("--dafx-html", "report", "-k", "survives").assert_outcomes(passed=1)

    folder = project.path / "report"
    summaries = re.findall(r'<span class="muted">([^<]*)</span></li>', (folder / "index.html").read_text())
    assert summaries == ["passed; 1 instance(s); sweep of 10 point(s), 0 failing"]
    page = (folder / "test_greetings.py__test_greeting_survives_crashes.html").read_text()
    assert "<dt>instances shown</dt><dd>the crash-free baseline run</dd>" in page
    assert '<h2>hello <span class="muted mono">greets-cy</span>' in page


def test_a_failing_sweeps_page_has_its_verdict_and_each_failing_runs_history(pytester):
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(function_app=LEDGER_APP, test_ledger=LEDGER_SWEEP)

    pytester.runpytest("--dafx-html", "report").assert_outcomes(failed=1)

    page = (pytester.path / "report" / "test_ledger.py__test_greets_once.html").read_text()
    failure = re.search(r'id="failure"><h2>Failure</h2><pre>(.*?)</pre>', page, re.S)
    assert failure and failure[1].startswith("Failed: crash sweep: 10 commit points")
    assert "\n" not in failure[1]                      # the sweep's panel has the rest
    assert "<summary>Recovered history of greets-cy</summary>" in page
    assert '<h2>hello <span class="muted mono">greets-cy</span>' in page      # the baseline


def test_a_long_failure_message_keeps_its_head():
    crash = SimpleNamespace(message="AssertionError: assert [\n" + "  1,\n" * 100 + "]")

    message = failure_message(SimpleNamespace(failed=True, longrepr=SimpleNamespace(reprcrash=crash)))

    assert message is not None and message.startswith("AssertionError: assert [\n  1,\n")
    assert message.endswith("\n... (cut short: pytest's output has all 102 lines)")
    assert len(message.splitlines()) == MAX_MESSAGE_LINES + 1
    assert failure_message(SimpleNamespace(failed=False, longrepr=None)) is None


def test_pages_written_by_xdist_workers_all_reach_the_index(project, runpytest_child):
    result = runpytest_child("-n", "2", "--dafx-html", "report", "-p", "xdist")

    result.assert_outcomes(passed=4, failed=1)          # the sweep runs as one item per worker
    index = (project.path / "report" / "index.html").read_text(encoding="utf-8")
    assert len(links(index)) == 4
    assert sum("dafx-shard" in page for _, page in links(index)) == 2
    assert all((project.path / "report" / page).is_file() for _, page in links(index))


def test_without_the_option_no_page_is_written(project):
    project.runpytest().assert_outcomes(passed=3, failed=1)

    assert not list(project.path.glob("**/*.html"))
