"""Run a coroutine to completion from synchronous code, even inside a running loop.

The Functions worker awaits async activities and HTTP handlers; the simulator's
API is synchronous, so it drives them here. Inside an already running event
loop (an ``async def`` test) the coroutine runs on a helper thread with its own
loop, because a loop cannot be re-entered.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def run_sync(awaitable: Awaitable[Any], loop_factory: LoopFactory = asyncio.new_event_loop) -> Any:
    """Await ``awaitable`` on a new loop from ``loop_factory``; return its result or raise."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(awaitable, loop_factory)
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = _run(awaitable, loop_factory)
        except BaseException as exc:  # re-raised on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="dafx-run-sync")
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
