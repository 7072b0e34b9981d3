"""An asyncio event loop on virtual time: an HTTP handler's sleeps cost no real time.

Handlers that poll (the Agent Framework's ``/agents/{name}/run``, the SDK's
``wait_for_completion_or_create_check_status_response``) sleep between reads
while the host keeps working. Under the simulator the host's work happens
only when asked, so the loop below turns every wait into that request: when
nothing is ready and the next timer is ``t`` seconds away, it calls
``jump(t)`` (the simulator moves its clock by ``t``, firing timers and doing
the work that came due) and the timer is then due. ``loop.time()`` reads the
virtual clock, so ``asyncio.sleep``, ``wait_for`` and every deadline built on
them run in virtual time without patching asyncio or the code under test.

Waiting on I/O or on another thread with no timer pending blocks for real,
as it must: only a timer says how long the wait may take.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["VirtualTimeLoop"]

_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


class _JumpingSelector(selectors.BaseSelector):
    """The loop's selector, except that waiting for a timer moves virtual time instead."""

    def __init__(self, inner: selectors.BaseSelector, jump: Callable[[timedelta], object]) -> None:
        self._inner = inner
        self._jump = jump

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout is not None and timeout <= 0:
            return ready
        if timeout is None:                  # no timer: only I/O or a thread can wake the loop
            return self._inner.select(None)
        # Round up to the clock's microsecond so the timer is due after the jump.
        self._jump(timedelta(microseconds=math.ceil(timeout * 1_000_000)))
        return []

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is ``now()`` and whose waits call ``jump``.

    Args:
        now: the virtual instant (an aware datetime).
        jump: moves the virtual clock forward by at least the given duration
            (and does whatever work became due meanwhile).
    """

    def __init__(self, now: Callable[[], datetime], jump: Callable[[timedelta], object]) -> None:
        super().__init__(_JumpingSelector(selectors.DefaultSelector(), jump))
        self._virtual_now = now
        # Timers within one tick of now are due; the virtual clock ticks in microseconds.
        self._clock_resolution = 1e-6

    def time(self) -> float:
        return (self._virtual_now() - _EPOCH).total_seconds()

