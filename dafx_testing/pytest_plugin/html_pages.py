"""``pytest --dafx-html DIR``: a page per test that used a simulator, and an index.

Each test that built simulators (through ``dafx`` or ``dafx_factory``) gets a
self-contained page (:mod:`dafx_testing.reports.html_report`) with its instances'
timelines, its agent sessions, its crash sweep's results if it was swept, and
the seed and command line that reproduce it. Under pytest-xdist the workers
write the pages and report them to the controller through ``user_properties``;
the controller writes ``index.html`` at the end of the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..reports.html_report import PageLink, page_file_name, write_html, write_index

if TYPE_CHECKING:
    from ..checks.sweep import SweepReport
    from .factory import BuiltSimulator

__all__ = ["PAGE", "write_index_page", "write_test_page"]

PAGE = "dafx_html_page"
"""The ``user_properties`` key a test's page is reported under."""


def write_test_page(folder: Path, nodeid: str, outcome: str, built: Sequence[BuiltSimulator],
                    reproduce: str, sweep: SweepReport | None) -> dict[str, Any]:
    """Write the page of one test; returns what the index needs to link it."""
    first, *others = [entry.simulator for entry in built]
    path = folder / page_file_name(nodeid)
    write_html(path, title=nodeid, simulator=first,
               instances=[status for sim in others for status in sim.list_instances()],
               sweep=sweep, context={"outcome": outcome,
                                     "seeds": ", ".join(str(e.simulator.seed) for e in built),
                                     "reproduce": reproduce})
    instances = sum(len(entry.simulator.list_instances()) for entry in built)
    summary = f"{outcome}; {instances} instance(s)" + (
        f"; sweep of {len(sweep.points)} point(s), {len(sweep.failures)} failing"
        if sweep is not None else "")
    return {"title": nodeid, "href": path.name, "ok": outcome == "passed", "summary": summary}


def write_index_page(folder: Path, pages: list[dict[str, Any]]) -> Path:
    """Write ``index.html`` linking every test page (failures first)."""
    links = [PageLink(p["title"], p["href"], p["ok"], p["summary"])
             for p in sorted(pages, key=lambda p: (p["ok"], p["title"]))]
    return write_index(folder / "index.html", links, title="dafx: test report")
