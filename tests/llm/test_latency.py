"""Model latency: who is charged for a slow answer, and how long a client waits for it."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from dafx_testing.core import latency
from dafx_testing.llm import FakeLLM
from dafx_testing.llm import intercept as intercept_module
from dafx_testing.llm.wire import RawRequest


def _raw(system: str = "You are Writer.", model: str = "gpt-4o-mini") -> RawRequest:
    body = {"model": model, "messages": [{"role": "system", "content": system}, {"role": "user", "content": "Go"}]}
    return RawRequest("POST", "https://api.openai.test/v1/chat/completions", {}, json.dumps(body).encode())


def test_without_a_meter_the_answer_carries_the_delay_to_wait_for_real(fixed_clock):
    fake = FakeLLM(clock=fixed_clock).latency(2.5).reply("slow")
    assert fake.handle(_raw()).delay == 2.5


def test_inside_a_meter_the_time_is_charged_there_and_the_answer_is_immediate(fixed_clock):
    fake = FakeLLM(clock=fixed_clock).latency(2.5).reply("one").reply("two")
    with latency.metering() as outer:
        first = fake.handle(_raw())
        with latency.metering() as inner:     # the innermost open meter pays
            second = fake.handle(_raw())
    assert (first.delay, second.delay) == (0.0, 0.0)
    assert (outer.seconds, inner.seconds) == (2.5, 2.5)


def test_a_lane_uses_its_own_latency_else_the_default_scripts(fixed_clock):
    fake = FakeLLM(clock=fixed_clock).latency(3)
    fake.agent("Writer").latency(lambda request: 10.0 * request.index).reply("draft").reply("again")
    fake.agent("Critic").reply("fine")
    delays = [fake.handle(_raw(system)).delay for system in ("You are Writer.", "You are Critic.", "You are Writer.")]
    assert delays == [10.0, 3.0, 30.0]


def test_faults_arrive_at_once(fixed_clock):
    fake = FakeLLM(clock=fixed_clock).latency(5).fault("server_error").reply("ok")
    assert fake.handle(_raw()).status == 500
    assert fake.handle(_raw()).delay == 5


@pytest.mark.parametrize("bad", [-1, "5s", None])
def test_a_latency_that_is_not_a_duration_is_refused(bad):
    with pytest.raises(ValueError, match="not a duration; give seconds >= 0 or a function of the request"):
        FakeLLM().latency(bad)


def test_a_sync_client_sleeps_the_delay(fake, openai_client, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(intercept_module.time, "sleep", slept.append)
    fake.latency(1.5).reply("slow")

    answer = openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    assert answer.choices[0].message.content == "slow"
    assert slept == [1.5]


def test_an_async_client_awaits_the_delay_without_blocking_its_loop(fake, monkeypatch):
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-test", base_url="https://api.openai.test/v1", max_retries=0)
    fake.latency(0.2).respond_with(lambda request: request.last_user_message)
    blocking: list[float] = []
    awaited: list[float] = []

    async def record(seconds: float) -> None:
        awaited.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(intercept_module.time, "sleep", blocking.append)
    monkeypatch.setattr(intercept_module, "asyncio", SimpleNamespace(sleep=record))

    async def both() -> list[str]:
        answers = await asyncio.gather(*(client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}]) for text in ("a", "b")))
        return [a.choices[0].message.content for a in answers]

    assert asyncio.run(both()) == ["a", "b"]
    assert (awaited, blocking) == ([0.2, 0.2], [])
