"""The ``fault_sweep`` marker: a test body run as a scenario, with each model call failing each way.

::

    @pytest.fixture
    def writer(fake_llm):
        fake_llm.agent("Writer").reply("A draft about tides.")

    @pytest.mark.fault_sweep(faults=["rate_limit", "timeout"], expect="survive")
    def test_the_draft_survives_model_faults(dafx, writer):
        iid = dafx.start_new("draft_with_retry", "tides")
        assert dafx.wait_for_completion(iid).output == "A draft about tides."

The plugin runs the body once with no fault (the baseline, which numbers the model calls the
active fakes answer), then once per model call × fault kind, each time on a fresh simulator
passed as ``dafx`` whose :class:`~dafx_testing.llm.plan.FaultPlan` fails that one call that
way (see :func:`dafx_testing.checks.fault_sweep.fault_sweep`). The test fails with
:meth:`FaultSweepReport.explain <dafx_testing.checks.fault_sweep.FaultSweepReport.explain>`,
the verdicts as a matrix and each failing run's ``FaultPlan(...)``, when a run is broken
(``expect="survive"``: when a run did not survive), or when the baseline is broken.

The marker's keywords are those of :meth:`Simulator.fault_sweep
<dafx_testing.Simulator.fault_sweep>`: ``faults`` (the kinds to try, all of
:data:`~dafx_testing.llm.FAULT_KINDS` by default), ``expect`` (None, ``"survive"``, or a
mapping by agent name and fault kind such as ``{"Writer": "survive", "rate_limit":
"survive"}``) and ``effects`` (a function returning a snapshot of the outside world to
compare). A bad value fails the test with the sweep's message, before any run (an ``expect``
naming an agent the baseline never called: after the baseline, before any fault run).

With ``--dafx-html DIR`` the test's page shows the sweep: the verdict matrix, each failing
run with its ``FaultPlan`` and what broke, and the fault-free baseline run's instances.

Script the fake model in a fixture (or at the top of the body): the sweep restores the active
fakes' scripts before every run, so each run is served what the baseline was. The body runs
many times, but the other fixtures it takes are made once, as for ``crash_sweep``
(:mod:`dafx_testing.pytest_plugin.sweep_marker`); ``virtual_clock`` and ``fake_llm`` follow
the simulator of the current run. ``--dafx-sweep=off`` runs the body once, as a plain test;
fault sweeps are not split into shards. A test takes one sweep marker, not both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest

from .sweep_marker import SWEEP_REPORT, body_as_scenario, results

if TYPE_CHECKING:
    from ..simulator import Simulator
    from .factory import SimulatorFactory

__all__ = ["MARKER", "OPTIONS", "run", "summary"]

MARKER = "fault_sweep"
OPTIONS = ("faults", "expect", "effects")
"""Keywords the marker accepts (those of :meth:`Simulator.fault_sweep`)."""

RESULT = "dafx_fault_sweep"
"""The ``user_properties`` key of a fault sweep's result (it reaches the xdist controller)."""


def run(item: pytest.Function, factory: SimulatorFactory | None) -> None:
    """Fault-sweep the marked test ``item``: its body is the scenario, ``dafx`` the template."""
    __tracebackhide__ = True
    from ..checks.fault_sweep import ExpectationError
    from ..core.errors import ArgumentError

    template, body, options = body_as_scenario(
        item, MARKER, OPTIONS, factory, "once per model call and fault kind",
        baseline=_fault_free)
    started = []

    def scenario(sim: Simulator) -> None:
        started.append(sim)
        body(sim)

    try:
        report = template.fault_sweep(scenario, **options)
    except (ArgumentError, TypeError) as error:
        if started and not isinstance(error, ExpectationError):
            raise            # raised by a run: the body's own error, not the marker's
        pytest.fail(f"@pytest.mark.{MARKER} on {item.nodeid}: {error}", pytrace=False)
    # The HTML page (--dafx-html) shows the sweep the stash holds, crash or fault.
    item.stash[SWEEP_REPORT] = cast(Any, report)
    item.user_properties.append((RESULT, {
        "test": item.nodeid, "counts": report.counts(),
        "failures": [repr(run.plan) for run in report.failures],
        "baseline": len(report.baseline_problems)}))
    if not report.ok:
        pytest.fail(report.explain(), pytrace=False)


def summary(reports: Sequence[Any]) -> list[str]:
    """One line per fault-swept test: calls × faults = runs, the verdicts, the failing plans."""
    lines = []
    for result in results(reports, RESULT):
        failures = result["failures"]
        if result["baseline"]:
            outcome = "the fault-free baseline run is broken, no fault runs"
        elif failures:
            outcome = f"{result['counts']}; {len(failures)} failing run(s): {', '.join(failures)}"
        else:
            outcome = f"{result['counts']}; no failing run"
        lines.append(f"{result['test']}: {outcome}")
    return sorted(lines)


def _fault_free(sim: Simulator) -> bool:
    return sim.model_calls is None or not sim.model_calls.plan
