"""Captured requests: what they expose, what they mask, and the conversation assertion."""

from __future__ import annotations

import pytest

from dafx_testing.llm.masking import mask_url, scrub

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather.", "parameters": {"type": "object"}}}]


def test_capture_exposes_the_call_with_secrets_masked(fake, openai_client):
    fake.reply("ok")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}]
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS, stream=False)
    request = fake.last_request
    assert (request.index, request.api, request.model, request.stream) == (1, "chat.completions", "gpt-4o-mini", False)
    assert request.tool_names == ["get_weather"] and request.tools[0]["description"] == "Weather."
    assert request.instructions == "Be brief." and request.last_user_message == "Weather?"
    assert request.headers["authorization"] == "Bearer ***"
    assert "sk-test-secret-key" not in repr(request)
    assert request.response_format is None


def test_query_secrets_are_masked():
    assert mask_url("https://x.test/p?api-version=1&api-key=abc123&code=zz") == "https://x.test/p?api-version=1&api-key=***&code=***"


def test_scrub_ignores_short_values():
    assert scrub("token sk-abcdef and ab", ["sk-abcdef", "ab"]) == "token *** and ab"


def test_assert_conversation_lists_what_was_sent(fake, openai_client):
    fake.reply("ok")
    messages = [{"role": "user", "content": "Tell me a joke."}, {"role": "assistant", "content": "Arr!"}, {"role": "user", "content": "Explain."}]
    openai_client.chat.completions.create(model="m", messages=messages)
    fake.last_request.assert_conversation("joke", ("assistant", "Arr"), "Explain")
    with pytest.raises(AssertionError, match='assistant: "Arr!"'):
        fake.last_request.assert_conversation("Explain", "joke")  # out of order
