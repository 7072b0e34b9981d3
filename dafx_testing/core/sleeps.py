"""Sleeps in app code as work that takes time: ``time.sleep`` charged, not slept.

An activity that polls or backs off (``time.sleep(5)``) would make a test wait for real
while nothing else in the simulation moves. Inside :func:`sleeps_charged`, a sleep on the
entering thread is charged to the innermost open meter (:mod:`dafx_testing.core.latency`)
instead: the unit of work the simulator is running takes that much virtual time, its code
reads the clock moved on by it, and its result lands that much later. With no meter open the
sleep is real, and other threads (a library's own worker thread) always sleep for real.

``time.sleep`` is patched where it lives, and so is every ``from time import sleep`` alias
in the modules passed in (the app's), which imported the function before the patch.

Async work sleeps through ``anyio.sleep`` too: the openai client waits out its retry
back-off with it (``AsyncAPIClient._sleep_for_retry``), on the event loop thread the
Agent Framework runs agents on, not on the entering thread. Inside the block that sleep,
on any thread, is charged to the open meter: a model call retried after a 429 makes the
unit of work take the back-off in virtual time, and the test waits for none of it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, SupportsIndex

from .aliases import alias_sites
from .latency import charge

__all__ = ["sleeps_charged"]

_real_sleep = time.sleep


@contextlib.contextmanager
def sleeps_charged(modules: Sequence[ModuleType] = ()) -> Iterator[None]:
    """Inside the block, ``time.sleep`` on this thread charges the open meter instead of sleeping."""
    owner = threading.get_ident()
    current = time.sleep

    def sleep(seconds: float | SupportsIndex) -> None:
        if threading.get_ident() != owner:
            current(seconds)
            return
        if float(seconds) < 0:
            _real_sleep(seconds)          # the real error: "sleep length must be non-negative"
        remaining = charge(float(seconds))
        if remaining:
            current(remaining)

    undo = [(time, "sleep", current)]
    time.sleep = sleep
    for module, name in alias_sites("sleep", modules, {id(current)}):
        if vars(module).get(name) is current:
            undo.append((module, name, current))
            setattr(module, name, sleep)
    undo += _async_sleeps_charged()
    try:
        yield
    finally:
        for owner_object, name, value in reversed(undo):
            setattr(owner_object, name, value)


def _async_sleeps_charged() -> list[tuple[Any, str, Any]]:
    """Charge ``anyio.sleep`` (if anyio is loaded) to the open meter; what to undo."""
    anyio = sys.modules.get("anyio")
    if anyio is None:
        return []
    current = anyio.sleep

    async def sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        remaining = charge(float(delay)) if float(delay) > 0 else delay
        return await current(remaining, *args, **kwargs)

    setattr(anyio, "sleep", sleep)  # noqa: B010  (a module found in sys.modules)
    return [(anyio, "sleep", current)]
