"""Record against a local upstream, replay strictly, and never write a secret."""

from __future__ import annotations

import json
import os

import pytest
from openai import OpenAI

from dafx_testing.llm import CassetteMiss, FakeLLM
from dafx_testing.llm.cassette import Cassette, normalize

API_KEY = "sk-live-0123456789abcdef"
MARKED = "hunter2-correct-horse"


def _ask(client: OpenAI, question: str, **options) -> str:
    messages = [{"role": "system", "content": "Echo."}, {"role": "user", "content": question}]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages, **options)
    if options.get("stream"):
        return "".join(chunk.choices[0].delta.content or "" for chunk in completion if chunk.choices)
    return completion.choices[0].message.content


@pytest.fixture
def recorded(upstream, tmp_path):
    """A cassette of two exchanges (plain and streamed) recorded through the local upstream."""
    base, model = upstream
    model.respond_with(lambda request: f"You said: {request.last_user_message}")
    path = tmp_path / "echo.jsonl"
    with FakeLLM.recording(path, upstream=base, secrets=[MARKED]) as fake:
        client = OpenAI(api_key=API_KEY, base_url="https://api.openai.com/v1", max_retries=0)
        answers = [_ask(client, f"my password is {MARKED}, key {API_KEY}"), _ask(client, "stream it", stream=True)]
    assert len(model.requests) == 2 and len(fake.requests) == 2
    return path, answers


def test_record_writes_no_secret_anywhere(recorded):
    path, answers = recorded
    data = path.read_bytes()
    assert MARKED.encode() not in data and API_KEY.encode() not in data
    assert b"Bearer" not in data and b"authorization" not in data.lower()
    assert answers[0] == f"You said: my password is {MARKED}, key {API_KEY}"  # the app saw the real answer


def test_replay_round_trip(recorded):
    path, _ = recorded
    with FakeLLM.replaying(path, secrets=[MARKED]) as fake:
        client = OpenAI(api_key=API_KEY, base_url="https://elsewhere.test/v1", max_retries=0)
        assert _ask(client, f"my password is {MARKED}, key {API_KEY}") == "You said: my password is ***, key ***"
        assert _ask(client, "stream it", stream=True) == "You said: stream it"
    assert fake.requests[1].stream


def test_lines_are_sorted_json_one_exchange_each(recorded):
    path, _ = recorded
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        exchange = json.loads(line)
        assert list(exchange) == ["request", "response"]
        assert list(exchange["request"]) == sorted(exchange["request"])
        assert line == json.dumps(exchange, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert "sse" in json.loads(lines[1])["response"]


def test_strict_replay_names_the_nearest_recording(recorded):
    path, _ = recorded
    with pytest.raises(CassetteMiss) as raised, FakeLLM.replaying(path, strict=False):
        _ask(OpenAI(api_key="k", base_url="https://api.openai.com/v1", max_retries=0), "stream this", stream=True)
    message = str(raised.value)
    assert "'stream this'" in message and "Nearest recorded is exchange #2 of 2" in message
    lines = message.splitlines()
    assert '-    "content": "stream it",' in lines and '+    "content": "stream this",' in lines


def test_volatile_fields_are_ignored_when_matching():
    body = {"model": "m", "user": "u-1", "messages": [{"role": "tool", "tool_call_id": "call_9", "content": "x"}]}
    same = {**body, "user": "u-2", "messages": [{**body["messages"][0], "tool_call_id": "call_1"}]}
    assert normalize(body) == normalize(same)
    assert normalize(body) != normalize({**body, "model": "other"})


def test_writes_are_atomic(recorded, monkeypatch):
    path, _ = recorded
    before = path.read_bytes()
    cassette = Cassette.load(path)
    monkeypatch.setattr(os, "replace", lambda *args: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        cassette.save()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_missing_cassette_says_how_to_record(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"FakeLLM.recording\("):
        FakeLLM.replaying(tmp_path / "none.jsonl")
