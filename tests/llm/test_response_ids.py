"""Response ids are numbered per simulator run: one scenario gets the same bytes in every run.

A crash sweep runs a scenario many times, each run on a fresh simulator and one fake for all.
Numbered per fake, the baseline's reply was ``chatcmpl-dafx0001`` and the next run's
``chatcmpl-dafx0002``, so agent crash runs (whose histories hold the replies) never converged.
Now each simulator numbers the model calls made while it works (:mod:`dafx_testing.llm.runs`);
outside any simulator the fake numbers its own requests, as before.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from dafx_testing import Simulator
from dafx_testing.llm import FakeLLM, Reply, ToolCall
from dafx_testing.llm.runs import numbering
from dafx_testing.llm.wire import Drop, RawRequest, WireResponse

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
ID = re.compile(r"\b(?:chatcmpl-|resp_|msg_)dafx\d{4}\b|\b(?:fc_)?call_\d+_\d+\b")

app = df.DFApp()


def client() -> Any:
    from openai import OpenAI

    return OpenAI(api_key="sk-test-secret-key", base_url="https://api.openai.test/v1", max_retries=0)


@app.orchestration_trigger(context_name="context")
def ask_around(context):
    answers = []
    for question in context.get_input():
        answers.append((yield context.call_activity("ask", question)))
    return answers


@app.activity_trigger(input_name="question")
def ask(question):
    """One question on each wire: Chat Completions and the Responses API, plain and streamed."""
    model = client()
    chat = model.chat.completions.create(model="m", messages=[{"role": "user", "content": question}])
    for _ in model.chat.completions.create(model="m", messages=[{"role": "user", "content": question}],
                                           stream=True):
        pass
    first = model.responses.create(model="m", input=question)
    with model.responses.stream(model="m", input="And then?", previous_response_id=first.id) as events:
        for _ in events:
            pass
    return [chat.id, chat.choices[0].message.tool_calls[0].id, first.id]


class Recorded(FakeLLM):
    """A fake that keeps the bytes of every answer it serves."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.served: list[bytes] = []

    def handle(self, raw: RawRequest) -> WireResponse | Drop | None:
        answer = super().handle(raw)
        if isinstance(answer, WireResponse):
            self.served.append(answer.body)
        return answer


@pytest.fixture
def fake():
    with Recorded() as active:
        # Text and a tool call in every reply: each kind of id is on the wire.
        active.respond_with(lambda request: Reply(f"About {request.last_user_message}.",
                                                  (ToolCall("look_up", {"q": "tides"}),), "tool_call"))
        yield active


def run(fake: Recorded, questions: list[str]) -> tuple[Simulator, list[bytes], Any]:
    """The scenario on a fresh simulator: what it served, and the orchestration's output."""
    sim = Simulator(app, seed=0, start_time=START, perturb=False)
    fake.clock = lambda: sim.now
    before = len(fake.served)
    status = sim.wait_for_completion(sim.start_new("ask_around", questions))
    assert status.runtime_status == "Completed", status.output
    return sim, fake.served[before:], status.output


def ids_in(body: bytes) -> set[str]:
    """The ids an answer gives out (not the ``previous_response_id`` it repeats)."""
    return set(ID.findall(re.sub(r'"previous_response_id": "[^"]*"', "", body.decode())))


class Owner:
    """Stands for a simulator: what a run is numbered for."""


def test_two_fresh_simulators_of_one_scenario_are_served_the_same_bytes(fake):
    _, first, first_output = run(fake, ["tides", "waves"])
    _, second, second_output = run(fake, ["tides", "waves"])

    assert len(first) == 8                       # 2 questions x 4 calls
    assert second == first                       # ids, created stamps, everything
    assert first_output == second_output == [["chatcmpl-dafx0001", "call_1_0", "resp_dafx0003"],
                                              ["chatcmpl-dafx0005", "call_5_0", "resp_dafx0007"]]
    assert [request.index for request in fake.requests] == list(range(1, 17))   # history kept


def test_ids_are_unique_within_a_run_across_its_driving_calls(fake):
    sim, first, _ = run(fake, ["tides", "waves"])
    later = sim.wait_for_completion(sim.start_new("ask_around", ["tides"]))   # the same simulator again

    served = [ids_in(body) for body in fake.served]
    assert later.output == [["chatcmpl-dafx0009", "call_9_0", "resp_dafx0011"]]
    counts = Counter(i for ids in served for i in ids)
    assert counts and max(counts.values()) == 1, [i for i, n in counts.items() if n > 1]
    assert {"msg_dafx0004", "fc_call_4_0", "resp_dafx0012"} <= set(counts)


def test_outside_a_simulator_the_fake_numbers_its_own_requests(fake):
    run(fake, ["tides"])

    reply = client().chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    assert reply.id == "chatcmpl-dafx0005"        # the fake's fifth request, as before runs existed
    assert fake.last_request.index == 5


def test_previous_response_id_finds_the_conversation_of_its_own_run(fake):
    model, alpha, beta = client(), Owner(), Owner()
    with numbering(alpha):
        in_alpha = model.responses.create(model="m", input="In alpha")
    with numbering(beta):
        in_beta = model.responses.create(model="m", input="In beta")
    assert in_alpha.id == in_beta.id == "resp_dafx0001"

    with numbering(alpha):
        model.responses.create(model="m", input="Go on", previous_response_id=in_alpha.id)
    in_alpha_again = json.dumps(fake.last_request.messages)
    model.responses.create(model="m", input="Go on", previous_response_id=in_alpha.id)   # outside: the newest

    assert "In alpha" in in_alpha_again and "In beta" not in in_alpha_again
    assert "In beta" in json.dumps(fake.last_request.messages)


def test_nested_runs_number_with_the_innermost_and_resume_the_outer(fake):
    model, outer, inner = client(), Owner(), Owner()

    def chat() -> str:
        return str(model.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).id)

    with numbering(outer):
        ids = [chat()]
        with numbering(inner):
            ids.append(chat())
            with numbering(outer):           # the outer run working inside the inner one
                ids.append(chat())
            ids.append(chat())
        ids.append(chat())

    assert ids == ["chatcmpl-dafx0001", "chatcmpl-dafx0001", "chatcmpl-dafx0002",
                   "chatcmpl-dafx0002", "chatcmpl-dafx0003"]


def test_every_crash_run_of_an_agent_review_converges_with_the_baseline(fake):
    """The baseline's replies and each crash run's are the same bytes, so recovered runs converge.

    Numbered per fake, 5 of these 42 crash runs converged and pruning decided 3.
    """
    from scenarios.content_approval import test_agent_review as review

    sim = Simulator(ROOT / "scenarios" / "content_approval" / "agent_app.py", seed=0, start_time=START)
    fake.clock = lambda: sim.now
    fake.agent(sim.app.agents["Writer"]).respond_with(review.writer_model)

    report = sim.crash_sweep(review.rejected_then_approved, idempotent=review.IDEMPOTENT,
                             effects=review.service.effects)

    assert report.ok, report.explain()
    assert report.runs > 30 and report.pruned == report.runs, report.explain()
    assert report.decided > report.runs // 2
