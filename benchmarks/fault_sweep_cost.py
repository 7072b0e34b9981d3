"""What a model-fault sweep costs: a sweep of a small agent app against one run of it.

The app is one durable agent (the Agent Framework's ``AgentFunctionApp``) that an
orchestration asks twice in one session: a draft, then a shorter one. A run makes two model
calls, which the fake model answers. ``Simulator.fault_sweep`` runs the scenario once without
a fault (the baseline), then once per model call × fault kind (2 × 8 = 16 runs), each on a
fresh simulator; each fault makes the agent entity fall back to a non-streaming call, one
model call more. The figures set the whole sweep, and the sweep per model call × fault,
against one fault-free run of the same scenario (the two sides take turns)::

    python benchmarks/fault_sweep_cost.py

The model client is built with ``max_retries=0``, so the openai client's back-off (which sleeps
in real time on the Agent Framework's event-loop thread) does not weigh in: what is measured is
the simulator's cost per run. The Agent Framework logs every failed model call with its
traceback; its logging is switched off on both sides while they are timed.

``fault_sweep_cost_section()`` gives the figures to ``benchmarks/run.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from runner import run_module

DRAFT, SHORT = "A draft about tides, the moon's slow pull on the sea.", "Tides: the moon's pull."


def _runner() -> ModuleType:
    return run_module()


def build_app() -> Any:
    """The agent app; built inside the fake model's block, so its client talks to the fake."""
    import azure.durable_functions as df
    import openai
    from agent_framework import Agent
    from agent_framework.azure import AgentFunctionApp
    from agent_framework.openai import OpenAIChatCompletionClient

    client = OpenAIChatCompletionClient(model="gpt-4o-mini",
                                        async_client=openai.AsyncOpenAI(max_retries=0))
    writer = Agent(client=client, name="Writer",
                   instructions="You are the Writer. Draft one sentence, then shorten it.")
    app = AgentFunctionApp(agents=[writer])

    @app.orchestration_trigger(context_name="context")
    def draft_and_shorten(context: df.DurableOrchestrationContext) -> Any:
        agent = app.get_agent(context, "Writer")
        session = agent.create_session()
        draft = yield agent.run(context.get_input(), session=session)
        short = yield agent.run("Shorten it.", session=session)
        return [draft.text, short.text]

    return app


def scenario(sim: Any) -> None:
    status = sim.wait_for_completion(sim.start_new("draft_and_shorten", "tides", instance_id="bench"))
    assert status.output == [DRAFT, SHORT], status.output


@contextmanager
def _quiet() -> Iterator[None]:
    """No log records while timing: the Agent Framework logs each failed call's traceback."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def fault_sweep_cost_section(repetitions: int = 5) -> list[Any]:
    """Two figures: the whole sweep against one run, and the sweep per model call × fault."""
    from dafx_testing import Simulator
    from dafx_testing.llm import FakeLLM

    run = _runner()
    with FakeLLM() as fake, _quiet():
        fake.agent("Writer").reply(DRAFT).reply(SHORT)
        restore = fake.checkpoint()           # each side starts from the script as written
        app = build_app()
        reports = []

        def one_run() -> None:
            restore()
            scenario(Simulator(app))

        def sweep() -> None:
            restore()                         # the sweep restores it for each of its runs
            reports.append(Simulator(app).fault_sweep(scenario))

        one_run()                             # warm-up: the Agent Framework's first calls
        ran, swept = run.medians(repetitions, one_run, sweep)
    report = reports[-1]
    assert report.ok and {r.verdict for r in report.runs} == {"survived"}, report.explain()
    calls, faults, runs = len(report.calls), len(report.faults), len(report.runs)
    case = (f"durable agent, {calls} model calls × {faults} faults = {runs} runs "
            "and the baseline")
    return [
        run.Figure("fault sweep", case, "s", swept, ran, "one run", swept / ran,
                   repetitions=repetitions),
        run.Figure("fault sweep", "the same, per model call × fault", "s", swept / runs, ran,
                   "one run", swept / runs / ran, repetitions=repetitions),
    ]


def main() -> None:
    run = _runner()
    print(run.table(fault_sweep_cost_section()))


if __name__ == "__main__":
    main()
