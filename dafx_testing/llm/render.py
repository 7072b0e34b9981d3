"""Rendering a :class:`~dafx_testing.llm.replies.Reply` on the API and in the mode the request used."""

from __future__ import annotations

from . import chat_completions, responses_api
from .replies import Reply, Stamp
from .request import LLMRequest
from .wire import WireResponse

__all__ = ["render"]

_APIS = {"chat.completions": chat_completions, "responses": responses_api}


def render(reply: Reply, request: LLMRequest, stamp: Stamp) -> WireResponse:
    """The HTTP response answering ``request``: server-sent events when it streams, else JSON."""
    api = _APIS[request.api]
    if request.stream:
        return WireResponse.sse(api.stream_events(reply, request, stamp))
    return WireResponse.json(200, api.payload(reply, request, stamp))
