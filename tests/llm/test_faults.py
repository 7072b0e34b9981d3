"""Each fault as the real openai SDK observes it, and when faults fire."""

from __future__ import annotations

import json
import random

import openai
import pytest

from dafx_testing.llm.faults import FaultRule

ASK = [{"role": "user", "content": "Tell me a joke."}]


def _ask(client, **options):
    return client.chat.completions.create(model="gpt-4o-mini", messages=ASK, **options)


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("rate_limit", openai.RateLimitError, 429),
        ("server_error", openai.InternalServerError, 500),
        ("unavailable", openai.InternalServerError, 503),
        ("content_filter", openai.BadRequestError, 400),
    ],
)
def test_status_faults_raise_the_sdk_errors(fake, openai_client, kind, error, status):
    fake.fault(kind).reply("after the fault")
    with pytest.raises(error) as raised:
        _ask(openai_client)
    assert raised.value.status_code == status
    assert _ask(openai_client).choices[0].message.content == "after the fault"  # a fault consumes no reply


def test_rate_limit_carries_retry_after_and_the_sdk_honours_it(fake, openai_client):
    fake.fault("rate_limit", retry_after=2)
    with pytest.raises(openai.RateLimitError) as raised:
        _ask(openai_client)
    assert raised.value.response.headers["retry-after"] == "2"
    assert raised.value.code == "rate_limit_exceeded"
    fake.fault("rate_limit", retry_after=0.01).reply("retried")
    assert _ask(openai_client.with_options(max_retries=1)).choices[0].message.content == "retried"
    assert len(fake.requests) == 3


def test_content_filter_is_azures_prompt_filter(fake, openai_client):
    fake.fault("content_filter")
    with pytest.raises(openai.BadRequestError) as raised:
        _ask(openai_client)
    assert raised.value.code == "content_filter"
    assert raised.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"


@pytest.mark.parametrize(
    ("kind", "error", "cause"),
    [("timeout", openai.APITimeoutError, "ReadTimeout"), ("connection_reset", openai.APIConnectionError, "ReadError")],
)
def test_connection_faults(fake, openai_client, kind, error, cause):
    fake.fault(kind)
    with pytest.raises(error) as raised:
        _ask(openai_client)
    assert type(raised.value.__cause__).__name__ == cause


def test_malformed_json_fails_to_decode(fake, openai_client):
    fake.fault("malformed_json")
    with pytest.raises(json.JSONDecodeError):
        _ask(openai_client)


def test_stream_cut_delivers_part_then_drops(fake, openai_client):
    fake.fault("stream_cut", partial="Why did the pirate go to school to learn")
    received = []
    with pytest.raises(Exception) as raised:  # openai 3.x wraps it in APIConnectionError, 2.x does not
        for chunk in _ask(openai_client, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert type(raised.value.__cause__ or raised.value).__name__ == "RemoteProtocolError"
    assert "".join(received) and "".join(received) != "Why did the pirate go to school to learn"


def test_times_fails_exactly_n_requests(fake, openai_client):
    fake.fault("server_error", times=2).respond_with(lambda request: "fine")
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(_ask(openai_client).choices[0].message.content)
        except openai.InternalServerError:
            outcomes.append("500")
    assert outcomes == ["500", "500", "fine", "fine"]


def test_rate_is_seeded_and_reproducible(fake, openai_client):
    fake.fault("unavailable", rate=0.5, seed=11).respond_with(lambda request: "ok")
    failed = []
    for _ in range(12):
        try:
            _ask(openai_client)
            failed.append(False)
        except openai.InternalServerError:
            failed.append(True)
    draws = random.Random(11)
    assert failed == [draws.random() < 0.5 for _ in range(12)]
    assert 0 < sum(failed) < 12


def test_lane_faults_hit_only_that_agent(fake, openai_client):
    fake.agent("Critic").fault("rate_limit").reply("Approved.")
    fake.reply("A draft.")
    writer = [{"role": "system", "content": "You are Writer."}, *ASK]
    critic = [{"role": "system", "content": "You are Critic."}, *ASK]
    assert openai_client.chat.completions.create(model="m", messages=writer).choices[0].message.content == "A draft."
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(model="m", messages=critic)


def test_bad_fault_arguments_name_the_valid_values(fake):
    with pytest.raises(ValueError, match="rate_limit, server_error"):
        fake.fault("meltdown")
    with pytest.raises(ValueError, match="probability"):
        FaultRule("timeout", rate=2)
