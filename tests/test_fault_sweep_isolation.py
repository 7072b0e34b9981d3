"""Model-fault sweeps made like crash sweeps: shards, forked runs, runs that stop on converging.

Whatever way the runs are made, a sweep finds the same verdicts:

* shards (``shard=(index, count)``) make every run of the sweep exactly once between them;
* forked runs (``isolation="fork"``: off one more fault-free run, just before the worker step
  of their model call) find what runs rerun from the start find;
* a run that stops early because its state became the baseline's (``converge=True``, the
  default) gets the verdict, model calls and cost it would have got running to the end,
  point by point, here on this module's book app, tests/apps/fault_app.py and the scenarios'
  own fault sweeps (joker, multi_agent, content_approval, resilient_writer).

The book app asks the model with the openai client (``max_retries=0``) from activities: a
chapter's draft, retried by the orchestration (the retry costs a call and 5 s), then an
advisory check of the last draft that fails open (a fault on it leaves no trace, and the
baseline asks nothing after it: those runs converge at once), then a tail of archive steps.

Forking needs a process with one thread; agent tests leave the Agent Framework's event-loop
thread running in this one, so the forked sweeps run in a fresh process (as in
tests/test_sweep_isolation.py), and agent apps' sweeps always rerun.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from datetime import timedelta

import azure.durable_functions as df
import openai
import pytest

from dafx_testing import Simulator
from dafx_testing.checks.forks import can_fork
from dafx_testing.llm import FAULT_KINDS, FakeLLM
from dafx_testing.reports.json_output import fault_sweep_json

app = df.DFApp()
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)
KINDS = ("rate_limit", "timeout", "malformed_json")

needs_fork = pytest.mark.skipif(can_fork(explicit=True) is not None,
                                reason="forking fault runs needs POSIX fork()")


# One client (each costs an SSL context); the fake patches the transports every client uses.
CLIENT = openai.OpenAI(api_key="sk-fake", max_retries=0)    # the retries are the orchestration's


def _ask(prompt):
    answer = CLIENT.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": prompt}])
    return answer.choices[0].message.content or ""


@app.orchestration_trigger(context_name="context")
def book(context):
    chapters, shelves = context.get_input()
    drafts = []
    for number in range(chapters):
        outline = yield context.call_activity("outline", number)
        drafts.append((yield context.call_activity_with_retry("write", RETRY, outline)))
    checked = yield context.call_activity("check", drafts[-1])
    for shelf in range(shelves):
        yield context.call_activity("archive", shelf)
    return [drafts, checked]


@app.orchestration_trigger(context_name="context")
def draft_or_empty(context):
    return (yield context.call_activity("write_or_empty", context.get_input()))


@app.activity_trigger(input_name="number")
def outline(number):
    return f"chapter {number}"


@app.activity_trigger(input_name="outline")
def write(outline):
    return _ask(f"Write {outline}.")


@app.activity_trigger(input_name="draft")
def check(draft):
    try:
        _ask(f"Is this fine? {draft}")
    except Exception:                               # advisory: the check fails open
        pass
    return "checked"


@app.activity_trigger(input_name="topic")
def write_or_empty(topic):
    try:
        return _ask(topic)
    except openai.OpenAIError:
        return ""                                   # the fault is swallowed: broken


@app.activity_trigger(input_name="shelf")
def archive(shelf):
    return shelf


def answer(request):
    return f"Done: {request.last_user_message}"


def writing(chapters=3, shelves=5):
    def scenario(sim):
        sim.wait_for_completion(sim.start_new("book", [chapters, shelves], instance_id="book"))
    return scenario


def mixed(sim):
    writing()(sim)
    sim.wait_for_completion(sim.start_new("draft_or_empty", "tides", instance_id="e"))


def dies_in_a_fork():
    parent = os.getpid()

    def scenario(sim):
        writing()(sim)
        if os.getpid() != parent and sim.model_calls.plan.faults[0][0] % 2:
            raise KeyboardInterrupt("a forked fault run dies")
    return scenario


def drifts():
    runs = []

    def scenario(sim):
        runs.append(sim)
        writing(chapters=2, shelves=0)(sim)
        if len(runs) > 1:
            # From the second run on, a draft first: the forking pass makes one model call
            # more than the baseline there, leaves it, and the sequel's runs are rerun.
            sim.wait_for_completion(sim.start_new("draft_or_empty", "x", instance_id="extra"))
        sim.wait_for_completion(sim.start_new("book", [1, 0], instance_id="sequel"))
    return scenario


CASES = {
    # name: (scenario for fork mode, scenario for rerun mode, sweep options)
    "book": (writing, writing, {}),
    "every run to its end": (writing, writing, {"converge": False}),
    "broken and failed cleanly": (lambda: mixed, lambda: mixed, {}),
    "shard": (writing, writing, {"shard": (1, 3)}),
    # A forked run that dies is rerun in the sweep's process: the same verdicts.
    "dies in its fork": (dies_in_a_fork, writing, {}),
    # A pass that leaves the baseline stops forking; the rest is rerun, as rerun mode does.
    "drifts": (drifts, drifts, {}),
}


def sweep(scenario, isolation="rerun", faults=KINDS, **options):
    """The report of a sweep of the book app, with the scenario starts the sweep's process saw."""
    starts = []

    def counted(sim):
        starts.append(os.getpid())
        scenario(sim)

    with FakeLLM() as fake:
        fake.respond_with(answer)
        sim = Simulator(app, perturb=False)
        fake.clock = lambda: sim.now
        report = sim.fault_sweep(counted, faults=faults, isolation=isolation, **options)
    return report, starts.count(os.getpid())


def verdicts(report):
    """Each run as JSON values, in the report's order."""
    return [{key: value for key, value in run.items() if key != "converged"}
            for run in fault_sweep_json(report)["runs"]]


def findings(case, isolation):
    """Everything a sweep of ``case`` reports, as JSON values."""
    fork_scenario, rerun_scenario, options = CASES[case]
    report, starts = sweep((fork_scenario if isolation == "fork" else rerun_scenario)(),
                           isolation, **options)
    return {"isolation": report.isolation, "runs": fault_sweep_json(report)["runs"],
            "converged": report.converged, "explain": report.explain(), "starts": starts}


FRESH_PROCESS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fault_sweep_isolation_cases", sys.argv[1])
cases = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = cases
spec.loader.exec_module(cases)
auto = {name: cases.sweep(cases.writing(*size), "auto", faults=["timeout"],
                          shard=(0, 20))[0].isolation
        for name, size in (("short", (3, 5)), ("long", (8, 60)))}     # 155 worker steps
print(json.dumps({"cases": {case: cases.findings(case, "fork") for case in cases.CASES},
                  "auto": auto}))
"""


@pytest.fixture(scope="module")
def fresh_process(in_fresh_process):
    """What a fresh process (one thread: it can fork) finds: each case forked, auto's choices."""
    return in_fresh_process(FRESH_PROCESS, __file__)


# -- forked runs ------------------------------------------------------------------------------


@needs_fork
@pytest.mark.parametrize("case", list(CASES))
def test_forked_fault_runs_find_what_rerun_fault_runs_find(fresh_process, case):
    forked, rerun = fresh_process["cases"][case], findings(case, "rerun")

    assert (forked["isolation"], rerun["isolation"]) == ("fork", "rerun")
    assert forked["runs"] == rerun["runs"]
    assert forked["converged"] == rerun["converged"]
    assert forked["explain"].replace("; forked)", ")") == rerun["explain"]


@needs_fork
def test_the_forking_pass_runs_the_scenario_once_for_all_the_fault_runs(fresh_process):
    cases = fresh_process["cases"]

    # The baseline, then one pass forking the 12 runs: the children start no scenario.
    assert cases["book"]["starts"] == 2 and len(cases["book"]["runs"]) == 12
    assert findings("book", "rerun")["starts"] == 1 + 12
    # A child that dies leaves its run to a rerun: the 6 runs of calls #1 and #3.
    assert cases["dies in its fork"]["starts"] == 2 + 6
    # The pass leaves the baseline at its extra draft: the sequel's 2 calls' 6 runs rerun.
    assert cases["drifts"]["starts"] == 2 + 6
    assert "(seed 0; 3 stopped early: converged with the baseline; forked): ok" in (
        cases["book"]["explain"].splitlines()[0])


@needs_fork
def test_auto_forks_long_scenarios_in_a_process_that_can_fork(fresh_process):
    assert fresh_process["auto"] == {"short": "rerun", "long": "fork"}


def test_forking_is_refused_while_other_threads_run_and_auto_reruns_instead(another_thread):
    with pytest.raises(RuntimeError, match=f"other threads are running \\(.*{another_thread}"):
        sweep(writing(), "fork")
    report, starts = sweep(writing(8, 60), "auto", faults=["timeout"], shard=(0, 20))

    assert report.isolation == "rerun" and starts == 1 + 1      # run #0 of 9


@pytest.mark.dafx_app("../scenarios/joker/function_app.py")
def test_durable_agents_keep_a_thread_so_their_fault_runs_are_rerun(dafx, fake_llm):
    from fakes.personas import joker

    fake_llm.agent(dafx.app.agents["Joker"]).respond_with(joker)

    def scenario(sim):
        sim.http.post("/api/agents/Joker/run", json={"message": "A joke.", "session_id": "s1"})

    with pytest.raises(RuntimeError, match="other threads are running \\(.*dafx-agent-loop"):
        dafx.fault_sweep(scenario, faults=["timeout"], isolation="fork")
    assert dafx.fault_sweep(scenario, faults=["timeout"]).isolation == "rerun"


def test_isolation_and_shard_are_checked_before_the_baseline():
    runs = []
    with pytest.raises(ValueError, match="isolation='sideways': expected one of auto, fork, "
                                         "rerun"):
        sweep(runs.append, "sideways")
    for shard in [(2, 2), (-1, 2), (0, 0)]:
        with pytest.raises(ValueError, match=r"shard=.*: expected \(index, count\) with "
                                             r"0 <= index < count"):
            sweep(runs.append, shard=shard)
    assert runs == []


# -- shards -----------------------------------------------------------------------------------


def test_the_shards_of_a_fault_sweep_make_every_run_once():
    whole, _ = sweep(mixed)
    shards = [sweep(mixed, shard=(index, 3))[0] for index in range(3)]

    assert [shard.shard for shard in shards] == [(0, 3), (1, 3), (2, 3)]
    plans = [repr(run.plan) for shard in shards for run in shard.runs]
    assert sorted(plans) == sorted(repr(run.plan) for run in whole.runs)
    # Shard i makes the runs at positions i, i + 3, ... of the whole sweep, judged alike.
    for index, shard in enumerate(shards):
        assert verdicts(shard) == verdicts(whole)[index::3]
    assert sum(shard.converged for shard in shards) == whole.converged
    assert sorted(repr(r.plan) for s in shards for r in s.failures) == \
        sorted(repr(r.plan) for r in whole.failures)


def test_a_shard_says_which_runs_it_made():
    shard, _ = sweep(mixed, shard=(1, 3))

    head = shard.explain().splitlines()[0]
    assert head.startswith("fault sweep: 5 model call(s) × 3 fault(s) = 5 of 15 run(s) "
                           "(shard 1 of 3): ")
    assert "-" in shard.matrix().split()            # the other shards' cells
    document = fault_sweep_json(shard)
    assert (document["shard"], document["isolation"]) == ([1, 3], "rerun")


# -- convergence ------------------------------------------------------------------------------


def same_runs(on, off):
    """The two reports' runs are the same, point by point, but for ``converged``."""
    assert [dataclasses.replace(run, converged=False) for run in on.runs] == off.runs
    assert not any(run.converged for run in off.runs)


def test_runs_whose_fault_left_no_trace_stop_early_with_the_verdicts_of_full_runs():
    on, _ = sweep(writing(shelves=30))
    off, _ = sweep(writing(shelves=30), converge=False)

    same_runs(on, off)
    # The advisory check (call #4) fails open: its runs are the baseline again at once, and
    # the baseline asks the model nothing more. The drafts' retries cost a call and 5 s.
    assert [(run.call.number, run.fault) for run in on.runs if run.converged] == [
        (4, kind) for kind in KINDS]
    assert {(run.verdict, run.extra_model_calls, run.model_calls) for run in on.runs
            if run.converged} == {("survived", 0, 4)}
    assert on.converged == 3 and off.converged == 0
    assert "= 12 run(s): 12 survived (3 stopped early: converged with the baseline)" in (
        on.counts())
    assert fault_sweep_json(on)["converged"] == 3


def test_a_run_stops_early_only_once_the_baseline_asks_the_model_nothing_more():
    on, _ = sweep(mixed)
    off, _ = sweep(mixed, converge=False)

    same_runs(on, off)
    # The book's check is no longer the last call: the model is asked again after it, and a
    # run whose fake model is a call behind the baseline's could be answered otherwise. Its
    # runs stop only once they have made the draft's call too, the baseline's last.
    assert [(run.call.number, run.model_calls) for run in on.runs if run.converged] == [
        (4, 5)] * 3
    assert {run.verdict for run in on.runs if run.call.number == 5} == {"broken",
                                                                      "failed cleanly"}


@pytest.mark.parametrize("orchestration, faults", [
    ("draft_with_retry", FAULT_KINDS), ("draft_once", FAULT_KINDS),
    ("draft_or_empty", FAULT_KINDS), ("draft_then_wait", ["timeout"]),
    ("agent_draft", ["content_filter", "malformed_json", "stream_cut"])])
@pytest.mark.dafx_app("apps/fault_app.py")
def test_fault_app_verdicts_are_the_same_with_and_without_convergence(dafx, fake_llm,
                                                                       orchestration, faults):
    fake_llm.agent("Writer").reply("A draft about tides.")

    def scenario(sim):
        sim.start_new(orchestration, "tides", instance_id="draft")
        sim.advance(timedelta(minutes=1))            # past the retry's 5 s

    same_runs(dafx.fault_sweep(scenario, faults=faults),
              dafx.fault_sweep(scenario, faults=faults, converge=False))


# The scenarios' fault sweeps (their test_fault_sweep.py files), with and without convergence.

def ask_a_joke(sim):
    sim.http.post("/api/agents/Joker/run", json={"message": "Tell me a joke.", "session_id": "s1"})


def joker_setup(sim, fake, flaky=False):
    from fakes.personas import joker

    lane = fake.agent(sim.app.agents["Joker"])
    (lane.fault("content_filter") if flaky else lane).respond_with(joker)
    return ask_a_joke


def job(name, request):
    def scenario(sim):
        sim.wait_for_completion(sim.start_new(name, request, instance_id="job"))
    return scenario


def articles_setup(sim, fake):
    fake.agent(sim.app.agents["Researcher"]).reply("1. Tides follow the moon.")
    fake.agent(sim.app.agents["Writer"]).reply("The moon pulls the sea.")
    return job("write_article", "tides")


def flaky_articles_setup(sim, fake):
    fake.agent(sim.app.agents["Researcher"]).fault("content_filter").reply("1. Tides.")
    fake.agent(sim.app.agents["Writer"]).reply("The moon pulls the sea.")
    return job("write_article", "tides")


def triage_setup(sim, fake):
    fake.agent(sim.app.agents["Triage"]).fault("content_filter").reply(json.dumps(
        {"category": "bug", "summary": "Saving fails"}))
    fake.agent(sim.app.agents["Engineer"]).reply("On it.")
    fake.agent(sim.app.agents["Notifier"]).reply("Engineer has the ticket.")
    return job("triage_ticket", "I cannot save my file.")


def approval_setup(sim, fake, flaky=False):
    from fakes.content_service import service

    writer = fake.agent(sim.app.agents["Writer"])
    (writer.fault("content_filter") if flaky else writer).reply("Tides: the moon pulls.")

    def scenario(sim):
        service.reset()
        instance_id = sim.start_new("agent_content_approval", {"topic": "tides"},
                                    instance_id="post-1")
        sim.run_until_idle()
        sim.raise_event(instance_id, "ApprovalDecision", {"approved": True})
        sim.wait_for_completion(instance_id)
    return scenario


def resilient_setup(orchestration, flaky=False):
    def setup(sim, fake):
        writer = fake.agent("Writer")
        (writer.fault("content_filter") if flaky else writer).reply("The moon pulls the sea.")

        def scenario(sim):
            sim.wait_for_completion(sim.start_new(orchestration, "tides", instance_id="draft"))
        return scenario
    return setup


SCENARIOS = {
    # name: (app, setup(sim, fake) -> scenario, sweep options, runs that converge)
    "joker": ("joker/function_app.py", joker_setup, {}, 0),
    "flaky joker": ("joker/function_app.py", lambda sim, fake: joker_setup(sim, fake, True),
                    {}, 0),
    "write_article": ("multi_agent/function_app.py", articles_setup, {}, 0),
    "flaky write_article": ("multi_agent/function_app.py", flaky_articles_setup, {}, 0),
    # The Notifier's call is the last: a fault the entity's fallback absorbs leaves the same
    # state, and the model is asked nothing more.
    "triage_ticket": ("multi_agent/function_app.py", triage_setup,
                      {"faults": ["content_filter"]}, 1),
    "content approval": ("content_approval/agent_app.py", approval_setup,
                         {"effects": "service"}, 0),
    "flaky content approval": ("content_approval/agent_app.py",
                               lambda sim, fake: approval_setup(sim, fake, flaky=True),
                               {"effects": "service"}, 0),
    "write_with_retry": ("resilient_writer/function_app.py",
                         resilient_setup("write_with_retry"), {}, 0),
    "flaky write_with_backoff": ("resilient_writer/function_app.py",
                                 resilient_setup("write_with_backoff", flaky=True), {}, 0),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_sweeps_find_the_same_verdicts_with_and_without_convergence(
        dafx_factory, fake_llm, name):
    path, setup, options, converging = SCENARIOS[name]
    sim = dafx_factory(f"../scenarios/{path}")
    scenario = setup(sim, fake_llm)
    if options.get("effects") == "service":
        from fakes.content_service import service

        options = dict(options, effects=service.effects)

    # The openai client's back-off draws its jitter from the random module, which runs on
    # from one run to the next: the two sweeps start from the same state.
    random.seed(0)
    on = sim.fault_sweep(scenario, **options)
    random.seed(0)
    off = sim.fault_sweep(scenario, converge=False, **options)

    same_runs(on, off)
    assert on.converged == converging
