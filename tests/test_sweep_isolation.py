"""Crash runs forked off one pass find exactly what crash runs rerun from the start find."""

import os
import random
import sys

import azure.durable_functions as df
import pytest

from dafx_testing import Simulator
from dafx_testing.checks.forks import can_fork

app = df.DFApp()
LEDGER = []                  # the outside world: what the activities did
REPLAYS = {"count": 0}       # state an orchestrator (wrongly) keeps across episodes

needs_fork = pytest.mark.skipif(can_fork(explicit=True) is not None,
                                reason="forking crash runs needs POSIX fork()")


@app.orchestration_trigger(context_name="context")
def checkout(context):
    reserved = yield context.call_activity("reserve", context.get_input())
    charged = yield context.call_activity("charge", reserved)
    total = yield context.call_entity(df.EntityId("Till", "main"), "add", 1)
    lucky = yield context.call_activity("draw", None)
    return [reserved, charged, total, lucky]


@app.activity_trigger(input_name="item")
def reserve(item):
    LEDGER.append(f"reserve {item}")
    return f"{item}-reserved"


@app.activity_trigger(input_name="reservation")
def charge(reservation):
    LEDGER.append(f"charge {len([e for e in LEDGER if e.startswith('charge')]) + 1}")
    return LEDGER[-1]


@app.activity_trigger(input_name="ignored")
def draw(ignored):
    return random.randint(0, 10**9)     # the simulator's random stream, seeded by its seed


@app.entity_trigger(context_name="context", entity_name="Till")
def till(context):
    context.set_state(context.get_state(lambda: 0) + context.get_input())
    context.set_result(context.get_state(lambda: 0))


@app.orchestration_trigger(context_name="context")
def restock(context):
    for shelf in range(context.get_input()):
        yield context.call_activity("count_shelf", shelf)


@app.activity_trigger(input_name="shelf")
def count_shelf(shelf):
    return shelf


@app.orchestration_trigger(context_name="context")
def counts_replays(context):
    REPLAYS["count"] += 1
    yield context.call_activity("reserve", "x")
    return REPLAYS["count"]


def shop(sim):
    LEDGER.clear()
    sim.wait_for_completion(sim.start_new("checkout", "book", instance_id="c"))


def long_restock(sim):
    """A baseline of 162 worker steps: long enough for ``auto`` to fork."""
    sim.wait_for_completion(sim.start_new("restock", 80, instance_id="r"))


def replay_counter(sim):
    REPLAYS["count"] = 0
    sim.wait_for_completion(sim.start_new("counts_replays", instance_id="r"))


def dies_in_a_fork():
    parent = os.getpid()

    def scenario(sim):
        shop(sim)
        if os.getpid() != parent and sim.crashes[0].index % 2:
            raise KeyboardInterrupt("a forked crash run dies")
    return scenario


def drifts():
    runs = {"count": 0}

    def scenario(sim):
        runs["count"] += 1
        shop(sim)
        # From the second run on, the second instance has another id: the pass forking the
        # crash runs leaves the baseline there, and the points after it are rerun.
        second = "x" if runs["count"] == 1 else "y"
        sim.wait_for_completion(sim.start_new("checkout", "pen", instance_id=second))
    return scenario


CASES = {
    # name: (scenario, the scenario rerun mode is compared with, sweep options)
    "non-idempotent charge": (lambda: shop, lambda: shop, {}),
    "idempotent": (lambda: shop, lambda: shop, {"idempotent": ["charge", "reserve"]}),
    "effects": (lambda: shop, lambda: shop, {"effects": lambda: list(LEDGER)}),
    "pairs": (lambda: shop, lambda: shop, {"kinds": ["activity", "duplicate"], "pairs": True}),
    "shard": (lambda: shop, lambda: shop, {"shard": (1, 3)}),
    "module global": (lambda: replay_counter, lambda: replay_counter, {"idempotent": ["reserve"]}),
    # Forked runs that die are rerun in the sweep's process: the same findings as rerun mode.
    "dies in its fork": (dies_in_a_fork, lambda: shop, {}),
    # A pass that leaves the baseline stops forking; the rest is rerun (as rerun mode does).
    "drifts": (drifts, drifts, {"idempotent": ["charge", "reserve"]}),
}


def sweep(scenario, isolation, **options):
    """The report and the progress calls of one sweep."""
    seen = []
    report = Simulator(app, perturb=False).crash_sweep(
        scenario, isolation=isolation, progress=lambda done, planned: seen.append([done, planned]),
        **options)
    return report, seen


def findings(case, isolation):
    """Everything a sweep of ``case`` reports, in order, as JSON values."""
    fork_scenario, rerun_scenario, options = CASES[case]
    scenario = (fork_scenario if isolation == "fork" else rerun_scenario)()
    report, progress = sweep(scenario, isolation, **options)
    return {"isolation": report.isolation, "runs": report.runs, "pruned": report.pruned,
            "points": len(report.points), "progress": progress,
            "failures": [[[p.index for p in f.crashes], f.problems, f.timelines]
                         for f in report.failures],
            "duplicated": [str(d) for d in report.duplicated_effects],
            "model calls": [str(r) for r in report.repeated_model_calls]}


FRESH_PROCESS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("sweep_isolation_cases", sys.argv[1])
cases = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = cases
spec.loader.exec_module(cases)
print(json.dumps({"cases": {case: cases.findings(case, "fork") for case in cases.CASES},
                  "auto": {name: cases.sweep(scenario, "auto", idempotent=["count_shelf"],
                                              shard=(0, 40))[0].isolation
                           for name, scenario in (("short", cases.shop),
                                                  ("long", cases.long_restock))}}))
"""


@pytest.fixture(scope="module")
def fresh_process(in_fresh_process):
    """What a fresh process finds: every case's fork-mode findings, and auto's choices.

    Forking needs a process with one thread, and agent tests leave the Agent
    Framework's event-loop thread running in this one.
    """
    return in_fresh_process(FRESH_PROCESS, __file__)


@pytest.fixture(scope="module")
def forked(fresh_process):
    return fresh_process["cases"]


@needs_fork
@pytest.mark.parametrize("case", list(CASES))
def test_forked_crash_runs_find_what_rerun_crash_runs_find(forked, case):
    rerun = findings(case, "rerun")

    assert (forked[case]["isolation"], rerun["isolation"]) == ("fork", "rerun")
    assert dict(forked[case], isolation="rerun") == rerun
    assert rerun["runs"] == rerun["progress"][-1][0] == rerun["progress"][-1][1]


def draws():
    """The numbers draw() returns first and second: the simulator's stream for seed 0.

    While a simulator works, ``random`` draws from its own stream, seeded by the
    simulator's seed (core/seeded.py RandomStream); the scenario's seeding does not reach it.
    """
    stream = random.Random("0/random")
    return stream.randint(0, 10**9), stream.randint(0, 10**9)


@needs_fork
def test_forked_runs_catch_the_double_charge_and_keep_the_random_stream(forked):
    first, second = draws()
    problems = {f[0][0]: f[1] for f in forked["idempotent"]["failures"]}

    assert ("charge ran 2 times (baseline 1) after a crash at #11 activity charge (c task 1); "
            "make it idempotent") in forked["non-idempotent charge"]["failures"][2][1]
    # A forked crash run carries the simulator's random stream where the baseline had it,
    # so it draws the baseline's number...
    assert problems[11] == [
        f"instance 'c': expected Completed with output [\"book-reserved\",\"charge 1\",1,{first}], "
        f"got Completed with output [\"book-reserved\",\"charge 2\",1,{first}]"]
    # ...and a crash that makes draw run again draws the next one.
    assert f"[\"book-reserved\",\"charge 1\",1,{second}]" in problems[24][0]


def test_a_run_whose_random_state_differs_does_not_converge_with_the_baseline():
    report, _ = sweep(shop, "rerun", idempotent=["charge", "reserve", "draw"], kinds=["activity"])
    first, second = draws()

    # Declared idempotent, draw's rerun is no failure in itself; but the hub after the crash
    # looks like the baseline's before draw ran, and only the random state tells them apart.
    (failure,) = [f for f in report.failures if f.crashes[0].name == "draw"]
    assert failure.problems == [
        f"instance 'c': expected Completed with output [\"book-reserved\",\"charge 1\",1,{first}], "
        f"got Completed with output [\"book-reserved\",\"charge 1\",1,{second}]"]


@needs_fork
def test_the_shards_of_a_forked_sweep_add_up_to_the_whole_sweep(forked):
    shard = forked["shard"]
    whole = forked["non-idempotent charge"]

    assert [f[0] for f in shard["failures"]] == [f[0] for f in whole["failures"]
                                                 if f[0][0] in range(1, whole["points"], 3)]


def test_isolation_is_validated_and_auto_picks_what_the_process_allows():
    ran = []
    with pytest.raises(ValueError, match="isolation='sideways': expected one of auto, fork, rerun"):
        sweep(ran.append, "sideways")
    assert ran == []                            # refused before the baseline ran

    report, _ = sweep(shop, "auto", idempotent=["charge", "reserve"])

    assert report.isolation == "rerun"          # a short baseline: forks would cost more
    assert "converged early; rerun from the start), seed 0" in report.explain()


@needs_fork
def test_auto_forks_long_scenarios_in_a_process_that_can_fork(fresh_process):
    assert fresh_process["auto"] == {"short": "rerun", "long": "fork"}


@needs_fork
def test_forking_is_refused_while_other_threads_run_and_auto_reruns_instead(another_thread):
    with pytest.raises(RuntimeError, match=f"other threads are running \\(.*{another_thread}"):
        sweep(shop, "fork")
    report, _ = sweep(long_restock, "auto", idempotent=["count_shelf"], shard=(0, 40))

    assert report.isolation == "rerun" and report.ok


def test_only_linux_forks_by_default(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")

    assert can_fork() == "fork() is not used by default on darwin"
    assert sweep(long_restock, "auto", idempotent=["count_shelf"],
                 shard=(0, 40))[0].isolation == "rerun"
    assert "darwin" not in (can_fork(explicit=True) or "")   # asked for, macOS forks
