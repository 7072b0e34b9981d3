"""Where the fake model reads the time: the one wall-clock read of :mod:`dafx_testing.llm`.

A clock is any callable returning a timezone-aware ``datetime``. Pass the simulator's virtual
clock (``clock=lambda: sim.now``) and every ``created`` timestamp and token expiry follows it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["Clock", "epoch_seconds", "wall_clock"]

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The real time, UTC. The only place this package reads the wall clock."""
    return datetime.now(timezone.utc)


def epoch_seconds(clock: Clock) -> int:
    """Whole seconds since 1970 for ``clock()``, as the OpenAI wire's ``created`` fields carry it.

    Raises:
        ValueError: if the clock returns a naive datetime (its instant would be ambiguous).
    """
    now = clock()
    if now.tzinfo is None:
        raise ValueError(f"the clock returned a naive datetime {now!r}; return a timezone-aware one (UTC)")
    return int(now.timestamp())
