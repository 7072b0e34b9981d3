"""``pytest --dafx-html DIR``: a page per test that used a simulator, and an index.

Each test that built simulators (through ``dafx`` or ``dafx_factory``) gets a
self-contained page (:mod:`dafx_testing.reports.html_report`) with its failure's
message, its instances' timelines, its agent sessions, its sweep's results if it
was swept (a crash sweep's failing schedules, or a fault sweep's verdict matrix and
failing runs with their ``FaultPlan``; with the sweep's crash-free or fault-free
baseline run as its instances, as ``dafx sweep --html`` shows them), and the seed
and command line that reproduce it. Under pytest-xdist the workers write the pages and report them to the
controller through ``user_properties``; the controller writes ``index.html`` at
the end of the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks.fault_sweep import FaultSweepReport
from ..reports.html_report import PageLink, page_file_name, write_html, write_index

if TYPE_CHECKING:
    import pytest

    from ..checks.sweep import SweepReport
    from ..simulator import Simulator
    from .factory import BuiltSimulator

__all__ = ["PAGE", "failure_message", "write_index_page", "write_test_page"]

PAGE = "dafx_html_page"
"""The ``user_properties`` key a test's page is reported under."""

MAX_MESSAGE_LINES = 20
MAX_MESSAGE_CHARS = 2000
"""How much of a failure's message a page shows: a long diff keeps its head; pytest's output has it all."""


def failure_message(report: pytest.TestReport) -> str | None:
    """The failure's message, as pytest's short summary takes it (``longrepr.reprcrash``), cut short.

    None when the report has none (a passed test, a fixture lookup error).
    """
    message = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
    if not report.failed or not isinstance(message, str):
        return None
    lines = message.splitlines()
    short = "\n".join(lines[:MAX_MESSAGE_LINES])
    if len(lines) > MAX_MESSAGE_LINES or len(short) > MAX_MESSAGE_CHARS:
        short = short[:MAX_MESSAGE_CHARS] + f"\n... (cut short: pytest's output has all {len(lines)} lines)"
    return short


def write_test_page(folder: Path, nodeid: str, outcome: str, built: Sequence[BuiltSimulator],
                    reproduce: str, sweep: SweepReport | FaultSweepReport | None,
                    failure: str | None = None,
                    baseline: Simulator | None = None) -> dict[str, Any]:
    """Write the page of one test; returns what the index needs to link it.

    ``sweep``: the report of the test's ``crash_sweep`` or ``fault_sweep`` marker, if any.
    ``baseline``: a swept test's crash-free (or fault-free) run, shown instead of the first
    simulator built (``dafx``, which the sweep only copies: it never runs).
    """
    faults = sweep if isinstance(sweep, FaultSweepReport) else None
    crashes = sweep if not isinstance(sweep, FaultSweepReport) else None
    simulators = [entry.simulator for entry in built]
    context = {"outcome": outcome, "seeds": ", ".join(str(sim.seed) for sim in simulators),
               "reproduce": reproduce}
    if baseline is not None:
        simulators[0] = baseline
        context["instances shown"] = ("the fault-free baseline run" if faults is not None
                                      else "the crash-free baseline run")
    if failure and sweep is not None and not sweep.ok:     # the sweep's panel has the rest
        failure = failure.splitlines()[0]
    first, *others = simulators
    path = folder / page_file_name(nodeid)
    write_html(path, title=nodeid, simulator=first,
               instances=[status for sim in others for status in sim.list_instances()],
               sweep=crashes, fault_sweep=faults, context=context, failure=failure)
    instances = sum(len(sim.list_instances()) for sim in simulators)
    summary = f"{outcome}; {instances} instance(s)"
    if crashes is not None:
        summary += f"; sweep of {len(crashes.points)} point(s), {len(crashes.failures)} failing"
    elif faults is not None:
        summary += (f"; fault sweep of {len(faults.calls)} model call(s) × {len(faults.faults)} "
                    f"fault(s), {len(faults.failures)} failing")
    return {"title": nodeid, "href": path.name, "ok": outcome == "passed", "summary": summary}


def write_index_page(folder: Path, pages: list[dict[str, Any]]) -> Path:
    """Write ``index.html`` linking every test page (failures first)."""
    links = [PageLink(p["title"], p["href"], p["ok"], p["summary"])
             for p in sorted(pages, key=lambda p: (p["ok"], p["title"]))]
    return write_index(folder / "index.html", links, title="dafx: test report")
