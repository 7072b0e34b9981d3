"""Activities that sleep take virtual time: their result lands later, and nothing waits for real."""

from __future__ import annotations

import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from dafx_testing import Simulator

START = datetime(2025, 1, 1, tzinfo=timezone.utc)

APP = '''
import asyncio
import time
from datetime import datetime, timedelta, timezone
from time import sleep          # taken before any patch: must be virtual too

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def poll(context):
    seen = yield context.call_activity("slow_check", context.get_input())
    return {"activity saw": seen, "orchestration resumed": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def race(context):
    work = context.call_activity("slow_check", 60)
    deadline = context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
    winner = yield context.task_any([work, deadline])
    if winner == deadline:
        return "timed out"
    deadline.cancel()
    return "finished"


@app.orchestration_trigger(context_name="context")
def async_poll(context):
    return (yield context.call_activity("async_check", context.get_input()))


@app.activity_trigger(input_name="seconds")
def slow_check(seconds):
    before = time.time()
    time.sleep(seconds / 2)
    sleep(seconds / 2)
    return {"slept": time.time() - before, "now": datetime.now(timezone.utc).isoformat()}


@app.activity_trigger(input_name="seconds")
async def async_check(seconds):
    loop = asyncio.get_running_loop()
    before = loop.time()
    await asyncio.sleep(seconds)
    return {"slept": loop.time() - before, "now": datetime.now(timezone.utc).isoformat()}
'''


@pytest.fixture
def sim(tmp_path, monkeypatch):
    app_file = tmp_path / "function_app.py"
    app_file.write_text(textwrap.dedent(APP))
    real_sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", real_sleeps.append)   # a real sleep would show up here
    simulator = Simulator(app_file, start_time=START)
    simulator.real_sleeps = real_sleeps
    return simulator


def test_a_sleeping_activity_takes_virtual_time_and_its_code_sees_it(sim):
    status = sim.wait_for_completion(sim.start_new("poll", 90))

    assert status.output == {
        "activity saw": {"slept": 90.0, "now": "2025-01-01T00:01:30+00:00"},
        "orchestration resumed": "2025-01-01T00:01:30+00:00",
    }
    assert sim.now == START + timedelta(seconds=90)
    assert sim.real_sleeps == []


def test_until_the_sleep_is_over_the_result_is_in_flight(sim):
    instance_id = sim.start_new("poll", 90)
    sim.run_until_idle()                          # never moves the clock: the result waits

    assert sim.get_status(instance_id).runtime_status == "Running"
    assert len(sim.activity_calls("slow_check")) == 1
    sim.advance(timedelta(seconds=89))
    assert sim.get_status(instance_id).runtime_status == "Running"
    sim.advance(timedelta(seconds=1))
    assert sim.get_status(instance_id).runtime_status == "Completed"


def test_a_timer_beats_an_activity_that_sleeps_longer(sim):
    instance_id = sim.start_new("race")
    sim.advance(timedelta(seconds=31))
    # The orchestrator returned at 30 s, but the activity is still open: DTFx keeps the
    # instance Running until every task it scheduled has come back.
    assert sim.get_status(instance_id).runtime_status == "Running"

    sim.advance(timedelta(seconds=30))
    assert sim.get_status(instance_id).output == "timed out"


def test_an_async_activity_sleeps_in_virtual_time_too(sim):
    status = sim.wait_for_completion(sim.start_new("async_poll", 45))

    assert status.output == {"slept": 45.0, "now": "2025-01-01T00:00:45+00:00"}
    assert sim.real_sleeps == []


def test_a_crash_during_the_sleep_runs_the_activity_again(tmp_path):
    from dafx_testing import CrashPlan

    app_file = tmp_path / "function_app.py"
    app_file.write_text(textwrap.dedent(APP))
    sim = Simulator(app_file, start_time=START, crash_plan=CrashPlan(kinds=["activity"], times=1))

    status = sim.wait_for_completion(sim.start_new("poll", 10))

    assert status.runtime_status == "Completed"
    assert len(sim.activity_calls("slow_check")) == 2


def test_time_sleep_is_restored_after_the_activity(sim):
    patched = time.sleep
    sim.wait_for_completion(sim.start_new("poll", 2))

    assert time.sleep is patched
