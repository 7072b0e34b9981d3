"""The determinism guard: every guarded API reported at the calling line, and no false alarms."""

from __future__ import annotations

import asyncio
import datetime as dt_module
import logging
import os
import random
import secrets
import socket
import sys
import threading
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from time import time as time_function
from uuid import uuid4

import azure.durable_functions as df
import pytest

from dafx_testing import DafxWarning, Simulator
from dafx_testing.checks.guard import Guard, NonDeterministicCallWarning
from dafx_testing.core.errors import NonDeterministicCallError

HERE = Path(__file__).resolve()

# One line per guarded API: the guard must name exactly that line. Each takes
# an open socket so the network case needs no cleanup of its own.
CALLS = {
    "datetime.now()": lambda sock: datetime.now(),
    "datetime.utcnow()": lambda sock: datetime.utcnow(),
    "datetime.today()": lambda sock: datetime.today(),
    "date.today()": lambda sock: date.today(),
    "module datetime.now()": lambda sock: dt_module.datetime.now(dt_module.timezone.utc),
    "time.time()": lambda sock: time.time(),
    "imported time()": lambda sock: time_function(),
    "time.time_ns()": lambda sock: time.time_ns(),
    "time.monotonic()": lambda sock: time.monotonic(),
    "time.perf_counter()": lambda sock: time.perf_counter(),
    "time.sleep()": lambda sock: time.sleep(0),
    "uuid.uuid1()": lambda sock: uuid.uuid1(),
    "uuid.uuid4()": lambda sock: uuid.uuid4(),
    "imported uuid4()": lambda sock: uuid4(),
    "random.random()": lambda sock: random.random(),
    "random.randint()": lambda sock: random.randint(1, 6),
    "random.choice()": lambda sock: random.choice(["a", "b"]),
    "random.shuffle()": lambda sock: random.shuffle([1, 2]),
    "secrets.token_hex()": lambda sock: secrets.token_hex(8),
    "os.urandom()": lambda sock: os.urandom(4),
    "os.environ[...]": lambda sock: os.environ["PATH"],
    "os.getenv()": lambda sock: os.getenv("PATH"),
    "os.environ.get()": lambda sock: os.environ.get("PATH"),
    "open()": lambda sock: open(HERE, encoding="utf-8").close(),
    "Path.read_text()": lambda sock: HERE.read_text(encoding="utf-8"),
    "socket connect": lambda sock: sock.connect(("127.0.0.1", 9)),
    "socket.getaddrinfo()": lambda sock: socket.getaddrinfo("localhost", 80),
    "asyncio.new_event_loop()": lambda sock: asyncio.new_event_loop(),
    "asyncio.run()": lambda sock: asyncio.run(None),
    "thread start": lambda sock: threading.Thread(target=print).start(),
}

REPORTED_AS = {
    "module datetime.now()": "datetime.now()",
    "imported time()": "time.time()",
    "imported uuid4()": "uuid.uuid4()",
    "os.environ[...]": "os.environ['PATH']",
    "os.getenv()": "os.environ['PATH']",
    "os.environ.get()": "os.environ['PATH']",
    "open()": f"open({HERE!r})",
    "Path.read_text()": f"open({HERE!r})",   # pathlib opens through io.open
    "socket connect": "socket.connect(('127.0.0.1', 9))",
    "socket.getaddrinfo()": "socket.getaddrinfo('localhost')",
    "thread start": "threading.Thread.start()",
}

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def calls_api(context: df.DurableOrchestrationContext):
    with socket.socket() as sock:
        CALLS[context.get_input()](sock)
    yield context.call_activity("noop", None)
    return "done"


@app.orchestration_trigger(context_name="context")
def swallows(context: df.DurableOrchestrationContext):
    try:
        stamp = datetime.now()
    except Exception:   # the guard's error still reaches the test
        stamp = None
    yield context.call_activity("noop", str(stamp))
    return "done"


@app.orchestration_trigger(context_name="context")
def replay_safe(context: df.DurableOrchestrationContext):
    logging.getLogger("orders").warning("replaying=%s at %s", context.is_replaying,
                                        context.current_utc_datetime)
    first = context.new_uuid()
    reply = yield context.call_activity("noop", {"id": first, "at": str(context.current_utc_datetime)})
    return [first, context.new_uuid(), reply]


@app.orchestration_trigger(context_name="context")
def stamps(context: df.DurableOrchestrationContext):
    stamp = datetime.now().isoformat()
    yield context.call_activity("noop", stamp)
    return stamp


@app.activity_trigger(input_name="value")
def noop(value):
    # Activities may do anything: none of this is reported.
    return [str(datetime.now()), str(uuid.uuid4()), os.getenv("PATH", "")[:1], value]


def _line_of(name: str) -> int:
    return CALLS[name].__code__.co_firstlineno


def _source_line(text: str) -> int:
    lines = HERE.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


@pytest.mark.parametrize("name", list(CALLS))
def test_each_guarded_api_is_reported_at_the_calling_line(name):
    guard = Guard()
    sim = Simulator(app, perturb=False, guard=guard)
    sim.start_new("calls_api", name)

    with pytest.raises(NonDeterministicCallError) as caught:
        sim.run_until_idle()

    error = caught.value
    assert error.location.endswith(f"tests/test_guard.py:{_line_of(name)}")
    assert error.call == REPORTED_AS.get(name, name)
    assert error.function == "<lambda>"
    assert f"at {error.location} " in str(error) and "Fix: " in str(error)
    assert [str(r.site) for r in guard.reports] == [error.location]


def test_an_imported_uuid4_is_caught_when_work_runs_inside_an_http_handlers_poll():
    """A handler's poll runs the worker inside nested host code (each level seeds uuid4)."""
    sim = Simulator(app, perturb=False, guard=Guard())
    sim.start_new("calls_api", "imported uuid4()")

    with pytest.raises(NonDeterministicCallError) as caught:
        with sim.host_code(), sim.host_code():
            sim.run_until_idle()

    assert caught.value.call == "uuid.uuid4()"
    assert caught.value.location.endswith(f"tests/test_guard.py:{_line_of('imported uuid4()')}")


@pytest.mark.parametrize("name, alternative", [
    ("datetime.now()", "context.current_utc_datetime"),
    ("uuid.uuid4()", "context.new_uuid()"),
    ("random.random()", "in an activity"),
    ("os.getenv()", "pass it in the orchestration input"),
    ("open()", "in an activity"),
    ("time.sleep()", "context.create_timer"),
    ("asyncio.new_event_loop()", "task_all"),
    ("thread start", "task_all"),
])
def test_the_error_names_the_deterministic_alternative(name, alternative):
    sim = Simulator(app, perturb=False, guard=Guard())
    sim.start_new("calls_api", name)

    with pytest.raises(NonDeterministicCallError) as caught:
        sim.run_until_idle()

    assert alternative in caught.value.alternative


def test_the_traceback_shows_the_users_line():
    sim = Simulator(app, perturb=False, guard=Guard())
    sim.start_new("swallows")

    with pytest.raises(NonDeterministicCallError) as caught:
        sim.run_until_idle()

    frames = [(entry.path.name, entry.name) for entry in caught.traceback]
    assert ("test_guard.py", "swallows") in frames


def test_an_error_the_orchestrator_swallows_still_reaches_the_test():
    sim = Simulator(app, perturb=False, guard=Guard("error"))
    sim.start_new("swallows")

    with pytest.raises(NonDeterministicCallError, match=r"datetime\.now\(\) at .*test_guard\.py"):
        sim.run_until_idle()


def test_warn_mode_points_the_warning_at_the_users_line_and_lets_the_call_through():
    guard = Guard("warn")
    sim = Simulator(app, perturb=False, guard=guard)
    instance_id = sim.start_new("stamps")

    with pytest.warns(NonDeterministicCallWarning) as caught:
        status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    datetime.fromisoformat(status.output)   # the real call ran
    warning = caught.pop(NonDeterministicCallWarning)
    assert Path(warning.filename) == HERE
    assert warning.lineno == _source_line("stamp = datetime.now().isoformat()")
    assert issubclass(warning.category, DafxWarning)
    assert "datetime.now()" in str(warning.message)
    assert len(guard.reports) == 2   # once per episode that ran the line


def test_off_mode_watches_nothing():
    guard = Guard("off")
    sim = Simulator(app, perturb=False, guard=guard)
    instance_id = sim.start_new("stamps")

    assert sim.wait_for_completion(instance_id).runtime_status == "Completed"
    assert guard.reports == []


@pytest.mark.parametrize("entry", [
    __name__,                                      # this module
    "tests/test_guard.py",                         # this file
    f"test_guard.py:{_line_of('uuid.uuid4()')}",   # the one line
])
def test_the_allow_list_lets_a_module_file_or_line_through(entry):
    guard = Guard(allow=[entry])
    sim = Simulator(app, perturb=False, guard=guard)
    instance_id = sim.start_new("calls_api", "uuid.uuid4()")

    assert sim.wait_for_completion(instance_id).runtime_status == "Completed"
    assert guard.reports == []


def test_an_allowed_line_does_not_cover_other_lines():
    sim = Simulator(app, perturb=False, guard=Guard(allow=[f"test_guard.py:{_line_of('uuid.uuid4()')}"]))
    sim.start_new("calls_api", "uuid.uuid1()")

    with pytest.raises(NonDeterministicCallError, match=r"uuid\.uuid1\(\)"):
        sim.run_until_idle()


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "strict"}, "guard mode 'strict' is not one of 'error', 'warn', 'off'"),
    ({"allow": ["not a module"]}, "neither a module"),
    ({"allow": ["app.py:twelve"]}, "must be a number"),
])
def test_bad_settings_say_what_is_valid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Guard(**kwargs)


def test_replay_safe_code_logging_and_new_uuid_are_not_reported(monkeypatch, caplog):
    # The SDK's own reads (the strict-typing flag azure.functions checks while
    # (de)serializing) and logging's clock reads are framework calls.
    monkeypatch.setenv("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", "0")
    guard = Guard()
    sim = Simulator(app, perturb=False, guard=guard)
    instance_id = sim.start_new("replay_safe")

    with caplog.at_level(logging.WARNING, logger="orders"):
        status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert guard.reports == []
    assert "replaying=" in caplog.text


def test_calls_from_framework_packages_are_not_reported(tmp_path, monkeypatch):
    # A stand-in for Agent Framework code that an orchestrator calls (it stamps
    # payloads with datetime.now() and reads settings, as agent.run(...) does).
    (tmp_path / "agent_framework_standin.py").write_text(
        "import os\nfrom datetime import datetime, timezone\n\n"
        "def run_request(message):\n"
        "    return {'message': message, 'created_at': datetime.now(tz=timezone.utc).isoformat(),\n"
        "            'mode': os.environ.get('AGENT_MODE', 'default')}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import agent_framework_standin

    framework_app = df.DFApp()

    @framework_app.orchestration_trigger(context_name="context")
    def asks_agent(context):
        request = agent_framework_standin.run_request("hello")
        reply = yield context.call_activity("echo", request["message"])
        return reply

    @framework_app.activity_trigger(input_name="value")
    def echo(value):
        return value

    guard = Guard()
    sim = Simulator(framework_app, perturb=False, guard=guard)
    assert sim.wait_for_completion(sim.start_new("asks_agent")).runtime_status == "Completed"
    assert guard.reports == []
    sys.modules.pop("agent_framework_standin", None)


def test_nothing_stays_patched_after_an_episode():
    real = (datetime, time.time, uuid.uuid4, os.urandom, socket.socket.connect,
            type(os.environ).__getitem__, threading.Thread.start, open)
    sim = Simulator(app, perturb=False, guard=Guard())
    sim.start_new("calls_api", "uuid.uuid4()")
    with pytest.raises(NonDeterministicCallError):
        sim.run_until_idle()

    assert (dt_module.datetime, time.time, uuid.uuid4, os.urandom, socket.socket.connect,
            type(os.environ).__getitem__, threading.Thread.start, open) == real
    assert datetime is dt_module.datetime and time_function is time.time


def test_other_threads_are_not_watched():
    # A background thread (a local test server, a pool) keeps reading the
    # clock while an orchestrator runs: only the orchestrator's thread counts.
    guard = Guard()
    started, stop = threading.Event(), threading.Event()
    reads = []

    def background():
        started.set()
        while not stop.is_set():
            reads.append(time.time())
            stop.wait(0.001)

    worker = threading.Thread(target=background)
    worker.start()
    started.wait()
    try:
        with guard():
            count = len(reads)
            while len(reads) < count + 3:
                stop.wait(0.001)
    finally:
        stop.set()
        worker.join()

    assert guard.reports == []
