"""Crash points and crash plans: where a worker can die, and which deaths to inject.

The task hub is the durable store; everything else is worker memory. Every unit
of work the worker does ends in a commit to the hub, and each side of a commit
is a point where a real Functions worker can die:

* ``dequeue``: a message was taken but nothing ran; it is delivered again.
* ``episode`` / ``activity`` / ``entity``: the work ran (an activity's side
  effects happened) but its result was not committed; the work runs again.
* ``after-commit``: nothing is lost, but the worker's memory is dropped.
* ``duplicate``: an activity's message was delivered a second time after its
  result was committed (at-least-once delivery), so it runs twice.

A :class:`CrashPlan` says which of these points crash; the simulator recovers
from each crash the way a restarted worker does, from the store alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

__all__ = ["CommitPoint", "CrashPlan", "POINT_KINDS"]

POINT_KINDS = ("dequeue", "episode", "activity", "entity", "after-commit", "duplicate")


@dataclass(frozen=True)
class CommitPoint:
    """One place in a run where a crash can be injected.

    Attributes:
        index: the point's position among all points of the run (0-based); the
            same scenario and seed give the same points in the same order.
        kind: one of :data:`POINT_KINDS`.
        name: the orchestrator, activity or entity the work belongs to.
        target: the instance id (or entity id ``@name@key``) the work is for.
        work: what distinguishes this unit of work within its target (the
            activity's sequence number, the episode number, the batch number).
    """

    index: int
    kind: str
    name: str
    target: str
    work: str

    def __str__(self) -> str:
        return f"#{self.index} {self.kind} {self.name} ({self.target} {self.work})"


@dataclass
class CrashPlan:
    """Which commit points crash.

    Args:
        at: crash at these point indices (see :class:`CommitPoint`).
        kinds: crash points of these kinds (all kinds when only ``functions`` is given).
        functions: crash only points of these function names (case-insensitive).
        rate: with ``kinds``/``functions``, crash each matching point with this
            probability, drawn from ``seed``; 0 means every matching point.
        times: crash at most this many times in the run.
        seed: seeds ``rate``.

    A unit of work that just crashed is never crashed again on its retry, so
    every plan lets a run finish.

    Example::

        CrashPlan(kinds={"activity"}, functions={"publish_content"})   # each publish crashes once
        CrashPlan(rate=0.2, kinds=POINT_KINDS, seed=7)                 # seeded chaos
        CrashPlan(at=[12])                                             # exactly one point
    """

    at: Collection[int] = ()
    kinds: Collection[str] | None = None
    functions: Collection[str] | None = None
    rate: float = 0.0
    times: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.kinds or ()) - set(POINT_KINDS)
        if unknown:
            raise ValueError(f"unknown crash point kind(s) {sorted(unknown)}; valid: "
                             f"{', '.join(POINT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        self._rng = random.Random(self.seed)
        self._functions = {f.lower() for f in self.functions} if self.functions else None

    def matches(self, point: CommitPoint) -> bool:
        """Whether the plan asks for a crash at ``point`` (before the retry rule)."""
        if point.index in self.at:
            return True
        if self.kinds is None and self._functions is None:
            return False
        if self.kinds is not None and point.kind not in self.kinds:
            return False
        if self.kinds is None and point.kind in ("after-commit", "duplicate"):
            return False   # ``functions=`` alone means: lose the work's result
        if self._functions is not None and point.name.lower() not in self._functions:
            return False
        return self.rate == 0.0 or self._rng.random() < self.rate


@dataclass
class CrashLog:
    """The points a run went through and the crashes injected, decided by a plan."""

    plan: CrashPlan | None = None
    branch: Callable[[CommitPoint], bool] | None = None
    """A crash sweep's fork pass (see :mod:`dafx_testing.checks.forks`): True where this
    process is the crash run forked at the point."""
    points: list[CommitPoint] = field(default_factory=list)
    crashed: list[CommitPoint] = field(default_factory=list)
    _just_crashed: set[tuple[str, str, str, str]] = field(default_factory=set)

    def reach(self, kind: str, name: str, target: str, work: str) -> bool:
        """Record reaching a point; True if the worker dies there."""
        point = CommitPoint(len(self.points), kind, name, target, work)
        self.points.append(point)
        key = (kind, name, target, work)
        if key in self._just_crashed:      # the retry of work that just crashed goes through
            self._just_crashed.discard(key)
            return False
        if not (self.branch is not None and self.branch(point)) and not self._planned(point):
            return False
        self.crashed.append(point)
        self._just_crashed.add(key)
        return True

    def _planned(self, point: CommitPoint) -> bool:
        plan = self.plan
        if plan is None or not plan.matches(point):
            return False
        return plan.times is None or len(self.crashed) < plan.times
