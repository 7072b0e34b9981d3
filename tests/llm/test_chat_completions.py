"""Chat Completions on the wire, read back through the real openai SDK."""

from __future__ import annotations

import json

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from dafx_testing.llm import Reply, ToolCall
from dafx_testing.llm.chat_completions import payload, stream_events
from dafx_testing.llm.conversation import from_chat
from dafx_testing.llm.replies import Stamp
from dafx_testing.llm.request import LLMRequest

FIXED_EPOCH = 1772366400  # 2026-03-01 12:00 UTC, the conftest clock

ASK = [{"role": "system", "content": "You tell jokes."}, {"role": "user", "content": "Tell me a pirate joke."}]


def _request(**body) -> LLMRequest:
    body = {"model": "gpt-4o-mini", "messages": ASK, **body}
    return LLMRequest(1, "chat.completions", "POST", "https://x.test/v1/chat/completions", {}, body, from_chat(body))


def test_payload_and_chunks_validate_as_the_sdk_types():
    reply = Reply(content="Arr!", tool_calls=(ToolCall("get_weather", {"city": "Rome"}),))
    ChatCompletion.model_validate(payload(reply, _request(), Stamp(1, 0)))
    events = stream_events(reply, _request(stream=True, stream_options={"include_usage": True}), Stamp(1, 0))
    assert events[-1] == "data: [DONE]"
    for event in events[:-1]:
        ChatCompletionChunk.model_validate(json.loads(event.removeprefix("data: ")))


def test_plain_reply_carries_clock_time_model_and_usage(fake, openai_client):
    fake.reply("Why did the pirate go to school? To improve his arrrticulation!")
    completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert completion.choices[0].message.content.endswith("arrrticulation!")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.created == FIXED_EPOCH
    assert completion.model == "gpt-4o-mini"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0


def test_stream_yields_word_deltas_and_a_final_usage_chunk(fake, openai_client):
    fake.reply("Yo ho ho and a bottle of rum")
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Yo ho ho and a bottle of rum"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 8
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_stream_without_include_usage_has_no_usage_chunk(fake, openai_client):
    fake.reply("Arr")
    chunks = list(openai_client.chat.completions.create(model="m", messages=ASK, stream=True))
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)


def test_tool_call_then_follow_up_turn(fake, openai_client):
    fake.tool_call("get_weather", {"city": "Rome"}).reply("Sunny in Rome.")
    first = openai_client.chat.completions.create(model="m", messages=ASK)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Rome"})
    follow_up = [*ASK, first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = openai_client.chat.completions.create(model="m", messages=follow_up)
    assert second.choices[0].message.content == "Sunny in Rome."
    fake.last_request.assert_conversation("pirate joke", ("assistant", ""), ("tool", "sunny"))
    assert fake.last_request.tool_results[0]["tool_call_id"] == call.id


def test_streamed_parallel_tool_calls_reassemble(fake, openai_client):
    fake.tool_calls(ToolCall("get_weather", {"city": "Rome"}), ToolCall("get_time", '{"tz": "CET"}'))
    calls: dict[int, dict[str, str]] = {}
    for chunk in openai_client.chat.completions.create(model="m", messages=ASK, stream=True):
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            slot["name"] += delta.function.name or ""
            slot["arguments"] += delta.function.arguments or ""
    assert calls == {0: {"name": "get_weather", "arguments": '{"city": "Rome"}'}, 1: {"name": "get_time", "arguments": '{"tz": "CET"}'}}


def test_reply_json_answers_a_json_schema_request(fake, openai_client):
    schema = {"type": "object", "properties": {"punchline": {"type": "string"}}, "required": ["punchline"]}
    fake.reply_json({"punchline": "Arr!"})
    response_format = {"type": "json_schema", "json_schema": {"name": "Joke", "schema": schema, "strict": True}}
    completion = openai_client.chat.completions.create(model="m", messages=ASK, response_format=response_format)
    assert json.loads(completion.choices[0].message.content) == {"punchline": "Arr!"}
    assert fake.last_request.response_format == schema
