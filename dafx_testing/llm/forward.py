"""Sending a model call to a real endpoint, for record mode.

Record mode answers each request with what the upstream answers. The upstream is the request's
own URL (the real service the app points at) or, when given, another base URL with the same path
and query (a proxy, or a local fake in tests). It is reached with :mod:`http.client` directly, so
the patched ``httpx``/``httpx2`` transports and the network guard (which covers ``urllib``, not
``http.client``) do not loop the call back into the fake. The call blocks; recording is a
deliberate, occasional act, not a test-suite path.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from .wire import RawRequest, WireResponse

__all__ = ["forward"]

# Hop-by-hop and recomputed headers; identity encoding keeps the recorded bytes readable.
_DROPPED = frozenset({"host", "content-length", "connection", "accept-encoding", "transfer-encoding"})


def forward(raw: RawRequest, upstream: str | None, timeout: float = 120.0) -> WireResponse:
    """Send ``raw`` to ``upstream`` (a base URL; ``None``: the request's own URL) and read the answer."""
    target = urlsplit(raw.url)
    base = urlsplit(upstream) if upstream else target
    connection_class = http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(base.hostname or "", base.port, timeout=timeout)
    path = target.path + (f"?{target.query}" if target.query else "")
    headers = {k: v for k, v in raw.headers.items() if k.lower() not in _DROPPED}
    try:
        connection.request(raw.method, path, body=raw.body, headers={**headers, "accept-encoding": "identity"})
        response = connection.getresponse()
        body = response.read()
        kept = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _DROPPED}
        return WireResponse(response.status, kept, (body,))
    finally:
        connection.close()
