"""Work that has run but is still in flight: a slow model call holds its commit back.

An activity or entity batch that calls a model with latency (``fake.latency(45)``, see
:mod:`dafx_testing.core.latency`) has done its work, side effects included, but on a real
host its result would reach the store only when the call returns. The worker parks such a
result here until that virtual instant; :meth:`InFlight.next_due` is a moment the simulator
must stop at, like a timer. Parked results are worker memory: a crash abandons every one of
them and their messages go back to their queues, so the work runs again after recovery.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["InFlight", "Parked"]


@dataclass(order=True)
class Parked:
    """One uncommitted result: ``commit`` stores it when due; ``abandon`` returns its message."""

    due: datetime
    seq: int
    label: str = field(compare=False)
    commit: Callable[[], None] = field(compare=False, repr=False)
    abandon: Callable[[], None] = field(compare=False, repr=False)
    busy: str | None = field(default=None, compare=False)   # the entity it keeps locked


class InFlight:
    """The worker's parked results, earliest first."""

    def __init__(self) -> None:
        self._parked: list[Parked] = []
        self._seq = 0

    def __bool__(self) -> bool:
        return bool(self._parked)

    def park(self, due: datetime, label: str, commit: Callable[[], None],
             abandon: Callable[[], None], busy: str | None = None) -> None:
        heapq.heappush(self._parked, Parked(due, self._seq, label, commit, abandon, busy))
        self._seq += 1

    def next_due(self) -> datetime | None:
        return self._parked[0].due if self._parked else None

    def pop_due(self, now: datetime) -> Parked | None:
        """The earliest result due at ``now``, removed; None when none is."""
        if self._parked and self._parked[0].due <= now:
            return heapq.heappop(self._parked)
        return None

    def is_busy(self, entity_id: str) -> bool:
        """Whether an entity's batch is still running (the entity stays locked meanwhile)."""
        return any(parked.busy == entity_id for parked in self._parked)

    def abandon_all(self) -> None:
        """The worker died: drop every parked result and give its message back."""
        parked, self._parked = sorted(self._parked), []
        for item in parked:
            item.abandon()

    def fingerprint(self) -> str:
        """A hash of what is in flight and when it lands (crash sweeps compare states with it)."""
        text = repr([(p.due.isoformat(), p.label) for p in sorted(self._parked)])
        return hashlib.sha1(text.encode()).hexdigest()
