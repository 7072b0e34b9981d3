"""Run a coroutine to completion from synchronous code, even inside a running loop.

The Functions worker awaits async activities and HTTP handlers; the simulator's
API is synchronous, so it drives them here. Inside an already running event
loop (an ``async def`` test) the coroutine runs on a helper thread with its own
loop, because a loop cannot be re-entered.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable


def run_sync(awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` and return its result (or raise its exception)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wrap(awaitable))
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(_wrap(awaitable))
        except BaseException as exc:  # re-raised on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="dafx-run-sync")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def _wrap(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
