"""Failures as the real service produces them, and when to inject them.

======================  =====================================================  ==========================
kind                    on the wire                                            the OpenAI SDK raises
======================  =====================================================  ==========================
``rate_limit``          429, ``retry-after`` / ``retry-after-ms``, error JSON  ``RateLimitError``
``server_error``        500 ``server_error``                                   ``InternalServerError``
``unavailable``         503 ``server_error``                                   ``InternalServerError``
``timeout``             no response: the read times out                        ``APITimeoutError``
``connection_reset``    no response: ``ECONNRESET``                            ``APIConnectionError``
``malformed_json``      200 with a truncated JSON body (or SSE data)           a JSON decode error
``stream_cut``          200, part of the body, then the connection drops       ``APIConnectionError`` or a
                                                                               ``RemoteProtocolError``
                                                                               mid-stream
``content_filter``      400 ``content_filter`` (Azure's prompt filter)         ``BadRequestError``
======================  =====================================================  ==========================

A fault never consumes a scripted reply: the retry that follows gets it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .render import render
from .replies import Reply, Stamp
from .request import LLMRequest
from .wire import Drop, WireResponse

__all__ = ["FAULT_KINDS", "FaultKind", "FaultRule", "render_fault"]

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "unavailable",
    "timeout",
    "connection_reset",
    "malformed_json",
    "stream_cut",
    "content_filter",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass
class FaultRule:
    """When a fault fires: the next ``times`` requests, or each with probability ``rate`` (seeded).

    With ``rate`` set, ``times`` caps the number of failures (``None``: no cap).
    """

    kind: FaultKind
    times: int | None = 1
    rate: float | None = None
    seed: int = 0
    retry_after: float = 1.0
    partial: str = "The answer was cut"
    fired: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if self.rate is not None and not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate {self.rate!r} is not a probability; use a number in [0, 1]")
        self._rng = random.Random(self.seed)

    @property
    def spent(self) -> bool:
        """Whether the rule can fire no more."""
        return self.times is not None and self.fired >= self.times

    def draw(self) -> bool:
        """Decide for one request; counts the failure when it fires."""
        if self.spent or (self.rate is not None and self._rng.random() >= self.rate):
            return False
        self.fired += 1
        return True


def _error(message: str, kind: str | None, code: str | None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": extra.pop("param", None), "code": code, **extra}}


_CONTENT_FILTER_RESULT = {
    "hate": {"filtered": False, "severity": "safe"},
    "jailbreak": {"filtered": False, "detected": False},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": True, "severity": "medium"},
}


def render_fault(rule: FaultRule, request: LLMRequest, stamp: Stamp) -> WireResponse | Drop:
    """The response (or dropped connection) for ``rule`` firing on ``request``."""
    kind = rule.kind
    if kind == "rate_limit":
        wait = rule.retry_after
        message = f"Rate limit reached for {request.model} on requests per min (RPM). Please try again in {wait:g}s."
        headers = {
            "retry-after": str(math.ceil(wait)),
            "retry-after-ms": str(int(wait * 1000)),
            "x-ratelimit-remaining-requests": "0",
        }
        return WireResponse.json(429, _error(message, "requests", "rate_limit_exceeded"), headers)
    if kind == "server_error":
        message = "The server had an error while processing your request. Sorry about that!"
        return WireResponse.json(500, _error(message, "server_error", None))
    if kind == "unavailable":
        return WireResponse.json(503, _error("The server is overloaded or not ready yet.", "server_error", None))
    if kind == "content_filter":
        message = (
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
            "Please modify your prompt and retry."
        )
        inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": _CONTENT_FILTER_RESULT}
        body = _error(message, None, "content_filter", param="prompt", status=400, innererror=inner)
        return WireResponse.json(400, body)
    if kind == "timeout":
        return Drop("timeout", "The read operation timed out")
    if kind == "connection_reset":
        return Drop("reset", "[Errno 104] Connection reset by peer")
    whole = render(Reply.text(rule.partial), request, stamp)
    if kind == "stream_cut":
        kept = whole.chunks[: max(1, len(whole.chunks) // 2)] if whole.is_sse else (whole.body[: len(whole.body) // 2],)
        drop = Drop("cut", "peer closed connection without sending complete message body (incomplete chunked read)")
        return WireResponse(200, whole.headers, kept, drop)
    first = whole.chunks[0]  # malformed_json: the first JSON document (or SSE event) broken off mid-way
    return WireResponse(200, whole.headers, (first[: len(first) // 2] + (b"\n\n" if whole.is_sse else b""),))
