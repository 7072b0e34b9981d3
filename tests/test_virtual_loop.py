"""The virtual-time event loop: waiting for a timer moves the clock instead of sleeping."""

import asyncio
import selectors
import time
from datetime import datetime, timedelta, timezone

import pytest

from dafx_testing.core.async_bridge import call_off_loop, run_sync
from dafx_testing.core.virtual_loop import VirtualTimeLoop


class Clock:
    def __init__(self):
        self.now = datetime(2025, 1, 1, tzinfo=timezone.utc)
        self.jumps = []

    def jump(self, delta):
        self.jumps.append(delta)
        self.now += delta

    def loop(self):
        return VirtualTimeLoop(lambda: self.now, self.jump)


def test_sleeps_jump_the_clock_by_exactly_the_time_asked():
    clock = Clock()

    async def poll():
        for _ in range(3):
            await asyncio.sleep(1.5)
        return asyncio.get_running_loop().time()

    wall = time.monotonic()
    run_sync(poll(), clock.loop)

    assert clock.now - datetime(2025, 1, 1, tzinfo=timezone.utc) == timedelta(seconds=4.5)
    assert clock.jumps == [timedelta(seconds=1.5)] * 3
    assert time.monotonic() - wall < 1


def test_sleeps_with_no_real_io_never_wait_for_the_os():
    """Only the loop's own self-pipe is registered: every timer is skipped to, never waited for."""
    clock = Clock()
    asked: list[float | None] = []

    class Recording(selectors.DefaultSelector):
        def select(self, timeout=None):
            asked.append(timeout)
            return super().select(timeout)

    async def poll():
        for _ in range(3):
            await asyncio.wait_for(asyncio.sleep(2), timeout=5)

    run_sync(poll(), lambda: VirtualTimeLoop(lambda: clock.now, clock.jump, selector=Recording()))
    assert clock.jumps == [timedelta(seconds=2)] * 3
    assert asked and set(asked) == {0}


def test_a_timeout_expires_in_virtual_time():
    clock = Clock()

    async def wait_forever():
        await asyncio.wait_for(asyncio.Event().wait(), timeout=3600)

    with pytest.raises(asyncio.TimeoutError):
        run_sync(wait_forever(), clock.loop)
    assert sum(clock.jumps, timedelta()) == timedelta(hours=1)


def test_ready_work_runs_without_moving_the_clock():
    clock = Clock()

    async def busy():
        for _ in range(100):
            await asyncio.sleep(0)
        return "done"

    assert run_sync(busy(), clock.loop) == "done"
    assert clock.jumps == []


def test_work_the_jump_does_sees_no_running_loop():
    """A sync function run by the simulator during a jump may call asyncio.run itself."""
    clock = Clock()
    seen = []

    def jump(delta):
        seen.append(call_off_loop(lambda: asyncio.run(asyncio.sleep(0, "inner ran"))))
        clock.jump(delta)

    async def handler():
        await asyncio.sleep(1)

    run_sync(handler(), lambda: VirtualTimeLoop(lambda: clock.now, jump))
    assert seen == ["inner ran"]
