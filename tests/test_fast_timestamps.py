"""The replay fast path parses exactly as dateutil does, and changes no scenario's history."""

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dateutil.parser import parse as dateutil_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dafx_testing import Simulator
from dafx_testing.fast_timestamps import parse, swapped_in
from dafx_testing.llm import FakeLLM
from fakes.personas import joker, schema_filler

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def same(text):
    fast, slow = parse(text), dateutil_parse(text)
    assert (fast, fast.tzinfo, repr(fast)) == (slow, slow.tzinfo, repr(slow))


@pytest.fixture(params=["UTC", "Europe/Rome", "Europe/London", "Africa/Casablanca"])
def local_zone(request, monkeypatch):
    """The machine's local zone: dateutil's reading of ``Z`` depends on it."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
       st.integers(0, 7), st.sampled_from(["Z", "+00:00", ""]), st.integers(0, 9))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_host_timestamp_parses_to_dateutils_value(local_zone, moment, digits, zone,
                                                        extra_digit):
    fraction = f"{moment.microsecond:06d}{extra_digit}"[:digits]
    whole = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
             f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    same(whole + (f".{fraction}" if digits else "") + zone)


@pytest.mark.parametrize("text", ["2025-01-01 00:00:00", "2025-01-01T00:00:00+01:00",
                                  "2025-01-01T00:00:00.12345678Z", "Jan 1 2025 10:00"])
def test_other_shapes_go_to_dateutil(text):
    same(text)


def test_an_impossible_date_fails_as_dateutil_fails():
    with pytest.raises(ValueError) as fast:
        parse("2025-02-30T00:00:00Z")
    with pytest.raises(ValueError) as slow:
        dateutil_parse("2025-02-30T00:00:00Z")
    assert str(fast.value) == str(slow.value)


def test_the_swap_is_undone_on_exit_and_nests():
    from azure.durable_functions.models.history import HistoryEvent

    module = __import__(HistoryEvent.__module__, fromlist=["dt_parse"])
    with swapped_in():
        with swapped_in():
            assert module.dt_parse is parse
        assert module.dt_parse is parse
    assert module.dt_parse is dateutil_parse


# -- every scenario, with and without the fast path, byte for byte --

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


def histories(app: str, drive, fast: bool) -> str:
    with FakeLLM() as fake:
        sim = Simulator(str(SCENARIOS / app), fast_timestamps=fast, seed=11)
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


def test_history_timestamps_reach_the_orchestrator_as_utc(local_zone):
    # What orchestrator code sees: current_utc_datetime is aware UTC in every local zone.
    assert parse("2025-07-01T00:00:00Z").utcoffset() == timezone.utc.utcoffset(None)
