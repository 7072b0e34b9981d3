"""The Responses API on the wire, read back through the real openai SDK."""

from __future__ import annotations

import json

from openai.types.responses import Response

from dafx_testing.llm import Reply, ToolCall
from dafx_testing.llm.conversation import from_responses
from dafx_testing.llm.replies import Stamp
from dafx_testing.llm.request import LLMRequest
from dafx_testing.llm.responses_api import payload

INPUT = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Rome?"}]}]


def test_payload_validates_as_the_sdk_type():
    body = {"model": "gpt-4o-mini", "input": INPUT, "instructions": "You report weather."}
    request = LLMRequest(1, "responses", "POST", "https://x.test/v1/responses", {}, body, from_responses(body, []))
    Response.model_validate(payload(Reply(content="Hi", tool_calls=(ToolCall("f", {}),)), request, Stamp(1, 0)))


def test_plain_reply(fake, openai_client):
    fake.reply("Sunny in Rome.")
    response = openai_client.responses.create(model="gpt-4o-mini", input="Weather in Rome?", instructions="Be brief.")
    assert response.output_text == "Sunny in Rome."
    assert response.created_at == 1772366400
    assert response.usage.total_tokens > 0
    assert fake.last_request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Rome?"},
    ]


def test_stream_events_in_service_order(fake, openai_client):
    fake.reply("Sunny in Rome.")
    events = list(openai_client.responses.create(model="m", input=INPUT, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[-1] == "response.completed" and kinds.count("response.output_text.delta") == 3
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Sunny in Rome."
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output_text == "Sunny in Rome."


def test_function_call_and_its_output(fake, openai_client):
    fake.tool_call("get_weather", city="Rome").reply("Sunny.")
    first = openai_client.responses.create(model="m", input=INPUT)
    call = first.output[0]
    assert (call.type, call.name, json.loads(call.arguments)) == ("function_call", "get_weather", {"city": "Rome"})
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24C"}
    second = openai_client.responses.create(model="m", input=[*INPUT, call.model_dump(exclude_none=True), output])
    assert second.output_text == "Sunny."
    fake.last_request.assert_conversation("Rome?", ("tool", "24C"))


def test_streamed_function_call_arguments(fake, openai_client):
    fake.tool_call("get_weather", {"city": "Oslo"})
    events = list(openai_client.responses.create(model="m", input=INPUT, stream=True))
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Oslo"}
    assert events[-1].response.output[0].call_id == "call_1_0"


def test_previous_response_id_keeps_history_server_side(fake, openai_client):
    fake.reply("Why did the pirate...").reply("Because arr.")
    first = openai_client.responses.create(model="m", input="Tell me a pirate joke.")
    openai_client.responses.create(model="m", input="Explain it.", previous_response_id=first.id)
    assert "previous_response_id" in fake.last_request.body
    fake.last_request.assert_conversation("pirate joke", ("assistant", "Why did the pirate"), ("user", "Explain it."))


def test_structured_output_format_is_exposed(fake, openai_client):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
    fake.reply_json({"n": 3})
    text_format = {"format": {"type": "json_schema", "name": "Count", "schema": schema, "strict": True}}
    response = openai_client.responses.create(model="m", input="Count", text=text_format)
    assert json.loads(response.output_text) == {"n": 3}
    assert fake.last_request.response_format == schema
