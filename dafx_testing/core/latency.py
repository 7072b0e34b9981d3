"""How long outside work takes: the seam between slow things and whoever owns time.

A script can make model answers slow (``fake.latency(45)``) and activity code can sleep
(``time.sleep(5)``, see :mod:`dafx_testing.core.sleeps`). Neither decides what those seconds
mean; each reports them to the innermost open :func:`metering` block. The simulator opens one
around each activity and entity batch it runs, moves the time that unit's code reads as it is
charged, and holds the unit's commit back by what was charged, in virtual time (see
:mod:`dafx_testing.core.in_flight`). With no meter open (the fake used on its own) the seconds
pass for real, as a slow service's would: the caller waits them out.

The meters are process-wide, not per thread: the Agent Framework runs an agent's coroutine
on its own event-loop thread while the worker thread waits for it, and that call must still
be charged to the worker's unit of work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["Meter", "charge", "metering"]

_meters: list[Meter] = []
_lock = threading.Lock()


@dataclass
class Meter:
    """The time charged to one unit of work, in seconds; ``on_charge`` hears each new total."""

    seconds: float = 0.0
    on_charge: Callable[[float], None] | None = field(default=None, repr=False)


@contextmanager
def metering(on_charge: Callable[[float], None] | None = None) -> Iterator[Meter]:
    """Charge the time of every slow call made inside the block to the yielded meter."""
    meter = Meter(on_charge=on_charge)
    with _lock:
        _meters.append(meter)
    try:
        yield meter
    finally:
        with _lock:
            _meters.remove(meter)


def charge(seconds: float) -> float:
    """Charge ``seconds`` to the open meter; returns what must pass for real instead."""
    with _lock:
        if not _meters or seconds <= 0:
            return max(seconds, 0.0)
        meter = _meters[-1]
        meter.seconds += seconds
        total = meter.seconds
    if meter.on_charge is not None:
        meter.on_charge(total)
    return 0.0
