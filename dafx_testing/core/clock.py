"""The virtual clock: the only notion of "now" inside a simulation.

Orchestrators see time only through ``OrchestratorStarted`` timestamps, which the
simulator takes from this clock; timers fire when the clock reaches them. While
the simulator does work, :meth:`VirtualClock.bound` also points
``datetime.now()``/``time.time()`` at the virtual time (freezegun's fakes, patched in
by :mod:`dafx_testing.core.time_patch` at a cost that does not grow with the loaded
modules), so activity code that reads the wall clock sees the same instant the
orchestration does. Outside a bound block the wall clock is the real one. Nothing
else in dafx-testing reads the real clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from .time_patch import Frozen, freeze, unfreeze

DEFAULT_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
"""The instant every simulation starts at unless told otherwise."""


def to_utc(moment: datetime | str) -> datetime:
    """Accept an aware datetime, a naive one (taken as UTC) or an ISO string."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if not isinstance(moment, datetime):
        raise TypeError(
            f"expected a datetime or an ISO-8601 string for the clock, got {type(moment).__name__}"
        )
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class VirtualClock:
    """A clock that moves only when told to.

    Args:
        start: the first instant (aware datetime, naive UTC, or ISO string);
            defaults to :data:`DEFAULT_START`.
    """

    def __init__(self, start: datetime | str | None = None) -> None:
        self._now = to_utc(start) if start is not None else DEFAULT_START
        self._frozen: Frozen | None = None
        self._depth = 0

    @property
    def now(self) -> datetime:
        """The current virtual instant (tz-aware UTC)."""
        return self._now

    def move_to(self, moment: datetime) -> None:
        """Move forward to ``moment``; the clock never goes back."""
        moment = to_utc(moment)
        if moment < self._now:
            raise ValueError(
                f"the virtual clock cannot go back from {self._now.isoformat()} to "
                f"{moment.isoformat()}"
            )
        self._now = moment
        if self._frozen is not None:
            self._frozen.move_to(moment)

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new instant."""
        if delta < timedelta(0):
            raise ValueError(f"cannot advance the clock by a negative duration ({delta})")
        self.move_to(self._now + delta)
        return self._now

    @contextlib.contextmanager
    def working(self) -> Iterator[WorkTime]:
        """A unit of work (an activity, an entity batch) that may take time of its own.

        The clock stays put while the work runs: orchestrations, timers and the store
        see the work's result land later, when the clock reaches it. The code doing
        the work, though, reads the time it has taken so far (after ``time.sleep(5)``,
        ``datetime.now()`` is 5 seconds later), through the yielded :class:`WorkTime`.
        """
        work = WorkTime(self)
        try:
            yield work
        finally:
            if self._frozen is not None and work.seconds:
                self._frozen.move_to(self._now)

    @contextlib.contextmanager
    def bound(self) -> Iterator[None]:
        """Make ``datetime.now()``/``time.time()`` return virtual time inside the block.

        Re-entrant: nested blocks share one binding. Binding costs the same
        however many modules are loaded (see :mod:`dafx_testing.core.time_patch`):
        only modules imported since the last binding are read. Blocks of
        other clocks (and ``freezegun.freeze_time``) nest with it: the
        innermost open one is what the wall clock reads. asyncio keeps real
        time so async activities and HTTP handlers still run their event loops.
        """
        if self._depth == 0:
            self._frozen = freeze(self._now)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                frozen, self._frozen = self._frozen, None
                if frozen is not None:
                    unfreeze(frozen)


class WorkTime:
    """The time the unit of work running now has taken (see :meth:`VirtualClock.working`)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self.seconds = 0.0

    def now(self) -> datetime:
        """The instant the work's code lives at: the clock plus what the work has taken."""
        return self._clock.now + timedelta(seconds=self.seconds)

    def took(self, seconds: float) -> None:
        """The work has now taken ``seconds`` in all: what its code reads moves on with it."""
        self.seconds = seconds
        frozen = self._clock._frozen
        if frozen is not None:
            frozen.move_to(self.now())
