"""The seam: patching ``httpx`` and ``httpx2`` transports so every client in the process is faked.

openai 2.x sends through ``httpx``; openai 3.x through ``httpx2``, a fork that respx does not see
(reference: agent-framework-durable.md §1.3). Both libraries end every request in
``HTTPTransport.handle_request`` / ``AsyncHTTPTransport.handle_async_request`` (subclasses such as
the Foundry SDK's logging transport call up to them), so patching those four methods reaches
every client, including the ones an app builds at import time without an ``http_client``. That is
the seam respx's ``httpx`` mocker uses one level up; here it is the same for both forks.

An :class:`Interceptor` answers each request with a response, a dropped connection, or ``None``
to let it through to the real transport. Patches stack: an inner ``intercepting`` passes what it
lets through to the outer one. When respx is active, non-model ``httpx`` requests go on to it
instead of being blocked. A response with a ``delay`` arrives that many seconds later, waited out
without blocking an async client's event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Any, Protocol
from unittest import mock

from .errors import NetworkBlocked
from .wire import Drop, RawRequest, WireResponse

__all__ = ["Interceptor", "intercepting"]

_LIBRARIES = ("httpx", "httpx2")
_DROP_ERRORS = {"timeout": "ReadTimeout", "reset": "ReadError", "cut": "RemoteProtocolError"}


class Interceptor(Protocol):
    """What the patched transports ask about each request."""

    def handle(self, raw: RawRequest) -> WireResponse | Drop | None:
        """Answer ``raw``, or return ``None`` to send it for real; may raise :class:`NetworkBlocked`."""


def _respx_active() -> bool:
    mocks = sys.modules.get("respx.mocks")
    return mocks is not None and any(mocker.routers for mocker in mocks.Mocker.registry.values())


def _raw(request: Any, via: str) -> RawRequest:
    return RawRequest(request.method, str(request.url), dict(request.headers), request.content, via)


def _body_class(lib: ModuleType) -> type:
    # The bases come from whichever library the caller uses (httpx or httpx2), known at run time.
    class Body(lib.SyncByteStream, lib.AsyncByteStream):  # type: ignore[name-defined]
        """A scripted body: its chunks, then the dropped connection if there is one."""

        def __init__(self, chunks: tuple[bytes, ...], error: Exception | None) -> None:
            self._chunks, self._error = chunks, error

        def __iter__(self) -> Iterator[bytes]:
            yield from self._chunks
            if self._error is not None:
                raise self._error

        async def __aiter__(self) -> Any:
            for chunk in self._chunks:
                yield chunk
            if self._error is not None:
                raise self._error

    return Body


class _Library:
    """Converting one library's requests and responses, and its patched transport methods."""

    def __init__(self, lib: ModuleType, interceptor: Interceptor) -> None:
        self.lib, self.interceptor, self.body = lib, interceptor, _body_class(lib)

    def _error(self, drop: Drop, request: Any) -> Exception:
        return getattr(self.lib, _DROP_ERRORS[drop.kind])(drop.message, request=request)

    def _answer(self, request: Any) -> WireResponse | Drop | None:
        try:
            return self.interceptor.handle(_raw(request, self.lib.__name__))
        except NetworkBlocked:
            if self.lib.__name__ == "httpx" and _respx_active():
                return None  # respx patches httpcore below this transport and decides
            raise

    def _response(self, answer: WireResponse | Drop, request: Any) -> Any:
        if isinstance(answer, Drop):
            raise self._error(answer, request)
        error = self._error(answer.drop, request) if answer.drop else None
        stream = self.body(answer.chunks, error)
        return self.lib.Response(answer.status, headers=list(answer.headers.items()), stream=stream, request=request)

    def patches(self) -> list[Any]:
        sync_original = self.lib.HTTPTransport.handle_request
        async_original = self.lib.AsyncHTTPTransport.handle_async_request

        def handle_request(transport: Any, request: Any) -> Any:
            request.read()
            answer = self._answer(request)
            if answer is None:
                return sync_original(transport, request)
            if isinstance(answer, WireResponse) and answer.delay:
                time.sleep(answer.delay)
            return self._response(answer, request)

        async def handle_async_request(transport: Any, request: Any) -> Any:
            await request.aread()
            answer = self._answer(request)
            if answer is None:
                return await async_original(transport, request)
            if isinstance(answer, WireResponse) and answer.delay:
                await asyncio.sleep(answer.delay)
            return self._response(answer, request)

        return [
            mock.patch.object(self.lib.HTTPTransport, "handle_request", handle_request),
            mock.patch.object(self.lib.AsyncHTTPTransport, "handle_async_request", handle_async_request),
        ]


def _installed(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # httpx2 comes with openai 3.x only
        return None


@contextmanager
def intercepting(interceptor: Interceptor) -> Iterator[None]:
    """Route every ``httpx``/``httpx2`` request of the process through ``interceptor`` while open."""
    with ExitStack() as stack:
        for name in _LIBRARIES:
            lib = _installed(name)
            if lib is not None:
                for patch in _Library(lib, interceptor).patches():
                    stack.enter_context(patch)
        yield
