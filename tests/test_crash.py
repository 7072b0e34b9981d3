"""Crash injection: plans, recovery at every kind of point, sweeps and their findings."""

from collections import Counter
from datetime import datetime, timezone

import azure.durable_functions as df
import pytest

from dafx_testing import POINT_KINDS, CrashPlan, NonDeterminismError, Simulator
from dafx_testing.core.crash import CommitPoint, CrashLog
from dafx_testing.core.history import EventType, new_event
from dafx_testing.core.hub import SettledHistory

app = df.DFApp()
NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)
EPISODES = Counter()          # a module global the orchestrator (wrongly) keeps state in
INVOICES = {"next": 1}        # a module global an activity (wrongly) numbers invoices with
SIDE_EFFECTS = []


@app.orchestration_trigger(context_name="context")
def pipeline(context):
    first = yield context.call_activity("record", "a")
    second = yield context.call_activity("record", "b")
    counted = yield context.call_entity(df.EntityId("Tally", "t"), "add", 1)
    return [first, second, counted]


@app.activity_trigger(input_name="value")
def record(value):
    SIDE_EFFECTS.append(value)
    return value.upper()


@app.entity_trigger(context_name="context", entity_name="Tally")
def tally(context):
    value = context.get_state(lambda: 0) + context.get_input()
    context.set_state(value)
    context.set_result(value)


@app.orchestration_trigger(context_name="context")
def counts_its_replays(context):
    EPISODES[context.instance_id] += 1
    yield context.call_activity("record", "x")
    yield context.call_activity("record", "y")
    return EPISODES[context.instance_id]


@app.orchestration_trigger(context_name="context")
def invoices(context):
    return (yield context.call_activity("issue_invoice", None))


@app.activity_trigger(input_name="ignored")
def issue_invoice(ignored):
    number = INVOICES["next"]
    INVOICES["next"] += 1
    return f"INV-{number}"


@app.orchestration_trigger(context_name="context")
def fan_in(context):
    return (yield context.task_all([context.call_activity("record", v) for v in "pqrs"]))


@app.orchestration_trigger(context_name="context")
def echoes(context):
    letters = []
    for letter in "abcde":
        letters.append((yield context.call_activity("echo", letter)))
    return letters


@app.activity_trigger(input_name="letter")
def echo(letter):
    return letter


def fresh_world():
    EPISODES.clear()
    INVOICES["next"] = 1
    SIDE_EFFECTS.clear()


def run_pipeline(sim):
    fresh_world()
    sim.wait_for_completion(sim.start_new("pipeline", instance_id="p"))


def baseline():
    sim = Simulator(app)
    run_pipeline(sim)
    return sim


def test_crash_plan_validates_its_arguments():
    with pytest.raises(ValueError, match="unknown crash point kind.*valid: dequeue"):
        CrashPlan(kinds={"explode"})
    with pytest.raises(ValueError, match="rate must be between 0 and 1"):
        CrashPlan(kinds={"activity"}, rate=2)


def test_a_plan_matches_by_index_kind_function_and_rate():
    point = CommitPoint(3, "activity", "Record", "p", "task 0")

    assert CrashPlan(at=[3]).matches(point)
    assert not CrashPlan(at=[4]).matches(point)
    assert CrashPlan(kinds={"activity"}).matches(point)
    assert CrashPlan(functions={"record"}).matches(point)
    assert not CrashPlan(functions={"record"}).matches(CommitPoint(3, "duplicate", "record", "p", "t"))
    assert not CrashPlan(kinds={"episode"}).matches(point)
    draws = [CrashPlan(kinds=POINT_KINDS, rate=0.5, seed=1).matches(point) for _ in range(1)]
    assert draws == [CrashPlan(kinds=POINT_KINDS, rate=0.5, seed=1).matches(point)]
    assert not CrashPlan().matches(point)


def test_work_that_just_crashed_is_let_through_on_its_retry():
    log = CrashLog(plan=CrashPlan(kinds={"activity"}))

    assert log.reach("activity", "record", "p", "task 0") is True
    assert log.reach("activity", "record", "p", "task 0") is False     # the retry
    assert log.reach("activity", "record", "p", "task 1") is True
    assert [p.index for p in log.crashed] == [0, 2]


def test_times_caps_the_number_of_crashes():
    sim = Simulator(app, crash_plan=CrashPlan(kinds={"activity", "episode"}, times=2))
    run_pipeline(sim)
    assert len(sim.crashes) == 2


@pytest.mark.parametrize("kind", POINT_KINDS)
def test_a_crash_at_each_kind_of_point_recovers_to_the_baseline(kind):
    expected = baseline()
    expected_output = expected.get_status("p").output
    expected_effects = list(SIDE_EFFECTS)

    sim = Simulator(app, crash_plan=CrashPlan(kinds={kind}))
    run_pipeline(sim)

    status = sim.get_status("p")
    assert sim.crashes and {p.kind for p in sim.crashes} == {kind}
    assert status.runtime_status == "Completed" and status.output == expected_output
    assert sim.entity_state(("Tally", "t")) == 1       # the entity op ran or committed once
    sim.check_replay("p")
    if kind in ("activity", "duplicate"):              # at-least-once: the activity ran again
        assert len(SIDE_EFFECTS) > len(expected_effects)
    else:
        assert SIDE_EFFECTS == expected_effects


def test_an_entity_batch_lost_before_commit_runs_again_without_double_counting():
    sim = Simulator(app, crash_plan=CrashPlan(kinds={"entity"}))
    run_pipeline(sim)

    assert sim.entity_operations == Counter({"tally.add": 2})   # ran twice...
    assert sim.entity_state(("Tally", "t")) == 1                 # ...committed once
    assert sim.get_status("p").output == ["A", "B", 1]


def test_duplicate_delivery_runs_the_activity_twice_and_the_host_ignores_the_second_result():
    sim = Simulator(app, crash_plan=CrashPlan(kinds={"duplicate"}))
    run_pipeline(sim)

    assert SIDE_EFFECTS == ["a", "a", "b", "b"]
    history = sim.get_status("p").history
    completions = [e["TaskScheduledId"] for e in history if e["EventType"] == 5]
    assert completions == [0, 0, 1, 1]              # both results recorded, the first wins
    assert sim.get_status("p").output == ["A", "B", 1]


def test_reordered_completions_reach_the_same_result():
    orders = set()
    for seed in range(6):
        fresh_world()
        sim = Simulator(app, shuffle_seed=seed)
        status = sim.wait_for_completion(sim.start_new("fan_in"))
        orders.add(tuple(SIDE_EFFECTS))
        assert status.output == ["P", "Q", "R", "S"]
    assert len(orders) > 1                          # the executions really were reordered


def test_seeded_random_crashes_reproduce_exactly():
    def crashes(seed):
        sim = Simulator(app, crash_plan=CrashPlan(kinds=POINT_KINDS, rate=0.3, seed=seed))
        run_pipeline(sim)
        assert sim.get_status("p").output == ["A", "B", 1]
        return sim.crashes

    assert crashes(5) == crashes(5)
    assert crashes(5) != crashes(6)


def test_sweep_catches_state_kept_in_a_module_global_with_a_one_crash_schedule():
    def scenario(sim):
        fresh_world()
        sim.wait_for_completion(sim.start_new("counts_its_replays", instance_id="g"))

    # The default perturbed replay already flags it on the first episode...
    with pytest.raises(NonDeterminismError, match="counts_its_replays|replay"):
        scenario(Simulator(app))
    # ...and without it, a crash sweep still does.
    report = Simulator(app, perturb=False).crash_sweep(scenario, idempotent=["record"])

    assert not report.ok
    failure = report.failures[0]
    assert len(failure.crashes) == 1
    # A crash run skips the baseline's episodes up to its crash (their outcomes are known),
    # so, as in a restarted worker, the counter no longer matches what it counted before.
    assert failure.problems[0].startswith(
        "instance 'g': expected Completed with output 3, got Completed with output")


def test_sweep_catches_a_non_idempotent_activity_and_the_same_seed_finds_the_same():
    def scenario(sim):
        fresh_world()
        sim.wait_for_completion(sim.start_new("invoices", instance_id="i"))

    first = Simulator(app).crash_sweep(scenario)
    second = Simulator(app).crash_sweep(scenario)

    assert not first.ok
    assert [f.crashes for f in first.failures] == [f.crashes for f in second.failures]
    assert [f.problems for f in first.failures] == [f.problems for f in second.failures]
    assert any('"INV-2"' in p for f in first.failures for p in f.problems)
    assert "issue_invoice ran 2 times (baseline 1)" in first.explain()


def test_sweep_prunes_runs_once_they_converge_with_the_baseline():
    report = Simulator(app).crash_sweep(run_pipeline, idempotent=["record"])

    assert report.ok, report.explain()
    assert report.runs == len(report.points)
    # Only the runs that repeated an activity (2 activities x lost result or duplicate
    # delivery) leave SIDE_EFFECTS different from the baseline's; the rest converge.
    assert report.pruned == report.runs - 4


def test_duplicate_deliveries_converge_once_the_orchestrator_has_replayed_the_duplicate():
    def scenario(sim):
        sim.wait_for_completion(sim.start_new("echoes", instance_id="e"))

    report = Simulator(app).crash_sweep(scenario, kinds=["duplicate"], idempotent=["echo"])
    one_run = Simulator(app, crash_plan=CrashPlan(kinds={"duplicate"}, times=1))
    scenario(one_run)

    assert report.ok, report.explain()
    assert report.runs == 5 and report.pruned == 5
    # Converging compares histories without the ignored duplicate; it is still recorded.
    completions = [e["TaskScheduledId"] for e in one_run.hub.get("e").history
                   if e["EventType"] == EventType.TaskCompleted]
    assert completions == [0, 0, 1, 2, 3, 4]


def test_a_settled_history_skips_an_ignored_duplicate_and_says_when_it_was_replayed():
    started = new_event(EventType.OrchestratorStarted, NOW)
    finished = new_event(EventType.OrchestratorCompleted, NOW)
    scheduled = new_event(EventType.TaskScheduled, NOW, 0, Name="echo")
    done = new_event(EventType.TaskCompleted, NOW, TaskScheduledId=0, Result='"a"')
    timer = new_event(EventType.TimerCreated, NOW, 1, FireAt="2025-01-01T00:01:00Z")
    first_two = [started, scheduled, finished, started, done, timer, finished]
    clean, duplicated = SettledHistory(), SettledHistory()
    clean.add(first_two)
    duplicated.add(first_two)

    duplicated.add([started, done, finished])   # an episode that only received the duplicate
    received = (duplicated.digest == clean.digest, duplicated.absorbing)
    clean.add([started, finished])
    duplicated.add([started, finished])         # the next episode replays it

    assert received == (True, True)
    assert (duplicated.digest, duplicated.absorbing) == (clean.digest, False)
    mixed = SettledHistory()                    # received with other news: only it is skipped
    mixed.add(first_two + [started, done, new_event(EventType.TimerFired, NOW, TimerId=1),
                           finished])
    plain = SettledHistory()
    plain.add(first_two + [started, new_event(EventType.TimerFired, NOW, TimerId=1), finished])
    assert mixed.digest == plain.digest


def test_a_scenario_that_raises_after_a_crash_is_a_failure():
    def scenario(sim):
        run_pipeline(sim)
        assert SIDE_EFFECTS == ["a", "b"], "each record ran once"

    report = Simulator(app).crash_sweep(scenario, idempotent=["record"], kinds=["activity"])

    assert not report.ok and len(report.failures) == 2
    assert all(f.problems[0].startswith("the scenario raised AssertionError: each record ran once")
               for f in report.failures)


def test_exploration_passes_a_sound_app_and_shrinks_a_failure_to_one_crash():
    def sound(sim):
        fresh_world()
        sim.wait_for_completion(sim.start_new("fan_in", instance_id="f"))

    assert Simulator(app).explore(sound, max_examples=25, idempotent=["record"]) == 25

    def buggy(sim):
        fresh_world()
        sim.wait_for_completion(sim.start_new("invoices", instance_id="i"))

    from dafx_testing.checks.explore import ScheduleFailure

    with pytest.raises(ScheduleFailure) as caught:
        Simulator(app, seed=3).explore(buggy, max_examples=40)
    message = str(caught.value)
    assert "exploration seed 3" in message
    assert "reproduce: Simulator(app, crash_plan=CrashPlan(at=[" in message
    schedule = message.split("schedule Schedule(crash_at=(", 1)[1].split(")", 1)[0]
    assert len([i for i in schedule.split(",") if i.strip()]) == 1      # shrunk to one crash


def test_a_reproduction_line_replays_the_failure():
    from dafx_testing.checks.explore import Schedule

    schedule = Schedule(crash_at=(4,), shuffle_seed=None)
    assert schedule.reproduce() == "Simulator(app, crash_plan=CrashPlan(at=[4]))"
    fresh_world()
    sim = Simulator(app, crash_plan=CrashPlan(at=[4]))
    sim.wait_for_completion(sim.start_new("invoices", instance_id="i"))
    assert sim.crashes[0].index == 4 and sim.get_status("i").output == "INV-2"
