"""Exploring schedules with Hypothesis: crashes and completion orders, shrunk when they fail.

A sweep tries each commit point in turn; exploration instead lets Hypothesis
draw whole schedules (up to a few crashes at any points of the run, and a seed
that reorders which queued work runs next) and check the scenario still ends
as the crash-free, in-order baseline does. When a schedule breaks an
invariant, Hypothesis shrinks it to the fewest crashes that still break it and
the error prints that schedule as a line you can paste into a test.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from ..core.crash import CommitPoint, CrashPlan
from ..core.errors import DafxError
from .sweep import SweepReport, _compare, _run, declared_once

__all__ = ["Schedule", "ScheduleFailure", "schedules", "explore"]


@dataclass(frozen=True)
class Schedule:
    """Where to crash (commit point indices) and how to order queued work (None: FIFO)."""

    crash_at: tuple[int, ...] = ()
    shuffle_seed: int | None = None

    def reproduce(self) -> str:
        """The simulator arguments that replay this schedule."""
        parts = [f"crash_plan=CrashPlan(at={list(self.crash_at)})"] if self.crash_at else []
        if self.shuffle_seed is not None:
            parts.append(f"shuffle_seed={self.shuffle_seed}")
        return f"Simulator(app, {', '.join(parts)})" if parts else "Simulator(app)"


class ScheduleFailure(DafxError, AssertionError):
    """A schedule after which the scenario no longer matches its baseline."""


def schedules(points: Sequence[CommitPoint], max_crashes: int = 3,
              reorder: bool = True) -> st.SearchStrategy[Schedule]:
    """Schedules over a run's commit points: up to ``max_crashes`` crashes, maybe reordered.

    Crash indices shrink towards fewer and earlier points; the shuffle seed
    shrinks towards FIFO order.
    """
    indices = st.lists(st.integers(0, max(len(points) - 1, 0)), max_size=max_crashes,
                       unique=True).map(lambda found: tuple(sorted(found)))
    orders = st.one_of(st.none(), st.integers(0, 2**16)) if reorder else st.none()
    return st.builds(Schedule, crash_at=indices, shuffle_seed=orders)


def explore(
    make_simulator: Callable[[CrashPlan | None, int | None], Any],
    scenario: Callable[[Any], Any],
    *,
    max_examples: int = 50,
    max_crashes: int = 3,
    reorder: bool = True,
    idempotent: Collection[str] = (),
    effects: Callable[[], Any] | None = None,
    seed: int = 0,
    once: Collection[str] = (),
) -> int:
    """Check ``scenario`` under Hypothesis-drawn schedules; returns how many ran.

    Args:
        make_simulator: ``make(crash_plan, shuffle_seed)`` builds a fresh simulator.
        scenario: drives one run from a clean world (it runs many times).
        max_examples: schedules to try.
        max_crashes: most crashes in one schedule.
        reorder: also draw completion orders; turn off for orchestrations
            whose result legitimately depends on which task finishes first.
        idempotent, effects, once: as for :func:`~dafx_testing.checks.sweep.crash_sweep`
            (an activity re-run fails a schedule only when it is observable or declared ``once``).
        seed: makes the exploration reproducible.

    Raises:
        ScheduleFailure: the minimal failing schedule, with its reproduction line.
    """
    first = make_simulator(None, None)
    once_names = declared_once(first, idempotent, once)
    with first.clock.bound():     # the clock bound across runs, as in crash_sweep
        return _explore(first, make_simulator, scenario, max_examples=max_examples,
                        max_crashes=max_crashes, reorder=reorder, idempotent=idempotent,
                        effects=effects, seed=seed, once=once_names)


def _explore(first: Any, make_simulator: Callable[[CrashPlan | None, int | None], Any],
             scenario: Callable[[Any], Any], *, max_examples: int, max_crashes: int,
             reorder: bool, idempotent: Collection[str], effects: Callable[[], Any] | None,
             seed: int, once: Collection[str]) -> int:
    baseline, _, _ = _run(first, scenario, effects)
    if baseline.error is not None:
        raise baseline.error
    names = {name.lower() for name in idempotent}
    tried = [0]

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(schedules(baseline.points, max_crashes, reorder))
    def check(schedule: Schedule) -> None:
        tried[0] += 1
        plan = CrashPlan(at=schedule.crash_at) if schedule.crash_at else None
        run, _, _ = _run(make_simulator(plan, schedule.shuffle_seed), scenario, effects)
        report = SweepReport(points=baseline.points, seed=seed)
        _compare(baseline, run, names, report, once)
        if report.failures:
            problems = "\n".join(f"  - {p}" for f in report.failures for p in f.problems)
            raise ScheduleFailure(
                f"schedule {schedule} broke the scenario (exploration seed {seed}):\n{problems}\n"
                f"reproduce: {schedule.reproduce()}")

    check()
    return tried[0]
