"""Run app code the way the Functions worker does, whatever thread the simulator is called on.

The worker awaits async functions on its event loop and runs sync ones on a
thread pool, where no loop is running (so a sync function may call
``asyncio.run``). The simulator's API is synchronous and may be called from a
running loop (an ``async def`` test, or the virtual-time loop of an HTTP
handler that polls), so work that must not see that loop moves to a helper
thread: a loop cannot be re-entered.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def run_sync(awaitable: Awaitable[Any], loop_factory: LoopFactory = asyncio.new_event_loop) -> Any:
    """Await ``awaitable`` on a new loop from ``loop_factory``; return its result or raise."""
    return call_off_loop(lambda: _run(awaitable, loop_factory))


def call_off_loop(fn: Callable[[], T]) -> T:
    """``fn()`` on this thread, or on a helper thread if this one is running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        return fn()     # outside the except block, so errors from fn are not chained to the probe
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # re-raised on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="dafx-off-loop")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _run(awaitable: Awaitable[Any], loop_factory: LoopFactory) -> Any:
    """``asyncio.run`` with a chosen loop: run, then cancel leftovers and close."""
    loop = loop_factory()
    try:
        return loop.run_until_complete(_wrap(awaitable))
    finally:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


async def _wrap(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
