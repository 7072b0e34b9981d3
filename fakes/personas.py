"""Model personas: ready-made ``respond_with`` functions that scenarios give the fake model.

Each is a plain function of the captured request, stateless, so it answers any number of turns
the same way a well-behaved model would::

    from fakes.personas import forecaster, joker
    fake_llm.agent("Joker").respond_with(joker)
    fake_llm.agent("Forecaster").respond_with(forecaster)
"""

from __future__ import annotations

import re
from typing import Any

from dafx_testing.llm import LLMRequest, Reply, ToolCall

__all__ = ["JOKE", "EXPLANATION", "forecaster", "joker", "schema_filler"]

JOKE = "Why did the pirate go to school? To improve his arrrticulation!"
EXPLANATION = "It's a pun: 'arrr', the pirate growl, inside 'articulation'."


def joker(request: LLMRequest) -> str:
    """Tells the pirate joke, and explains it when the user asks for an explanation."""
    return EXPLANATION if "explain" in (request.last_user_message or "").lower() else JOKE


def forecaster(request: LLMRequest) -> Reply:
    """Calls ``get_weather`` for the city in the question, then reports what the tool said."""
    last = request.messages[-1] if request.messages else {}
    if last.get("role") == "tool":
        return Reply.text(f"Forecast: {last['content']}.")
    question = request.last_user_message or ""
    found = re.search(r"\bin ([A-Z][\w-]*(?: [A-Z][\w-]*)*)", question)
    city = found[1] if found else "Rome"
    if "get_weather" in request.tool_names:
        return Reply.calls(ToolCall("get_weather", {"city": city}))
    return Reply.text(f"I have no way to look up the weather in {city}.")


def _example(schema: dict[str, Any], defs: dict[str, Any], name: str) -> Any:
    if "$ref" in schema:
        return _example(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {key: _example(sub, defs, key) for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_example(schema.get("items") or {}, defs, name)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, f"<{name}>")


def schema_filler(request: LLMRequest) -> Any:
    """Answers a structured-output request with a value shaped by its JSON schema.

    Strings become ``"<field name>"``, numbers 1 or 1.5, enums their first value; a plain-text
    request gets a plain reply.
    """
    schema = request.response_format
    if schema is None:
        return "This persona only answers structured-output requests."
    return _example(schema, schema.get("$defs") or {}, "value")
