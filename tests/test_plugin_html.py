"""``pytest --dafx-html DIR``: a page per test that used a simulator, and an index linking them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_pages_written_by_xdist_workers_all_reach_the_index(project):
    result = project.runpytest_subprocess("-n", "2", "--dafx-html", "report", "-p", "xdist")

    result.assert_outcomes(passed=4, failed=1)          # the sweep runs as one item per worker
    index = (project.path / "report" / "index.html").read_text(encoding="utf-8")
    assert len(links(index)) == 4
    assert sum("dafx-shard" in page for _, page in links(index)) == 2
    assert all((project.path / "report" / page).is_file() for _, page in links(index))


def test_without_the_option_no_page_is_written(project):
    project.runpytest().assert_outcomes(passed=3, failed=1)

    assert not list(project.path.glob("**/*.html"))
