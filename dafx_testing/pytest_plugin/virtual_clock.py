"""The ``virtual_clock`` fixture: read and move the ``dafx`` simulator's time.

Time in a simulation is virtual: it stands still until the test moves it, and
moving it fires the timers that come due, in order, running the work they
start. The fixture is a small handle on that::

    def test_reminder_after_a_day(dafx, virtual_clock):
        iid = dafx.start_new("reminder", {"after_hours": 24})
        virtual_clock.advance(hours=23)
        assert dafx.get_status(iid).runtime_status == "Running"
        virtual_clock.advance(hours=1)
        assert dafx.get_status(iid).runtime_status == "Completed"
        assert virtual_clock.elapsed == timedelta(days=1)

Moving the clock is :meth:`Simulator.advance <dafx_testing.Simulator.advance>`;
the handle adds absolute moves and the time elapsed since the start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..simulator import Simulator

__all__ = ["ClockControl"]


class ClockControl:
    """The virtual clock of a simulator, as the ``virtual_clock`` fixture gives it.

    Args:
        simulator: returns the simulator whose clock this is (during a crash
            sweep, the one the current run drives).

    Attributes:
        start: the instant the simulation started at (tz-aware UTC).
    """

    def __init__(self, simulator: Callable[[], Simulator]) -> None:
        self._simulator = simulator
        self.start: datetime = simulator().now

    @property
    def now(self) -> datetime:
        """The virtual time (tz-aware UTC)."""
        return self._simulator().now

    @property
    def elapsed(self) -> timedelta:
        """Virtual time passed since :attr:`start`."""
        return self.now - self.start

    def advance(self, delta: timedelta | None = None, /, **units: float) -> datetime:
        """Move the clock forward, fire the timers that come due, run until idle.

        Give a ``timedelta`` or its keywords: ``advance(timedelta(hours=2))``
        or ``advance(hours=2)``. Returns the new virtual time.
        """
        if (delta is None) == (not units):
            raise TypeError("virtual_clock.advance takes a timedelta or timedelta keywords "
                            "(advance(timedelta(hours=2)) or advance(hours=2)), not both or "
                            "neither")
        delta = delta if delta is not None else timedelta(**units)
        if delta < timedelta(0):
            raise ValueError(f"virtual time only moves forward; cannot advance by {delta}")
        self._simulator().advance(delta)
        return self.now

    def move_to(self, moment: datetime | str) -> datetime:
        """Advance to an absolute instant (aware datetime, naive UTC, or ISO 8601 string)."""
        from ..core.clock import to_utc

        target = to_utc(moment)
        if target < self.now:
            raise ValueError(f"virtual time only moves forward; it is {self.now.isoformat()}, "
                             f"cannot move back to {target.isoformat()}")
        return self.advance(target - self.now)

    def __repr__(self) -> str:
        return f"<virtual_clock now={self.now.isoformat()} elapsed={self.elapsed}>"
