"""How long a model call takes: the seam between the fake model and whoever owns time.

A script can make answers slow (``fake.latency(45)``). The fake does not decide what those
seconds mean; it reports them to the innermost open :func:`metering` block. The simulator
opens one around each activity and entity batch it runs and holds that unit's commit back by
what was charged, in virtual time (see :mod:`dafx_testing.core.in_flight`). With no meter open
(the fake used on its own) the seconds pass for real, as a slow service's would: the
interception layer waits them out, with ``asyncio.sleep`` on an async client.

The meters are process-wide, not per thread: the Agent Framework runs an agent's coroutine
on its own event-loop thread while the worker thread waits for it, and that call must still
be charged to the worker's unit of work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Meter", "charge", "metering"]

_meters: list[Meter] = []
_lock = threading.Lock()


@dataclass
class Meter:
    """The model time charged to one unit of work, in seconds."""

    seconds: float = 0.0


@contextmanager
def metering() -> Iterator[Meter]:
    """Charge the model time of every call made inside the block to the yielded meter."""
    meter = Meter()
    with _lock:
        _meters.append(meter)
    try:
        yield meter
    finally:
        with _lock:
            _meters.remove(meter)


def charge(seconds: float) -> float:
    """Charge ``seconds`` of model time to the open meter; returns what must pass for real instead."""
    with _lock:
        if not _meters or seconds <= 0:
            return max(seconds, 0.0)
        _meters[-1].seconds += seconds
        return 0.0
