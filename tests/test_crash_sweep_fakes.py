"""Crash sweeps and the fake model: every run starts from the scripts as the sweep found them.

A scripted reply is served once. Before, a crash sweep run directly (``sim.crash_sweep``) with
the fake scripted outside the scenario let the baseline use the replies up, and the crash runs
rerun from the start failed with ``ScriptExhausted``: 12 false failures in 17 runs here.
"""

import functools

import azure.durable_functions as df
import openai
import pytest

from dafx_testing import Simulator
from dafx_testing.llm import FakeLLM

app = df.DFApp()


@functools.cache
def _client():
    return openai.OpenAI(api_key="sk-fake", max_retries=0)


@app.orchestration_trigger(context_name="context")
def ask_twice(context):
    first = yield context.call_activity("ask", "one")
    second = yield context.call_activity("ask", "two")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def echo(context):
    return (yield context.call_activity("say", "hi"))


def _answer(topic):
    return _client().chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": topic}]).choices[0].message.content


@app.activity_trigger(input_name="topic")
def ask(topic):
    return "answered" if _answer(topic) else "empty"


@app.activity_trigger(input_name="topic")
def say(topic):
    return _answer(topic)


def asked_twice(sim):
    status = sim.wait_for_completion(sim.start_new("ask_twice", None, instance_id="t"))
    assert status.runtime_status == "Completed", status.output


@pytest.mark.parametrize("prune", [True, False])
def test_every_rerun_crash_run_is_served_the_script_afresh(prune):
    with FakeLLM() as fake:                 # strict: a script error in any run fails the exit
        fake.reply("A").reply("B").reply("C").reply("D")   # enough for any one re-run call
        report = Simulator(app).crash_sweep(asked_twice, idempotent=["ask"],
                                            isolation="rerun", prune=prune)

        assert report.ok, report.explain()
        assert report.runs == len(report.points) == 17
        # The sweep leaves the script as it found it: the next call is served its first reply.
        after = Simulator(app)
        assert after.wait_for_completion(after.start_new("echo")).output == "A"


def test_a_duplicate_that_uses_up_a_script_fails_where_the_run_would():
    with FakeLLM(strict=False) as fake:
        fake.reply("A").reply("B")          # just what one run asks for
        report = Simulator(app).crash_sweep(asked_twice, idempotent=["ask"], isolation="rerun")

    failing = {point.index for failure in report.failures for point in failure.crashes}
    duplicate = next(p.index for p in report.points if p.kind == "duplicate")
    # The duplicate delivery of the first ask takes the second reply: the second ask finds the
    # script used up. Only crashes that make an ask run again can fail; the others (dequeues,
    # episodes, after-commit restarts) start from the replies as the sweep found them.
    assert duplicate in failing
    assert {report.points[index].kind for index in failing} <= {"activity", "duplicate"}
    assert "ScriptExhausted" in report.explain()
