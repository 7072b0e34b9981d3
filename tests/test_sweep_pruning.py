"""Pruned crash sweeps (issue 20): crash runs that provably converge at once are decided
without running them, and every verdict is the full sweep's, point by point.

The comparisons run each sweep twice, in full (``prune=False``) and pruned (the
default), on every scenario with a crash-sweep test (through that test itself),
on the trap apps the other sweep tests use, and on an app of this file built
around the conditions a decision checks (queues holding more than one message,
timers due at once, work in flight, module memory an activity changes).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from dafx_testing import Simulator
from dafx_testing import simulator as simulator_module
from dafx_testing.checks import sweep
from dafx_testing.reports.json_output import sweep_json
from scenarios.agent_workflow import test_agent_workflow as workflow
from scenarios.content_approval import test_agent_review as agent_review
from scenarios.content_approval import test_crash_sweep as content
from scenarios.joker import test_joker as joker_tests
from scenarios.multi_agent import test_multi_agent as multi_agent
from scenarios.order_saga import test_order_saga as saga

HERE = Path(__file__).parent


def load(name: str) -> Any:
    """A test module of this folder, for its app and scenarios (tests/ is not a package)."""
    module_name = f"_pruning_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def verdicts(report: sweep.SweepReport) -> dict[str, Any]:
    """What a sweep says, point by point, with its verdict and information lines.

    Everything but how many runs were decided without running (the header's counts).
    """
    by_point: dict[tuple[int, ...], dict[str, Any]] = defaultdict(
        lambda: {"problems": [], "timelines": {}, "re-runs": [], "model calls": []})
    for failure in report.failures:
        found = by_point[tuple(p.index for p in failure.crashes)]
        found["problems"] += failure.problems
        found["timelines"].update(failure.timelines)
    for effect in report.duplicated_effects:
        by_point[tuple(p.index for p in effect.crashes)]["re-runs"].append(
            (str(effect), effect.failed, effect.harmless, effect.idempotent, effect.once))
    for calls in report.repeated_model_calls:
        by_point[tuple(p.index for p in calls.crashes)]["model calls"].append(str(calls))
    head, *information = report.explain(max_failures=len(report.failures)).splitlines()
    return {"ok": report.ok, "points": [str(p) for p in report.points], "runs": report.runs,
            "converged": report.pruned, "isolation": report.isolation,
            "by point": dict(by_point), "verdict": head.rsplit(": ", 1)[-1],
            "information": information}


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[sweep.SweepReport]:
    """Every ``Simulator.crash_sweep`` of the test runs in full, then pruned: same verdicts.

    The test sees the pruned report; the list holds them all.
    """
    reports = []

    def both(make_simulator: Any, scenario: Any, **options: Any) -> sweep.SweepReport:
        full = sweep.crash_sweep(make_simulator, scenario, **dict(options, prune=False))
        pruned = sweep.crash_sweep(make_simulator, scenario, **dict(options, prune=True))
        assert full.decided == 0
        assert verdicts(pruned) == verdicts(full)
        reports.append(pruned)
        return pruned

    monkeypatch.setattr(simulator_module, "crash_sweep", both)
    return reports


# --- 1. every scenario's crash-sweep tests, run in full and pruned ----------------------------


def scenario_app(name: str) -> str:
    return f"../scenarios/{name}"


@pytest.mark.parametrize("scenario", [content.reviewed(True), content.reviewed(False),
                                      content.unanswered],
                         ids=["approved", "rejected", "timed-out"])
def test_content_approval_sweeps(dafx_factory, compared, scenario):
    sim = dafx_factory(scenario_app("content_approval/function_app.py"))

    content.test_every_crash_point_recovers_to_the_same_outcome(sim, scenario)

    assert compared[0].decided > 0


def test_content_approval_information_lines_and_once(dafx_factory, compared):
    app = scenario_app("content_approval/function_app.py")

    content.test_without_declarations_the_sweep_lists_each_harmless_rerun_as_information(
        dafx_factory(app))
    content.test_declaring_an_activity_once_makes_its_rerun_a_failure(dafx_factory(app))

    assert [r.ok for r in compared] == [True, False]
    assert all(r.repeated_activities and r.decided > 0 for r in compared)


def test_agent_review_sweep(dafx_factory, fake_llm, compared):
    sim = dafx_factory(scenario_app("content_approval/agent_app.py"))
    agent_review.service.reset()
    fake_llm.agent(sim.app.agents["Writer"]).respond_with(agent_review.writer_model)

    agent_review.test_every_crash_point_keeps_the_review_and_the_conversation(sim)

    assert compared[0].decided > 0


def test_agent_workflow_sweep(dafx_factory, fake_llm, compared):
    sim = dafx_factory(scenario_app("agent_workflow/function_app.py"))
    fake_llm.agent(sim.app.agents["slogan-Writer"]).respond_with(
        lambda request: f'  "{workflow.SLOGAN}"  ')

    workflow.test_every_crash_point_of_an_approved_run_recovers(sim)

    assert compared[0].decided > 0


def test_joker_sweep(dafx_factory, fake_llm, compared):
    sim = dafx_factory(scenario_app("joker/function_app.py"))
    fake_llm.agent(sim.app.agents["Joker"]).respond_with(joker_tests.joker)

    joker_tests.test_a_crash_during_or_between_requests_keeps_the_conversation(sim)

    assert compared[0].decided > 0


def test_multi_agent_sweep(dafx_factory, fake_llm, compared):
    sim = dafx_factory(scenario_app("multi_agent/function_app.py"))

    multi_agent.test_triage_survives_a_crash_at_every_point(
        sim, lambda name: fake_llm.agent(sim.app.agents[name]))

    assert compared[0].decided > 0


def test_order_saga_sweeps(dafx_factory, compared):
    app = scenario_app("order_saga/function_app.py")

    saga.test_a_sweep_finds_the_double_charge_when_no_idempotency_key_is_sent(dafx_factory(app))
    saga.test_with_an_idempotency_key_every_crash_recovers_with_one_charge(dafx_factory(app))
    saga.test_compensation_survives_every_crash(dafx_factory(app))

    assert not compared[0].ok and all(r.decided > 0 for r in compared)


def test_slow_agents_sweep(dafx_factory, fake_llm, compared):
    latency = load("test_model_latency")
    sim = dafx_factory("apps/deadline_app.py")

    latency.test_a_sweep_over_slow_agents_recovers_at_every_point(
        sim, fake_llm.agent(sim.app.agents["Analyst"]))

    assert compared[0].decided > 0


# --- 2. the trap apps of the other sweep tests --------------------------------------------


def test_the_verdict_tests_traps(compared):
    traps = load("test_sweep_verdicts")

    for orchestrator, options in [("chain", {}), ("notify", {}), ("pay", {}),
                                  ("pay", {"once": ["charge"]}), ("parent", {})]:
        Simulator(traps.app).crash_sweep(traps.run(orchestrator), **options)

    assert [r.ok for r in compared] == [True, True, False, False, True]
    assert all(r.decided > 0 for r in compared)


def test_the_isolation_tests_traps(compared):
    traps = load("test_sweep_isolation")

    for case in ("non-idempotent charge", "idempotent", "effects", "shard", "module global"):
        scenario, _, options = traps.CASES[case]
        Simulator(traps.app, perturb=False).crash_sweep(scenario(), isolation="rerun", **options)
    Simulator(traps.app, perturb=False).crash_sweep(    # only random state tells a run apart
        traps.shop, idempotent=["charge", "reserve", "draw"], kinds=["activity"])
    Simulator(traps.app, perturb=False).crash_sweep(traps.long_restock, idempotent=["count_shelf"],
                                                    shard=(3, 40))

    assert [r.ok for r in compared] == [False, False, False, False, False, False, True]
    # An orchestrator counting its episodes in module memory: crash runs, whose prefix
    # episodes come from the cache, never match the baseline's memory, so none is decided.
    assert [r.decided > 0 for r in compared] == [True, True, True, True, False, False, True]


def test_the_crash_tests_traps(compared):
    traps = load("test_crash")

    def run(orchestrator: str, instance_id: str = "i") -> Any:
        def scenario(sim: Simulator) -> None:
            traps.fresh_world()
            sim.wait_for_completion(sim.start_new(orchestrator, instance_id=instance_id))
        return scenario

    def checked(sim: Simulator) -> None:
        traps.run_pipeline(sim)
        assert traps.SIDE_EFFECTS == ["a", "b"], "each record ran once"

    Simulator(traps.app).crash_sweep(traps.run_pipeline, idempotent=["record"])
    Simulator(traps.app).crash_sweep(run("invoices"))
    Simulator(traps.app).crash_sweep(run("echoes"), idempotent=["echo"])
    Simulator(traps.app).crash_sweep(run("fan_in"))
    Simulator(traps.app, perturb=False).crash_sweep(run("counts_its_replays"),
                                                    idempotent=["record"])
    Simulator(traps.app).crash_sweep(checked, idempotent=["record"])

    assert [r.ok for r in compared] == [True, False, True, False, False, False]
    assert [r.decided > 0 for r in compared] == [True, True, True, True, False, True]


def test_the_plugin_tests_checkout_app(compared):
    def scenario(sim: Simulator) -> None:
        sim.wait_for_completion(sim.start_new("checkout", "book", instance_id="c1"))

    report = Simulator(HERE / "apps" / "checkout_app.py").crash_sweep(
        scenario, idempotent=["reserve"], once=["charge"])

    assert [[p.index for p in f.crashes] for f in report.failures] == [[11], [12]]
    assert report.decided > 0


# --- 3. the conditions a decision checks ------------------------------------------------------

app = df.DFApp()
NOTES: list[Any] = []          # module memory an activity changes: its re-runs are observable


@app.orchestration_trigger(context_name="context")
def fan_out(context):
    """Three activities queued at once: a crash gives one back behind the others."""
    return (yield context.task_all([context.call_activity("note", i) for i in range(3)]))


@app.activity_trigger(input_name="value")
def note(value):
    NOTES.append(value)
    return value


@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.orchestration_trigger(context_name="context")
def echoes(context):
    """Activities one after another: every step starts where the previous one ended."""
    letters = []
    for letter in "abc":
        letters.append((yield context.call_activity("echo", letter)))
    return letters


@app.orchestration_trigger(context_name="context")
def ticks(context):
    """A timer due at once (it fires at the start of the next step), then continue-as-new."""
    yield context.create_timer(context.current_utc_datetime)
    rounds = context.get_input()
    if rounds < 2:
        context.continue_as_new(rounds + 1)
        return None
    return (yield context.call_activity("echo", rounds))


@app.activity_trigger(input_name="seconds")
def slow(seconds):
    """Takes virtual time: its result stays in flight meanwhile, and a crash abandons it."""
    time.sleep(seconds)
    return seconds


@app.orchestration_trigger(context_name="context")
def waits_for_slow_work(context):
    first = context.call_activity("slow", 30)
    second = context.call_activity("slow", 10)
    return (yield context.task_all([first, second, context.call_activity("echo", "now")]))


@app.orchestration_trigger(context_name="context")
def parent(context):
    child = yield context.call_sub_orchestrator("fan_out", None, instance_id="child")
    counted = yield context.call_entity(df.EntityId("Counter", "c"), "add", len(child))
    approved = yield context.wait_for_external_event("approve")
    return [child, counted, approved]


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context):
    context.set_state(context.get_state(lambda: 0) + context.get_input())
    context.set_result(context.get_state(lambda: 0))


def many_at_once(sim: Simulator) -> None:
    """Two instances and an entity signalled from outside: queues holding several messages."""
    NOTES.clear()
    sim.signal_entity(("Counter", "c"), "add", 10)
    first = sim.start_new("fan_out", instance_id="a")
    second = sim.start_new("ticks", 0, instance_id="t")
    sim.run_until_idle()
    third = sim.start_new("parent", instance_id="p")
    sim.run_until_idle()
    sim.raise_event(third, "approve", True)
    sim.advance(timedelta(minutes=1))
    for instance_id in (first, second, third):
        sim.wait_for_completion(instance_id)


def in_flight(sim: Simulator) -> None:
    sim.wait_for_completion(sim.start_new("waits_for_slow_work", instance_id="w"))


def test_decisions_where_queues_hold_several_messages_and_timers_come_due(compared):
    Simulator(app).crash_sweep(many_at_once)
    Simulator(app).crash_sweep(many_at_once, idempotent=["note", "echo"],
                               effects=lambda: sorted(set(NOTES)))

    assert [r.ok for r in compared] == [False, True]
    assert all(0 < r.decided < r.runs for r in compared)


def test_a_message_given_back_behind_others_is_run(compared):
    report = Simulator(app).crash_sweep(run("fan_out"), kinds=["dequeue"], idempotent=["note"])

    # The first episode (a driving call's first step), then three activities queued at once:
    # the first two go back behind the others (run); the last, and the episode after, decided.
    assert [p.name for p in report.points if p.kind == "dequeue"] == ["fan_out"] + ["note"] * 3 + [
        "fan_out"]
    assert report.ok and report.decided == 2 and report.ran == 3


def test_decisions_with_work_in_flight(compared):
    report = Simulator(app).crash_sweep(in_flight, idempotent=["slow", "echo"])

    assert report.ok and 0 < report.decided < report.runs


def run(orchestrator: str, data: Any = None) -> Any:
    def scenario(sim: Simulator) -> None:
        NOTES.clear()
        sim.wait_for_completion(sim.start_new(orchestrator, data, instance_id="i"))
    return scenario


@pytest.mark.parametrize("kind, decided", [
    ("dequeue", "all but the first step's"), ("episode", "all but the first step's"),
    ("activity", "all"), ("after-commit", "all"), ("duplicate", "none")])
def test_which_points_a_chain_decides(kind, decided):
    """The first step starts a driving call, where the state before it was never a step's end."""
    report = Simulator(app).crash_sweep(run("echoes"), kinds=[kind], idempotent=["echo"])
    runs = sum(p.kind == kind for p in report.points)

    assert report.ok and report.runs == runs == (3 if kind in ("activity", "duplicate") else
                                                 4 if kind == "episode" else 7)
    expected = {"all": runs, "none": 0, "all but the first step's": runs - 1}[decided]
    assert report.decided == expected


def test_the_step_after_a_timer_came_due_is_run(compared):
    report = Simulator(app).crash_sweep(run("ticks", 2), kinds=["dequeue", "episode"],
                                        idempotent=["echo"])

    # Episodes: the first (it sets a timer due at once: run, as a driving call's first step),
    # the one the timer wakes (its step fires the timer first: run), the one after the
    # activity (decided); and the activity's dequeue (decided).
    assert [str(p) for p in report.points if p.kind in ("dequeue", "episode")] == [
        "#0 dequeue ticks (i episode at event 0)", "#1 episode ticks (i episode at event 0)",
        "#3 dequeue ticks (i episode at event 4)", "#4 episode ticks (i episode at event 4)",
        "#6 dequeue echo (i task 1)",
        "#10 dequeue ticks (i episode at event 8)", "#11 episode ticks (i episode at event 8)"]
    assert report.ok and report.decided == 3 and report.ran == 4


def test_an_activity_that_changes_module_memory_is_run(compared):
    report = Simulator(app).crash_sweep(run("fan_out"), kinds=["activity"], idempotent=["note"])

    assert report.decided == 0 and report.runs == 3


# --- 4. the summary says what was decided ---------------------------------------------------


def test_the_summary_and_the_json_count_the_runs_decided_without_running():
    traps = load("test_sweep_verdicts")
    pruned = Simulator(traps.app).crash_sweep(traps.run("chain"))
    full = Simulator(traps.app).crash_sweep(traps.run("chain"), prune=False)

    assert pruned.runs == full.runs == len(pruned.points)
    assert pruned.decided + pruned.ran == pruned.runs and pruned.ran < pruned.runs
    assert pruned.counts() == (
        f"{len(pruned.points)} commit points, {pruned.runs} crash runs ({pruned.decided} decided "
        f"without a run, {pruned.ran} run: {pruned.pruned - pruned.decided} converged early; "
        "rerun from the start), seed 0")
    assert pruned.explain().startswith(f"crash sweep: {pruned.counts()}: all invariants held")
    assert full.counts() == (f"{len(full.points)} commit points, {full.runs} crash runs "
                             f"({full.pruned} converged early; rerun from the start), seed 0")
    document = json.loads(json.dumps(sweep_json(pruned)))
    assert (document["runs"], document["decided"]) == (pruned.runs, pruned.decided)
    assert sweep_json(full)["decided"] == 0


def test_pairs_sweeps_run_every_schedule():
    traps = load("test_sweep_verdicts")

    report = Simulator(traps.app).crash_sweep(traps.run("chain"), pairs=True)

    assert report.decided == 0 and report.runs > len(report.points)
