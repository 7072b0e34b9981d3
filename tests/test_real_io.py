"""Real I/O under the virtual-time loop: sleeps stay virtual, socket reads get the real time they need.

A handler that reads a real socket with a timeout (``redis.asyncio``, a raw
stream under ``wait_for``) used to time out at once: the loop skipped virtual
time past the timeout while the reply was still on its way. The servers here
answer after a real delay, on their own threads, so only real waiting gets
their reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import azure.durable_functions as df
import azure.functions as func
import pytest

from dafx_testing import Simulator
from dafx_testing.core.async_bridge import run_sync
from dafx_testing.core.virtual_loop import VirtualTimeLoop

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


class RecordingSelector(selectors.DefaultSelector):
    """The OS selector, noting every timeout the loop asks it to wait for."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def select(self, timeout=None):
        self.timeouts.append(timeout)
        return super().select(timeout)


class Clock:
    def __init__(self):
        self.now = START
        self.jumps: list[timedelta] = []
        self.os = RecordingSelector()

    def jump(self, delta):
        self.jumps.append(delta)
        self.now += delta

    def loop(self):
        return VirtualTimeLoop(lambda: self.now, self.jump, selector=self.os)

    def real_waits(self):
        """The real waits the loop asked of the OS (every select with a positive timeout)."""
        return [t for t in self.os.timeouts if t is None or t > 0]


@contextlib.contextmanager
def line_server(delay: float) -> Iterator[int]:
    """A TCP server on its own thread and real-time loop: each line comes back upper-cased after ``delay``."""
    ready: list[int] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()

    async def answer(reader, writer):
        while line := await reader.readline():
            await asyncio.sleep(delay)                    # real time: this loop is an ordinary one
            writer.write(line.upper())
            await writer.drain()
        writer.close()

    async def serve():
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        ready.append(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            with contextlib.suppress(asyncio.CancelledError):
                await server.serve_forever()

    serving = loop.create_task(serve())
    thread = threading.Thread(target=loop.run_until_complete, args=(serving,), daemon=True)
    thread.start()
    started.wait()
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(serving.cancel)
        thread.join()
        loop.close()


async def ask(port: int, line: bytes, timeout: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(line)
        return await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
        await writer.wait_closed()


def test_a_read_gets_real_time_while_a_concurrent_sleep_stays_virtual():
    clock = Clock()

    async def handler(port):
        _, reply = await asyncio.gather(asyncio.sleep(30), ask(port, b"ping\n", timeout=5))
        return reply

    with line_server(delay=0.3) as port:
        assert run_sync(handler(port), clock.loop) == b"PING\n"
    assert clock.now - START == timedelta(seconds=30)   # the sleep, and nothing for the read
    assert clock.jumps == [timedelta(seconds=30)]
    assert clock.real_waits() and all(0 < t <= 5 for t in clock.real_waits())


def test_sleeps_between_reads_on_an_open_connection_cost_no_real_wait():
    """An idle connection (open, nobody reading) is no reason to wait: the sleep skips at once."""
    clock = Clock()
    waits_while_idle: list[list[float | None]] = []

    async def handler(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replies = []
        for word in (b"one\n", b"two\n"):
            writer.write(word)
            replies.append(await asyncio.wait_for(reader.readline(), 5))
            before = len(clock.os.timeouts)
            await asyncio.sleep(10)
            waits_while_idle.append([t for t in clock.os.timeouts[before:] if t != 0])
        writer.close()
        await writer.wait_closed()
        return replies

    with line_server(delay=0.2) as port:
        assert run_sync(handler(port), clock.loop) == [b"ONE\n", b"TWO\n"]
    assert clock.now - START == timedelta(seconds=20)
    assert clock.jumps == [timedelta(seconds=10)] * 2
    assert waits_while_idle == [[], []]


def test_a_read_nobody_answers_times_out_after_its_timeout_in_real_time():
    clock = Clock()

    async def handler(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.wait_for(reader.readline(), 0.25)    # the server never writes
        finally:
            writer.close()
            await writer.wait_closed()

    with socket.socket() as silent:                            # the kernel accepts; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(asyncio.TimeoutError):
            run_sync(handler(silent.getsockname()[1]), clock.loop)
    assert clock.now - START == timedelta(seconds=0.25)
    assert clock.real_waits()[0] == pytest.approx(0.25)        # the read had its 0.25 s, for real
    assert all(t <= 0.25 for t in clock.real_waits())


def test_under_the_simulator_a_read_nobody_answers_still_times_out():
    """The simulator freezes ``time.monotonic`` for app code; the loop's real waits must not freeze too."""
    sim = Simulator(df.DFApp())

    async def handler(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(reader.readline(), 0.25)
        except asyncio.TimeoutError:
            return "timed out"
        finally:
            writer.close()
            await writer.wait_closed()

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = sim.now
        assert sim.run_async(handler(silent.getsockname()[1])) == "timed out"
    assert sim.now - start == timedelta(seconds=0.25)


# -- a real Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A throwaway ``redis-server`` on a free port, in a temporary directory, with no persistence."""
    pytest.importorskip("redis", reason="the redis package is not installed (pip install -e '.[test]')")
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not found on PATH (Debian: apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_listening(port, server)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_listening(port: int, server: subprocess.Popen) -> None:
    for _ in range(500):
        if server.poll() is not None:
            pytest.fail(f"redis-server exited with status {server.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.02)
    pytest.fail("redis-server did not start listening")


def test_redis_reads_under_the_virtual_loop(redis_url):
    """The sample-03 pattern: stream reads with redis-py's 5 s socket timeout, sleeps between them."""
    import redis
    import redis.asyncio as aioredis

    clock = Clock()

    def add_later():
        time.sleep(0.3)                                  # a writer elsewhere, in real time
        with redis.Redis.from_url(redis_url) as client:
            client.xadd("later", {"text": "arrived"})

    async def handler():
        async with aioredis.from_url(redis_url) as client:
            await client.xadd("now", {"text": "hello"})
            now = await client.xread({"now": "0-0"}, count=10)
            await asyncio.sleep(5)
            writer = threading.Thread(target=add_later)
            writer.start()
            # Blocks in Redis for up to 2 real seconds, while a virtual sleep runs beside it.
            later, _ = await asyncio.gather(client.xread({"later": "0-0"}, block=2000), asyncio.sleep(60))
            writer.join()
            return now, later

    now, later = run_sync(handler(), clock.loop)
    assert now[0][1][0][1] == {b"text": b"hello"}
    assert later[0][1][0][1] == {b"text": b"arrived"}
    assert clock.now - START == timedelta(seconds=65)


def test_a_polling_http_handler_reads_redis_while_the_simulator_works(redis_url):
    """Through ``sim.http``: the handler polls Redis, sleeping 1 s (virtual) between empty reads;
    the orchestration that writes the entry waits a durable timer of five minutes meanwhile."""
    import redis
    import redis.asyncio as aioredis

    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def publish_later(context):
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
        yield context.call_activity("publish", context.get_input())

    @app.activity_trigger(input_name="key")
    def publish(key):
        with redis.Redis.from_url(redis_url) as client:
            client.xadd(key, {"text": "ready"})

    @app.route(route="stream/{key}", methods=["GET"])
    @app.durable_client_input(client_name="client")
    async def stream(req: func.HttpRequest, client) -> func.HttpResponse:
        key = req.route_params["key"]
        await client.start_new("publish_later", client_input=key)
        async with aioredis.from_url(redis_url) as redis_client:
            for polls in range(1, 1000):
                entries = await redis_client.xread({key: "0-0"}, count=10)
                if entries:
                    text = entries[0][1][0][1][b"text"].decode()
                    return func.HttpResponse(json.dumps({"text": text, "polls": polls}))
                await asyncio.sleep(1)
        return func.HttpResponse("never arrived", status_code=504)

    sim = Simulator(app)
    start = sim.now
    response = sim.http.get("/api/stream/job-1")
    assert response.status_code == 200
    assert response.json() == {"text": "ready", "polls": 301}
    assert sim.now - start == timedelta(minutes=5)
