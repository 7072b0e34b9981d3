"""The ``crash_sweep`` marker: a test body run as a scenario, with a crash at every commit point.

::

    @pytest.mark.crash_sweep(idempotent=["send_receipt"])
    def test_checkout_survives_any_crash(dafx):
        iid = dafx.start_new("checkout", {"cart": 3})
        assert dafx.wait_for_completion(iid).runtime_status == "Completed"

What happens depends on ``--dafx-sweep`` (ini ``dafx_sweep``):

* ``points`` (the default): the plugin runs the body once to record the commit
  points, then once more per point with a crash injected there, each time on a
  fresh simulator passed as ``dafx`` (see :func:`dafx_testing.checks.sweep.crash_sweep`).
  The test fails with :meth:`SweepReport.explain <dafx_testing.checks.sweep.SweepReport.explain>`
  when any recovery loses or duplicates work.
* ``pairs``: also a crash at every pair of points (slower, finds more).
* ``off``: the body runs once, as a plain test (a quick edit-run loop).

The marker's keywords are passed on: ``once`` (activity names whose re-run is a
failure even when nothing observable changed), ``idempotent`` (activity names
expected to run again: left out of the information line on harmless re-runs),
``kinds`` (crash only points of these kinds), ``effects`` (a function returning
a snapshot of the outside world to compare), ``isolation``, ``prune`` (False runs
every crash run, even those decided without a run). A re-run of any
other activity fails the test only when it leaves an observable difference;
a baseline (the body's first, crash-free run) that leaves an instance Failed,
times out waiting or trips a non-determinism check fails it before any crash run.

The body runs many times, but the other fixtures it takes are made once: it
must reset what it uses (a fake service's ledger, say), like any sweep scenario.
``virtual_clock`` and ``fake_llm`` follow the simulator of the current run.

Sharding: with ``--dafx-sweep-shards=N`` (default ``auto``: the number of
pytest-xdist workers, so ``pytest -n auto`` spreads every sweep), each marked
test becomes N items ``test[dafx-shard-I-of-N]``; item I crashes at the points
whose position is I modulo N, after running the same baseline. Together they try
exactly the schedules one unsharded sweep tries, and find the same failures.
The terminal summary adds the shards up per test. ``fault_sweep`` tests are split
the same way (:func:`parametrize`, :func:`shard_of`), by run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from .config import PluginConfig

if TYPE_CHECKING:
    from ..checks.sweep import SweepReport
    from ..simulator import Simulator
    from .factory import SimulatorFactory

__all__ = ["MARKER", "SWEEP_MARKERS", "body_as_scenario", "parametrize", "results", "run",
           "shard_of", "summary", "unsharded"]

MARKER = "crash_sweep"
SWEEP_MARKERS = (MARKER, "fault_sweep")
"""The markers that make a test's body a sweep's scenario (``fault_sweep``:
:mod:`dafx_testing.pytest_plugin.fault_sweep_marker`)."""
SWEEP_REPORT: pytest.StashKey[SweepReport] = pytest.StashKey()
"""Where a swept test keeps its report (the HTML page shows it)."""
SWEEP_BASELINE: pytest.StashKey[Simulator] = pytest.StashKey()
"""Where a swept test keeps its crash-free (and fault-free) run (the HTML page shows it, as
``dafx sweep --html``)."""
OPTIONS = ("idempotent", "kinds", "effects", "isolation", "once", "prune")
"""Keywords the marker accepts (those of :meth:`Simulator.crash_sweep`)."""

SHARD_PARAM = "_dafx_sweep_shard"
"""The parameter (not a fixture the test takes) that numbers a sweep's shards."""

RESULT = "dafx_sweep"
"""The ``user_properties`` key of a sweep's result (it reaches the xdist controller)."""


def parametrize(metafunc: pytest.Metafunc, config: PluginConfig) -> None:
    """Split a swept test (either marker) into ``config.shards`` items when sweeps run and
    shards are asked for."""
    marked = any(metafunc.definition.get_closest_marker(name) is not None
                 for name in SWEEP_MARKERS)
    if not marked or config.sweep == "off" or config.shards < 2:
        return
    # The test does not take this argument: adding it to the closure lets pytest
    # parametrize it directly, and the test function is still called without it.
    metafunc.fixturenames.append(SHARD_PARAM)
    metafunc.parametrize(SHARD_PARAM, range(config.shards),
                         ids=[_shard_id(i, config.shards) for i in range(config.shards)])


def run(item: pytest.Function, config: PluginConfig,
        factory: SimulatorFactory | None) -> None:
    """Sweep the marked test ``item``: its body is the scenario, ``dafx`` the template simulator.

    ``factory`` is the test's ``dafx_factory`` (there whenever the test takes ``dafx``).
    """
    __tracebackhide__ = True
    template, scenario, options = body_as_scenario(
        item, MARKER, OPTIONS, factory, "once per crash",
        baseline=lambda sim: sim.crash_log.plan is None)
    shard = shard_of(item, config)
    report = template.crash_sweep(scenario, pairs=config.sweep == "pairs", shard=shard, **options)
    item.stash[SWEEP_REPORT] = report
    item.user_properties.append((RESULT, {
        "test": unsharded(item.nodeid, shard), "shard": shard, "points": len(report.points),
        "runs": report.runs, "failures": [[p.index for p in f.crashes] for f in report.failures],
        "baseline": len(report.baseline_problems)}))
    if not report.ok:
        pytest.fail(report.explain(), pytrace=False)


def shard_of(item: pytest.Function, config: PluginConfig) -> tuple[int, int] | None:
    """``(index, count)`` of the swept test item's shard (see :func:`parametrize`), or None."""
    index = item.callspec.params.get(SHARD_PARAM) if hasattr(item, "callspec") else None
    return (index, config.shards) if isinstance(index, int) else None


def body_as_scenario(item: pytest.Function, name: str, options: Sequence[str],
                     factory: SimulatorFactory | None, runs: str,
                     baseline: Callable[[Simulator], bool],
                     ) -> tuple[Simulator, Callable[[Simulator], None], dict[str, Any]]:
    """What every sweep marker does first: check it, then turn the test's body into a scenario.

    Fails the test, saying how to use the marker, when the marker ``@pytest.mark.<name>`` has
    positional arguments or keywords outside ``options``, when the test has another sweep
    marker, or when it does not take a ``dafx`` that is a :class:`~dafx_testing.Simulator`.

    Returns the template simulator (``dafx``: the sweep copies it), the scenario (the body
    called with the run's simulator as ``dafx``, the other fixtures as the test got them,
    ``factory`` following the run) and the marker's keywords. ``runs`` says how often the body
    runs ("once per crash"); ``baseline(sim)`` tells the sweep's first, undisturbed run, kept
    in the item's stash for its HTML page.
    """
    __tracebackhide__ = True
    from ..simulator import Simulator

    marker = item.get_closest_marker(name)
    if marker is None:
        raise pytest.UsageError(f"{item.nodeid} has no @pytest.mark.{name} marker to sweep")
    where = f"@pytest.mark.{name} on {item.nodeid}"
    unknown = sorted(set(marker.kwargs) - set(options))
    if marker.args or unknown:
        given = [repr(a) for a in marker.args] + [f"{k}=..." for k in unknown]
        pytest.fail(f"{where}: unexpected {', '.join(given)}; it takes only the keywords "
                    f"{', '.join(options)}", pytrace=False)
    others = [other for other in SWEEP_MARKERS
              if other != name and item.get_closest_marker(other) is not None]
    if others:
        pytest.fail(f"{where}: the test is also marked {', '.join(others)}; a test is one sweep "
                    "(split it into two tests, one per marker)", pytrace=False)
    arguments = {arg: item.funcargs[arg] for arg in item._fixtureinfo.argnames}
    if "dafx" not in arguments:
        pytest.fail(f"{where}: the test must take the dafx fixture; its body runs {runs}, each "
                    "time on a fresh simulator passed as dafx", pytrace=False)
    template = arguments["dafx"]
    if not isinstance(template, Simulator):
        pytest.fail(f"{where}: the dafx fixture must give a dafx_testing.Simulator, not "
                    f"{type(template).__name__}", pytrace=False)
    assert factory is not None, "the dafx fixture is built by dafx_factory"

    def scenario(sim: Simulator) -> None:
        if baseline(sim) and SWEEP_BASELINE not in item.stash:
            item.stash[SWEEP_BASELINE] = sim     # the first undisturbed run is the baseline
        with factory.driving(sim):
            item.obj(**dict(arguments, dafx=sim))

    return template, scenario, dict(marker.kwargs)


def results(reports: Sequence[Any], key: str) -> Iterator[dict[str, Any]]:
    """The results sweeps of ``key`` left in the reports' ``user_properties``, in order."""
    for report in reports:
        for found, result in getattr(report, "user_properties", ()):
            if found == key:
                yield result


def summary(reports: Sequence[Any]) -> list[str]:
    """One line per swept test, its shards added up: points, runs, failing schedules."""
    sweeps: dict[str, dict[str, Any]] = {}
    for result in results(reports, RESULT):
        total = sweeps.setdefault(result["test"], {"points": result["points"], "runs": 0,
                                                   "shards": 0, "failures": [], "baseline": 0})
        total["baseline"] = max(total["baseline"], result.get("baseline", 0))
        total["runs"] += result["runs"]
        total["shards"] += 1
        total["failures"] += result["failures"]
    lines = []
    for test, total in sorted(sweeps.items()):
        shards = f" in {total['shards']} shards" if total["shards"] > 1 else ""
        failures = sorted(total["failures"])
        outcome = (f"{len(failures)} failing schedule(s): "
                   + ", ".join(" and ".join(f"#{i}" for i in crash) for crash in failures)
                   if failures else "all invariants held")
        if total["baseline"]:
            outcome = "the crash-free baseline run is broken, no crash runs"
        lines.append(f"{test}: {total['points']} commit points, {total['runs']} crash runs"
                     f"{shards}, {outcome}")
    return lines


def _shard_id(index: int, count: int) -> str:
    return f"dafx-shard-{index}-of-{count}"


def unsharded(nodeid: str, shard: tuple | None) -> str:
    """The node id without the shard's part of the parameter id (the sweep's name)."""
    if shard is None:
        return nodeid
    part = _shard_id(*shard)
    for old, new in ((f"[{part}]", ""), (f"[{part}-", "["), (f"-{part}", "")):
        if old in nodeid:
            return nodeid.replace(old, new, 1)
    return nodeid
