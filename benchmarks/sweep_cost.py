"""Crash sweep cost: a full every-point sweep of an N-step orchestration vs one crash-free run.

Run from the repository root::

    python benchmarks/sweep_cost.py            # N = 10 and 100
    python benchmarks/sweep_cost.py --full     # also N = 1000 (minutes)

Both are measured in the same process, side by side: the crash-free run is the
median of several repetitions, the sweep runs once per N. The ratio is what a
team pays for checking every crash point instead of running the test once.
The determinism checks (guard, perturbed replay) are off in both, so the figures
measure the crash machinery alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

import azure.durable_functions as df

from dafx_testing import Simulator

app = df.DFApp()
PLAIN = {"guard": "off", "perturb": False}


@app.orchestration_trigger(context_name="context")
def chain(context):
    total = 0
    for step in range(context.get_input()):
        total = yield context.call_activity("add_one", total)
    return total


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


def scenario_for(steps: int):
    def scenario(sim: Simulator) -> None:
        sim.wait_for_completion(sim.start_new("chain", steps, instance_id="chain"))
    return scenario


def measure(steps: int, repetitions: int) -> dict:
    scenario = scenario_for(steps)
    single = []
    for _ in range(repetitions):
        started = time.perf_counter()
        scenario(Simulator(app, **PLAIN))
        single.append(time.perf_counter() - started)
    started = time.perf_counter()
    report = Simulator(app, **PLAIN).crash_sweep(scenario, idempotent=["add_one"])
    sweep = time.perf_counter() - started
    assert report.ok, report.explain()
    run = statistics.median(single)
    return {"N": steps, "points": len(report.points), "pruned": report.pruned, "run_s": run,
            "sweep_s": sweep, "ratio": sweep / run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also N = 1000")
    args = parser.parse_args()
    sizes = [(10, 5), (100, 3)] + ([(1000, 1)] if args.full else [])
    print(f"{'N':>5} {'points':>7} {'converged':>9} {'one run':>10} {'full sweep':>11} {'ratio':>7}")
    for steps, repetitions in sizes:
        row = measure(steps, repetitions)
        print(f"{row['N']:>5} {row['points']:>7} {row['pruned']:>9} {row['run_s']:>9.3f}s "
              f"{row['sweep_s']:>10.2f}s {row['ratio']:>6.1f}x")


if __name__ == "__main__":
    main()
