"""The HTML report: what a person sees on the page, checked in the page's structure and in Chromium.

Every test reads the page with ``html.parser``; the browser test also renders it
in headless Chromium (Debian's ``chromium`` package) and checks the text of the
DOM the browser built, after the page's script ran.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dafx_testing.checks.sweep import DuplicatedEffect, RepeatedModelCalls, SweepFailure, SweepReport
from dafx_testing.core.crash import CommitPoint
from dafx_testing.core.history import load_history
from dafx_testing.reports.html_report import PageLink, page_file_name, render_html, write_html, write_index
from dafx_testing.reports.recorded import read_instances

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
POINTS = [CommitPoint(0, "episode", "place_order", "sweep", "episode 1"),
          CommitPoint(1, "activity", "charge_payment", "sweep", "task 1"),
          CommitPoint(2, "duplicate", "charge_payment", "sweep", "task 1")]


class Page(HTMLParser):
    """The parts of a page a test looks at: visible text, headings, tables, attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.tables: list[tuple[str, list[list[str]]]] = []   # (class, rows of cell texts)
        self.attributes: list[tuple[str, str, str]] = []
        self.inline: list[str] = []                           # <style> and <script> contents
        self.ids: list[str] = []
        self._stack: list[str] = []
        self._open: list[list[list[str]]] = []                # rows of the tables being read
        self._heading = self._cell = self._row = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self._stack.append(tag)
        values = dict(attrs)
        self.attributes += [(tag, name, value or "") for name, value in attrs]
        if "id" in values:
            self.ids.append(values["id"])
        if tag in ("h1", "h2", "h3", "h4"):
            self._heading = [tag, ""]
        elif tag == "table":
            self._open.append([])
            self.tables.append((values.get("class") or "", self._open[-1]))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()
        if tag in ("h1", "h2", "h3", "h4") and self._heading:
            self.headings.append((self._heading[0], " ".join(self._heading[1].split())))
            self._heading = None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join(self._cell.split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._open:
            self._open[-1].append(self._row)
            self._row = None
        elif tag == "table" and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._stack and self._stack[-1] in ("style", "script"):
            self.inline.append(data)
            return
        self.text.append(data)
        if self._heading:
            self._heading[1] += data
        if self._cell is not None:
            self._cell += data

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())

    def heading_texts(self, level: str) -> list[str]:
        return [text for tag, text in self.headings if tag == level]

    def rows(self, css: str) -> list[list[str]]:
        """The rows of every table of this class, headers included, in page order."""
        return [row for table_class, rows in self.tables if table_class == css for row in rows]

    def table(self, first_header: str) -> list[list[str]]:
        """The rows of the first table whose first column is headed ``first_header``."""
        return next(rows for _, rows in self.tables if rows and rows[0][0] == first_header)


def sweep_report() -> SweepReport:
    crash = (POINTS[1],)
    return SweepReport(
        points=POINTS, runs=3, pruned=1, seed=7,
        failures=[SweepFailure(crash, [
            "instance 'sweep': expected Completed with output \"ch_1\", "
            "got Completed with output \"ch_2\"",
            "charge_payment ran 2 times (baseline 1) after a crash at #1 activity charge_payment "
            "(sweep task 1); make it idempotent",
            "instance 'sweep' lost history: TaskScheduled #1 charge_payment"],
            {"sweep": "   +00:00:00  ep1   started place_order input=null"})],
        duplicated_effects=[DuplicatedEffect("charge_payment", 1, 2, crash, False),
                            DuplicatedEffect("reserve_inventory", 1, 2, (POINTS[0],), True)],
        repeated_model_calls=[RepeatedModelCalls(2, 3, (POINTS[0],))])


def assert_self_contained(page: Page) -> None:
    """Nothing on the page is fetched: no URL attributes, no stylesheet imports or url()."""
    for tag, name, value in page.attributes:
        assert not re.match(r"\s*(https?:)?//", value), f"<{tag} {name}={value!r}> loads a URL"
        assert name != "src", f"<{tag} src=...> loads a resource"
        if name == "href":
            assert value.startswith("#") or not re.match(r"\w+:", value), value
    styles = "".join(page.inline)
    assert "@import" not in styles and "url(" not in styles and "@font-face" not in styles
    assert not re.search(r"https?://", styles)


# --- pages from saved histories ----------------------------------------------------------


@pytest.fixture(scope="module")
def saved_page(trip) -> str:
    return render_html(title="dafx show histories", instances=read_instances(trip.files.values()),
                       context={"command": "dafx show histories/"})


def test_the_page_has_the_summary_the_instances_and_each_timeline(saved_page):
    page = Page(saved_page)

    assert page.heading_texts("h1") == ["dafx show histories"]
    assert page.heading_texts("h2")[:1] == ["Instances"]
    assert [row[:3] for row in page.rows("instances")[1:]] == [
        ["trip-1", "plan_trip", "Completed"], ["notice-1", "send_notice", "Completed"],
        ["doomed-1", "doomed", "Failed"]]
    assert "plan_trip trip-1 Completed" in page.heading_texts("h2")
    assert page.heading_texts("h3").count("Timeline") == 3
    assert "command dafx show histories/" in page.visible
    assert "3 instance(s)" in page.visible and "2 Completed" in page.visible


def test_each_history_row_shows_virtual_time_episode_event_and_payload(saved_page, trip):
    history = Page(saved_page).rows("history")

    assert history[0] == ["#", "virtual time", "elapsed", "episode", "event", "with", "what",
                          "payload"]
    assert ["6", "2025-01-01T00:00:00Z", "+00:00:00", "2", "TaskScheduled", "activity book_hotel",
            "call #1", "Oslo"] in history
    confirm = next(row for row in history if row[6] == "event Confirm")
    assert confirm[1:4] == ["2025-01-01T02:00:00Z", "+02:00:00", "6"]
    failed = next(row for row in history if row[4] == "TaskFailed")
    assert "ValueError: no hotels in Atlantis" in failed[7]
    events = sum(len(load_history(f)["history"]) for f in trip.files.values())
    boundaries = sum(1 for f in trip.files.values() for e in load_history(f)["history"]
                     if e["EventType"] in (12, 13))
    assert len(history) == 3 + events - boundaries         # a header per table, a row per event


def test_the_timeline_draws_each_call_until_its_answer_in_virtual_time(trip):
    html = render_html(instances=read_instances([trip.files["trip-1"]]))
    bars = re.findall(r'<div class="label" title="([^"]*)">.*?<div class="([^"]*)" '
                      r'style="left:([\d.]+)%;width:([\d.]+)%" title="([^"]*)"', html)

    assert [(label, css) for label, css, *_ in bars[:2]] == [
        ("start plan_trip", "bar point"), ("agent forecaster@" + bars[1][0][17:], "bar agent")]
    rows = {label: (css, float(left), float(width), span) for label, css, left, width, span in bars}
    assert rows["activity book_hotel #1"][:3] == ("bar activity", 0.0, 0.0)
    assert rows["timers #4"] == ("bar timer pending", 0.0, 100.0,
                                 "timers #4: +00:00:00 to +02:00:00 (no answer in the history)")
    assert rows["event Confirm"][:3] == ("bar point", 100.0, 0.0)


def test_conversations_from_a_history_say_what_a_file_cannot_hold(saved_page, trip):
    page = Page(saved_page)

    assert "Agent conversations" in page.heading_texts("h2")
    assert "Forecaster" in page.heading_texts("h3")
    text = page.visible
    assert "user Weather in Oslo?" in text
    assert 'Forecaster calls get_weather({"city": "Oslo"})' in text
    assert f"Forecaster {trip.forecast}" in text
    assert "A history file does not hold the agents' own stored state" in text


def test_the_page_is_self_contained(saved_page):
    page = Page(saved_page)

    assert_self_contained(page)
    assert not re.search(r"https?://", saved_page)        # the histories hold no URLs either
    assert saved_page.startswith("<!DOCTYPE html>")
    assert len(set(page.ids)) == len(page.ids), "ids are unique"


def test_payloads_are_text_never_markup():
    events = [{"EventType": 12, "EventId": -1, "Timestamp": "2025-01-01T00:00:00Z"},
              {"EventType": 0, "EventId": -1, "Timestamp": "2025-01-01T00:00:00Z",
               "Name": "x<script>alert(1)</script>", "Input": '"<img src=x onerror=alert(1)>"'}]

    page = Page(render_html(title="<b>t</b>", instances=[events]))

    assert not any(tag in ("img", "b") for tag, _, _ in page.attributes)
    assert "<img src=x onerror=alert(1)>" in page.visible
    assert page.heading_texts("h1") == ["<b>t</b>"]


def test_a_failing_tests_message_comes_first_as_text(trip):
    message = "AssertionError: assert '<b>hi</b>' == 'hello'\n  - hello\n  + <b>hi</b>"

    html = render_html(title="tests/test_trip.py::test_hello", simulator=trip.sim, failure=message)

    page = Page(html)
    assert page.ids.index("failure") < page.ids.index("instances")
    assert "Failure" in page.heading_texts("h2")
    assert ("<pre>AssertionError: assert &#x27;&lt;b&gt;hi&lt;/b&gt;&#x27; == &#x27;hello&#x27;\n"
            "  - hello\n  + &lt;b&gt;hi&lt;/b&gt;</pre>") in html
    assert "failure" not in Page(render_html(simulator=trip.sim)).ids


# --- pages from a live simulator and from a sweep ----------------------------------------


def test_a_simulator_page_shows_every_instance_and_the_stored_conversations(trip):
    page = Page(render_html(simulator=trip.sim))

    assert [row[0] for row in page.rows("instances")[1:]] == ["trip-1", "notice-1", "doomed-1"]
    assert "tool call_1_0 returned Sunny, 24C in Oslo" in page.visible   # the tool's own message
    assert re.search(r"tokens: input \d+, output \d+, total \d+", page.visible)
    assert "A history file does not hold" not in page.visible


def test_a_sweep_page_shows_the_verdict_failures_effects_and_model_calls():
    page = Page(render_html(sweep=sweep_report()))

    assert "Crash sweep" in page.heading_texts("h2")
    assert ("1 failing crash schedule(s): 3 commit points, 3 crash runs (1 converged early; "
            "rerun from the start), seed 7") in page.visible
    assert page.heading_texts("h4") == ["Crash at #1 activity charge_payment (sweep task 1)"]
    assert page.table("what")[1:] == [
        ["instance 'sweep'", 'Completed with output "ch_1"', 'Completed with output "ch_2"'],
        ["charge_payment", "1 run(s)", "2 run(s)"]]
    assert "instance 'sweep' lost history: TaskScheduled #1 charge_payment" in page.visible
    assert "Reproduce: CrashPlan(at=[1])" in page.visible
    duplicated = page.table("work")
    assert duplicated[1][0] == "charge_payment"
    assert duplicated[1][4] == "failure: make it idempotent"
    assert duplicated[2][4] == "tolerated: declared idempotent"
    assert "Repeated model calls (1)" in page.heading_texts("h3")
    points = page.table("point")
    assert [row[-1] for row in points[1:]] == ["recovered", "failed", "recovered"]


def test_an_empty_page_says_there_is_nothing_to_show():
    assert "Nothing to show: no instances." in Page(render_html()).visible


# --- files and the index -------------------------------------------------------------------


def test_write_html_and_the_index_link_the_pages(tmp_path, trip):
    name = page_file_name("tests/test_trip.py::test_confirm[oslo/2]")
    written = write_html(tmp_path / "reports" / name, title="test_confirm", simulator=trip.sim)
    index = write_index(tmp_path / "reports" / "index.html",
                        [PageLink("test_confirm", name, ok=False, summary="Failed at +02:00:00"),
                         PageLink("test_other", "other.html", ok=True)])

    assert name == "tests_test_trip.py__test_confirm_oslo_2.html"
    assert written.is_file()
    page = Page(index.read_text(encoding="utf-8"))
    assert ("a", "href", name) in page.attributes
    assert "failed test_confirm Failed at +02:00:00" in page.visible
    assert "2 page(s), 1 failing" in page.heading_texts("h2")
    assert_self_contained(page)


# --- in a browser --------------------------------------------------------------------------


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is missing: install Debian's chromium "
                                             "package to render the report in a browser")
def test_chromium_renders_what_a_person_should_see(tmp_path, trip):
    report = write_html(tmp_path / "report.html", title="dafx sweep place_order",
                        sweep=sweep_report(), instances=read_instances(trip.files.values()))

    dom, log = render_in_chromium(report, tmp_path / "profile")

    page = Page(dom)
    assert page.heading_texts("h1") == ["dafx sweep place_order"]
    assert {"Crash sweep", "Instances", "Agent conversations"} <= set(page.heading_texts("h2"))
    assert "Crash at #1 activity charge_payment (sweep task 1)" in page.heading_texts("h4")
    text = page.visible
    for seen in ("trip-1", "notice-1", "doomed-1", "Reproduce: CrashPlan(at=[1])",
                 "TaskScheduled activity book_hotel call #1 Oslo",
                 "2025-01-01T02:00:00Z +02:00:00 6 EventRaised client event Confirm true",
                 "user Weather in Oslo?"):
        assert seen in text
    assert "Uncaught" not in log, log                 # the page's script ran without errors


def render_in_chromium(page: Path, profile: Path) -> tuple[str, str]:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--enable-logging=stderr", f"--user-data-dir={profile}",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr
