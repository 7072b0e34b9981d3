"""The network guard: other outbound HTTP fails at once, naming the URL; allowed hosts pass."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import aiohttp
import httpx
import pytest
import requests

from dafx_testing.llm import FakeLLM, NetworkBlocked

URL = "https://example.com/status?x=1"


def _httpx2_get(url: str):
    httpx2 = pytest.importorskip("httpx2")  # present with openai 3.x only
    return httpx2.get(url)


async def _aiohttp_get(url: str):
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


CLIENTS = {
    "httpx": lambda url: httpx.get(url),
    "httpx2": _httpx2_get,
    "requests": lambda url: requests.get(url, timeout=5),
    "urllib": lambda url: urllib.request.urlopen(url, timeout=5),
    "aiohttp": lambda url: asyncio.run(_aiohttp_get(url)),
}


@pytest.mark.parametrize("client", CLIENTS)
def test_other_outbound_http_is_blocked_naming_the_url(fake, client):
    with pytest.raises(NetworkBlocked) as raised:
        CLIENTS[client](URL)
    assert "GET https://example.com/status" in str(raised.value) and f"via {client}" in str(raised.value)
    assert "allow_hosts" in str(raised.value)


@pytest.mark.parametrize("client", ["httpx", "requests", "urllib"])
def test_allowed_hosts_go_out_for_real(upstream, client):
    base, _ = upstream  # a local server: its GET answers 501, which proves the request went out
    with FakeLLM(allow_hosts=["127.0.0.1"]):
        try:
            response = CLIENTS[client](f"{base}/health")
            status = getattr(response, "status_code", None)
        except urllib.error.HTTPError as error:
            status = error.code
    assert status == 501


def test_patches_are_restored_after_exit():
    original = httpx.HTTPTransport.handle_request
    with FakeLLM():
        assert httpx.HTTPTransport.handle_request is not original
    assert httpx.HTTPTransport.handle_request is original


def test_respx_mocks_keep_working_beside_the_fake(fake, openai_client):
    import respx

    fake.reply("model answer")
    with respx.mock(assert_all_called=True) as router:
        router.get("https://service.test/data").respond(json={"ok": True})
        assert httpx.get("https://service.test/data").json() == {"ok": True}
    completion = openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    assert completion.choices[0].message.content == "model answer"
