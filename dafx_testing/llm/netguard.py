"""The network guard: outbound HTTP through other libraries fails at once, naming the URL.

``httpx`` and ``httpx2`` are guarded by the interception layer itself (a non-model request there
raises :class:`NetworkBlocked`). This module covers the rest of the usual clients: ``aiohttp``
(``ClientSession._request``), ``urllib3`` and so ``requests`` and the Azure SDK's sync transport
(``HTTPConnectionPool.urlopen``), and ``urllib`` (``AbstractHTTPHandler.do_open``). Hosts the
caller allows pass through untouched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from .errors import NetworkBlocked

__all__ = ["blocked", "guarding"]

Admits = Callable[[str], bool]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def blocked(method: str, url: str, via: str) -> NetworkBlocked:
    """The error for an outbound request the fake does not serve."""
    return NetworkBlocked(
        f"blocked outbound HTTP {method.upper()} {url} (via {via}) while FakeLLM is on: only model calls "
        "are served. Fake that service in the test, or let its host through with FakeLLM(allow_hosts=[...])."
    )


def _aiohttp_patch(admits: Admits) -> Any:
    aiohttp = importlib.import_module("aiohttp")
    original = aiohttp.ClientSession._request

    async def _request(session: Any, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
        if not admits(str(str_or_url)):
            raise blocked(method, str(str_or_url), "aiohttp")
        return await original(session, method, str_or_url, *args, **kwargs)

    return mock.patch.object(aiohttp.ClientSession, "_request", _request)


def _urllib3_patch(admits: Admits) -> Any:
    pool = importlib.import_module("urllib3.connectionpool").HTTPConnectionPool
    original = pool.urlopen

    def urlopen(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        port = "" if self.port in (None, _DEFAULT_PORTS.get(self.scheme)) else f":{self.port}"
        full = url if "://" in url else f"{self.scheme}://{self.host}{port}{url}"
        if not admits(full):
            raise blocked(method, full, "requests/urllib3")
        return original(self, method, url, *args, **kwargs)

    return mock.patch.object(pool, "urlopen", urlopen)


def _urllib_patch(admits: Admits) -> Any:
    handler = importlib.import_module("urllib.request").AbstractHTTPHandler
    original = handler.do_open

    def do_open(self: Any, http_class: Any, req: Any, **kwargs: Any) -> Any:
        if not admits(req.full_url):
            raise blocked(req.get_method(), req.full_url, "urllib")
        return original(self, http_class, req, **kwargs)

    return mock.patch.object(handler, "do_open", do_open)


@contextmanager
def guarding(admits: Admits) -> Iterator[None]:
    """Block ``aiohttp``, ``urllib3``/``requests`` and ``urllib`` requests whose URL ``admits`` refuses."""
    with ExitStack() as stack:
        for make in (_aiohttp_patch, _urllib3_patch, _urllib_patch):
            try:
                stack.enter_context(make(admits))
            except ImportError:  # that library is not installed: nothing to guard
                continue
        yield
