"""Fixtures shared by the simulator's own tests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

TRIP_APP = Path(__file__).parent / "apps" / "trip_app.py"
FORECAST = "Sunny and 24C in Oslo: pack sunglasses."


class TripRun(NamedTuple):
    """``tests/apps/trip_app.py`` run once: the simulator, and its histories saved to files."""

    sim: Any
    files: dict[str, Path]
    forecast: str = FORECAST      # the Forecaster's reply


@pytest.fixture(scope="session")
def trip(tmp_path_factory: pytest.TempPathFactory) -> TripRun:
    """One run of the trip app, for the report renderers and ``dafx show``.

    ``trip-1.json``: an agent call whose reply used a tool, an activity, a
    sub-orchestration, an entity call, a timer and an event two virtual hours
    in; ``notice-1.json``: the sub-orchestration; ``doomed-1.json``: a failure.
    """
    from dafx_testing import Simulator
    from dafx_testing.llm import FakeLLM

    folder = tmp_path_factory.mktemp("histories")
    with FakeLLM() as fake:
        sim = Simulator(TRIP_APP)
        fake.agent("Forecaster").tool_call("get_weather", city="Oslo").reply(FORECAST)
        trip_id = sim.start_new("plan_trip", {"city": "Oslo"}, instance_id="trip-1")
        sim.run_until_idle()
        sim.advance(timedelta(hours=2))
        sim.raise_event(trip_id, "Confirm", True)
        sim.wait_for_completion(trip_id)
        sim.wait_for_completion(sim.start_new("doomed", None, instance_id="doomed-1"))
    files = {}
    for instance_id in ("trip-1", "notice-1", "doomed-1"):
        files[instance_id] = folder / f"{instance_id}.json"
        sim.save_history(instance_id, files[instance_id])
    return TripRun(sim, files)


@pytest.fixture
def runpytest_child(pytester: pytest.Pytester) -> Any:
    """``pytester.runpytest_subprocess`` without Hypothesis's plugin, which no nested project uses.

    Each child pytest process loads every installed plugin, and Hypothesis's imports all of
    Hypothesis: about a second per process when bytecode is not cached (each xdist run is three
    processes).
    """
    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:hypothesispytest", *args)
    return run
