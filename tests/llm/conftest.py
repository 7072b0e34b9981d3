"""Fixtures for the fake-model tests: a fixed clock and a local upstream model server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dafx_testing.llm import FakeLLM
from dafx_testing.llm.wire import RawRequest, WireResponse

FIXED = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def fixed_clock():
    """A clock stopped at 2026-03-01 12:00 UTC."""
    return lambda: FIXED


class _Upstream(BaseHTTPRequestHandler):
    model: FakeLLM

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        url = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}{self.path}"
        answer = self.model.handle(RawRequest("POST", url, dict(self.headers.items()), body))
        assert isinstance(answer, WireResponse)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream(fixed_clock) -> Iterator[tuple[str, FakeLLM]]:
    """A real HTTP server on 127.0.0.1 answering with a (not entered) FakeLLM: ``(base_url, model)``.

    It stands in for the real service when recording cassettes; nothing leaves the machine.
    """
    model = FakeLLM(clock=fixed_clock)
    handler = type("Upstream", (_Upstream,), {"model": model})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", model
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake(fixed_clock) -> Iterator[FakeLLM]:
    """An active FakeLLM on the fixed clock."""
    with FakeLLM(clock=fixed_clock) as active:
        yield active


@pytest.fixture
def openai_client(fake):
    """A sync OpenAI SDK client with no retries, built the ordinary way (no ``http_client``)."""
    from openai import OpenAI

    return OpenAI(api_key="sk-test-secret-key", base_url="https://api.openai.test/v1", max_retries=0)
