"""Perturbed replays: subtle non-determinism caught and explained, replay-safe code left alone."""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest

from dafx_testing import NonDeterminismError, Simulator
from dafx_testing.checks.determinism import PERTURBED_ENVIRONMENT_VALUE, PerturbedReplay, configure
from dafx_testing.checks.guard import Guard
from dafx_testing.checks.hashseed import may_depend_on_set_order
from dafx_testing.core.errors import PerturbedReplayError
from dafx_testing.functions.app import ORCHESTRATOR, index_app

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
REGIONS = {"alpha", "bravo", "charlie", "delta", "echo"}   # a module-level set of strings
_calls_seen = []                                            # a module-level mutable

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def by_clock(context: df.DurableOrchestrationContext):
    yield context.call_activity("step", "first")
    if datetime.now().hour < 12:
        yield context.call_activity("step", "morning")
    else:
        yield context.call_activity("other_step", "afternoon")
    return "done"


@app.orchestration_trigger(context_name="context")
def by_memory(context: df.DurableOrchestrationContext):
    _calls_seen.append(context.instance_id)
    first_time = _calls_seen.count(context.instance_id) == 1
    yield context.call_activity("step" if first_time else "other_step", "x")
    return "done"


@app.orchestration_trigger(context_name="context")
def by_seeded_random(context: df.DurableOrchestrationContext):
    random.seed(time.time())
    ticket = random.randint(0, 10**9)
    yield context.call_activity("step", ticket)
    return ticket


@app.orchestration_trigger(context_name="context")
def by_environment(context: df.DurableOrchestrationContext):
    if os.getenv("DAFX_TEST_FAST_PATH"):
        yield context.call_activity("other_step", "fast")
    yield context.call_activity("step", "x")
    return "done"


@app.orchestration_trigger(context_name="context")
def by_uuid(context: df.DurableOrchestrationContext):
    yield context.call_activity("step", str(uuid.uuid4()))
    return "done"


@app.orchestration_trigger(context_name="context")
def by_set_order(context: df.DurableOrchestrationContext):
    for region in REGIONS:
        yield context.call_activity("step", region)
    return "done"


@app.orchestration_trigger(context_name="context")
def by_sorted_set(context: df.DurableOrchestrationContext):
    for region in sorted(REGIONS):
        yield context.call_activity("step", region)
    return "done"


@app.orchestration_trigger(context_name="context")
def returns_wall_clock(context: df.DurableOrchestrationContext):
    yield context.call_activity("step", "x")
    return datetime.now().isoformat()


@app.orchestration_trigger(context_name="context")
def replay_safe(context: df.DurableOrchestrationContext):
    key = context.new_uuid()
    deadline = context.current_utc_datetime + timedelta(minutes=5)
    yield context.create_timer(deadline)
    result = yield context.call_activity("step", {"key": key, "at": deadline.isoformat()})
    return [key, context.new_uuid(), result]


@app.activity_trigger(input_name="value")
def step(value):
    return [value, str(uuid.uuid4()), time.time()]   # activities may do anything


@app.activity_trigger(input_name="value")
def other_step(value):
    return value


def _run(name: str, check: PerturbedReplay = None, **options) -> Simulator:
    # Only the check under test: the default guard and perturbation are turned off.
    options.setdefault("guard", "off")
    sim = Simulator(app, perturb=False,
                    episode_checks=[check or PerturbedReplay(hash_seed=False)], **options)
    sim.wait_for_completion(sim.start_new(name))
    return sim


def _user_function(name: str):
    return index_app(app).get(ORCHESTRATOR, name).user_function


def _line(text: str) -> int:
    lines = HERE.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


def test_a_branch_on_the_wall_clock_is_caught_with_the_line_that_read_it():
    with pytest.raises(PerturbedReplayError) as caught:
        _run("by_clock")

    error = caught.value
    assert isinstance(error, NonDeterminismError)
    assert (error.sequence_number, error.expected, error.actual) == (
        1, "activity 'step' [#1]", "activity 'other_step' [#1]")
    assert error.host_message.startswith(
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled an activity task with sequence number 1 named 'step', but the current "
        "orchestration replay instead scheduled an activity task named 'other_step'")
    [cause] = error.exposed_by
    assert cause.startswith("another wall-clock time (shifted by 403 days, 12:13:17.123457)")
    assert cause.endswith(f"datetime.now() at tests/test_determinism.py:{_line('datetime.now().hour')}")
    assert "exposed by:" in str(error) and "sequence number 1" in str(error)


def test_a_module_level_mutable_that_changes_between_replays_is_caught():
    with pytest.raises(PerturbedReplayError) as caught:
        _run("by_memory")

    error = caught.value
    assert (error.sequence_number, error.expected, error.actual) == (
        0, "activity 'step' [#0]", "activity 'other_step' [#0]")
    [cause] = error.exposed_by
    assert cause.startswith("state kept in process memory between replays")


def test_random_seeded_from_the_clock_is_caught():
    with pytest.raises(PerturbedReplayError) as caught:
        _run("by_seeded_random")

    clock, seed = caught.value.exposed_by
    assert clock.startswith("another wall-clock time") and "time.time() at " in clock
    assert seed.startswith("another random seed: random.randint() at ")


def test_an_environment_variable_read_is_caught(monkeypatch):
    monkeypatch.delenv("DAFX_TEST_FAST_PATH", raising=False)

    with pytest.raises(PerturbedReplayError) as caught:
        _run("by_environment")

    [cause] = caught.value.exposed_by
    line = _line('os.getenv("DAFX_TEST_FAST_PATH")')
    assert cause == ("changed environment variables (set ones unset, unset ones set): "
                     f"os.environ['DAFX_TEST_FAST_PATH'] at tests/test_determinism.py:{line}")
    assert "DAFX_TEST_FAST_PATH" not in os.environ   # only the replay saw it set
    assert PERTURBED_ENVIRONMENT_VALUE == "dafx-perturbed"


def test_a_uuid4_in_an_activity_input_is_caught_though_the_host_would_not_notice():
    with pytest.raises(PerturbedReplayError) as caught:
        _run("by_uuid")

    error = caught.value
    assert error.sequence_number == 0
    assert error.host_message.startswith("none yet: DTFx compares only the kind and name")
    assert error.exposed_by[0].startswith("other uuid values: uuid.uuid4() at ")


def test_an_output_read_from_the_wall_clock_is_caught_at_the_completion():
    with pytest.raises(PerturbedReplayError) as caught:
        _run("returns_wall_clock")

    assert caught.value.expected.startswith("completion (Completed) [#1] output=")


def test_iterating_a_set_of_strings_is_caught_in_child_interpreters():
    assert may_depend_on_set_order(_user_function("by_set_order"))

    with pytest.raises(PerturbedReplayError) as caught:
        _run("by_set_order", PerturbedReplay())   # hash_seed="auto"

    error = caught.value
    assert error.sequence_number == 0
    [cause] = error.exposed_by
    assert cause.startswith("another PYTHONHASHSEED (") and "sorted(...)" in cause


def test_iterating_a_sorted_set_passes_in_child_interpreters():
    sim = _run("by_sorted_set", PerturbedReplay(hash_seed=True))

    assert sim.nondeterminism == []


def test_code_without_sets_does_not_start_child_interpreters():
    assert not may_depend_on_set_order(_user_function("by_clock"))
    assert not may_depend_on_set_order(_user_function("replay_safe"))


def test_replay_safe_code_passes_every_perturbation():
    sim = _run("replay_safe", PerturbedReplay(hash_seed=True))

    assert sim.nondeterminism == []


def test_findings_are_recorded_when_not_raised():
    sim = _run("by_clock", raise_on_nondeterminism=False)

    assert sim.nondeterminism   # the divergent episode, and the completion after it
    assert all(isinstance(error, PerturbedReplayError) for error in sim.nondeterminism)
    assert sim.list_instances()[0].runtime_status == "Completed"   # the host has not noticed


def test_the_check_leaves_the_runs_random_stream_alone():
    random.seed(1234)
    expected = [random.random() for _ in range(3)]
    random.seed(1234)
    _run("replay_safe")

    assert [random.random() for _ in range(3)] == expected


@pytest.mark.parametrize("scenario, drive", [
    ("content_approval", lambda sim, iid: sim.raise_event(iid, "ApprovalDecision", True)),
    ("content_approval", lambda sim, iid: sim.raise_event(iid, "ApprovalDecision", False)),
    ("content_approval", lambda sim, iid: sim.advance(timedelta(hours=25))),
])
@pytest.mark.filterwarnings("error::dafx_testing.functions.app.DafxWarning")   # a skipped check is a failure
def test_no_false_positive_on_the_content_approval_scenario(scenario, drive):
    guard, checks = configure("error", perturb=PerturbedReplay(hash_seed=True))
    sim = Simulator(ROOT / "scenarios" / scenario / "function_app.py", guard=guard,
                    episode_checks=checks)
    instance_id = sim.start_new("content_approval", {"topic": "tides"})
    sim.run_until_idle()
    drive(sim, instance_id)

    assert sim.wait_for_completion(instance_id).runtime_status == "Completed"
    assert sim.nondeterminism == [] and guard.reports == []


@pytest.mark.filterwarnings("error::dafx_testing.functions.app.DafxWarning")
def test_no_false_positive_on_the_counter_entity_scenario():
    guard, checks = configure("error", perturb=PerturbedReplay(hash_seed=True))
    sim = Simulator(ROOT / "scenarios" / "counter_entity" / "function_app.py", guard=guard,
                    episode_checks=checks)
    instance_id = sim.start_new("tally", {"counter": "c1", "numbers": [1, 2, 3], "bonus": 10})

    assert sim.wait_for_completion(instance_id).runtime_status == "Completed"
    assert sim.nondeterminism == [] and guard.reports == []


def test_configure_resolves_modes_and_objects():
    guard, checks = configure()
    assert isinstance(guard, Guard) and guard.mode == "error"
    assert [type(c) for c in checks] == [PerturbedReplay]

    guard, checks = configure("warn", perturb=False, allow=["pkg.mod"])
    assert (guard.mode, guard.allow, checks) == ("warn", ("pkg.mod",), [])

    mine = PerturbedReplay(hash_seed=False)
    assert configure(None, perturb=mine)[1] == [mine]
    assert configure(None)[0].mode == "off"


@pytest.mark.parametrize("kwargs, message", [
    ({"guard": "loud"}, "guard mode 'loud'"),
    ({"perturb": "yes"}, "perturb='yes'; use True, False or a PerturbedReplay"),
    ({"guard": Guard(), "allow": ["x"]}, "pass allow= to the Guard itself"),
])
def test_configure_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        configure(**kwargs)


def test_hash_seed_setting_is_validated():
    with pytest.raises(ValueError, match="hash_seed='sometimes'; use True, False or 'auto'"):
        PerturbedReplay(hash_seed="sometimes")
