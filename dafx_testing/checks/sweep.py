"""Crash sweeps: try a crash at every commit point of a scenario and check nothing is lost.

:func:`crash_sweep` runs the scenario once without crashes (the baseline) and
records every commit point it passes. Then, for each point (or each pair of
points), it runs the scenario again with a crash injected there and compares
the recovered run with the baseline:

* every instance ends with the same runtime status and output;
* every entity ends with the same state;
* no external event and no scheduled task of the baseline is missing from history;
* the scenario itself did not raise;
* the outside world (``effects=``) looks the same;
* every agent conversation (an Agent Framework ``dafx-`` entity) holds each
  request and each reply exactly once.

At-least-once delivery re-runs activities by design, so an activity that ran
more often than in the baseline is a failure only when its re-run left an
observable difference (one of the above, or the plain containers the app's
modules hold globally) or when it is declared ``once=``. Otherwise it is
listed in :attr:`SweepReport.repeated_activities`: information, not a failure.
``idempotent=`` names are left out of that list.

The baseline itself must be sound: when it leaves an instance Failed or raises a
dafx error (a wait that timed out, a non-determinism check), the report says so
(:attr:`SweepReport.baseline_problems`, not ok) and no crash runs are made.

Model calls that a crash made the app repeat (an agent entity's batch ran, its
state was lost, the batch ran again) are counted against the baseline and
reported in :attr:`SweepReport.repeated_model_calls`: a cost, not a failure.

Cost model: a crash run is the baseline until its crash, then a recovery. Most
runs converge: after the retried work commits, the task hub's durable state
(and the ``effects`` snapshot, if given) equals the baseline's at the same point
of the scenario, so the rest is known to replay identically and the run stops
there; runs that never converge (the ones that find bugs) run to the end. The
prefix before the crash is paid in one of two ways (``isolation=``):

* ``fork`` (the default on Linux for baselines of :data:`FORK_MIN_STEPS` steps
  or more): one more run of the scenario forks a copy of
  the process at each point and the copy crashes there (:mod:`dafx_testing.checks.forks`).
  A sweep of P points costs two runs plus P forks and recoveries.
* ``rerun``: each crash run runs the scenario from the start, reusing the
  baseline's episode outcomes before its crash (no SDK replays there, but every
  activity and commit again). A sweep costs P prefixes plus P recoveries.

Pairs of points always rerun: the second crash is in the recovery of the first.

Pruning (``prune=True``, the default for sweeps of single points): most crash runs
would converge right after the step they crash in (a message given back, work lost
that changed nothing durable, only the worker's memory lost). One more run of the
scenario (the forking pass, or a pass of its own under ``rerun``) works out, at each
such point, the state key the crash run would have there; when it is one of the
baseline's, the point is decided without a crash run, with exactly the outcome the run
would have had (see :class:`_Decider`), and only the others are forked or rerun. A
sweep then costs two runs plus a fork (or a prefix) and a recovery per undecided
point; :attr:`SweepReport.decided` counts the decided ones.

Sharding: ``shard=(index, count)`` splits one sweep across ``count`` processes
(the pytest plugin does it across xdist workers). Every shard runs the same
baseline and takes the crash points whose position among the candidates is
``index`` modulo ``count``, with the pairs that start there; the shards' failures
and runs together are exactly those of the unsharded sweep.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import traceback
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TypeVar, overload

from ..agents.sessions import AGENT_ENTITY_PREFIX, conversation_problems
from ..core.crash import POINT_KINDS, CommitPoint, CrashPlan
from ..core.errors import (
    AppLoadError,
    ArgumentError,
    DafxError,
    HistoryFormatError,
    InstanceNotFoundError,
    NonDeterminismError,
    NonDeterministicCallError,
    SerializationError,
    UnknownFunctionError,
)
from ..core.history import Event, EventType
from ..core.timeline import timeline
from ..core.user_code import is_user_code, is_user_module, shown_path
from ..functions.app import ACTIVITY, ORCHESTRATOR
from ..functions.worker import PrefixCache, Worker
from .fake_scripts import FakeScripts
from .forks import ISOLATIONS, ForkPass, can_fork

__all__ = ["crash_sweep", "SweepReport", "SweepFailure", "DuplicatedEffect", "RepeatedModelCalls"]

Scenario = Callable[[Any], Any]
T = TypeVar("T")
SimulatorFactory = Callable[[CrashPlan | None], Any]

ISOLATION_WORDS = {"fork": "forked", "rerun": "rerun from the start"}
"""How :meth:`SweepReport.explain` says how the crash runs were isolated."""

FORK_MIN_STEPS = 150
"""Baselines of fewer worker steps rerun under ``isolation="auto"``: forking a
crash run costs a few milliseconds, more than rerunning a short prefix."""

MODEL_CALLS = "model calls"
"""The executions counter's entry for requests the active fake LLMs answered."""

USAGE_ERRORS = (AppLoadError, UnknownFunctionError, InstanceNotFoundError, HistoryFormatError,
                SerializationError, ArgumentError)
"""Dafx errors a baseline raises because the scenario is wrong (a name, an id, an
input), not the app: they propagate instead of becoming a broken baseline."""


@dataclass
class Observation:
    """What a finished run looks like, for comparing with the baseline."""

    statuses: dict[str, tuple[str, Any]]
    entities: dict[str, tuple[bool, Any]]
    histories: dict[str, list[Event]]
    executions: Counter
    entity_operations: Collection[str]
    effects: Any
    error: BaseException | None
    points: list[CommitPoint]
    crashed: list[CommitPoint]
    memory: tuple[tuple[str, str], ...] = ()
    """A hash per plain container the app's modules hold globally (see :func:`_module_state`)."""


@dataclass(frozen=True)
class DuplicatedEffect:
    """Work that ran more often than in the baseline after a crash.

    Attributes:
        idempotent: declared ``idempotent=`` (or an entity operation, whose lost
            batch left no state): never a failure, never listed.
        harmless: the re-run left no observable difference and the activity is
            not declared ``once=``: information, not a failure.
        once: declared ``once=``: the re-run is a failure in itself.
    """

    name: str
    expected: int
    actual: int
    crashes: tuple[CommitPoint, ...]
    idempotent: bool
    harmless: bool = False
    once: bool = False

    @property
    def failed(self) -> bool:
        """True when this re-run is one of its schedule's failures."""
        return not self.idempotent and not self.harmless

    def describe(self) -> str:
        """What happened, without a verdict: "x ran 2 times (baseline 1) after a crash at #3 ..."."""
        where = " and ".join(str(p) for p in self.crashes)
        return f"{self.name} ran {self.actual} times (baseline {self.expected}) after a crash at {where}"

    def __str__(self) -> str:
        if self.idempotent:
            advice = "declared idempotent"
        elif self.harmless:
            advice = "no observable difference (at-least-once delivery re-runs activities)"
        elif self.once:
            advice = ("declared once=, so running it again is a failure: make it safe to repeat "
                      "(e.g. skip work already done, by an idempotency key) and drop it from once=")
        else:
            advice = "make it idempotent"
        return f"{self.describe()}; {advice}"


@dataclass(frozen=True)
class RepeatedModelCalls:
    """A crash run that sent more model requests than the baseline (work lost and redone)."""

    expected: int
    actual: int
    crashes: tuple[CommitPoint, ...]

    def __str__(self) -> str:
        where = " and ".join(str(p) for p in self.crashes)
        return (f"{self.actual - self.expected} model call(s) repeated ({self.actual}, baseline "
                f"{self.expected}) after a crash at {where}: a cost, not a correctness problem")


@dataclass
class SweepFailure:
    """One crash schedule after which an invariant broke."""

    crashes: tuple[CommitPoint, ...]
    problems: list[str]
    timelines: dict[str, str] = field(repr=False, default_factory=dict)

    def explain(self) -> str:
        lines = [f"crash at {' and '.join(str(p) for p in self.crashes)}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        for instance_id, text in self.timelines.items():
            lines.append(f"  recovered history of {instance_id}:")
            lines += ["    " + line for line in text.splitlines()]
        lines.append(f"  reproduce: CrashPlan(at={[p.index for p in self.crashes]})")
        return "\n".join(lines)


@dataclass
class SweepReport:
    """The result of :func:`crash_sweep`.

    Attributes:
        points: every commit point of the baseline run.
        runs: crash runs, one per crash schedule tried; ``pruned`` of them stopped early
            on convergence, ``decided`` of those without being run at all (the run
            provably converges at once, see ``prune`` in :func:`crash_sweep`): ``ran``
            were made.
        failures: schedules after which an invariant broke.
        duplicated_effects: work that ran more often than in the baseline (each
            marked failed, harmless or idempotent; see :class:`DuplicatedEffect`).
        repeated_model_calls: crash runs that repeated model requests (cost only).
        baseline_problems: why the crash-free baseline run is broken (an
            instance Failed, a dafx error such as a wait that timed out or a
            non-determinism check); when there are any, no crash runs were made.
        shard: ``(index, count)`` when this report covers one shard of a sweep.
        isolation: how the crash runs were isolated: ``fork`` or ``rerun``.
    """

    points: list[CommitPoint]
    runs: int = 0
    pruned: int = 0
    decided: int = 0
    failures: list[SweepFailure] = field(default_factory=list)
    duplicated_effects: list[DuplicatedEffect] = field(default_factory=list)
    repeated_model_calls: list[RepeatedModelCalls] = field(default_factory=list)
    seed: int = 0
    shard: tuple[int, int] | None = None
    isolation: str = "rerun"
    baseline_problems: list[str] = field(default_factory=list)

    def add(self, outcome: _RunOutcome) -> None:
        """Count one crash run and take in what it found."""
        self.runs += 1
        self.pruned += outcome.pruned
        self.decided += outcome.decided
        self.failures += outcome.found.failures
        self.duplicated_effects += outcome.found.duplicated_effects
        self.repeated_model_calls += outcome.found.repeated_model_calls

    @property
    def ok(self) -> bool:
        """True when the baseline ran cleanly and no crash schedule broke an invariant."""
        return not self.failures and not self.baseline_problems

    @property
    def repeated_activities(self) -> list[DuplicatedEffect]:
        """Activity re-runs that left no observable difference: information, not failures."""
        return [d for d in self.duplicated_effects if d.harmless and not d.idempotent]

    @property
    def ran(self) -> int:
        """Crash runs actually made (the others were decided without a run)."""
        return self.runs - self.decided

    def counts(self) -> str:
        """What was tried: "17 commit points, 17 crash runs (15 converged early; forked), seed 0".

        With runs decided without running: "(12 decided without a run, 5 run: 3
        converged early; forked)".
        """
        early = f"{self.pruned} converged early"
        if self.decided:
            early = (f"{self.decided} decided without a run, {self.ran} run: "
                     f"{self.pruned - self.decided} converged early")
        return (f"{len(self.points)} commit points, {self.runs} crash runs ({early}; "
                f"{ISOLATION_WORDS[self.isolation]}), seed {self.seed}")

    def explain(self, max_failures: int = 5) -> str:
        """A readable account: what was tried, what broke, how to reproduce it.

        A broken baseline comes first (and alone: no crash runs were made). The
        first ``max_failures`` failing schedules are shown in full, the rest by
        their crash points; then the information lines (costs, harmless re-runs).
        """
        part = "" if self.shard is None else f" (shard {self.shard[0]} of {self.shard[1]})"
        if self.baseline_problems:
            return _explain_baseline(part, self.baseline_problems)
        head = (f"crash sweep{part}: {self.counts()}: "
                + ("all invariants held" if self.ok else f"{len(self.failures)} failing schedule(s)"))
        lines = [head]
        for failure in self.failures[:max_failures]:
            lines.append(failure.explain())
        rest = self.failures[max_failures:]
        if rest:
            lines.append(f"... and {len(rest)} more failing schedule(s), crashing at: "
                         + ", ".join(" and ".join(f"#{p.index}" for p in f.crashes) for f in rest))
        repeated = self.repeated_activities
        if repeated:
            names = sorted({d.name for d in repeated}, key=str.lower)
            lines.append(
                f"{len(repeated)} activity re-run(s) after a crash left no observable difference, "
                f"e.g. {repeated[0].describe()}: information, not a failure (at-least-once "
                f"delivery re-runs activities). If one must run only once, declare it: "
                f"once={names!r} (dafx sweep --once {' '.join(names)}); idempotent={names!r} "
                "drops this line")
        if self.repeated_model_calls:
            extra = sum(r.actual - r.expected for r in self.repeated_model_calls)
            lines.append(f"{len(self.repeated_model_calls)} crash run(s) repeated {extra} model "
                         f"call(s) in all, e.g. {self.repeated_model_calls[0]}")
        return "\n".join(lines)


def _explain_baseline(part: str, problems: list[str]) -> str:
    """The account of a sweep whose crash-free baseline run is broken."""
    lines = [f"crash sweep{part}: the crash-free baseline run is broken ({len(problems)} "
             "problem(s)), so no crash runs were made: each would be compared with it"]
    for problem in problems:
        first, *more = problem.splitlines()
        lines.append(f"baseline: {first}")
        lines += ["  " + line for line in more]
    lines.append("fix the baseline first: run the scenario on a plain Simulator (without "
                 "crash_sweep) until it passes, then sweep again")
    return "\n".join(lines)


class _Converged(BaseException):
    """Raised inside a crash run once its durable state matches the baseline's."""

    def __init__(self, step: int) -> None:
        self.step = step


@dataclass
class _Trace:
    """The baseline's state after each step, keyed for convergence checks."""

    keys: dict[tuple[Any, ...], int] = field(default_factory=dict)
    executions: list[Counter] = field(default_factory=list)


def crash_sweep(
    make_simulator: SimulatorFactory,
    scenario: Scenario,
    *,
    pairs: bool = False,
    idempotent: Collection[str] = (),
    effects: Callable[[], Any] | None = None,
    kinds: Collection[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    shard: tuple[int, int] | None = None,
    isolation: str = "auto",
    once: Collection[str] = (),
    prune: bool = True,
) -> SweepReport:
    """Crash ``scenario`` at every commit point and compare each recovery with the baseline.

    Args:
        make_simulator: builds a fresh simulator for a crash plan (None: no crashes).
        scenario: ``scenario(sim)`` drives one run; it must start from a clean
            world (reset your fakes in it) because it runs many times.
        pairs: also crash at every pair of points (the second after the first's recovery).
        idempotent: activity names whose re-runs are expected: they are left out
            of the information line on harmless re-runs. (A re-run is a failure
            only when it leaves an observable difference or is declared ``once``.)
        effects: returns a JSON-able snapshot of the outside world (a fake's
            ledger); it must match the baseline's after every crash.
        kinds: only crash points of these kinds (default: all).
        seed: recorded in the report and its reproduction hints.
        progress: called with (runs done, runs planned) after each run.
        shard: ``(index, count)``: crash only at the candidate points whose
            position is ``index`` modulo ``count`` (and the pairs starting there).
        isolation: ``fork`` each crash run off one more run of the scenario,
            ``rerun`` the scenario from the start for each, or ``auto`` (the
            default): fork on Linux in a single-threaded process when the
            baseline has :data:`FORK_MIN_STEPS` worker steps or more, else rerun. Use
            ``rerun`` when the app keeps state outside the process (files, a
            database): forks share it. See :mod:`dafx_testing.checks.forks`.
        once: activity names whose repeated execution is a failure even when it
            leaves no observable difference (it sends an email, say, that the
            sweep cannot see).
        prune: decide the crash runs that provably converge at once without running
            them (the default; the verdicts are the same either way, see
            :class:`_Decider`): a crash that only gives a message back, loses work that
            changed nothing durable, or loses only the worker's memory. One more run of
            the scenario (the forking pass, or one of its own under ``rerun``) decides
            them; the report counts them in ``decided``. Sweeps with ``pairs`` run
            every schedule.

    A baseline that raises an exception other than a dafx error, or a dafx
    error about the scenario itself (an unknown name or id, an input that is
    not JSON), propagates: that is a bug in the scenario.
    """
    check_shard(shard)
    check_isolation(isolation)           # before the baseline: bad input costs no run
    first = make_simulator(None)
    once_names = declared_once(first, idempotent, once, kinds)
    # The first simulator's clock stays bound for the whole sweep; each run's clock
    # stacks on it (core/time_patch.py), so scenario code reads virtual time throughout.
    from ..llm.fake import active_fakes

    # Each run starts from the fakes' scripts as the sweep found them (checks/fake_scripts.py).
    with first.clock.bound(), FakeScripts(active_fakes()) as scripts:
        return _sweep(first, make_simulator, scenario, scripts, pairs=pairs,
                      idempotent=idempotent, effects=effects, kinds=kinds, seed=seed,
                      progress=progress, shard=shard, isolation=isolation, once=once_names,
                      prune=prune)


def check_shard(shard: tuple[int, int] | None) -> None:
    """Refuse a ``shard=`` that is not ``(index, count)`` with ``0 <= index < count``."""
    if shard is None:
        return
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        raise ValueError(f"shard={shard!r}: expected (index, count) with 0 <= index < count, "
                         "e.g. (0, 2) and (1, 2) for a sweep split in two")


def shard_share(runs: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """The runs one shard makes: those whose position is ``index`` modulo ``count``.

    The shards of one sweep (``(0, n)`` ... ``(n - 1, n)``) take every run exactly once.
    """
    return list(runs) if shard is None else list(runs[shard[0]::shard[1]])


def check_isolation(isolation: str) -> None:
    """Refuse an ``isolation=`` other than those of :data:`~dafx_testing.checks.forks.ISOLATIONS`."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation={isolation!r}: expected one of {', '.join(ISOLATIONS)}")


def declared_once(sim: Any, idempotent: Collection[str], once: Collection[str],
                  kinds: Collection[str] | None = None) -> set[str]:
    """Check a sweep's names before any run; return the ``once`` names, lower-cased.

    Each ``once`` and ``idempotent`` name must be one of the app's activities
    (a typo would otherwise change nothing, silently), none may be in both, and
    each of ``kinds`` must be a crash point kind. The errors list what is valid.
    """
    if isinstance(once, str) or isinstance(idempotent, str):
        raise TypeError("once= and idempotent= take a list of activity names, e.g. "
                        "once=['send_receipt'], not a single string")
    if isinstance(kinds, str):
        raise TypeError(f"kinds= takes a list of crash point kinds, e.g. kinds=[{kinds!r}], not a "
                        "single string")
    for argument, names in (("once", once), ("idempotent", idempotent)):
        for name in names:
            try:
                sim.index.get(ACTIVITY, name)
            except UnknownFunctionError as exc:
                raise UnknownFunctionError(f"{argument}={list(names)!r}: {exc}") from None
    unknown = sorted(map(repr, set(kinds or ()) - set(POINT_KINDS)))
    if unknown:
        raise ArgumentError(f"kinds={list(kinds or ())!r}: unknown crash point kind(s) "
                            f"{', '.join(unknown)}; valid: {', '.join(POINT_KINDS)}")
    both = sorted({n.lower() for n in once} & {n.lower() for n in idempotent})
    if both:
        raise ValueError(f"{', '.join(both)} declared both idempotent= (its re-runs are expected) "
                         "and once= (a re-run is a failure); keep each activity in one of them")
    return {name.lower() for name in once}


def _sweep(first: Any, make_simulator: SimulatorFactory, scenario: Scenario,
           scripts: FakeScripts, *, pairs: bool, idempotent: Collection[str],
           effects: Callable[[], Any] | None, kinds: Collection[str] | None, seed: int,
           progress: Callable[[int, int], None] | None, shard: tuple[int, int] | None,
           isolation: str, once: set[str], prune: bool) -> SweepReport:
    trace = _Trace()
    cache = PrefixCache()
    first.attach_prefix_cache(cache)
    baseline, _, _ = _run(first, scenario, effects, record=trace)
    broken = baseline_problems(first, baseline)
    if broken:
        return SweepReport(points=baseline.points, seed=seed, shard=shard,
                           isolation="fork" if isolation == "fork" else "rerun",
                           baseline_problems=broken)
    cache.recording = False
    report = SweepReport(points=baseline.points, seed=seed, shard=shard,
                         isolation=chosen_isolation(isolation, len(trace.executions)))
    idempotent_names = {name.lower() for name in idempotent}
    candidates = shard_share([p for p in baseline.points if kinds is None or p.kind in kinds],
                             shard)
    schedules: list[list[int]] = [[p.index] for p in candidates]
    tally = _Tally(progress, planned=len(schedules), pairs=pairs)

    def outcome_of(sim: Any, result: _RunResult) -> _RunOutcome:
        return _outcome(sim, result, baseline, trace, idempotent_names, once, kinds)

    forked: dict[int, _RunOutcome] = {}
    decided: dict[int, _RunOutcome] = {}
    fork = report.isolation == "fork"
    prune = prune and not pairs and _Decider.applies(first)
    if schedules and (fork or prune):
        scripts.restore()
        forked, decided = _fork_pass(make_simulator(None), scenario, effects, trace, cache,
                                     baseline, [p.index for p in candidates], outcome_of,
                                     on_result=lambda _, outcome: tally.count(outcome),
                                     forking=fork, prune=prune)
    while schedules:
        indices = schedules.pop(0)
        single = len(indices) == 1
        outcome = decided.pop(indices[0], None) if single else None
        if outcome is not None:
            tally.count(outcome)
        elif single:
            outcome = forked.pop(indices[0], None)
        if outcome is None:
            sim = make_simulator(CrashPlan(at=indices))
            sim.attach_prefix_cache(cache)
            scripts.restore()
            outcome = outcome_of(sim, _run(sim, scenario, effects, converge_on=trace,
                                           crashes_expected=len(indices)))
            tally.count(outcome, single=single)
        report.add(outcome)
        if pairs and len(indices) == 1:
            schedules.extend([indices[0], j] for j in outcome.later)
    return report


def chosen_isolation(requested: str, baseline_steps: int) -> str:
    """The isolation a sweep uses: ``fork`` or ``rerun`` (see :mod:`dafx_testing.checks.forks`).

    ``auto`` forks only where forking is safe and the baseline is long enough
    for it to pay: a fork costs about as much as rerunning :data:`FORK_MIN_STEPS`
    / 2 worker steps (the average prefix), measured with the cheapest activities.
    """
    if requested == "rerun" or (requested == "auto" and baseline_steps < FORK_MIN_STEPS):
        return "rerun"
    reason = can_fork(explicit=requested == "fork")
    if reason is None:
        return "fork"
    if requested == "fork":
        raise RuntimeError(f"isolation='fork' is not possible here: {reason}; "
                           "use isolation='rerun' (or 'auto', which falls back to it)")
    return "rerun"


def _fork_pass(sim: Any, scenario: Scenario, effects: Callable[[], Any] | None, trace: _Trace,
               cache: PrefixCache, baseline: Observation, wanted: list[int],
               outcome_of: Callable[[Any, _RunResult], _RunOutcome],
               on_result: Callable[[int, Any], None], forking: bool = True,
               prune: bool = False) -> tuple[dict[int, _RunOutcome], dict[int, _RunOutcome]]:
    """Run the scenario once more, deciding (``prune``) or forking a crash run at each wanted point.

    Returns the forked runs' outcomes and the decided ones, by point; points
    missing from both (the pass left the baseline, a child failed, ``forking``
    is off) are left to reruns.
    """
    probe = _Probe.of(sim, effects)
    decider = _Decider(sim, probe, trace, baseline.points, wanted, outcome_of) if prune else None
    forks = ForkPass(baseline.points, wanted, on_result, forking=forking,
                     decide=decider.at_point if decider is not None else None)
    sim.attach_prefix_cache(cache)
    sim.crash_log.branch = forks.at_point

    def on_step() -> None:
        if forks.in_child or decider is None:
            return
        decider.after_step()
        forks.step_done()

    # The pass stops once the last wanted point is forked or decided; one that ends by
    # itself left the baseline.
    forked = forks.run_pass(
        lambda: _run(sim, scenario, effects, converge_on=trace, crashes_expected=1,
                     on_step=on_step, probe=probe),
        lambda result: outcome_of(sim, result))
    return forked, decider.outcomes if decider is not None else {}


_REQUEUED_TO = {"task ": "activities", "episode ": "ready", "batch ": "entities_ready"}
"""The task hub queue a crashed step gives its message back to, by the point's ``work``."""


class _Decider:
    """Decides crash runs without running them, in the process of a pass over the scenario.

    From its crash on, a crash run compares its state key (:meth:`_Probe.key`)
    with the baseline's after every worker step, and stops at the first match:
    it converged, and what it found is the baseline's end plus the work it did
    (:func:`_converged_observation`). For most points the pass can tell, before
    the crash, the key that run would have right after the step it crashes in,
    from the pass's own state there (the state a forked crash run starts from,
    and a rerun reaches). When that key is one of the baseline's, the crash run
    would stop right there, and its outcome is known exactly: the point is
    decided. Otherwise it is forked or rerun as before, so the verdicts do not
    change. What a crash does is :meth:`Worker._crash` and its callers:

    * ``dequeue``: the message goes back (``_put_back``, ``_requeue_batch``, or
      ``activities.append``) and nothing ran. The store after the crash is the
      state the step started from, if the queue the message came from held only
      it (giving it back then restores the order), nothing is in flight (a crash
      abandons in-flight work, giving its messages back too), and the step began
      where the previous one ended: the same driving call (so no code of the
      scenario ran between) and no timer due (the step fires due timers first).
      Its key is the one the pass took after the previous step.
    * ``episode`` / ``activity`` / ``entity``: the work ran (an activity's code, an
      entity batch; an episode comes from the prefix cache) and its result is
      dropped, the message given back as for ``dequeue``. Under the dequeue's
      conditions, if the store's fingerprint is still the one at the dequeue in
      the same step (the work changed nothing durable and put nothing in
      flight), the store after the crash is again the step's start; the memory,
      random state and outside world are the ones at hand, the work done
      includes this execution (a decided run can still report a re-run).
    * ``after-commit``: the result is committed and only the worker's memory is
      lost (its host replays and last states, which no key reads). With nothing
      in flight, the state after the step is the pass's own, taken at the end of
      the step (where the step's last code, an episode's checks, has run).
    * ``duplicate``: never: the message comes back and the activity runs again
      before the run can converge; only running it tells what that does.
    """

    def __init__(self, sim: Any, probe: _Probe, trace: _Trace, expected: list[CommitPoint],
                 wanted: Collection[int], outcome_of: Callable[[Any, _RunResult], _RunOutcome]
                 ) -> None:
        self.sim, self.probe, self.trace = sim, probe, trace
        self.expected, self.wanted, self.outcome_of = expected, set(wanted), outcome_of
        self.in_flight = sim._worker.in_flight
        self.steps = 0                    # worker steps the pass has done
        self.before: tuple[Any, ...] | None = None
        """The key after the last step, if the next step may start from that state."""
        self.taken: tuple[int, str, tuple[Any, ...]] | None = None
        """At a dequeue the crash would give back exactly: (step, store's fingerprint, start key)."""
        self.pending: list[int] = []     # after-commit points of this step, decided at its end
        self.outcomes: dict[int, _RunOutcome] = {}

    @staticmethod
    def applies(sim: Any) -> bool:
        """Whether the simulator's worker is the one whose crashes the rules above describe."""
        return type(getattr(sim, "_worker", None)) is Worker and hasattr(sim.hub, "_timers")

    def at_point(self, point: CommitPoint, wanted: bool) -> bool:
        """At each point of the pass: True when the wanted ``point`` needs no crash run."""
        kind = point.kind
        if kind == "dequeue":
            start, self.before, self.taken = self.before, None, None
            if start is None or not self._gives_back_the_start(point, start):
                return False
            following = point.index + 1
            if following in self.wanted and self._same_work(point, following):
                self.taken = (self.steps, self.sim.fingerprint(), start)
            return wanted and self._decide(point.index, start)
        if kind == "after-commit":
            if wanted and not self.in_flight:
                self.pending.append(point.index)
                return True
            return False
        if kind not in ("episode", "activity", "entity"):
            return False                                    # a duplicate delivery
        taken, self.taken = self.taken, None
        if not wanted or taken is None or taken[0] != self.steps:
            return False
        _, fingerprint, start = taken
        if self.sim.driving_calls != start[0] or self.sim.fingerprint() != fingerprint:
            return False
        return self._decide(point.index, self.probe.key(fingerprint=start[2]))

    def after_step(self) -> None:
        """At the end of each step of the pass: decide its after-commit points, take its key."""
        self.steps += 1
        pending, self.pending = self.pending, []
        self.before = None
        following = len(self.sim.crash_log.points)
        ahead = (following < len(self.expected) and self.expected[following].kind == "dequeue"
                 and (following in self.wanted or following + 1 in self.wanted))
        if not (pending or ahead):
            return
        key = self.probe.key()
        for index in pending:
            self._decide(index, key)
        timers = self.sim.hub._timers                       # a heap: the earliest first
        if ahead and not (timers and timers[0][0] <= self.sim.now):
            self.before = key

    def _gives_back_the_start(self, point: CommitPoint, start: tuple[Any, ...]) -> bool:
        """Whether a crash at this dequeue leaves the store as the step found it."""
        if self.sim.driving_calls != start[0] or self.in_flight:
            return False
        hub = self.sim.hub
        for prefix, queue in _REQUEUED_TO.items():
            if point.work.startswith(prefix):
                return not getattr(hub, queue)
        return not (hub.activities or hub.ready or hub.entities_ready)

    def _same_work(self, point: CommitPoint, index: int) -> bool:
        """Whether the point at ``index`` is the one where the dequeued work's result is lost."""
        if index >= len(self.expected):
            return False
        work = self.expected[index]
        return (work.kind in ("episode", "activity", "entity")
                and (work.name, work.target, work.work) == (point.name, point.target, point.work))

    def _decide(self, index: int, key: tuple[Any, ...]) -> bool:
        """Decide the crash run at ``index`` if its key after the crash is the baseline's."""
        step = self.trace.keys.get(key)
        if step is None:
            return False
        run = SimpleNamespace(commit_points=self.expected[:index + 1],
                              crashes=[self.expected[index]])
        outcome = self.outcome_of(run, (None, step, self.probe.executions()))
        outcome.decided = True
        self.outcomes[index] = outcome
        return True


@overload
def _run(sim: Any, scenario: Scenario, effects: Callable[[], Any] | None,
         record: _Trace | None = None, converge_on: None = None,
         crashes_expected: int = 0, on_step: Callable[[], None] | None = None,
         probe: _Probe | None = None) -> tuple[Observation, int, None]: ...


@overload
def _run(sim: Any, scenario: Scenario, effects: Callable[[], Any] | None,
         record: _Trace | None = None, *, converge_on: _Trace,
         crashes_expected: int = 0, on_step: Callable[[], None] | None = None,
         probe: _Probe | None = None) -> _RunResult: ...


def _run(sim: Any, scenario: Scenario, effects: Callable[[], Any] | None,
         record: _Trace | None = None, converge_on: _Trace | None = None,
         crashes_expected: int = 0, on_step: Callable[[], None] | None = None,
         probe: _Probe | None = None) -> _RunResult:
    """One run of the scenario: (observation, -1, None), or (None, step, work done) if it converged.

    ``on_step`` is called after each worker step (fault sweeps note which work called the model).
    ``probe``: the run's state keys and work counts, made beforehand (a pruning pass reads them).
    """
    steps = [0]
    probe = probe if probe is not None else _Probe.of(sim, effects)
    key, executions = probe.key, probe.executions

    def after_step() -> None:
        if record is not None:
            record.keys.setdefault(key(), steps[0])
            record.executions.append(executions())
        elif converge_on is not None and len(sim.crash_log.crashed) >= crashes_expected:
            step = converge_on.keys.get(key())
            if step is not None:
                raise _Converged(step)
        steps[0] += 1
        if on_step is not None:
            on_step()

    sim.after_step = after_step
    error = None
    try:
        scenario(sim)
    except _Converged as converged:
        return None, converged.step, executions()
    except Exception as exc:
        error = exc
    finally:
        sim.after_step = None
    return _observe(sim, effects, error, executions(), probe.memory()), -1, None


@dataclass
class _Probe:
    """What a run's convergence checks read: its state key and the work done so far."""

    sim: Any
    effects: Callable[[], Any] | None
    memory: Callable[[], tuple[tuple[str, str], ...]]
    calls_before: int

    @classmethod
    def of(cls, sim: Any, effects: Callable[[], Any] | None) -> _Probe:
        return cls(sim, effects, _module_state(sim), _model_calls())

    def key(self, fingerprint: str | None = None) -> tuple[Any, ...]:
        """The state a crash run converges on: driving call, clock, store, memory, the world.

        ``fingerprint``: the store's, when known to differ from the one at hand.
        """
        # The random module's state too: an activity that draws from it behaves differently
        # after a crash made another draw first, though the task hub looks the same.
        sim, effects = self.sim, self.effects
        return (sim.driving_calls, sim.now,
                sim.fingerprint() if fingerprint is None else fingerprint, self.memory(),
                hash(random.getstate()),
                json.dumps(effects(), sort_keys=True, default=str) if effects else None)

    def executions(self) -> Counter:
        """Activity executions and entity operations by name, and the model calls, so far."""
        counts = _executions(self.sim)
        counts[MODEL_CALLS] = _model_calls() - self.calls_before
        return counts


def _module_state(sim: Any) -> Callable[[], tuple[tuple[str, str], ...]]:
    """Fingerprint the plain containers (dicts, lists, sets) the app's modules hold globally.

    That memory is not in the task hub, so a run whose hub matches the
    baseline's may still behave differently if a module global differs (state
    wrongly kept across episodes, or an in-process ledger); such runs must not
    count as converged, and an activity re-run that changed one is observable.
    Only the app's own modules count (:mod:`dafx_testing.core.user_code`). The fingerprint is a hash
    per global (``"LEDGER in app/orders.py"``), so a difference can be named.
    """
    modules = {inspect.getmodule(info.user_function) for info in sim.index.functions}
    containers = [(f"{name} in {shown_path(module.__file__ or module.__name__)}", value)
                  for module in modules if module is not None and is_user_module(module)
                  for name, value in sorted(vars(module).items())
                  if isinstance(value, (dict, list, set, frozenset, deque, tuple))
                  and not name.startswith("__")]
    containers.sort(key=lambda item: item[0])

    def fingerprint() -> tuple[tuple[str, str], ...]:
        return tuple((name, hashlib.sha1(repr(_stable(value)).encode()).hexdigest())
                     for name, value in containers)

    return fingerprint


def _stable(value: Any) -> Any:
    """A repr-friendly form whose order does not depend on hashing (sets are sorted)."""
    if isinstance(value, (set, frozenset)):
        return sorted(repr(v) for v in value)
    if isinstance(value, dict):
        return [(repr(k), _stable(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple, deque)):
        return [_stable(v) for v in value]
    return repr(value)


def _observe(sim: Any, effects: Callable[[], Any] | None, error: BaseException | None,
             executions: Counter, memory: tuple[tuple[str, str], ...] = ()) -> Observation:
    hub = sim.hub
    return Observation(
        statuses={i.instance_id: (i.runtime_status, i.output) for i in hub.instances.values()},
        entities={e: (r.exists, r.state) for e, r in hub.entities.items()},
        histories={i.instance_id: list(i.history) for i in hub.instances.values()},
        executions=executions,
        entity_operations=set(sim.entity_operations),
        effects=effects() if effects else None,
        error=error,
        points=sim.commit_points,
        crashed=sim.crashes,
        memory=memory,
    )


def _model_calls() -> int:
    """Requests answered so far by the fake LLMs in use (none: 0)."""
    from ..llm.fake import active_fakes

    return sum(len(fake.requests) for fake in active_fakes())


def _executions(sim: Any) -> Counter:
    counts = Counter(call.name for call in sim.activity_calls())
    counts.update(sim.entity_operations)
    return counts


def _converged_observation(sim: Any, baseline: Observation, trace: _Trace,
                           step: int, so_far: Counter) -> Observation:
    """A converged run ends as the baseline does, plus the extra work done before converging."""
    at_step = trace.executions[step]
    executions = baseline.executions + so_far
    executions.subtract(at_step)
    return Observation(baseline.statuses, baseline.entities, baseline.histories,
                       +executions, baseline.entity_operations, baseline.effects, None,
                       sim.commit_points, sim.crashes, baseline.memory)


_RunResult = tuple[Observation, int, None] | tuple[None, int, Counter]
"""``(observation, -1, None)``, or ``(None, step, work done)`` for a run that converged."""


@dataclass
class _RunOutcome:
    """What one crash run adds to the report (a forked run sends it to the sweep)."""

    pruned: bool
    found: SweepReport
    later: list[int]
    """The candidate points after the run's first crash, where pairs add a second."""
    decided: bool = False
    """Decided without running it (see :class:`_Decider`)."""


def _outcome(sim: Any, result: _RunResult, baseline: Observation, trace: _Trace,
             idempotent: Collection[str], once: Collection[str],
             kinds: Collection[str] | None) -> _RunOutcome:
    pruned = result[0] is None
    if result[0] is None:               # converged and identical from there on
        _, converged_at, so_far = result
        observation = _converged_observation(sim, baseline, trace, converged_at, so_far)
    else:
        observation = result[0]
    found = SweepReport(points=[])
    _compare(baseline, observation, idempotent, found, once)
    first = observation.crashed[0].index if observation.crashed else len(observation.points)
    later = [p.index for p in observation.points[first + 1:] if kinds is None or p.kind in kinds]
    return _RunOutcome(pruned, found, later)


@dataclass
class _Tally:
    """Counts finished crash runs for the progress callback (pairs add to the plan)."""

    progress: Callable[[int, int], None] | None
    planned: int
    pairs: bool
    done: int = 0

    def count(self, outcome: _RunOutcome, single: bool = True) -> None:
        if self.pairs and single:
            self.planned += len(outcome.later)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.planned)


def _compare(baseline: Observation, run: Observation, idempotent: Collection[str],
             report: SweepReport, once: Collection[str] = ()) -> None:
    """Add the run's failure (if any), re-runs and repeated model calls to ``report``.

    ``idempotent`` and ``once`` are lower-case activity names. A re-run that is
    neither declared nor accompanied by an observable difference is harmless.
    """
    crashes = tuple(run.crashed)
    problems: list[str] = []
    if run.error is not None:
        problems.append(f"the scenario raised {type(run.error).__name__}: {run.error}")
    for instance_id, expected in baseline.statuses.items():
        actual = run.statuses.get(instance_id)
        if actual != expected:
            problems.append(f"instance {instance_id!r}: expected {expected[0]} with output "
                            f"{expected[1]}, got " + (f"{actual[0]} with output {actual[1]}"
                                                      if actual else "no such instance"))
    for entity_id, expected_entity in baseline.entities.items():
        actual_entity = run.entities.get(entity_id)
        if actual_entity != expected_entity:
            problems.append(f"entity {entity_id}: expected state {expected_entity[1]}, got "
                            f"{actual_entity[1] if actual_entity else 'nothing'}")
    # A converged run has the baseline's histories by construction: nothing to compare.
    compared = {} if run.histories is baseline.histories else baseline.histories
    for instance_id, events in compared.items():
        missing = _essential(events) - _essential(run.histories.get(instance_id, []))
        if missing:
            problems.append(f"instance {instance_id!r} lost history: "
                            + ", ".join(sorted(missing)))
    if baseline.effects != run.effects:
        problems.append(f"the outside world differs: expected {baseline.effects}, got {run.effects}")
    for entity_id, (exists, state) in run.entities.items():
        if entity_id.startswith("@" + AGENT_ENTITY_PREFIX) and exists:
            problems += [f"agent session {entity_id}: {p}" for p in conversation_problems(state)]
    reruns: list[tuple[str, int, int, bool]] = []
    for name, count in sorted(run.executions.items()):
        expected_count = baseline.executions.get(name, 0)
        if name == MODEL_CALLS:
            if count > expected_count:
                report.repeated_model_calls.append(RepeatedModelCalls(expected_count, count, crashes))
            continue
        if count > expected_count:
            # An entity batch lost in a crash leaves no state behind: its rerun is safe.
            tolerated = name.lower() in idempotent or name in run.entity_operations
            reruns.append((name, expected_count, count, tolerated))
    changed = [name for name, value in dict(run.memory).items()
               if dict(baseline.memory).get(name, value) != value]
    if changed and any(not tolerated for *_, tolerated in reruns):
        problems.append("module-level state differs from the baseline's after the re-run: "
                        f"{', '.join(changed)} (process memory, which no crash resets)")
    observable = bool(problems)
    for name, expected_count, count, tolerated in reruns:
        strict = name.lower() in once
        duplicate = DuplicatedEffect(name, expected_count, count, crashes, tolerated,
                                     harmless=not (tolerated or strict or observable),
                                     once=strict)
        report.duplicated_effects.append(duplicate)
        if duplicate.failed:
            problems.append(str(duplicate))
    if problems:
        # The instances the crash changed; a run that changed none shows them all.
        altered = {i: h for i, h in run.histories.items()
                   if (run.statuses.get(i), h) != (baseline.statuses.get(i), baseline.histories.get(i))}
        report.failures.append(SweepFailure(
            crashes, problems,
            {i: timeline(h, max_lines=40) for i, h in (altered or run.histories).items()}))


def baseline_problems(sim: Any, baseline: Observation) -> list[str]:
    """Why the crash-free baseline run cannot be swept, naming the orchestrator and the place.

    An instance left Failed (a sub-orchestration only when its parent did not
    handle the failure), or a dafx error the scenario raised (a wait that timed
    out, a non-determinism check). Any other exception the scenario raised is a
    bug in the scenario and is raised again here.
    """
    error = baseline.error
    if error is not None and (not isinstance(error, DafxError) or isinstance(error, USAGE_ERRORS)):
        raise error
    problems = []
    diverged = None
    if error is not None:
        text = f"the scenario raised {type(error).__name__}"
        if isinstance(error, NonDeterminismError):      # its message names the diverging place
            diverged = error.instance_id
            instance = sim.hub.instances.get(diverged)
            if instance is not None:
                text += f" in orchestrator {instance.name!r}"
        elif isinstance(error, NonDeterministicCallError):   # its message names the call's line
            text += f" in orchestrator {error.function!r}"
        else:
            place = _user_place(error)
            text += f" at {place}" if place else ""
        problems.append(f"{text}: {error}")
    instances = sim.hub.instances
    for instance in instances.values():
        parent = instances.get(instance.parent.instance_id) if instance.parent else None
        handled = parent is not None and parent.runtime_status != "Failed"
        if instance.runtime_status != "Failed" or handled or instance.instance_id == diverged:
            continue
        message = str(instance.output or "no failure message").split("\n")[0].strip()
        where = _defined_at(sim, instance.name)
        text = (f"instance {instance.instance_id!r} (orchestrator {instance.name!r}"
                f"{f' at {where}' if where else ''}) ended Failed: {message}")
        raised = [call for call in sim.activity_calls()
                  if call.instance_id == instance.instance_id and call.error is not None]
        place = _user_place(raised[-1].error) if raised else None
        if place:
            text += f" (activity {raised[-1].name!r} raised at {place})"
        problems.append(text)
    return problems


def _user_place(error: BaseException) -> str | None:
    """``file:line`` of the innermost frame of the user's code in ``error``'s traceback."""
    place = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        if is_user_code(frame):
            place = f"{shown_path(frame.f_code.co_filename)}:{line}"
    return place


def _defined_at(sim: Any, orchestrator: str) -> str | None:
    """``file:line`` where the orchestrator function is defined, if the app defines it."""
    info = sim.index.find(ORCHESTRATOR, orchestrator)
    code = getattr(inspect.unwrap(info.user_function), "__code__", None) if info else None
    if code is None:
        return None
    line = code.co_firstlineno              # the first decorator's line: find the def after it
    try:
        source, start = inspect.getsourcelines(code)
        line = start + next(n for n, text in enumerate(source)
                            if text.lstrip().startswith(("def ", "async def ")))
    except (OSError, TypeError, StopIteration):
        pass
    return f"{shown_path(code.co_filename)}:{line}"


def _essential(events: list[Event]) -> set:
    """What must never disappear from history: scheduled work and external events."""
    found = set()
    for event in events:
        kind = event["EventType"]
        if kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
            found.add(f"{EventType(kind).name} #{event['EventId']} {event.get('Name')}")
        elif kind == EventType.EventRaised and not _is_entity_response(event):
            found.add(f"EventRaised {event.get('Name')} {event.get('Input')}")
    return found


def _is_entity_response(event: Event) -> bool:
    name = str(event.get("Name", ""))
    return len(name) == 36 and name.count("-") == 4
