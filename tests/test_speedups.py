"""Every speed-up keeps fidelity: each scenario records the same histories with and without it.

The fast timestamp path (``Simulator(fast_timestamps=...)``), resumed host-side
replays (``settings.resume_host_replay``) and the cached context JSON
(``settings.cached_context_json``) are all on by default; each scenario is driven
with the speed-up and without it, and the task hubs compared byte for byte.
"""

import json
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest

from dafx_testing import NonDeterminismError, Simulator
from dafx_testing.functions import orchestrations
from dafx_testing.functions.orchestrations import context_json
from dafx_testing.llm import FakeLLM
from fakes.personas import joker, schema_filler

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def content_approval(sim):
    approved = sim.start_new("content_approval", {"topic": "tides"})
    sim.start_new("content_approval", {"topic": "ebbs"})                   # times out
    sim.run_until_idle()
    sim.raise_event(approved, "ApprovalDecision", {"approved": True})
    sim.advance(timedelta(hours=25))


def agent_content_approval(sim):
    instance_id = sim.start_new("agent_content_approval", {"topic": "tides"})
    sim.run_until_idle()
    sim.raise_event(instance_id, "ApprovalDecision", {"approved": False, "feedback": "shorter"})
    sim.advance(timedelta(hours=25))


def counter_entity(sim):
    sim.wait_for_completion(sim.start_new("tally", {"counter": "c", "numbers": [1, 2, 3]}))


def order_saga(sim):
    sim.wait_for_completion(sim.start_new("place_order", {"id": "o1", "item": "book",
                                                          "amount": 12}))


def versioning(sim):
    order = {"id": "o1", "item": "book", "quantity": 1, "amount": 12, "customer": "ada"}
    fresh = sim.start_new("order_fulfillment", order)
    sim.run_until_idle()
    sim.raise_event(fresh, "ShipmentApproved", True)
    for recorded in sorted((SCENARIOS / "versioning" / "histories").glob("*.json")):
        sim.load_history(recorded, instance_id=recorded.stem)   # v1 histories under v2 code
    sim.advance(timedelta(days=8))


def multi_agent(sim):
    for name, text in [("write_article", "tides"), ("review_article", "A text."),
                       ("triage_ticket", "The app crashes.")]:
        sim.wait_for_completion(sim.start_new(name, text))


def joker_sessions(sim):
    first = sim.http.post("/api/agents/Joker/run", data="Tell me a joke.")
    sim.http.post("/api/agents/Joker/run", json={"message": "Explain it.",
                                                 "session_id": first.headers["x-ms-session-id"]})


def agent_workflow(sim):
    instance_id = sim.http.post("/api/workflow/slogan/run", json="A slogan").json()["instanceId"]
    sim.run_until_idle()
    status = sim.http.get(f"/api/workflow/slogan/status/{instance_id}").json()
    sim.http.post(status["pendingHumanInputRequests"][0]["respondUrl"], json="approve")
    sim.wait_for_completion(instance_id)


DRIVES = [
    ("content_approval/function_app.py", content_approval),
    ("content_approval/agent_app.py", agent_content_approval),
    ("counter_entity/function_app.py", counter_entity),
    ("order_saga/function_app.py", order_saga),
    ("versioning/function_app_v2.py", versioning),
    ("multi_agent/function_app.py", multi_agent),
    ("joker/function_app.py", joker_sessions),
    ("agent_workflow/function_app.py", agent_workflow),
]


def histories(app: str, drive, fast: bool = True, resume: bool = True,
              cached: bool = True) -> str:
    """Everything durable after ``drive`` ran the scenario ``app``, as JSON text."""
    with FakeLLM() as fake:
        sim = Simulator(str(SCENARIOS / app), fast_timestamps=fast, seed=11)
        sim.settings.resume_host_replay = resume
        sim.settings.cached_context_json = cached
        fake.clock = lambda: sim.now
        fake.respond_with(lambda request: joker(request) if "joke" in request.instructions
                          else schema_filler(request))
        drive(sim)
        return json.dumps({
            "instances": {i.instance_id: [i.runtime_status, i.output, i.history]
                          for i in sim.hub.instances.values()},
            "entities": {entity_id: record.state for entity_id, record in sim.hub.entities.items()},
        }, sort_keys=True)


@pytest.mark.parametrize("app, drive", DRIVES, ids=[app for app, _ in DRIVES])
def test_each_scenario_records_the_same_histories_with_and_without_the_fast_path(app, drive):
    fast = histories(app, drive, fast=True)

    assert fast == histories(app, drive, fast=False)
    recorded = json.loads(fast)
    statuses = {status for status, _, _ in recorded["instances"].values()}
    assert statuses <= {"Completed", "Running"} and (statuses or recorded["entities"])


@pytest.mark.parametrize("app, drive", DRIVES, ids=[app for app, _ in DRIVES])
def test_each_scenario_records_the_same_histories_with_and_without_resumed_host_replays(
        app, drive):
    resumed = histories(app, drive)

    assert resumed == histories(app, drive, resume=False)


@pytest.fixture
def bodies(monkeypatch):
    """Every episode's context JSON as sent, checked against ``json.dumps`` of the whole payload.

    Each entry: how many past events came from the cache, the body sent, and
    the body encoded the old way at the same moment (before the commit marks
    the new events played). A mismatch raises at once, inside a crash run too.
    """
    sent = []
    build = orchestrations.context_body

    def checked(execution, events, played, timer_limits, pieces=None):
        reused = 0 if pieces is None else min(len(pieces), played)
        body = build(execution, events, played, timer_limits, pieces)
        whole = json.dumps(context_json(execution, events, played > 0, timer_limits))
        assert body == whole, "the cached context JSON differs from json.dumps of the payload"
        sent.append((reused, body, whole))
        return body

    monkeypatch.setattr(orchestrations, "context_body", checked)
    return sent


@pytest.mark.parametrize("app, drive", DRIVES, ids=[app for app, _ in DRIVES])
def test_each_scenario_sends_the_same_context_json_with_and_without_cached_events(
        app, drive, bodies):
    cached = histories(app, drive)
    sent = list(bodies)
    bodies.clear()

    assert cached == histories(app, drive, cached=False)
    assert [body for _, body, _ in sent] == [whole for _, _, whole in sent]   # byte for byte
    assert [body for _, body, _ in sent] == [body for _, body, _ in bodies]   # as sent without
    assert not any(reused for reused, _, _ in bodies)       # off: nothing came from the cache
    assert any(reused for reused, _, _ in sent) == bool(sent)   # on: the past came from it


app = df.DFApp()
FLIP = {"extra": False}     # flipped between episodes: the orchestrator then changes its actions


@app.orchestration_trigger(context_name="context")
def chain(context):
    for step in range(5):
        if FLIP["extra"] and step == 1:
            yield context.call_activity("audit", step)   # inserted before work already done
        yield context.call_activity("step", step)
    return "done"


@app.activity_trigger(input_name="number")
def step(number):
    return number


@app.activity_trigger(input_name="number")
def audit(number):
    return number


def replays_per_episode(resume: bool, flip_after: int = 0):
    """The host-side replay object of each episode of one ``chain`` run."""
    FLIP["extra"] = False
    seen = []

    def record(handle, episode):
        seen.append(episode.host_replay)
        if flip_after and len(seen) == flip_after:
            FLIP["extra"] = True
        return None

    sim = Simulator(app, perturb=False)
    sim.settings.resume_host_replay = resume
    sim.settings.episode_checks.append(record)
    instance_id = sim.start_new("chain")
    try:
        sim.wait_for_completion(instance_id)
    finally:
        FLIP["extra"] = False
    return seen, sim


def test_one_host_replay_object_goes_on_from_episode_to_episode():
    resumed, _ = replays_per_episode(resume=True)
    fresh, _ = replays_per_episode(resume=False)

    assert len(resumed) == len(fresh) == 6
    assert len({id(r) for r in resumed}) == 1           # resumed: one object, six episodes
    assert len({id(r) for r in fresh}) == 6             # off: a full replay per episode
    assert resumed[-1].processed == fresh[-1].processed   # every event, once


def test_changed_actions_fall_back_to_a_full_replay_that_finds_the_non_determinism():
    errors = []
    for resume in (True, False):
        with pytest.raises(NonDeterminismError) as found:
            replays_per_episode(resume=resume, flip_after=3)
        errors.append(str(found.value))

    assert errors[0] == errors[1]
    assert "audit" in errors[0] and "step" in errors[0]


@app.orchestration_trigger(context_name="context")
def looper(context):
    count = context.get_input() or 0
    yield context.call_activity("step", count)
    if count < 3:
        context.continue_as_new(count + 1)       # a new execution: a new history
        return None
    return count


@app.orchestration_trigger(context_name="context")
def waiter(context):
    yield context.call_activity("step", 0)
    name = yield context.wait_for_external_event("go")
    yield context.call_activity("step", 1)
    return name


FAILS = {"left": 0}


@app.activity_trigger(input_name="number")
def flaky(number):
    if FAILS["left"]:
        FAILS["left"] -= 1
        raise ValueError("fails once")
    return number


@app.orchestration_trigger(context_name="context")
def fragile(context):
    first = yield context.call_activity("step", 1)
    second = yield context.call_activity("flaky", 2)
    return first + second


def lifecycle(sim):
    """Every way a history is replaced: continue-as-new, rewind, restart, purge, loading."""
    sim.wait_for_completion(sim.start_new("looper", 0, instance_id="loop"))
    FAILS["left"] = 1
    instance_id = sim.start_new("fragile", instance_id="fragile")
    sim.run_until_idle()
    assert sim.get_status(instance_id).runtime_status == "Failed"
    sim.rewind(instance_id)                      # edits history events in place
    sim.wait_for_completion(instance_id)
    sim.wait_for_completion(sim.restart(instance_id, new_instance_id=False))
    sim.purge("loop")
    sim.wait_for_completion(sim.start_new("looper", 2, instance_id="loop"))
    sim.start_new("waiter", instance_id="waiter")
    sim.run_until_idle()
    history = [dict(event, IsPlayed=False) for event in sim.hub.get("waiter").history]
    sim.load_history({"instanceId": "copy", "name": "waiter", "runtimeStatus": "Running",
                      "history": history})   # loading marks every event played
    for instance_id in ("waiter", "copy"):
        sim.raise_event(instance_id, "go", instance_id)
        sim.wait_for_completion(instance_id)


def lifecycle_histories(cached: bool) -> str:
    sim = Simulator(app, perturb=False, seed=3)
    sim.settings.cached_context_json = cached
    lifecycle(sim)
    return json.dumps({i.instance_id: [i.runtime_status, i.output, i.history]
                       for i in sim.hub.instances.values()}, sort_keys=True)


def test_replaced_histories_never_leave_stale_cached_events(bodies):
    cached = lifecycle_histories(cached=True)
    sent = list(bodies)
    bodies.clear()

    assert cached == lifecycle_histories(cached=False)
    assert [body for _, body, _ in sent] == [body for _, body, _ in bodies]
    assert sum(reused for reused, _, _ in sent) > len(sent)     # the past came from the cache


def test_crash_runs_send_the_same_context_json(bodies):
    """Crashes at every commit point, continue-as-new included: no stale cached event.

    (Forked crash runs start from a copy of the same hub; tests/test_sweep_isolation.py
    checks that they find what these rerun ones find.)
    """
    def scenario(sim):
        sim.wait_for_completion(sim.start_new("looper", 1, instance_id="loop"))
        sim.wait_for_completion(sim.start_new("chain", instance_id="chain"))

    report = Simulator(app, perturb=False).crash_sweep(scenario, idempotent=["step"],
                                                        isolation="rerun")

    assert report.ok, report
    assert report.runs > 50 and any(reused for reused, _, _ in bodies)
