"""Side-by-side benchmarks of dafx-testing: every figure a ratio measured in this one process.

Run from the repository root (after ``pip install -e ".[bench]"``)::

    python benchmarks/run.py --quick     # under a minute: the small sizes
    python benchmarks/run.py             # the full set (N = 1000 too): about 18 minutes here
    python benchmarks/run.py --json      # the same figures as JSON, for machines

Each comparison runs both sides in this process, alternating them repetition by
repetition, and takes the median of each side, so a noisy neighbour on the
machine slows both alike. ``benchmarks/README.md`` explains the method and
holds the latest figures.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import inspect
import itertools
import json
import os
import platform
import socket
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib import metadata
from typing import Any, TypeVar

import azure.durable_functions as df

from dafx_testing import Simulator
from dafx_testing.core.history import Event, EventType
from dafx_testing.functions.app import ORCHESTRATOR
from dafx_testing.functions.orchestrations import call_handle, context_json
from dafx_testing.functions.worker import execution_of

T = TypeVar("T")

PLAIN = {"guard": "off", "perturb": False, "max_replayed_events": 10**9}
"""Determinism checks off: the engine alone, without the guard and the perturbed second replay.

The runaway budget is lifted: a chain of 1000 activities replays about 3 million events."""


# --- the app under test, written for Azure Durable Functions -------------------------------------

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    """N activities one after another: N + 1 episodes, each replaying the history so far."""
    total = 0
    for _ in range(context.get_input()):
        total = yield context.call_activity("add_one", total)
    return total


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    """N activities at once, then their sum."""
    tasks = [context.call_activity("add_one", i) for i in range(context.get_input())]
    results = yield context.task_all(tasks)
    return sum(results)


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    """One durable timer of the given number of hours."""
    hours = context.get_input()
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
    return hours


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


def simulated_run(orchestrator: str, value: Any, **options: Any) -> Simulator:
    """One orchestration, start to finish, on a fresh simulator (what one test pays)."""
    sim = Simulator(app, **options)
    status = sim.wait_for_completion(sim.start_new(orchestrator, value, instance_id="bench"),
                                     timeout=timedelta(days=30))
    assert status.runtime_status == "Completed", status.output
    return sim


def chain_scenario(steps: int) -> Callable[[Simulator], None]:
    """The crash sweeps' scenario: one chain of ``steps`` activities."""
    def scenario(sim: Simulator) -> None:
        sim.wait_for_completion(sim.start_new("chain", steps, instance_id="bench"))
    return scenario


# --- measuring ------------------------------------------------------------------------------------


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """Wall time and result of one call, with the garbage collector's debts settled beforehand."""
    gc.collect()
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def medians(repetitions: int, *actions: Callable[[], Any]) -> list[float]:
    """The median wall time of each action, the actions taking turns in every repetition.

    Taking turns spreads any slowdown of the machine over all sides, so their
    ratio holds even when the absolute figures drift.
    """
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(repetitions):
        for action, times in zip(actions, samples):
            times.append(timed(action)[0])
    return [statistics.median(times) for times in samples]


def peak_memory(action: Callable[[], Any]) -> float:
    """Peak bytes Python allocated during one call (tracemalloc; times under it mean nothing)."""
    gc.collect()
    tracemalloc.start()
    try:
        action()
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


@dataclass(frozen=True)
class Target:
    """The bound a figure should meet: on its ratio (unit "x"), or on our own measurement."""

    bound: float
    at_most: bool = True
    unit: str = "x"

    def met(self, figure: Figure) -> bool:
        value = figure.ratio if self.unit == "x" else figure.ours
        assert value is not None
        return value <= self.bound if self.at_most else value >= self.bound

    def __str__(self) -> str:
        sign = "<=" if self.at_most else ">="
        return f"{sign} {self.bound:g}" + ("x" if self.unit == "x" else f" {self.unit}")


@dataclass
class Figure:
    """One line of the table: our measurement, what it is set against, and the ratio."""

    comparison: str
    case: str
    unit: str                       # "s", "MB" or "/s"
    ours: float
    reference: float | None = None
    reference_name: str = ""
    ratio: float | None = None
    ratio_reads: str = "x"          # "x" (ours / reference) or "x faster" (reference / ours)
    target: Target | None = None
    repetitions: int = 1

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self)

    def cells(self) -> list[str]:
        reference = ("" if self.reference is None
                     else f"{self.reference_name}: {_quantity(self.reference, self.unit)}")
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}{self.ratio_reads}"
        verdict = {None: "", True: "met", False: "MISSED"}[self.met]
        return [self.comparison, self.case, _quantity(self.ours, self.unit), reference, ratio,
                str(self.target or ""), verdict, str(self.repetitions)]


def _quantity(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value / 1e6:.1f} MB"
    return f"{value:.0f}{unit}"


# --- the timestamp fast path ----------------------------------------------------------------------


def parser_variants(compare: bool = True) -> dict[str, dict[str, Any]]:
    """Simulator options for each timestamp parser to measure: dateutil, and the fast path.

    ``Simulator(fast_timestamps=...)`` swaps the SDK's dateutil timestamp
    parsing for an identical faster parser (the default). Without ``compare``
    only the fast path is measured; an engine without the switch measures
    the SDK's own parser.
    """
    if "fast_timestamps" not in inspect.signature(Simulator.__init__).parameters:
        return {"dateutil": {}}
    fast = {"fast timestamps": {"fast_timestamps": True}}
    return {"dateutil": {"fast_timestamps": False}, **fast} if compare else fast


def sdk_parser(options: dict[str, Any]) -> AbstractContextManager[Any]:
    """The SDK's timestamp parser the simulator uses with ``options``, for the bare replays."""
    if not options.get("fast_timestamps"):
        return contextlib.nullcontext()
    from dafx_testing.functions.fast_timestamps import swapped_in

    return swapped_in()


# --- 1. engine overhead: a simulated run vs the bare SDK replays it performs ----------------------

DECISIONS = {EventType.TaskScheduled, EventType.TimerCreated,
             EventType.SubOrchestrationInstanceCreated, EventType.EventSent,
             EventType.ExecutionCompleted}
"""Events the host records from an episode's actions; the rest of an episode came in as messages."""


def episode_bodies(sim: Simulator, instance_id: str) -> list[str]:
    """The context JSON of every episode the simulator ran for an instance, rebuilt from history.

    An episode's recorded events are ``OrchestratorStarted``, the messages it
    received, the events of its decisions and ``OrchestratorCompleted``. The
    SDK was called with the history before it (played), then the
    ``OrchestratorStarted`` and the messages (not yet played): this rebuilds
    that with the package's own :func:`context_json`, as ``run_episode`` does.
    """
    instance = sim.hub.get(instance_id)
    history = instance.history
    execution = execution_of(instance)
    bodies = []
    for start, event in enumerate(history):
        if event["EventType"] != EventType.OrchestratorStarted:
            continue
        recorded = itertools.takewhile(
            lambda e: e["EventType"] != EventType.OrchestratorCompleted,
            itertools.islice(history, start + 1, None))
        received = [e for e in recorded if e["EventType"] not in DECISIONS]
        seen = history[:start] + [_unplayed(e) for e in [event, *received]]
        bodies.append(json.dumps(context_json(execution, seen, start > 0, sim.timer_limits)))
    return bodies


def _unplayed(event: Event) -> Event:
    return dict(event, IsPlayed=False)


@dataclass(frozen=True)
class SdkWork:
    """The SDK calls a simulated chain makes: its orchestrator's handle, and each episode's JSON."""

    handle: Callable[..., Any]
    bodies: list[str]


def sdk_work(steps: int) -> SdkWork:
    """Rebuild them from one (untimed) run; every timestamp parser yields the same history."""
    sim = simulated_run("chain", steps, **PLAIN)
    return SdkWork(sim.index.get(ORCHESTRATOR, "chain").handler, episode_bodies(sim, "bench"))


def bare_replays(work: SdkWork, parser: AbstractContextManager[Any]) -> None:
    """Call the SDK's generated handle once per episode, as the Python worker does."""
    with parser:
        for body in work.bodies:
            call_handle(work.handle, body)


def engine_overhead(steps: int, repetitions: int, name: str, options: dict[str, Any],
                    work: SdkWork) -> tuple[Figure, float]:
    """A simulated N-step chain against the sum of the SDK replays it must perform.

    The simulator's whole run (building it, the scheduler, the host-side
    replay, commits, activities) is timed against nothing but the ``handle``
    calls on the same context JSON. Their ratio is what the engine adds to the
    SDK's own cost. Returns the figure and the simulated run's median time.
    """
    options = {**PLAIN, **options}
    simulated, bare = medians(repetitions,
                              lambda: simulated_run("chain", steps, **options),
                              lambda: bare_replays(work, sdk_parser(options)))
    figure = Figure("engine overhead", f"chain N={steps}, {name}", "s", simulated, bare,
                    "bare SDK replays", simulated / bare, target=Target(1.25),
                    repetitions=repetitions)
    return figure, simulated


def engine_overhead_section(sizes: list[tuple[int, int]]) -> list[Figure]:
    """Engine overhead for each size and timestamp parser, plus the fast path's speed-up."""
    figures: list[Figure] = []
    for steps, repetitions in sizes:
        work = sdk_work(steps)
        runs = {}
        for name, options in parser_variants().items():
            figure, runs[name] = engine_overhead(steps, repetitions, name, options, work)
            figures.append(figure)
        if len(runs) == 2:
            stock, fast = runs.values()
            figures.append(Figure("fast timestamps", f"chain N={steps}, simulated run", "s",
                                  fast, stock, "dateutil", stock / fast, "x faster",
                                  repetitions=repetitions))
    return figures


def checks_cost_section(steps: int, repetitions: int) -> Figure:
    """What the default determinism checks (API guard, perturbed replay) add to a run."""
    checked, plain = medians(repetitions,
                             lambda: simulated_run("chain", steps),
                             lambda: simulated_run("chain", steps, **PLAIN))
    return Figure("determinism checks", f"chain N={steps}, defaults", "s", checked, plain,
                  "checks off", checked / plain, repetitions=repetitions)


# --- 2. crash sweeps: every commit point against one crash-free run -------------------------------


def sweep_cost(steps: int, repetitions: int, name: str, options: dict[str, Any],
               isolation: str, prune: bool | None = None) -> Figure:
    """An every-point crash sweep of an N-step chain, as a multiple of one run.

    Determinism checks are off on both sides, so the crash machinery alone is
    measured. The sweep runs once; the crash-free run is a median. The 3x target
    (N = 100) and the 30 s one (N = 1000) are the default isolation's (fork).
    ``prune``: decide the crash runs that provably converge at once without
    running them (True, the default), or run every one (False, "full"); None for
    an engine without the switch.
    """
    options = {**PLAIN, **options}
    scenario = chain_scenario(steps)
    one_run = medians(repetitions, lambda: scenario(Simulator(app, **options)))[0]
    pruning = {} if prune is None else {"prune": prune}
    swept, report = timed(lambda: Simulator(app, **options).crash_sweep(
        scenario, idempotent=["add_one"], isolation=isolation, **pruning))
    assert report.ok, report.explain()
    assert report.isolation == isolation
    decided = getattr(report, "decided", 0)
    how = {None: "", False: ", full", True: ", pruned"}[prune]
    case = (f"chain N={steps}, {name}, {isolation}{how}: {len(report.points)} points, "
            + (f"{decided} decided without a run, {report.runs - decided} run, " if prune else "")
            + f"{report.pruned} converged")
    target = {100: Target(3), 1000: Target(30, unit="s")}.get(steps) if isolation == "fork" else None
    return Figure("crash sweep", case, "s", swept, one_run, "one run", swept / one_run,
                  target=target, repetitions=repetitions)


def pruning_variants() -> list[bool | None]:
    """Every crash run (``prune=False``) and the pruned sweep (the default), if the engine prunes."""
    if "prune" not in inspect.signature(Simulator.crash_sweep).parameters:
        return [None]
    return [False, True]


def sweep_section(sizes: list[tuple[int, int]], compare_parsers: bool,
                  large: int | None) -> list[Figure]:
    """Sweep cost for each size, timestamp parser, isolation and pruning; optionally a large sweep.

    The large sweep forks, with the fast path only: rerun from the start it would
    take about 15 minutes (the crash runs re-execute half a run each on average).
    """
    figures = [sweep_cost(steps, repetitions, name, options, isolation, prune)
               for steps, repetitions in sizes
               for name, options in parser_variants(compare_parsers).items()
               for isolation in ("fork", "rerun")
               for prune in pruning_variants()]
    if large is not None:
        figures += [sweep_cost(large, 1, "fast timestamps", {}, "fork", prune)
                    for prune in pruning_variants()]
    return figures


# --- 3. throughput --------------------------------------------------------------------------------


def throughput_section(count: int, repetitions: int) -> Figure:
    """Orchestrations per second: ``count`` three-activity chains on one simulator."""
    def run_all() -> None:
        sim = Simulator(app, **PLAIN)
        for number in range(count):
            sim.start_new("chain", 3, instance_id=f"bench-{number}")
        sim.run_until_idle()
        assert all(i.runtime_status == "Completed" for i in sim.hub.instances.values())

    elapsed = medians(repetitions, run_all)[0]
    return Figure("throughput", f"{count} chains of 3 activities, one simulator", "/s",
                  count / elapsed, repetitions=repetitions)


# --- 4. memory ------------------------------------------------------------------------------------


def memory_section(run_steps: int, sweep_steps: int) -> list[Figure]:
    """Peak Python memory of a long run, and of a sweep against one run of the same chain.

    The sweep reruns its crash runs: forked ones live in processes of their own,
    which ``tracemalloc`` does not see (each is a copy-on-write image of this one).
    """
    long_run = peak_memory(lambda: simulated_run("chain", run_steps, **PLAIN))
    one_run = peak_memory(lambda: simulated_run("chain", sweep_steps, **PLAIN))
    sweep = peak_memory(lambda: Simulator(app, **PLAIN).crash_sweep(
        chain_scenario(sweep_steps), idempotent=["add_one"], isolation="rerun"))
    return [Figure("peak memory", f"chain N={run_steps}, one run", "MB", long_run),
            Figure("peak memory", f"chain N={sweep_steps}, crash sweep, rerun", "MB", sweep, one_run,
                   "one run", sweep / one_run)]


# --- 5. against durabletask's InMemoryOrchestrationBackend ----------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class DurableTaskCase:
    """One orchestration run on both: its name, our input, their input."""

    case: str
    orchestrator: str
    ours: Any
    theirs: Any
    target: Target | None = Target(5, at_most=False)


DURABLETASK_CASES = [
    DurableTaskCase("chain of 10 activities", "chain", 10, 10),
    DurableTaskCase("fan-out/fan-in of 100", "fan_out", 100, 100),
    # Their timers sleep in real time (a thread per timer): 72 hours would take 72 hours.
    DurableTaskCase("durable timer: ours 72 h, theirs 1 s", "sleeper", 72, 1 / 3600,  # hours
                    target=None),
]


def durabletask_section(repetitions: int) -> list[Figure]:
    """The same orchestrations on both, wall time per orchestration; the ratio is our speed-up.

    Ours are timed first, before their backend starts, rather than in turns:
    our virtual clock patches the time functions process-wide
    (``core/time_patch.py``) while a simulator works, and their worker's threads,
    running meanwhile, would read virtual time and can hang.
    """
    ours = [medians(repetitions, functools.partial(simulated_run, case.orchestrator, case.ours,
                                                   **PLAIN))[0]
            for case in DURABLETASK_CASES]
    # Their side is durabletask_host.py's (the same worker code, the backend warmed up);
    # imported here, since it imports durabletask when it loads.
    with __import__("durabletask_host").in_memory_backend() as runner:
        theirs = [medians(repetitions, functools.partial(runner.run, case.orchestrator,
                                                         case.theirs))[0]
                  for case in DURABLETASK_CASES]
    return [Figure("vs durabletask", case.case, "s", our_time, their_time, "durabletask",
                   their_time / our_time, "x faster", target=case.target,
                   repetitions=repetitions)
            for case, our_time, their_time in zip(DURABLETASK_CASES, ours, theirs)]


# --- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions: (N, repetitions) pairs per comparison."""

    overhead: list[tuple[int, int]]
    checks: tuple[int, int]
    sweeps: list[tuple[int, int]]
    compare_sweep_parsers: bool                  # sweeps with dateutil too, not only the fast path
    large_sweep: int | None                   # N of one more sweep (fork, fast path), or None
    throughput: tuple[int, int]
    memory: tuple[int, int]                      # (run N, sweep N)
    durabletask_repetitions: int


QUICK = Plan(overhead=[(10, 5), (100, 3)], checks=(100, 3), sweeps=[(10, 3), (100, 3)],
             compare_sweep_parsers=False, large_sweep=None, throughput=(100, 3),
             memory=(100, 10), durabletask_repetitions=3)
FULL = Plan(overhead=[(10, 9), (100, 5), (1000, 1)], checks=(100, 5),
            sweeps=[(10, 5), (100, 5)], compare_sweep_parsers=True, large_sweep=1000,
            throughput=(200, 5), memory=(1000, 100), durabletask_repetitions=9)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    versions = {package: _version(package) for package in
                ("dafx-testing", "azure-functions-durable", "azure-functions", "durabletask")}
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpu": _cpu_model(), "cores": str(os.cpu_count()),
            **versions}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith("model name")]
    except OSError:
        lines = []
    return lines[0].split(":", 1)[1].strip() if lines else platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def measure(plan: Plan, progress: Callable[[str], None]) -> list[Figure]:
    """Every comparison of the plan, in order; durabletask's last (its threads end with it)."""
    simulated_run("chain", 10, **PLAIN)                 # warm-up: imports and first calls
    figures: list[Figure] = []
    sections: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("engine overhead", lambda: engine_overhead_section(plan.overhead)),
        ("determinism checks", lambda: [checks_cost_section(*plan.checks)]),
        ("crash sweeps", lambda: sweep_section(plan.sweeps, plan.compare_sweep_parsers,
                                               plan.large_sweep)),
        ("throughput", lambda: [throughput_section(*plan.throughput)]),
        ("peak memory", lambda: memory_section(*plan.memory)),
        # The sibling sections import the Agent Framework and durabletask when they load:
        # imported here, after the engine's own rows, so those run with the engine alone.
        ("fixed cost per driving call", lambda: __import__("fixed_cost").fixed_cost_section()),
        ("fault sweeps", lambda: __import__("fault_sweep_cost").fault_sweep_cost_section()),
        ("durabletask host", lambda: __import__("durabletask_host").durabletask_host_section(
            plan.durabletask_repetitions)),
        ("vs durabletask", lambda: durabletask_section(plan.durabletask_repetitions)),
    ]
    for name, section in sections:
        started = time.perf_counter()
        figures += section()
        progress(f"{name}: {time.perf_counter() - started:.1f} s")
    return figures


COLUMNS = ["comparison", "case", "ours", "reference", "ratio", "target", "verdict", "reps"]


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table (readable in a terminal, pasteable into the README)."""
    rows = [COLUMNS] + [figure.cells() for figure in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (under a minute)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args()
    # Crash sweeps deliver completions twice on purpose; the SDK warns each time.
    warnings.filterwarnings("ignore", "Potential duplicate Task completion")
    started = time.perf_counter()
    about = machine()
    if not args.json:
        print(", ".join(f"{key} {value}" for key, value in about.items()), flush=True)
    figures = measure(QUICK if args.quick else FULL,
                      lambda line: print(line, file=sys.stderr, flush=True))
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"machine": about, "mode": "quick" if args.quick else "full",
                          "seconds": round(elapsed, 1),
                          "figures": [dict(asdict(f), target=str(f.target or ""), met=f.met)
                                      for f in figures]}, indent=2))
    else:
        print(table(figures))
        print(f"total {elapsed:.0f} s")


if __name__ == "__main__":
    main()
