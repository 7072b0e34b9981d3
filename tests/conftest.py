"""Fixtures shared by the simulator's own tests."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

try:
    import fcntl
except ImportError:                 # not POSIX: each worker runs its own fresh process
    fcntl = None  # type: ignore[assignment]

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


@pytest.fixture(scope="session")
def in_fresh_process(tmp_path_factory: pytest.TempPathFactory,
                     worker_id: str) -> Callable[[str, str], Any]:
    """Run ``code`` in a fresh interpreter (the test file as ``sys.argv[1]``): its stdout as JSON.

    Forking needs a process with one thread, and agent tests leave the Agent Framework's
    event-loop thread running in the test processes. The answer is made once per test run:
    under xdist the first worker to ask runs the interpreter and the others read its answer,
    rather than each worker that runs one of the module's tests making it again.
    """
    def run(code: str, file: str) -> Any:
        def answer() -> str:
            done = subprocess.run([sys.executable, "-c", code, file], capture_output=True,
                                  text=True, timeout=600, cwd=Path(__file__).parent.parent)
            assert done.returncode == 0, done.stderr
            return done.stdout

        if worker_id == "master" or fcntl is None:
            return json.loads(answer())
        shared = tmp_path_factory.getbasetemp().parent / f"{Path(file).stem}.fresh-process.json"
        with shared.with_suffix(".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not shared.is_file():
                shared.write_text(answer(), encoding="utf-8")
        return json.loads(shared.read_text(encoding="utf-8"))
    return run


@pytest.fixture
def another_thread() -> Iterator[str]:
    """A second thread (``model-loop``) running through the test: a process that cannot fork."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="model-loop", daemon=True)
    thread.start()
    yield thread.name
    stop.set()
    thread.join()
