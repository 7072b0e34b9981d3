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
"survive"}``), ``effects`` (a function returning a snapshot of the outside world to
compare), ``isolation`` (``"auto"``, ``"fork"`` or ``"rerun"``) and ``converge`` (False runs
every run to the end). A bad value fails the test with the sweep's message, before any run
(an ``expect`` naming an agent the baseline never called: after the baseline, before any
fault run).

With ``--dafx-html DIR`` the test's page shows the sweep: the verdict matrix, each failing
run with its ``FaultPlan`` and what broke, and the fault-free baseline run's instances.

Script the fake model in a fixture (or at the top of the body): the sweep restores the active
fakes' scripts before every run, so each run is served what the baseline was. The body runs
many times, but the other fixtures it takes are made once, as for ``crash_sweep``
(:mod:`dafx_testing.pytest_plugin.sweep_marker`); ``virtual_clock`` and ``fake_llm`` follow
the simulator of the current run. ``--dafx-sweep=off`` runs the body once, as a plain test.
A test takes one sweep marker, not both.

Sharding, as for ``crash_sweep``: with ``--dafx-sweep-shards=N`` (default ``auto``: one per
pytest-xdist worker), the test becomes N items ``test[dafx-shard-I-of-N]``; item I makes the
runs whose position (call order, then fault order) is I modulo N, after the same baseline.
A failing shard shows its part of the matrix (the other shards' cells are ``-``); the
terminal summary adds the shards up per test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest

from .sweep_marker import SWEEP_REPORT, body_as_scenario, results, shard_of, unsharded

if TYPE_CHECKING:
    from ..simulator import Simulator
    from .factory import SimulatorFactory

__all__ = ["MARKER", "OPTIONS", "run", "summary"]

MARKER = "fault_sweep"
OPTIONS = ("faults", "expect", "effects", "isolation", "converge")
"""Keywords the marker accepts (those of :meth:`Simulator.fault_sweep`)."""

RESULT = "dafx_fault_sweep"
"""The ``user_properties`` key of a fault sweep's result (it reaches the xdist controller)."""


def run(item: pytest.Function, factory: SimulatorFactory | None) -> None:
    """Fault-sweep the marked test ``item``: its body is the scenario, ``dafx`` the template."""
    __tracebackhide__ = True
    from ..checks.fault_sweep import VERDICTS, ExpectationError
    from ..core.errors import ArgumentError

    template, body, options = body_as_scenario(
        item, MARKER, OPTIONS, factory, "once per model call and fault kind",
        baseline=_fault_free)
    started = []

    def scenario(sim: Simulator) -> None:
        started.append(sim)
        body(sim)

    shard = shard_of(item, factory.config) if factory is not None else None
    try:
        report = template.fault_sweep(scenario, shard=shard, **options)
    except (ArgumentError, TypeError, ValueError) as error:
        if started and not isinstance(error, ExpectationError):
            raise            # raised by a run: the body's own error, not the marker's
        pytest.fail(f"@pytest.mark.{MARKER} on {item.nodeid}: {error}", pytrace=False)
    # The HTML page (--dafx-html) shows the sweep the stash holds, crash or fault.
    item.stash[SWEEP_REPORT] = cast(Any, report)
    item.user_properties.append((RESULT, {
        "test": unsharded(item.nodeid, shard), "shard": shard, "calls": len(report.calls),
        "faults": len(report.faults), "runs": len(report.runs),
        "tally": {v: sum(run.verdict == v for run in report.runs) for v in VERDICTS},
        "converged": report.converged, "isolation": report.isolation,
        "failures": [[(run.call.number - 1) * len(report.faults) + report.faults.index(run.fault),
                      repr(run.plan)] for run in report.failures],      # [position, plan]
        "baseline": len(report.baseline_problems)}))
    if not report.ok:
        pytest.fail(report.explain(), pytrace=False)


def summary(reports: Sequence[Any]) -> list[str]:
    """One line per fault-swept test, its shards added up: calls × faults = runs, the verdicts,
    the failing plans."""
    from ..checks.fault_sweep import VERDICTS, counts_line

    sweeps: dict[str, dict[str, Any]] = {}
    for result in results(reports, RESULT):
        total = sweeps.setdefault(result["test"], {
            "calls": result["calls"], "faults": result["faults"], "runs": 0, "shards": 0,
            "tally": dict.fromkeys(VERDICTS, 0), "converged": 0, "forked": False,
            "failures": [], "baseline": 0})
        total["baseline"] = max(total["baseline"], result["baseline"])
        total["runs"] += result["runs"]
        total["shards"] += 1
        for verdict, count in result["tally"].items():
            total["tally"][verdict] += count
        total["converged"] += result["converged"]
        total["forked"] = total["forked"] or result["isolation"] == "fork"
        total["failures"] += result["failures"]
    lines = []
    for test, total in sweeps.items():
        counts = counts_line(total["calls"], total["faults"], total["runs"], total["tally"],
                             total["converged"], "fork" if total["forked"] else "rerun")
        if total["shards"] > 1:
            counts += f" in {total['shards']} shards"
        failures = [plan for _, plan in sorted(total["failures"])]     # in the sweep's order
        if total["baseline"]:
            outcome = "the fault-free baseline run is broken, no fault runs"
        elif failures:
            outcome = f"{counts}; {len(failures)} failing run(s): {', '.join(failures)}"
        else:
            outcome = f"{counts}; no failing run"
        lines.append(f"{test}: {outcome}")
    return sorted(lines)


def _fault_free(sim: Simulator) -> bool:
    return sim.model_calls is None or not sim.model_calls.plan
