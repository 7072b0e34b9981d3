"""Model-fault sweeps: fail every model call of a scenario, each way the service fails, and judge.

:func:`fault_sweep` runs the scenario once with no fault (the baseline), numbering the model
calls the active fakes answer (1, 2, ... in the order they are answered; each with its agent and
the work that made it). Then, for every call × fault kind, it runs the scenario again on a fresh
simulator whose :class:`~dafx_testing.llm.plan.FaultPlan` fails that one call that way (as
``fake.fault`` renders it on the wire), and compares the run with the baseline:

``survived``
    every instance ends with the baseline's status and output, every HTTP answer is the
    baseline's: a retry (the client's, the orchestration's, the Agent Framework's) absorbed it.
``failed cleanly``
    an instance Failed (or was terminated), an HTTP request was answered with an error status,
    or an instance still waits for a timer or work that will wake it; and nothing is broken.
``broken``
    an instance stuck Running with nothing to wake it (no timer, no queued or in-flight work,
    only an external event nobody sends); an entity left locked (see below); an agent session
    holding an error reply, two user turns in a row, a request with no response, or a turn
    stored twice; the outside world (``effects=``) differs; the scenario raised something other
    than a dafx error (an exception escaped the durable machinery); or, the worst kind, an
    instance completed (or an HTTP request succeeded) with another output while nothing failed.

An entity is *left locked* when something holds it that will never let go, at the end of a
run:

* a critical section's lock (the durabletask host's ``lock_entities``) whose holder ended
  without releasing it, or is stuck inside the section: every operation others send to the
  entity waits for good. (A holder that can still go on will release it: that is pending work.)
* operations queued that no batch will ever run. The worker takes an entity's batch only
  while the entity is in the hub's ready queue, and a batch whose invocation fails as a whole
  (the state or a result does not serialize, the handle raised) is aborted: nothing commits,
  its operations go back to the queue, and the host retries them only when another message
  arrives for the entity. Signals are caught too, though no instance waits for them. A batch
  in flight (a slow model call, see :mod:`dafx_testing.core.in_flight`) holds its entity only
  until the clock reaches its landing time, like a timer: pending work, not a lock.

Entities the baseline left locked too are not counted against a run.

``broken`` makes the report not ok. ``expect`` says which runs must also survive (runs that
only failed cleanly then fail too, for apps that promise retries):

* ``None``: none; only ``broken`` runs fail.
* ``"survive"``: every run.
* a mapping by agent name and fault kind: ``{"Writer": "survive"}`` (runs that failed a call
  of the Writer), ``{"rate_limit": "survive"}`` (runs that got a ``rate_limit``), and an
  agent's own fault kinds nested: ``{"Writer": {"rate_limit": "survive", "timeout":
  "survive"}}``. Each value is ``"survive"`` or ``None`` (only broken fails: an exemption from
  a broader entry). For a run, the most specific entry decides: the agent's entry for the fault
  kind, then the agent's own entry, then the fault kind's; a run no entry names fails only when
  broken. Fault kinds must be among ``faults=``, agents among those the baseline called.

Each run also reports what the fault cost: the model calls it made beyond the baseline's (what
retries repeated) and the virtual time its slowest instance took beyond the baseline's (a retry
policy's back-off, a retry-after wait), in the matrix's cells and on :class:`FaultRun`.

Scripted replies are served afresh to every run: the sweep snapshots the scripts of the fakes
active when it starts (queued replies, fault rules, what each lane served) and restores them
before each run, so a test scripts the ``fake_llm`` fixture once, before the sweep. (A
``respond_with`` function keeps whatever state it holds itself.) Script errors a run caused
(``ScriptExhausted``: the app asked more than the script holds) are reported with that run and
cleared, so the fake does not re-raise them on exit.

The runs reuse the crash sweep's machinery (:mod:`dafx_testing.checks.sweep`): its scenario run
and hub observation, and its baseline checks (a baseline that fails or raises a dafx error makes
the report not ok, with no fault runs). Like crash runs, fault runs are

* sharded: ``shard=(index, count)`` makes the runs whose position (call order, then fault
  order) is ``index`` modulo ``count`` (:func:`~dafx_testing.checks.sweep.shard_share`);
* forked or rerun: ``isolation="fork"`` forks each run off one more fault-free run, at the
  end of the worker step before its model call (:func:`_fork_pass`, with the crash sweep's
  :class:`~dafx_testing.checks.forks.Forks`); ``"auto"`` decides as for crash sweeps
  (:func:`~dafx_testing.checks.sweep.chosen_isolation`);
* stopped early where that is sound (``converge=True``): a run whose state, after its fault,
  is the baseline's at one of its steps, and which no stream the rest of the baseline draws
  from tells apart, is the baseline from there on (:class:`_Watch`); ``report.converged``
  counts those runs.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..agents.sessions import AGENT_ENTITY_PREFIX, conversation_problems
from ..core.errors import ArgumentError, DafxError
from ..core.timeline import preview
from ..llm.fake import active_fakes
from ..llm.faults import FAULT_KINDS
from ..llm.plan import FaultPlan
from .fake_scripts import FakeScripts
from .forks import Forks, PassOver, can_fork
from .sweep import (
    Observation,
    Scenario,
    _module_state,
    _run,
    baseline_problems,
    check_isolation,
    check_shard,
    chosen_isolation,
    shard_share,
)

__all__ = ["Expectation", "ExpectationError", "FaultPlan", "FaultRun", "FaultSweepReport",
           "ModelCall", "VERDICTS", "fault_sweep"]

SURVIVED, FAILED_CLEANLY, BROKEN = "survived", "failed cleanly", "broken"
VERDICTS = (SURVIVED, FAILED_CLEANLY, BROKEN)
SURVIVE = "survive"
EXPECTATIONS = (None, SURVIVE)
"""What one run may be expected to do: only not break (None), or survive."""

Expectation = str | Mapping[str, Any] | None
"""``expect=`` of a sweep: None, ``"survive"``, or a mapping by agent name and fault kind
(``{"Writer": "survive", "rate_limit": "survive", "Critic": {"timeout": "survive"}}``)."""

_EXPECT_FORMS = ("None (only broken runs fail) or 'survive' (runs that failed cleanly fail too), "
                 "or a mapping of those by agent name and fault kind, e.g. {'Writer': 'survive', "
                 "'rate_limit': 'survive', 'Critic': {'timeout': 'survive'}}")


class ExpectationError(ArgumentError):
    """``expect=`` names an agent the fault-free baseline never called (found after it ran)."""


FaultSimulatorFactory = Callable[[FaultPlan], Any]
"""Builds a fresh simulator whose model calls fail per the plan (``FaultPlan()``: none)."""


@dataclass(frozen=True)
class ModelCall:
    """One model call of the baseline.

    Attributes:
        number: its position among the baseline's model calls, from 1 (the ``call=`` of a plan).
        agent: the agent the fake recognised (``fake.agent(...)`` lanes), or None.
        caller: the work that made it, when known: ``activity 'x' of instance 'i'`` or
            ``entity '@dafx-writer@s1'``.
        stream: whether it asked for a streamed answer.
    """

    number: int
    agent: str | None
    caller: str | None
    stream: bool = False

    def describe(self) -> str:
        """``#3 Writer (entity '@dafx-writer@s1')``."""
        who = self.agent or "no agent"
        return f"#{self.number} {who}" + (f" ({self.caller})" if self.caller else "")


@dataclass
class FaultRun:
    """One run with one model call failing one way, and what became of it.

    Attributes:
        call: the baseline call that failed.
        fault: the fault kind it got.
        verdict: ``survived``, ``failed cleanly`` or ``broken``.
        reasons: why it is not ``survived`` (each line names the instance, session, entity or
            request).
        model_calls: the model calls the run made (the baseline's plus what retries repeated).
        ok: whether the verdict is acceptable under the sweep's ``expect``.
        expected: what the sweep's ``expect`` asked of this run: ``"survive"``, or None (only
            broken fails).
        extra_model_calls: ``model_calls`` minus the baseline's: what retries repeated (fewer
            when the fault stopped the work early).
        extra_time: the virtual time the run's slowest instance took beyond its baseline
            (creation to last update): what a retry policy's back-off or a retry-after wait
            spent; zero when no instance took longer.
        converged: the run stopped early: after the fault, its state became the baseline's
            at one of the baseline's steps, so the rest of it is the baseline's (see
            ``converge`` in :func:`fault_sweep`); its verdict is ``survived``, its model calls
            those it made plus the baseline's after that step.
    """

    call: ModelCall
    fault: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    model_calls: int = 0
    ok: bool = True
    expected: str | None = None
    extra_model_calls: int = 0
    extra_time: timedelta = timedelta(0)
    converged: bool = False

    @property
    def plan(self) -> FaultPlan:
        """The plan that reproduces this run in a plain ``Simulator(app, fault_plan=...)``."""
        return FaultPlan(call=self.call.number, fault=self.fault)

    def cost(self) -> str:
        """What the fault cost beyond the baseline, e.g. ``+1 call, +5s``; '' when nothing."""
        parts = []
        if self.extra_model_calls > 0:
            parts.append(f"+{self.extra_model_calls} call" + ("s" if self.extra_model_calls > 1 else ""))
        if self.extra_time > timedelta(0):
            parts.append("+" + duration(self.extra_time))
        return ", ".join(parts)

    def explain(self) -> str:
        missed = " (expected to survive)" if self.verdict == FAILED_CLEANLY and not self.ok else ""
        lines = [f"call {self.call.describe()} × {self.fault}: {self.verdict}{missed}"]
        lines += [f"  - {reason}" for reason in self.reasons]
        if self.cost():
            waited = f", {duration(self.extra_time)} more virtual time" if self.extra_time else ""
            lines.append(f"  cost: {self.model_calls} model call(s) (baseline "
                         f"{self.model_calls - self.extra_model_calls}){waited}")
        lines.append(f"  reproduce: {self.plan!r}")
        return "\n".join(lines)


@dataclass
class FaultSweepReport:
    """The result of :func:`fault_sweep`.

    Attributes:
        calls: the baseline's model calls, numbered from 1.
        faults: the fault kinds tried.
        runs: one per call × fault, in call order then fault order.
        expect: ``None`` (only ``broken`` fails), ``"survive"`` (anything but ``survived``
            fails), or a mapping by agent and fault kind (see the module docstring); each
            run's ``expected`` is what it asked of that run.
        baseline_problems: why the fault-free run cannot be swept (then there are no runs).
        baseline_model_calls: the model calls of the baseline (what each run is compared with).
        seed: the simulator's seed.
        shard: ``(index, count)`` when this report covers one shard of a sweep: the runs whose
            position (call order, then fault order) is ``index`` modulo ``count``.
        isolation: how the runs were made: ``fork`` (off one more run of the scenario, just
            before their model call) or ``rerun`` (each from the start).
        planned: the runs of the whole sweep (all shards): calls × faults.
    """

    calls: list[ModelCall]
    faults: tuple[str, ...]
    runs: list[FaultRun] = field(default_factory=list)
    expect: Expectation = None
    baseline_problems: list[str] = field(default_factory=list)
    baseline_model_calls: int = 0
    seed: int = 0
    shard: tuple[int, int] | None = None
    isolation: str = "rerun"

    @property
    def planned(self) -> int:
        """The runs of the whole sweep, every shard's: one per call × fault."""
        return len(self.calls) * len(self.faults)

    @property
    def converged(self) -> int:
        """The runs that stopped early, their state the baseline's (see ``converge``)."""
        return sum(run.converged for run in self.runs)

    @property
    def ok(self) -> bool:
        """True when the baseline is sound and every run's verdict is acceptable."""
        return not self.baseline_problems and all(run.ok for run in self.runs)

    @property
    def failures(self) -> list[FaultRun]:
        """The runs whose verdict is not acceptable under ``expect``."""
        return [run for run in self.runs if not run.ok]

    def verdict(self, call: int, fault: str) -> str:
        """The verdict of the run that failed call ``call`` with ``fault``."""
        for run in self.runs:
            if run.call.number == call and run.fault == fault:
                return run.verdict
        raise KeyError(f"no run failed call {call} with {fault!r}; calls 1..{len(self.calls)}, "
                       f"faults {', '.join(self.faults)}")

    def counts(self, notes: bool = True) -> str:
        """``2 model call(s) × 3 fault(s) = 6 run(s): 4 survived, 2 broken``.

        A shard says which runs it made, ``= 3 of 6 run(s) (shard 0 of 2)``; with ``notes``,
        runs that stopped early and forked runs are said last: ``(2 stopped early: converged
        with the baseline; forked)``.
        """
        return counts_line(len(self.calls), len(self.faults), len(self.runs),
                           {v: sum(run.verdict == v for run in self.runs) for v in VERDICTS},
                           self.converged if notes else 0, self.isolation if notes else "rerun",
                           self.shard)

    def notes(self) -> list[str]:
        """How the runs were made, when it is worth saying: early stops, forks."""
        return run_notes(self.converged, self.isolation)

    def matrix(self) -> str:
        """The verdicts as a table: a row per model call, a column per fault kind."""
        cells = {(run.call.number, run.fault): run for run in self.runs}
        heads = ["call"] + list(self.faults)
        rows = []
        for call in self.calls:
            row = [call.describe()]
            for fault in self.faults:
                run = cells.get((call.number, fault))
                row.append("-" if run is None else run.verdict
                           + (f" ({run.cost()})" if run.cost() else "") + ("" if run.ok else " ✗"))
            rows.append(row)
        widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                         for row in [heads, *rows])

    def explain(self, max_failures: int = 5) -> str:
        """What was tried, the matrix, then each failing run with its reproduction line."""
        part = "" if self.shard is None else f" (shard {self.shard[0]} of {self.shard[1]})"
        if self.baseline_problems:
            lines = [f"fault sweep{part}: the fault-free baseline run is broken, so no fault runs "
                     "were made: each would be compared with it"]
            lines += [f"baseline: {problem}" for problem in self.baseline_problems]
            return "\n".join(lines)
        expectation = "" if self.expect is None else f", expect={self.expect!r}"
        notes = "".join(f"; {note}" for note in self.notes())
        head = (f"fault sweep: {self.counts(notes=False)} (seed {self.seed}{expectation}"
                f"{notes}): "
                + ("ok" if self.ok else f"{len(self.failures)} failing run(s)"))
        lines = [head, self.matrix()]
        for run in self.failures[:max_failures]:
            lines.append(run.explain())
        rest = self.failures[max_failures:]
        if rest:
            lines.append(f"... and {len(rest)} more failing run(s): "
                         + ", ".join(repr(run.plan) for run in rest))
        survived = [run for run in self.runs if run.verdict == SURVIVED]
        calls = max((run.extra_model_calls for run in survived), default=0)
        waited = max((run.extra_time for run in survived), default=timedelta(0))
        costs = ([f"repeated up to {calls} model call(s) (baseline {self.baseline_model_calls})"]
                 if calls > 0 else [])
        costs += [f"took up to {duration(waited)} more virtual time"] if waited else []
        if costs:
            lines.append(f"survived runs {' and '.join(costs)}: a cost, not a failure")
        return "\n".join(lines)


def counts_line(calls: int, faults: int, runs: int, tally: Mapping[str, int], converged: int = 0,
                isolation: str = "rerun", shard: tuple[int, int] | None = None) -> str:
    """What a sweep (or its shards, added up) tried: see :meth:`FaultSweepReport.counts`."""
    found = ", ".join(f"{n} {v}" for v, n in tally.items() if n) or "none"
    made = f"{runs} run(s)" if shard is None else f"{runs} of {calls * faults} run(s) (shard " \
                                                  f"{shard[0]} of {shard[1]})"
    notes = run_notes(converged, isolation)
    return (f"{calls} model call(s) × {faults} fault(s) = {made}: {found}"
            + (f" ({'; '.join(notes)})" if notes else ""))


def run_notes(converged: int, isolation: str) -> list[str]:
    """``["2 stopped early: converged with the baseline", "forked"]``, or what of it applies."""
    notes = [f"{converged} stopped early: converged with the baseline"] if converged else []
    return notes + (["forked"] if isolation == "fork" else [])


def fault_sweep(
    make_simulator: FaultSimulatorFactory,
    scenario: Scenario,
    *,
    faults: Collection[str] = FAULT_KINDS,
    expect: Expectation = None,
    effects: Callable[[], Any] | None = None,
    seed: int = 0,
    shard: tuple[int, int] | None = None,
    isolation: str = "auto",
    converge: bool = True,
) -> FaultSweepReport:
    """Fail each model call of ``scenario`` with each of ``faults`` and judge each run.

    Args:
        make_simulator: builds a fresh simulator with a fault plan (``Simulator._fresh``).
        scenario: ``scenario(sim)`` drives one run; it runs once per call × fault, so it must
            start from a clean world (reset your fakes in it). Script the ``FakeLLM`` before
            the sweep: its script is restored before every run.
        faults: the fault kinds to try (:data:`~dafx_testing.llm.FAULT_KINDS` by default).
        expect: ``None``: only ``broken`` runs fail; ``"survive"``: runs that failed cleanly
            fail too; or a mapping by agent name and fault kind, e.g. ``{"Writer": "survive",
            "rate_limit": "survive", "Critic": {"timeout": "survive"}}`` (the most specific
            entry decides a run; see the module docstring).
        effects: returns a JSON-able snapshot of the outside world; a run that leaves another
            one is broken (side effects duplicated or lost).
        seed: recorded in the report.
        shard: ``(index, count)``: make only the runs whose position (in call order, then
            fault order) is ``index`` modulo ``count``; the shards of one sweep make every run
            exactly once, each after the same baseline.
        isolation: ``fork`` each run off one more fault-free run of the scenario, just before
            the worker step that makes its model call (the child fails that call, the pass
            goes on fault-free); ``rerun`` the scenario from the start for each run; ``auto``
            (the default) forks where crash sweeps would (Linux, one thread, a baseline of
            :data:`~dafx_testing.checks.sweep.FORK_MIN_STEPS` worker steps or more), else
            reruns. A process running other threads cannot fork: the Agent Framework's
            durable agents keep an event-loop thread, so their sweeps rerun.
        converge: stop a run early once, after its fault, its state is the baseline's at one
            of the baseline's steps (see :class:`_Watch`): the rest of the run is then the
            baseline's, and so is its verdict (``survived``). ``False`` runs every run to the
            end, with the same verdicts.

    A baseline that raises an exception other than a dafx error propagates: that is a bug in
    the scenario. An ``expect`` naming an agent the baseline did not call raises
    :class:`ExpectationError` once the baseline has run (before any fault run).
    """
    if isinstance(faults, str):
        raise TypeError(f"faults= takes a list of fault kinds, e.g. faults=[{faults!r}], not a "
                        "single string")
    kinds = tuple(dict.fromkeys(faults))
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown or not kinds:
        raise ArgumentError(f"faults={list(faults)!r}: "
                            + (f"unknown fault kind(s) {', '.join(map(repr, unknown))}" if unknown
                               else "no fault kinds") + f"; valid: {', '.join(FAULT_KINDS)}")
    expect = _checked_expect(expect, kinds)
    check_shard(shard)
    check_isolation(isolation)
    scripts = FakeScripts(active_fakes())
    first = make_simulator(FaultPlan())
    with first.clock.bound(), scripts:
        trace = _Trace() if converge else None
        baseline = _observed_run(first, scenario, effects, scripts, _Watch(record=trace))
        assert isinstance(baseline, _Observed)
        report = FaultSweepReport(calls=baseline.calls, faults=kinds, expect=expect, seed=seed,
                                  baseline_model_calls=len(baseline.calls), shard=shard,
                                  isolation="fork" if isolation == "fork" else "rerun")
        problems = baseline_problems(first, baseline.observation)
        problems += baseline.script_errors
        if not baseline.calls and not problems:
            problems.append("the scenario made no model calls, so there is nothing to fail; is a "
                            "FakeLLM active while it runs (the fake_llm fixture, or "
                            "`with FakeLLM() as fake:` around the sweep)?")
        if problems:
            report.baseline_problems = problems
            return report
        _check_agents(expect, baseline.calls)
        report.isolation = chosen_isolation(isolation, baseline.steps)
        wanted = shard_share([(call, kind) for call in baseline.calls for kind in kinds], shard)

        def judged(call: ModelCall, kind: str, run: _Observed | _Converged) -> FaultRun:
            return _fault_run(baseline, call, kind, run, expectation_for(expect, call.agent, kind))

        forked: dict[tuple[int, str], FaultRun] = {}
        if report.isolation == "fork" and wanted:
            forked = _fork_pass(make_simulator(FaultPlan()), scenario, effects, scripts,
                                baseline, trace, wanted, judged)
        for call, kind in wanted:
            run = forked.get((call.number, kind))
            if run is None:
                sim = make_simulator(FaultPlan(call=call.number, fault=kind))
                run = judged(call, kind, _observed_run(
                    sim, scenario, effects, scripts, _Watch(target=trace, call=call.number)))
            report.runs.append(run)
    return report


def _fault_run(baseline: _Observed, call: ModelCall, kind: str, run: _Observed | _Converged,
               expected: str | None) -> FaultRun:
    """The verdict of one run against the baseline, under what ``expect`` asks of it."""
    if isinstance(run, _Converged):
        # The rest of the run is the baseline's from that step: it ends as the baseline does.
        total = run.calls + len(baseline.calls) - run.baseline_calls
        return FaultRun(call, kind, SURVIVED, [], total, True, expected,
                        total - len(baseline.calls), timedelta(0), converged=True)
    verdict, reasons = _judge(baseline, run)
    ok = verdict == SURVIVED or (verdict == FAILED_CLEANLY and expected is None)
    return FaultRun(call, kind, verdict, reasons, len(run.calls), ok, expected,
                    len(run.calls) - len(baseline.calls), _extra_time(baseline, run))


def _fork_pass(sim: Any, scenario: Scenario, effects: Callable[[], Any] | None, scripts: FakeScripts,
               baseline: _Observed, trace: _Trace | None, wanted: list[tuple[ModelCall, str]],
               judged: Callable[[ModelCall, str, _Observed | _Converged], FaultRun],
               ) -> dict[tuple[int, str], FaultRun]:
    """One more fault-free run of the scenario, forking each wanted run just before its call.

    A model call is made inside a worker step (an activity, an entity batch) or by the host
    code the scenario drives (an HTTP handler), often on another thread (the Agent Framework's
    event loop), so the fork point is the end of the worker step before the call (or the
    scenario's start): there the run with the fault is still the baseline, and a plan is read
    only when the call it fails is counted. The child swaps its plan for the run's and runs
    on, the parent goes on fault-free to the next fork point. Forking needs one thread
    (:func:`~dafx_testing.checks.forks.can_fork`): the runs due where another thread runs
    (a step on a helper thread, under a running event loop) are left to reruns, as are those
    after the pass leaves the baseline (another number of calls at a step's end) and those
    whose child failed.

    Returns the forked runs' verdicts by (call number, fault kind).
    """
    due: dict[int, list[tuple[ModelCall, str]]] = {}
    for call, kind in wanted:
        due.setdefault(baseline.call_steps[call.number - 1], []).append((call, kind))
    last = max(due)
    forks = Forks(on_result=lambda key, run: None)
    counter = sim.model_calls
    chosen: list[tuple[ModelCall, str]] = []

    def at_boundary(steps: int, watch: _Watch) -> None:
        if forks.in_child:
            return
        if len(counter.requests) != baseline.calls_after[steps]:
            raise PassOver()                 # the pass left the baseline: rerun the rest
        if can_fork(explicit=True) is None:     # the platform was decided before the pass
            for call, kind in due.get(steps, ()):
                if forks.fork((call.number, kind)):
                    plan = FaultPlan(call=call.number, fault=kind)
                    counter.plan = sim._options["fault_plan"] = plan
                    watch.aim(trace, call.number)
                    chosen.append((call, kind))
                    return
        if steps >= last:
            raise PassOver()

    # Every wanted run is forked, or left to reruns (the pass left the baseline, a child failed).
    return forks.run_pass(
        lambda: _observed_run(sim, scenario, effects, scripts, _Watch(at_boundary=at_boundary)),
        lambda result: judged(*chosen[0], result))


def expectation_for(expect: Expectation, agent: str | None, fault: str) -> str | None:
    """What ``expect`` asks of a run that failed a call of ``agent`` with ``fault``.

    The most specific entry decides: the agent's entry for the fault kind, then the agent's
    own entry, then the fault kind's; None (only broken fails) when no entry names the run.
    """
    if not isinstance(expect, Mapping):
        return expect
    if agent is not None and agent in expect and agent not in FAULT_KINDS:
        entry = expect[agent]
        if not isinstance(entry, Mapping):
            return entry
        if fault in entry:
            return entry[fault]
    return expect.get(fault)


def _checked_expect(expect: Any, kinds: tuple[str, ...]) -> Expectation:
    """``expect`` validated (a mapping copied into plain dicts), or an error naming what is valid."""
    if expect is None or expect == SURVIVE:
        return expect
    if not isinstance(expect, Mapping):
        raise ArgumentError(f"expect={expect!r}: expected {_EXPECT_FORMS}")
    if not expect:
        raise ArgumentError(f"expect={{}}: an empty mapping names no run; give None, or "
                            f"{_EXPECT_FORMS}")
    checked: dict[str, Any] = {}
    for key, value in expect.items():
        if not isinstance(key, str):
            raise ArgumentError(
                f"expect key {key!r}: the keys are agent names or fault kinds "
                f"({', '.join(FAULT_KINDS)}); for some fault kinds of one agent, nest them: "
                "{'Writer': {'rate_limit': 'survive'}}")
        if key in FAULT_KINDS:
            checked[key] = _checked_value(f"expect[{key!r}]", value, key, kinds)
        elif isinstance(value, Mapping):
            if not value:
                raise ArgumentError(f"expect[{key!r}]={{}}: name the agent's fault kinds, e.g. "
                                    f"{{{key!r}: {{'rate_limit': 'survive'}}}}")
            inner = {}
            for kind, expected in value.items():
                if kind not in FAULT_KINDS:
                    raise ArgumentError(
                        f"expect[{key!r}] key {kind!r}: not a fault kind; an agent's entry maps "
                        f"fault kinds ({', '.join(FAULT_KINDS)}) to 'survive' or None")
                inner[kind] = _checked_value(f"expect[{key!r}][{kind!r}]", expected, kind, kinds)
            checked[key] = inner
        else:
            checked[key] = _checked_value(f"expect[{key!r}]", value, None, kinds)
    return checked


def _checked_value(where: str, value: Any, kind: str | None, kinds: tuple[str, ...]) -> str | None:
    if value not in EXPECTATIONS:
        raise ArgumentError(f"{where}={value!r}: expected 'survive' (anything but survived "
                            "fails) or None (only broken fails)")
    if kind is not None and kind not in kinds:
        raise ArgumentError(f"{where}: this sweep does not try {kind!r} (faults: "
                            f"{', '.join(kinds)}); add it to faults= or drop the entry")
    return value


def _check_agents(expect: Expectation, calls: list[ModelCall]) -> None:
    """Every agent ``expect`` names made a call in the baseline (else it is a typo, or stale)."""
    if not isinstance(expect, Mapping):
        return
    agents = list(dict.fromkeys(call.agent for call in calls if call.agent))
    unknown = [key for key in expect if key not in FAULT_KINDS and key not in agents]
    if unknown:
        called = (f"the agents it called: {', '.join(map(repr, agents))}" if agents else
                  "it called no agent the fake recognised (fake.agent(...) names them)")
        raise ExpectationError(
            f"expect names {', '.join(map(repr, unknown))}, neither a fault kind nor an agent the "
            f"fault-free baseline called; {called}; fault kinds: {', '.join(FAULT_KINDS)}")


def _extra_time(baseline: _Observed, run: _Observed) -> timedelta:
    """How much longer than in the baseline the run's slowest instance took (zero if none did)."""
    longer = [took - baseline.durations.get(instance_id, timedelta(0))
              for instance_id, took in run.durations.items()]
    return max([timedelta(0), *longer])


def duration(span: timedelta) -> str:
    """``5s``, ``1m 30s``, ``2h 5m``: a span of virtual time, short."""
    seconds = round(span.total_seconds(), 3)
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m" + (f" {rest:g}s" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h" + (f" {int(minutes)}m" if minutes else "")


@dataclass
class _Observed:
    """One run: the crash sweep's observation plus what a fault sweep also looks at."""

    observation: Observation
    calls: list[ModelCall]
    http: list[tuple[str, int, str]]
    sessions: dict[str, list[dict[str, Any]]]
    stuck: dict[str, str]
    """Unfinished instances: why nothing can wake them, or '' when something will."""
    waits: dict[str, str]
    activity_errors: int
    script_errors: list[str]
    locked: dict[str, str]
    """Entities left locked: what holds each, what waits behind it."""
    durations: dict[str, timedelta]
    """Each instance's virtual time from creation to its last update."""
    call_steps: list[int] = field(default_factory=list)
    """For each model call, the worker steps done before it was counted (where a fork runs it)."""
    calls_after: list[int] = field(default_factory=list)
    """The model calls counted before the scenario started (0) and after each worker step."""

    @property
    def steps(self) -> int:
        """The worker steps the run made."""
        return len(self.calls_after) - 1


@dataclass(frozen=True)
class _Converged:
    """A run that stopped early: after step ``step`` of the baseline, it is the baseline."""

    step: int
    calls: int
    """The model calls the run made before it stopped."""
    baseline_calls: int
    """The model calls the baseline made up to ``step``."""


class _Stop(BaseException):
    """Raised after a worker step of a run whose state is the baseline's at ``converged.step``."""

    def __init__(self, converged: _Converged) -> None:
        self.converged = converged


@dataclass
class _Trace:
    """The baseline's state after each worker step, for fault runs to converge on.

    Index ``d`` of the lists is after the baseline's ``d``-th worker step (0: before the first).
    """

    keys: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    """State keys (:meth:`_Watch.state_key`) to the steps after which the baseline had them."""
    moments: set[tuple[int, Any]] = field(default_factory=set)
    """(driving calls, virtual time) after each step: the cheap first test."""
    streams: list[tuple[Any, ...]] = field(default_factory=lambda: [()])
    """Where the baseline's streams were after each step (:meth:`_Watch.streams`)."""
    calls: list[int] = field(default_factory=lambda: [0])
    """The model calls counted after each step."""
    final: tuple[Any, ...] = ()
    """Where the streams were at the baseline's end."""


class _Watch:
    """What a run of the sweep does after each worker step.

    * The baseline (``record``): takes its state key there, for the runs to converge on.
    * A run with a fault (``target``): once its faulted call has been counted, compares its
      state with the baseline's, and stops (raises :class:`_Stop`) at the first match.
    * The fork pass (``at_boundary``): called before the scenario starts (0) and after each
      step with the steps done; it forks the runs due there, and the child aims at the trace.

    When a run converges. After step ``s`` of the baseline and a step of the run, if
    everything a later step or the verdict can read is the same in both, the rest of the run
    is the baseline's rest from ``s``, and the run ends as the baseline does: its statuses,
    outputs, HTTP answers, sessions, locks and effects are the baseline's, and its verdict
    ``survived``. Compared (:meth:`state_key`): what the scenario has driven (its driving
    calls) and the virtual time; the task hub (:meth:`Simulator.fingerprint`: instances,
    histories, entity states and queues, timers, queued work); the plain containers the app's
    modules hold (as crash sweeps compare them: :func:`~dafx_testing.checks.sweep._module_state`);
    the ``effects`` snapshot; the HTTP answers so far; each instance's creation and last update
    (its duration), the calls the host faulted, the entity batches it aborted; the activity
    executions and their failures so far. Never converged: a run with work in flight (a slow
    model call's result, held until it lands, is not in the fingerprint), or with script
    errors so far.

    Three streams are drawn from as the run goes (:meth:`streams`): the fake model (the calls
    counted, which number its replies' ids, and each script's place and fault rules), the
    simulator's seeded ``uuid4``, and the random module. Each must be where the baseline's was
    at ``s``, unless the baseline never draws from it again after ``s`` (it is where it ends):
    then the run, step for step the baseline, does not either, and it cannot matter. So a run
    that absorbed its fault at the cost of a call (a retry) converges only once the baseline's
    model calls are done; its model calls are then those it made, and the verdict reports the
    difference with the baseline's as extra.

    Not compared: what the scenario's own code reads of the simulator's records of the run
    (``sim.model_calls``, ``fake.requests``, the activity calls' contents) after the step where
    the run stopped; a scenario that branches on those, or asserts on them at its end, needs
    ``converge=False``.
    """

    def __init__(self, record: _Trace | None = None, target: _Trace | None = None,
                 call: int = 0,
                 at_boundary: Callable[[int, _Watch], None] | None = None) -> None:
        self.record, self.target, self.call = record, target, call
        self.at_boundary = at_boundary
        self.sim: Any = None
        self.effects: Callable[[], Any] | None = None
        self.memory: Callable[[], tuple[tuple[str, str], ...]] = tuple
        self.scripts: FakeScripts | None = None
        self.http: list[tuple[str, int, str]] = []

    def aim(self, target: _Trace | None, call: int) -> None:
        """From now on, converge on ``target`` once call ``call`` (the faulted one) is counted."""
        self.target, self.call = target, call

    def start(self, sim: Any, effects: Callable[[], Any] | None, scripts: FakeScripts,
              http: list[tuple[str, int, str]]) -> None:
        self.sim, self.effects, self.scripts, self.http = sim, effects, scripts, http
        if self.record is not None or self.target is not None or self.at_boundary is not None:
            self.memory = _module_state(sim)

    def after_step(self, steps: int) -> None:
        sim = self.sim
        if self.record is not None:
            self.record.keys.setdefault(self.state_key(), []).append(steps)
            self.record.moments.add((sim.driving_calls, sim.now))
            self.record.streams.append(self.streams())
            self.record.calls.append(len(sim.model_calls.requests))
        elif self.target is not None and len(sim.model_calls.requests) >= self.call:
            self._converge(self.target)
        if self.at_boundary is not None:
            self.at_boundary(steps, self)

    def finish(self) -> None:
        """At the end of the run: the baseline notes where its streams ended."""
        if self.record is not None:
            self.record.final = self.streams()

    def _converge(self, trace: _Trace) -> None:
        sim, scripts = self.sim, self.scripts
        assert scripts is not None
        if ((sim.driving_calls, sim.now) not in trace.moments or sim._worker.in_flight
                or scripts.has_new_errors()):
            return
        steps = trace.keys.get(self.state_key())
        if not steps:
            return
        streams = self.streams()
        for step in steps:
            if all(now == then or then == end for now, then, end
                   in zip(streams, trace.streams[step], trace.final)):
                raise _Stop(_Converged(step, len(sim.model_calls.requests), trace.calls[step]))

    def state_key(self) -> tuple[Any, ...]:
        """Everything a later step, or the verdict, reads of the run but the streams."""
        sim = self.sim
        hub = sim.hub
        instances = tuple((i.instance_id, str(i.created_time), str(i.last_updated_time),
                           tuple(getattr(i, "host_faults", ())),
                           tuple(getattr(i, "dropped_starts", ())))
                          for i in sorted(hub.instances.values(), key=lambda i: i.instance_id))
        aborted = tuple(sorted((entity_id, str(record.aborted))
                               for entity_id, record in hub.entities.items() if record.aborted))
        activities = sim.activity_calls()
        return (sim.driving_calls, sim.now, sim.fingerprint(), self.memory(),
                json.dumps(self.effects(), sort_keys=True, default=str) if self.effects else None,
                hashlib.sha1(json.dumps(self.http).encode()).hexdigest(), instances, aborted,
                len(activities), sum(call.error is not None for call in activities))

    def streams(self) -> tuple[Any, ...]:
        """Where the run's streams are: the fake model, the seeded ``uuid4``, the random module."""
        assert self.scripts is not None
        return ((len(self.sim.model_calls.requests), self.scripts.state()),
                hash(self.sim._host_rng.getstate()), hash(random.getstate()))


def _observed_run(sim: Any, scenario: Scenario, effects: Callable[[], Any] | None,
                  scripts: FakeScripts, watch: _Watch) -> _Observed | _Converged:
    """One run of ``scenario`` on ``sim``, watched by ``watch``: what it did, or where it converged."""
    scripts.restore()
    counter = sim.model_calls
    pending: list[int] = []
    callers: dict[int, str | None] = {}
    seen = _WorkSeen(sim)
    call_steps: list[int] = []
    calls_after = [0]

    def on_call(number: int, request: Any) -> None:
        pending.append(number)
        call_steps.append(len(calls_after) - 1)

    counter.on_call = on_call

    def on_step() -> None:
        caller = seen.step()
        for number in pending:
            callers[number] = caller
        pending.clear()
        calls_after.append(len(counter.requests))
        watch.after_step(len(calls_after) - 1)

    def watched(sim: Any) -> Any:
        if watch.at_boundary is not None:
            watch.at_boundary(0, watch)
        return scenario(sim)

    with _recording_http(sim) as http:
        watch.start(sim, effects, scripts, http)
        try:
            observation, _, _ = _run(sim, watched, effects, on_step=on_step)
        except _Stop as stop:
            return stop.converged
        watch.finish()
    calls = [ModelCall(n, request.agent, callers.get(n), bool(request.stream))
             for n, request in enumerate(counter.requests, start=1)]
    stuck, waits = _unfinished(sim)
    errors = scripts.take_errors()
    durations = {iid: instance.last_updated_time - instance.created_time
                 for iid, instance in sim.hub.instances.items()}
    return _Observed(observation, calls, http, _sessions(sim), stuck, waits,
                     sum(call.error is not None for call in sim.activity_calls()), errors,
                     _locked(sim, stuck), durations, call_steps, calls_after)


def _judge(baseline: _Observed, run: _Observed) -> tuple[str, list[str]]:
    """The run's verdict against the baseline, with the reasons for it."""
    broken: list[str] = []
    failed: list[str] = []
    changed: list[str] = []
    error = run.observation.error
    if error is not None and not isinstance(error, (DafxError, AssertionError)):
        broken.append(f"an exception escaped the durable machinery: the scenario raised "
                      f"{type(error).__name__}: {_short(str(error))}")
    expected_statuses = baseline.observation.statuses
    for instance_id, (status, output) in run.observation.statuses.items():
        expected = expected_statuses.get(instance_id)
        if expected == (status, output):
            continue
        if status in ("Failed", "Terminated"):
            failed.append(f"instance {instance_id!r} ended {status}: {_short(str(output))}")
        elif status in ("Running", "Pending", "Suspended"):
            if run.stuck.get(instance_id):
                broken.append(f"instance {instance_id!r} is stuck {status} with nothing to wake "
                              f"it: {run.stuck[instance_id]}")
            else:
                failed.append(f"instance {instance_id!r} has not finished ({status}, "
                              f"{run.waits.get(instance_id) or 'work pending'})")
        elif expected is not None:
            changed.append(f"instance {instance_id!r} {status} with output {_short(output)} "
                           f"(baseline: {expected[0]} with output {_short(expected[1])})")
    for index, (request, status_code, body) in enumerate(run.http):
        was = baseline.http[index] if index < len(baseline.http) else None
        if was is not None and (request, status_code, body) == was:
            continue
        if status_code >= 400:
            failed.append(f"HTTP {request} answered {status_code}: {_short(body)}")
        elif was is not None:
            changed.append(f"HTTP {request} answered {status_code} {_short(body)} (baseline: "
                           f"{was[1]} {_short(was[2])})")
    broken += [f"entity {entity_id!r} is left locked: {why}" for entity_id, why in run.locked.items()
               if entity_id not in baseline.locked]
    for session, entries in run.sessions.items():
        known = set(_session_problems(baseline.sessions.get(session, [])))
        broken += [f"agent session {session}: {p}" for p in _session_problems(entries)
                   if p not in known]
    if run.observation.effects != baseline.observation.effects:
        broken.append(f"the outside world differs: expected {_short(baseline.observation.effects)}, "
                      f"got {_short(run.observation.effects)}")
    broken += run.script_errors
    something_failed = bool(failed) or run.activity_errors > baseline.activity_errors
    if changed:
        if something_failed:
            failed += changed
        else:
            broken += [f"completed with another output while nothing failed: {c}" for c in changed]
    if isinstance(error, (DafxError, AssertionError)):
        note = f"the scenario raised {type(error).__name__}: {_short(str(error))}"
        # Beside a failure it is a consequence; alone, the run differs where nothing shows it.
        (failed if broken or failed else broken).append(note)
    if broken:
        return BROKEN, broken + failed
    if failed:
        return FAILED_CLEANLY, failed
    return SURVIVED, []


def _session_problems(entries: list[dict[str, Any]]) -> list[str]:
    """What makes a stored conversation corrupt: error replies, user turns in a row, no reply."""
    problems = conversation_problems(json.dumps({"data": {"conversationHistory": entries}}))
    kinds = [entry.get("$type") for entry in entries]
    for position, entry in enumerate(entries):
        cid = entry.get("correlationId")
        # (The framework never persists isError: the error content tells, _has_error.)
        if entry.get("$type") == "response" and _has_error(entry):
            errors = [c.get("message") or c.get("errorCode") for m in entry.get("messages") or ()
                      for c in m.get("contents") or () if c.get("$type") == "error"]
            problems.append(f"holds an error reply for request {cid!r} ({_short(errors[0] if errors else 'error')}); "
                            "its caller was handed it as an answer (an empty .text, or a "
                            "structured result that does not parse), and the next turn sends "
                            "the model two user messages in a row")
        if entry.get("$type") == "request":
            if position + 1 < len(kinds) and kinds[position + 1] == "request":
                problems.append(f"holds two user turns in a row (request {cid!r} has no reply "
                                "before the next request)")
            elif position + 1 == len(kinds):
                problems.append(f"holds request {cid!r} with no response")
    return problems


def _has_error(entry: dict[str, Any]) -> bool:
    return any(c.get("$type") == "error" for m in entry.get("messages") or ()
               for c in m.get("contents") or ())


def _sessions(sim: Any) -> dict[str, list[dict[str, Any]]]:
    """Each agent session's stored conversation entries, by entity id."""
    found = {}
    for entity_id, record in sim.hub.entities.items():
        if entity_id.startswith("@" + AGENT_ENTITY_PREFIX) and record.exists and record.state:
            state = json.loads(record.state)
            found[entity_id] = ((state or {}).get("data") or {}).get("conversationHistory") or []
    return found


def _locked(sim: Any, stuck: dict[str, str]) -> dict[str, str]:
    """Entities left locked, each with what holds it and what waits behind it.

    Two ways (``stuck``: the unfinished instances nothing will wake, as :func:`_unfinished`
    finds them):

    * a critical section's lock (``EntityRecord.locked_by``, the durabletask host) held by an
      instance that will never release it: it ended (or continued as new) still holding it, or
      it is stuck. A lock whose holder can still go on is pending, like a timer.
    * operations queued that no batch will run: the worker takes a batch only from an entity
      in the hub's ready queue; an aborted batch puts its operations back without making the
      entity ready again (the host retries it on the entity's next message), and a batch in
      flight puts the entity back in line when it lands.
    """
    hub, in_flight = sim.hub, sim._worker.in_flight
    found = {}
    for entity_id, record in hub.entities.items():
        queued = ", ".join(f"{request.operation!r} ({_sender(request)})" for request in record.queue)
        holder = record.locked_by
        if holder is not None:
            owner = hub.instances.get(holder.owner)
            if owner is None or owner.is_terminal or owner.execution_id != holder.owner_execution:
                state = ("is gone" if owner is None else f"ended {owner.runtime_status}"
                         if owner.is_terminal else "continued as new")
                why = f"{state} without releasing it"
            elif stuck.get(holder.owner):
                why = "is stuck with nothing to wake it, inside the section"
            else:
                continue                     # the holder can still go on and release it
            found[entity_id] = (
                f"critical section {holder.section!r} of instance {holder.owner!r} holds its lock "
                f"for good: the instance {why}; "
                + (f"{len(record.queue)} queued operation(s) wait behind it: {queued}"
                   if record.queue else "every operation sent to it will wait"))
            continue
        if not record.queue or entity_id in hub.entities_ready or in_flight.is_busy(entity_id):
            continue
        why = (f"its last batch was aborted and is retried only when another message arrives: "
               f"{_short(record.aborted, 300)}" if record.aborted
               else "nothing schedules a batch for it")
        found[entity_id] = (f"{len(record.queue)} queued operation(s) that no batch will ever "
                            f"run: {queued}; {why}")
    return found


def _sender(request: Any) -> str:
    if request.is_signal or not request.parent_instance_id:
        return "a signal"
    return f"a call from instance {request.parent_instance_id!r}"


def _unfinished(sim: Any) -> tuple[dict[str, str], dict[str, str]]:
    """For each unfinished instance: why nothing can wake it ('' if something can), what it waits for."""
    hub, worker = sim.hub, sim._worker
    stuck: dict[str, str] = {}
    waits: dict[str, str] = {}
    for instance in hub.instances.values():
        if instance.is_terminal:
            continue
        iid = instance.instance_id
        wakers = []
        timers = hub.pending_timers(iid)
        if timers:
            wakers.append(f"a timer at {timers[0].isoformat()}")
        if iid in hub.ready or instance.inbox:
            wakers.append("messages in its inbox")
        if any(work.instance_id == iid for work in hub.activities):
            wakers.append("a queued activity")
        if any(request.parent_instance_id == iid for record in hub.entities.values()
               if record.aborted is None for request in record.queue):
            wakers.append("a queued entity call")
        if worker.in_flight:
            wakers.append("work in flight")
        if any(child.parent and child.parent.instance_id == iid and not child.is_terminal
               for child in hub.instances.values()):
            wakers.append("a running sub-orchestration")
        events = ", ".join(repr(name) for name in instance.waiting_for)
        causes = worker.stall_causes(instance)
        if wakers and not causes:
            stuck[iid], waits[iid] = "", "waiting for " + " and ".join(wakers)
            continue
        why = "; ".join(causes) if causes else (
            f"it waits only for external event(s) {events}, which nothing sends" if events
            else "no timer, no queued work, nothing in flight")
        stuck[iid] = waits[iid] = why
    return stuck, waits


class _WorkSeen:
    """Names the unit of work each worker step ran: a new activity call, or an entity batch."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.activities = 0
        self.batches = self._batches()

    def _batches(self) -> dict[str, int]:
        return {eid: record.batches for eid, record in self.sim.hub.entities.items()}

    def step(self) -> str | None:
        # Batches committed, not queues drained: a request queued between steps (an HTTP
        # handler's signal) and run in the next one leaves the queue as it was.
        calls = self.sim.activity_calls()
        batches = self._batches()
        new_calls = calls[self.activities:]
        drained = [eid for eid, count in batches.items() if count > self.batches.get(eid, 0)]
        self.activities, self.batches = len(calls), batches
        if len(new_calls) == 1 and not drained:
            return f"activity {new_calls[0].name!r} of instance {new_calls[0].instance_id!r}"
        if len(drained) == 1 and not new_calls:
            return f"entity {drained[0]!r}"
        return None


@contextmanager
def _recording_http(sim: Any) -> Iterator[list[tuple[str, int, str]]]:
    """Record each HTTP request the scenario sends to ``sim``: (method path, status, body)."""
    answers: list[tuple[str, int, str]] = []

    def record(method: str, path: str, response: Any) -> None:
        answers.append((f"{method} {path}", response.status_code,
                        response.get_body().decode("utf-8", "replace")))

    sim.http_observers.append(record)
    try:
        yield answers
    finally:
        sim.http_observers.remove(record)


def _short(value: Any, limit: int = 120) -> str:
    """``value`` (JSON unless text) on one line, cut as the timeline cuts its previews."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return preview(" ".join(text.split()), limit)
