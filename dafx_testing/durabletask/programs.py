"""Run an unmodified durabletask program against a simulator: :func:`attach`.

Inside ``with attach() as sim:``, the program's own workers and clients meet the
simulator instead of a sidecar, whatever address, task hub or credential they
were given:

* ``worker.start()`` attaches the worker and returns at once; ``stop()`` detaches it.
* every client (``TaskHubGrpcClient``, ``AsyncTaskHubGrpcClient``, the
  ``durabletask.azuremanaged`` ones, and the Agent Framework's clients built on
  them) is answered by the simulator (:mod:`.stub`).
* on the thread that entered ``attach`` (the driving thread), ``time.sleep`` and
  the loops ``asyncio.run`` makes wait in virtual time: a poll of ``sleep(1)``
  moves the clock one second and runs what came due, at no real cost.
* ``uuid.uuid4()`` draws from a stream seeded by ``seed``, so the ids clients make
  up are the same on every run.

Waits and sleeps are the only calls that run the simulation; status reads return
what is committed now, as a real sidecar would. Sleeping on while nothing at all
is unfinished (no instance running, no work queued, no timer) for ``idle_limit``
of virtual time is a worker's idle loop (``while True: await asyncio.sleep(1)``),
which would never end: it is interrupted with ``KeyboardInterrupt``, as Ctrl+C
ends such a worker. A bounded poll that gives up sooner ends as it would on a host.

Everything is undone on exit; the simulator stays readable afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, SupportsIndex

from durabletask.client import AsyncTaskHubGrpcClient, TaskHubGrpcClient
from durabletask.worker import TaskHubGrpcWorker

from ..core.seeded import seeded_uuid4
from ..core.virtual_loop import VirtualTimeLoop
from .registry import WorkerIndex
from .simulator import DurableTaskSimulator, bind_client

__all__ = ["attach", "attached"]


@contextlib.contextmanager
def attach(seed: int = 0, idle_limit: timedelta = timedelta(hours=1),
           **options: Any) -> Iterator[DurableTaskSimulator]:
    """Serve every durabletask worker and client in this process from one simulator.

    Args:
        seed: seeds the simulation and the ids clients make up.
        idle_limit: how long the program may sleep with nothing unfinished before
            its idle loop is interrupted (``KeyboardInterrupt``, as Ctrl+C).
        options: any other :class:`~dafx_testing.Simulator` option.

    Example::

        with attach() as sim:
            sample.main()                  # starts a worker, runs a client against it
        assert sim.list_instances()[0].runtime_status == "Completed"
    """
    from ..simulator import Simulator

    sim = Simulator(WorkerIndex(), seed=seed, **options)
    assert isinstance(sim, DurableTaskSimulator)
    sim._fresh_app()          # remember: built with no worker (each run attaches its own)
    with attached(sim, idle_limit):
        yield sim


@contextlib.contextmanager
def attached(sim: DurableTaskSimulator, idle_limit: timedelta) -> Iterator[None]:
    """Serve the program's workers and clients from ``sim`` inside the block (see :func:`attach`)."""
    with _Attachment(sim, idle_limit).applied():
        yield


class _Attachment:
    """The patches :func:`attach` applies, each undone on exit."""

    def __init__(self, sim: DurableTaskSimulator, idle_limit: timedelta) -> None:
        self.sim = sim
        self.driving = threading.get_ident()
        self.idle_limit = idle_limit
        self.idle = timedelta(0)         # virtual time slept in a row with nothing unfinished

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            self._patch(stack, TaskHubGrpcWorker, "start", lambda worker: self._start(worker))
            self._patch(stack, TaskHubGrpcWorker, "stop", lambda worker: self._stop(worker))
            for client_type in (TaskHubGrpcClient, AsyncTaskHubGrpcClient):
                self._patch(stack, client_type, "__init__", self._bound_init(client_type.__init__))
            wrapper = _agent_worker_type()
            if wrapper is not None:
                self._patch(stack, wrapper, "__init__", self._noted_wrapper(wrapper.__init__))
            self._patch(stack, time, "sleep", self._sleep(time.sleep))
            policy = asyncio.get_event_loop_policy()
            asyncio.set_event_loop_policy(_VirtualPolicy(self))
            stack.callback(asyncio.set_event_loop_policy, policy)
            stack.enter_context(seeded_uuid4(random.Random(f"{self.sim.seed}/clients")))
            yield

    @staticmethod
    def _patch(stack: contextlib.ExitStack, owner: Any, name: str, value: Any) -> None:
        original = owner.__dict__[name] if name in owner.__dict__ else getattr(owner, name)
        setattr(owner, name, value)
        stack.callback(setattr, owner, name, original)

    def _start(self, worker: TaskHubGrpcWorker) -> None:
        if worker._is_running:
            raise RuntimeError("The worker is already running.")   # as the SDK's start()
        self.sim.index.start(worker)
        worker._is_running = True

    def _stop(self, worker: TaskHubGrpcWorker) -> None:
        if worker._is_running:
            self.sim.index.stop(worker)
            worker._is_running = False

    def _noted_wrapper(self, original: Any) -> Any:
        wrappers = self.sim.index.wrappers

        def __init__(wrapper: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
            original(wrapper, *args, **kwargs)
            wrappers.append(wrapper)     # it knows its agents' names, with their case

        return __init__

    def _bound_init(self, original: Any) -> Any:
        sim = self.sim

        def __init__(client: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
            original(client, *args, **kwargs)
            bind_client(client, sim)

        return __init__

    def waits_in_virtual_time(self) -> bool:
        """On the driving thread, outside the simulator's own work."""
        return threading.get_ident() == self.driving and not self.sim.hosting

    def _sleep(self, real: Any) -> Any:
        def sleep(seconds: float | SupportsIndex) -> None:
            if not self.waits_in_virtual_time() or float(seconds) < 0:
                real(seconds)
                return
            self.wait(float(seconds))

        return sleep

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, or interrupt an idle loop that would never end."""
        sim = self.sim
        delta = timedelta(seconds=seconds)
        if not sim.nothing_unfinished():
            self.idle = timedelta(0)
            sim.advance(delta)
            return
        self.idle += delta
        if self.idle > self.idle_limit:
            raise KeyboardInterrupt(
                f"dafx: the program slept {self.idle_limit} of virtual time with nothing "
                "unfinished (no instance running, no work queued, no timer): an idle loop, "
                "interrupted as Ctrl+C would (attach(idle_limit=...) sets how long)")
        sim.clock.move_to(sim.now + delta)    # nothing can come due: only time passes


class _VirtualPolicy(asyncio.DefaultEventLoopPolicy):
    """New loops on the driving thread keep virtual time (``asyncio.run`` there, for one)."""

    def __init__(self, attachment: _Attachment) -> None:
        super().__init__()
        self._attachment = attachment

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        attachment = self._attachment
        if not attachment.waits_in_virtual_time():
            return super().new_event_loop()
        sim = attachment.sim
        return VirtualTimeLoop(lambda: sim.now,
                               lambda delta: attachment.wait(delta.total_seconds()))


def _agent_worker_type() -> Any:
    try:
        from agent_framework_durabletask import DurableAIAgentWorker
    except ImportError:      # the Agent Framework is optional
        return None
    return DurableAIAgentWorker
