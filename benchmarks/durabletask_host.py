"""The durabletask host against durabletask's own InMemoryOrchestrationBackend.

One ``TaskHubGrpcWorker``, built by :func:`build_worker` from the same module-level
orchestrators and activity, runs on both sides:

* **ours**: ``Simulator(worker)`` (a ``DurableTaskSimulator``) drives the worker's
  own executors in this process, on a virtual clock: a fresh simulator for every
  orchestration (what one test pays: building it, ``start_new``,
  ``wait_for_completion``), determinism checks off as in ``run.py``'s ``PLAIN``.
* **theirs**: the same worker code connected to an ``InMemoryOrchestrationBackend``
  (a gRPC server on localhost) and started; a ``TaskHubGrpcClient`` schedules the
  orchestration and waits for its completion (how durabletask's own tests run one).
  Backend, worker and client are reused across that round's orchestrations, after
  a warm-up orchestration.

The sides take turns round by round, not orchestration by orchestration: the
virtual clock points the process's time functions at virtual time while a
simulator works, and the real worker's and backend's threads would read it if
they were running meanwhile. So each round runs our cases first, then starts a
backend and worker, runs theirs, and stops both (the stop, about 1 s, is not
timed). Each figure is the median of its side's rounds; the ratio is the ratio of
the medians. The SDK's INFO logging (a line per work item) is off during all of it.

The 72-hour timer runs on ours only: the in-memory backend sleeps a timer out in
real time in a thread, so it would take 72 hours there. Run alone::

    python benchmarks/durabletask_host.py [--repetitions N]

``durabletask_host_section()`` gives the figures to ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import time
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

from runner import run_module

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")       # gRPC's own INFO lines on shutdown

from durabletask import task  # noqa: E402  (after GRPC_VERBOSITY: gRPC reads it when loaded)
from durabletask.worker import TaskHubGrpcWorker  # noqa: E402

CHAIN_STEPS = 10
FAN_OUT = 100
TIMER_HOURS = 72
CHAIN_TARGET = 10.0
"""The issue's bound: at least 10x faster than the in-memory backend on the 10-activity chain."""
TIMER_TARGET_SECONDS = 0.1
""""A 72 h timer in milliseconds": under 100 ms of wall time."""

QUIET = logging.getLogger("benchmarks.durabletask_host")
QUIET.setLevel(logging.CRITICAL)   # the worker's stream cancellation on stop logs a warning


# --- the worker under test: the same code on both sides ------------------------------------------


def add_one(ctx: task.ActivityContext, value: int) -> int:
    return value + 1


def chain(ctx: task.OrchestrationContext, steps: int):
    """``steps`` activities one after another: steps + 1 episodes, each replaying the history."""
    total = 0
    for _ in range(steps):
        total = yield ctx.call_activity(add_one, input=total)
    return total


def fan_out(ctx: task.OrchestrationContext, count: int):
    """``count`` activities at once, then their sum."""
    results = yield task.when_all([ctx.call_activity(add_one, input=i) for i in range(count)])
    return sum(results)


def sleeper(ctx: task.OrchestrationContext, hours: float):
    """One durable timer of ``hours``."""
    yield ctx.create_timer(timedelta(hours=hours))
    return hours


ORCHESTRATORS = {"chain": chain, "fan_out": fan_out, "sleeper": sleeper}
THEIR_TIMER_HOURS = 1 / 3600
"""run.py's 'vs durabletask' timer on their side: one second (their timers sleep for real)."""
EXPECTED = {("chain", CHAIN_STEPS): CHAIN_STEPS, ("chain", 1): 1,
            ("fan_out", FAN_OUT): sum(range(1, FAN_OUT + 1)),
            ("sleeper", TIMER_HOURS): TIMER_HOURS, ("sleeper", THEIR_TIMER_HOURS): THEIR_TIMER_HOURS}


def build_worker(**options: Any) -> TaskHubGrpcWorker:
    """The worker both sides run; ``options`` go to ``TaskHubGrpcWorker`` (its host address)."""
    worker = TaskHubGrpcWorker(logger=QUIET, **options)
    for orchestrator in ORCHESTRATORS.values():
        worker.add_orchestrator(orchestrator)
    worker.add_activity(add_one)
    return worker


# --- the two sides ------------------------------------------------------------------------------


def _runner() -> ModuleType:
    return run_module()


def simulated(worker: TaskHubGrpcWorker, orchestrator: str, value: Any) -> None:
    """One orchestration, start to finish, on a fresh ``DurableTaskSimulator`` (checks off)."""
    from dafx_testing import Simulator

    sim = Simulator(worker, **_runner().PLAIN)
    status = sim.wait_for_completion(sim.start_new(orchestrator, value, instance_id="bench"),
                                     timeout=timedelta(days=30))
    assert status.runtime_status == "Completed", status.output
    assert status.output == EXPECTED[orchestrator, value], status.output


def sdk_share(worker: TaskHubGrpcWorker, orchestrator: str, value: Any) -> float:
    """Seconds the SDK's own executors take inside one simulated run (the rest is dafx's).

    The worker's ``_execute_orchestrator``/``_execute_activity`` are timed through
    instance attributes for the run; the real clock is held in a default argument,
    which the virtual clock's patching of module globals does not reach.
    """
    spent = [0.0]

    def timing(method: Any, clock: Any = time.perf_counter) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += clock() - started
        return timed

    worker._execute_orchestrator = timing(worker._execute_orchestrator)   # type: ignore[method-assign]
    worker._execute_activity = timing(worker._execute_activity)           # type: ignore[method-assign]
    try:
        simulated(worker, orchestrator, value)
    finally:
        del worker._execute_orchestrator, worker._execute_activity
    return spent[0]


class InMemoryBackend:
    """durabletask's in-memory backend on a free port, the worker started on it, and a client."""

    def __init__(self) -> None:
        from durabletask.client import TaskHubGrpcClient
        from durabletask.testing import InMemoryOrchestrationBackend

        self.backend = InMemoryOrchestrationBackend(port=_runner()._free_port())
        address = self.backend.start()
        self.worker = build_worker(host_address=address)
        self.client = TaskHubGrpcClient(host_address=address, logger=QUIET)
        self.worker.start()

    def run(self, orchestrator: str, value: Any) -> None:
        """Schedule one orchestration and wait until it completes."""
        instance_id = self.client.schedule_new_orchestration(ORCHESTRATORS[orchestrator],
                                                             input=value)
        state = self.client.wait_for_orchestration_completion(instance_id, timeout=120)
        assert state is not None and state.runtime_status.name == "COMPLETED", state
        assert state.serialized_output is not None
        assert json.loads(state.serialized_output) == EXPECTED[orchestrator, value], state

    def close(self) -> None:
        self.worker.stop()
        self.backend.stop()


@contextlib.contextmanager
def in_memory_backend() -> Iterator[InMemoryBackend]:
    runner = InMemoryBackend()
    try:
        runner.run("chain", 1)                  # connect and warm up before timing
        yield runner
    finally:
        runner.close()


@contextlib.contextmanager
def sdk_info_logging_off() -> Iterator[None]:
    """``logging.disable(INFO)`` for the block: the SDK logs every work item at INFO."""
    before = logging.root.manager.disable
    logging.disable(max(before, logging.INFO))
    try:
        yield
    finally:
        logging.disable(before)


# --- the section --------------------------------------------------------------------------------

CASES = [("chain of 10 activities", "chain", CHAIN_STEPS),
         ("fan-out/fan-in of 100", "fan_out", FAN_OUT)]


def durabletask_host_section(repetitions: int = 9) -> list[Any]:
    """Three figures: the chain and the fan-out on both sides, and a 72 h timer on ours.

    Every round times our three cases (a fresh simulator each), then the chain
    and the fan-out on a freshly started in-memory backend (after a warm-up);
    figures are the medians over ``repetitions`` rounds.
    """
    run = _runner()
    worker = build_worker()                    # ours: never started, the simulator drives it
    timer = ("sleeper", TIMER_HOURS)
    ours: dict[str, list[float]] = {name: [] for name, _, _ in CASES}
    theirs: dict[str, list[float]] = {name: [] for name, _, _ in CASES}
    timer_times: list[float] = []
    sdk_times: list[float] = []
    with sdk_info_logging_off():
        for orchestrator, value in [*((o, v) for _, o, v in CASES), timer]:
            simulated(worker, orchestrator, value)            # warm-up: imports, first calls
        for _ in range(repetitions):
            for name, orchestrator, value in CASES:
                ours[name].append(run.timed(lambda: simulated(worker, orchestrator, value))[0])
            timer_times.append(run.timed(lambda: simulated(worker, *timer))[0])
            sdk_times.append(sdk_share(worker, "chain", CHAIN_STEPS))
            with in_memory_backend() as backend:
                for name, orchestrator, value in CASES:
                    theirs[name].append(run.timed(lambda: backend.run(orchestrator, value))[0])
    figures = []
    for name, _, _ in CASES:
        our_time, their_time = statistics.median(ours[name]), statistics.median(theirs[name])
        target = run.Target(CHAIN_TARGET, at_most=False) if name.startswith("chain") else None
        figures.append(run.Figure("durabletask host", name, "s", our_time, their_time,
                                  "in-memory backend", their_time / our_time, "x faster",
                                  target, repetitions))
    # How much faster than the in-memory backend any host of this SDK could be: the
    # worker's own executors alone, which the real worker runs too, against its chain.
    sdk_time, their_chain = statistics.median(sdk_times), statistics.median(theirs[CASES[0][0]])
    figures.append(run.Figure("durabletask host", "chain of 10: the SDK's executors alone "
                              "(the ceiling of any speed-up)", "s", sdk_time, their_chain,
                              "in-memory backend", their_chain / sdk_time, "x faster",
                              None, repetitions))
    figures.append(run.Figure(
        "durabletask host", f"{TIMER_HOURS} h durable timer (in-memory backend: {TIMER_HOURS} h "
        "of real sleep, not run)", "s", statistics.median(timer_times),
        target=run.Target(TIMER_TARGET_SECONDS, unit="s"), repetitions=repetitions))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=9, help="rounds (default 9)")
    args = parser.parse_args()
    run = _runner()
    figures = durabletask_host_section(args.repetitions)
    print(run.table(figures))


if __name__ == "__main__":
    main()
