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

Real I/O keeps real time. Skipping ``t`` is safe only when nothing but timers
can wake the loop; a handler reading a real socket under a timeout
(``redis.asyncio`` reading a stream, 5 s by default) would otherwise time out
at once, its reply still on the wire. So before skipping, the loop looks at
the file descriptors registered with it, leaving out its own self-pipe:

- *awaited I/O*: a descriptor registered for writing (a connect or a buffered
  send under way), one registered for reading by anything but a transport
  (``sock_recv``, ``sock_accept``, ``add_reader``: code waits on it), and a
  transport whose reader waits for data (an asyncio stream with a pending
  ``read``/``readline``; a protocol the loop cannot see into counts as
  waiting, so its sleeps run in real time rather than skip a reply);
- *idle*: an open stream nobody is reading (a pooled connection between
  commands) and a server's listening socket.

With awaited I/O the loop waits for the OS selector for real, up to the
timer's delay, and only a timer whose whole delay has passed in real time
(counting the real time already spent waiting for that I/O, so a trickle of
events cannot hold a deadline back forever) is skipped to: while real I/O is
awaited, virtual time never runs ahead of real time, and a timeout around a
read fires after as many real seconds as it says. Real waits are never added
to the virtual clock on their own, so the clock reads the same on every run.
With only idle descriptors, only timers remain and the loop skips at once, as
it does for a handler that only sleeps: that costs no real time.

Waiting on I/O or on another thread with no timer pending blocks for real,
as it must: only a timer says how long the wait may take.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["VirtualTimeLoop"]

_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


class _RealClock:
    """``time.monotonic`` as imported, out of reach of freezegun's module scan.

    The simulator freezes ``time.monotonic`` while app code runs (see
    ``core.clock``); freezegun replaces module globals that hold it, not a
    class attribute, and measuring a real wait needs the real clock.
    """

    monotonic = staticmethod(time.monotonic)


def _reader_is_idle(reader: asyncio.Handle | None) -> bool:
    """Whether a registered reader can wait without anyone waiting on it (see the module docstring)."""
    callback = getattr(reader, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.AbstractEventLoop):
        # A server's listening socket accepts whenever a client comes; nobody awaits it.
        return getattr(callback, "__name__", "") == "_accept_connection"
    if isinstance(owner, asyncio.BaseTransport):
        protocol = owner.get_protocol()
        if isinstance(protocol, asyncio.StreamReaderProtocol):
            stream = getattr(protocol, "_stream_reader", None)
            return stream is None or getattr(stream, "_waiter", None) is None
    return False


class _JumpingSelector(selectors.BaseSelector):
    """The loop's selector, except that waiting only for a timer moves virtual time instead."""

    def __init__(self, inner: selectors.BaseSelector, jump: Callable[[timedelta], object]) -> None:
        self._inner = inner
        self._jump = jump
        self._own: set[int] = set()      # the loop's self-pipe: always registered, never I/O
        self._lag = 0.0                  # real seconds waited for awaited I/O, not yet skipped

    def own(self, fd: int) -> None:
        """Leave ``fd`` (the loop's own wake-up pipe) out of the awaited I/O."""
        self._own.add(fd)

    def _awaits_real_io(self) -> bool:
        for key in self._inner.get_map().values():
            if key.fd in self._own:
                continue
            if key.events & selectors.EVENT_WRITE:
                return True
            reader = key.data[0] if isinstance(key.data, tuple) else None
            if not _reader_is_idle(reader):
                return True
        return False

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout is not None and timeout <= 0:
            return ready
        if timeout is None:                  # no timer: only I/O or a thread can wake the loop
            return self._inner.select(None)
        if not self._awaits_real_io():
            self._lag = 0.0
        elif self._lag < timeout:
            # Real I/O is awaited: give it the timer's delay in real time, less what it has had.
            started = _RealClock.monotonic()
            ready = self._inner.select(timeout - self._lag)
            self._lag += _RealClock.monotonic() - started
            if ready or self._lag < timeout:  # an event, or woken early: look again
                return ready
            self._lag -= timeout
        else:
            self._lag -= timeout
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
        selector: the OS selector real waits go to (default: ``selectors.DefaultSelector()``);
            tests pass one that records the waits asked of it.
    """

    def __init__(self, now: Callable[[], datetime], jump: Callable[[timedelta], object],
                 selector: selectors.BaseSelector | None = None) -> None:
        jumping = _JumpingSelector(selector or selectors.DefaultSelector(), jump)
        super().__init__(jumping)
        jumping.own(getattr(self, "_ssock").fileno())   # asyncio's self-pipe, made by super().__init__
        self._virtual_now = now
        # Timers within one tick of now are due; the virtual clock ticks in microseconds.
        self._clock_resolution = 1e-6

    def time(self) -> float:
        return (self._virtual_now() - _EPOCH).total_seconds()

