"""HTTP exchanges in a library-neutral form.

The interception layer turns an ``httpx`` or ``httpx2`` request into a :class:`RawRequest`, the
fake answers with a :class:`WireResponse` (status, headers, body chunks, perhaps a dropped
connection after them) or a bare :class:`Drop`, and the layer turns that back into the library's
own response or exception. Nothing here knows which library is in use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Drop", "DropKind", "RawRequest", "WireResponse", "sse_events"]

DropKind = Literal["timeout", "reset", "cut"]


@dataclass(frozen=True)
class RawRequest:
    """One outbound HTTP request as bytes on the wire, and the client library that sent it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    via: str = "http"

    @property
    def path(self) -> str:
        """The URL path, e.g. ``/openai/deployments/gpt-4o/chat/completions``."""
        return urlsplit(self.url).path

    @property
    def host(self) -> str:
        """The URL's host name, lower-cased."""
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def query(self) -> dict[str, str]:
        """The query parameters (last value wins)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def json(self) -> Any:
        """The body parsed as JSON, or ``{}`` for an empty or non-JSON body."""
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}


@dataclass(frozen=True)
class Drop:
    """The connection fails: before any byte arrives (``timeout``, ``reset``) or mid-body (``cut``).

    The interception layer raises the library's own exception for it (``ReadTimeout``,
    ``ReadError``, ``RemoteProtocolError``), which the OpenAI SDK maps to ``APITimeoutError`` or
    ``APIConnectionError`` exactly as for a real network failure.
    """

    kind: DropKind
    message: str


@dataclass(frozen=True)
class WireResponse:
    """A response as the server sends it: status, headers, body chunks, perhaps a drop after them.

    ``delay`` is how many real seconds pass before it arrives (a slow model used outside the
    simulator; see :mod:`dafx_testing.core.latency`).
    """

    status: int
    headers: Mapping[str, str]
    chunks: tuple[bytes, ...] = ()
    drop: Drop | None = field(default=None)
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> WireResponse:
        """A JSON response (``application/json``)."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        return cls(status, {"content-type": "application/json", **(headers or {})}, (body,))

    @classmethod
    def sse(cls, events: Iterable[str]) -> WireResponse:
        """A ``text/event-stream`` response, one chunk per event (each event text without its blank line)."""
        chunks = tuple(f"{event}\n\n".encode() for event in events)
        return cls(200, {"content-type": "text/event-stream; charset=utf-8"}, chunks)

    @property
    def body(self) -> bytes:
        """All chunks joined."""
        return b"".join(self.chunks)

    @property
    def is_sse(self) -> bool:
        """Whether the body is a server-sent event stream."""
        return self.headers.get("content-type", "").startswith("text/event-stream")


def sse_events(body: str) -> list[str]:
    """Split an event-stream body into its events (the text between blank lines)."""
    return [event for event in body.replace("\r\n", "\n").split("\n\n") if event.strip()]
