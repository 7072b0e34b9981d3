"""The non-deterministic APIs an orchestrator can reach, and the seam to intercept them.

Both the API guard (:mod:`dafx_testing.checks.guard`) and the perturbed replay
(:mod:`dafx_testing.checks.determinism`) need the same three things, kept here:

* **the catalogue** (:data:`APIS`): wall clock, uuid, random, entropy,
  environment, file and socket I/O, sleeping, asyncio and threads, each with
  the replay-safe alternative a message should suggest;
* **the patch** (:func:`intercepted`): while the block runs, every catalogued
  API is replaced by a thin wrapper (module attributes, the few class
  attributes such as ``socket.socket.connect``, and the names user modules
  imported with ``from time import time``). It is installed once per block and
  removed after it, so nothing is traced and code outside the block is untouched;
* **whose call it is** (:func:`~dafx_testing.core.user_code.user_frame`): a wrapper walks out from its
  caller, looking through the standard library and third-party packages
  (``os.getenv`` -> ``Mapping.get``, ``dateutil`` -> ``datetime.now``) until it
  meets either framework code (the Durable SDK, ``azure.functions``, the Agent
  Framework, dafx-testing, and stdlib modules that only read the clock or files
  for their own bookkeeping, such as ``logging``), whose calls are never
  reported, or the user's code, whose frame is the call site.

A wrapper hands the user's calls to the block's ``hook``, which decides what
the call returns (the real value, a perturbed one) or raises.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as _datetime
import functools
import inspect
import io
import os
import random
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType, ModuleType
from typing import Any

from ..core.aliases import alias_sites
from ..core.user_code import is_user_module, shown_path, user_frame

# -- kinds of non-determinism, with the replay-safe alternative ----------------------

CLOCK = "clock"
UUID = "uuid"
RANDOM = "random"
ENTROPY = "entropy"
ENVIRONMENT = "environment"
FILE = "file"
NETWORK = "network"
SLEEP = "sleep"
ASYNCIO = "asyncio"
THREAD = "thread"

ALTERNATIVES: dict[str, str] = {
    CLOCK: "use context.current_utc_datetime, the replay-safe time of the current episode",
    UUID: "use context.new_uuid(), which gives the same value on every replay",
    RANDOM: "draw the value in an activity (its result is recorded in history) or derive it "
            "from context.new_uuid()",
    ENTROPY: "draw the value in an activity (its result is recorded in history)",
    ENVIRONMENT: "read configuration in an activity, or pass it in the orchestration input",
    FILE: "do file I/O in an activity (context.call_activity)",
    NETWORK: "call services from an activity, or with context.call_http",
    SLEEP: "yield context.create_timer(context.current_utc_datetime + delay)",
    ASYNCIO: "orchestrators are generators: yield context.task_all([...]) or task_any([...]) "
             "instead of running an event loop, and put async work in activities",
    THREAD: "fan out with context.task_all([...]) over activities instead of threads",
}


@dataclass(frozen=True)
class Api:
    """One guarded API: its public name, its kind, and how a call to it reads."""

    name: str
    kind: str

    def render(self, args: tuple[Any, ...]) -> str:
        """The call as a person would write it, e.g. ``os.environ['HOME']``."""
        if self.kind == ENVIRONMENT:
            return f"os.environ[{args[1]!r}]" if len(args) > 1 else "os.environ[...]"
        if self.kind == FILE and args:
            return f"{self.name}({args[0]!r})"
        if self.kind == NETWORK and args:
            # socket.connect(self, address) vs socket.getaddrinfo(host, port)
            return f"{self.name}({args[1] if self.name.startswith('socket.connect') else args[0]!r})"
        return f"{self.name}()"

    @property
    def alternative(self) -> str:
        return ALTERNATIVES[self.kind]


# (owner, attribute, api). Module owners also get their ``from x import y``
# aliases in user modules rebound; class owners are looked up at call time.
_RANDOM_FUNCTIONS = ("random", "uniform", "randint", "randrange", "choice", "choices", "shuffle",
                     "sample", "getrandbits", "randbytes", "gauss", "normalvariate",
                     "lognormvariate", "expovariate", "vonmisesvariate", "gammavariate",
                     "triangular", "betavariate", "paretovariate", "weibullvariate")
_SECRETS_FUNCTIONS = ("token_bytes", "token_hex", "token_urlsafe", "choice", "randbelow", "randbits")
_TIME_FUNCTIONS = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
                   "perf_counter_ns")

_FUNCTION_TARGETS: list[tuple[Any, str, Api]] = [
    *[(time, n, Api(f"time.{n}", CLOCK)) for n in _TIME_FUNCTIONS],
    (time, "sleep", Api("time.sleep", SLEEP)),
    (uuid, "uuid1", Api("uuid.uuid1", UUID)),
    (uuid, "uuid4", Api("uuid.uuid4", UUID)),
    *[(random, n, Api(f"random.{n}", RANDOM)) for n in _RANDOM_FUNCTIONS],
    *[(secrets, n, Api(f"secrets.{n}", ENTROPY)) for n in _SECRETS_FUNCTIONS],
    (os, "urandom", Api("os.urandom", ENTROPY)),
    *([(os, "getrandom", Api("os.getrandom", ENTROPY))] if hasattr(os, "getrandom") else []),
    (builtins, "open", Api("open", FILE)),
    (io, "open", Api("open", FILE)),
    (socket, "getaddrinfo", Api("socket.getaddrinfo", NETWORK)),
    (asyncio, "run", Api("asyncio.run", ASYNCIO)),
    (asyncio, "new_event_loop", Api("asyncio.new_event_loop", ASYNCIO)),
    (asyncio, "get_event_loop", Api("asyncio.get_event_loop", ASYNCIO)),
    (asyncio, "sleep", Api("asyncio.sleep", ASYNCIO)),
    (socket.socket, "connect", Api("socket.connect", NETWORK)),
    (socket.socket, "connect_ex", Api("socket.connect_ex", NETWORK)),
    (threading.Thread, "start", Api("threading.Thread.start", THREAD)),
    (type(os.environ), "__getitem__", Api("os.environ", ENVIRONMENT)),
]

DATETIME_NOW = Api("datetime.now", CLOCK)
DATETIME_UTCNOW = Api("datetime.utcnow", CLOCK)
DATETIME_TODAY = Api("datetime.today", CLOCK)
DATE_TODAY = Api("date.today", CLOCK)

APIS: tuple[Api, ...] = tuple(
    dict.fromkeys([api for _, _, api in _FUNCTION_TARGETS]
                  + [DATETIME_NOW, DATETIME_UTCNOW, DATETIME_TODAY, DATE_TODAY]))
"""Every API the seam intercepts."""


# -- calls and hooks ------------------------------------------------------------------


@dataclass(frozen=True)
class CallSite:
    """Where in the user's code a call was made."""

    filename: str
    lineno: int
    function: str
    module: str

    @classmethod
    def of(cls, frame: FrameType) -> CallSite:
        return cls(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name,
                   frame.f_globals.get("__name__") or "")

    @property
    def path(self) -> str:
        """The file, relative to the working directory when it is inside it."""
        return shown_path(self.filename)

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}"


@dataclass(frozen=True)
class Call:
    """One intercepted call from user code."""

    api: Api
    site: CallSite
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def render(self) -> str:
        return self.api.render(self.args)


Original = Callable[..., Any]
Outcome = Callable[[Original, tuple[Any, ...], dict[str, Any]], Any]
"""What a hook decides: called with the real function and the arguments."""

Hook = Callable[[Call], Outcome]


def call_through(original: Original, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The outcome that lets the real function run."""
    return original(*args, **kwargs)


class _Session:
    """The active interception: its hook, its thread, the frames being served."""

    def __init__(self, hook: Hook) -> None:
        self.hook = hook
        self.thread = threading.get_ident()
        self.busy = False
        self.serving: list[FrameType] = []


_session: _Session | None = None


def _dispatch(api: Api, original: Original, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
    __tracebackhide__ = True
    session = _session
    if session is None or session.busy or session.thread != threading.get_ident():
        return original(*args, **kwargs)
    frame = user_frame(sys._getframe(2))
    # A guarded call's own internals (uuid4 -> os.urandom) belong to the call
    # already seen; only a different user frame (a coroutine asyncio.run
    # drives) is a new call.
    if frame is None or (session.serving and session.serving[-1] is frame):
        return original(*args, **kwargs)
    session.busy = True
    try:
        outcome = session.hook(Call(api, CallSite.of(frame), args, kwargs))
    finally:
        session.busy = False
    session.serving.append(frame)
    try:
        return outcome(original, args, kwargs)
    finally:
        session.serving.pop()


# -- wrappers, made once per original ------------------------------------------------

# (api name or "class", id(original)) -> (original, wrapper); holding the
# original keeps its id from being reused by another object.
_wrappers: dict[tuple[str, int], tuple[Any, Any]] = {}


def _function_wrapper(api: Api, original: Original) -> Original:
    key = (api.name, id(original))
    cached = _wrappers.get(key)
    if cached is not None:
        return cached[1]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return _dispatch(api, original, args, kwargs)

    wrapper.__name__ = getattr(original, "__name__", api.name)
    wrapper.__qualname__ = getattr(original, "__qualname__", api.name)
    wrapper.__doc__ = getattr(original, "__doc__", None)
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    _wrappers[key] = (original, wrapper)
    return wrapper


def _class_wrapper(base: type, methods: dict[str, Api]) -> type:
    """A subclass of ``datetime``/``date`` whose ``now``/``today``... are intercepted.

    Instances stay instances of ``base`` (``__new__`` builds base objects) and
    ``isinstance(x, wrapper)`` answers as ``isinstance(x, base)``, so code that
    only constructs or type-checks datetimes behaves exactly as before.
    """
    key = ("class", id(base))
    cached = _wrappers.get(key)
    if cached is not None:
        return cached[1]

    class _Meta(type(base)):  # type: ignore[misc]  # mypy cannot check a computed metaclass base
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, base)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, base)

    def make(name: str, api: Api) -> classmethod:
        def method(cls: type, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            return _dispatch(api, getattr(base, name), args, kwargs)
        method.__name__ = name
        return classmethod(method)

    namespace: dict[str, Any] = {name: make(name, api) for name, api in methods.items()}
    namespace["__new__"] = lambda cls, *args, **kwargs: base(*args, **kwargs)
    namespace["__module__"] = base.__module__
    wrapper = _Meta(base.__name__, (base,), namespace)
    _wrappers[key] = (base, wrapper)
    return wrapper


# -- installing ----------------------------------------------------------------------

_user_modules: tuple[int, list[ModuleType]] = (-1, [])


def _modules_of_user() -> list[ModuleType]:
    global _user_modules
    count = len(sys.modules)
    if _user_modules[0] != count:
        _user_modules = (count, [m for m in list(sys.modules.values())
                                 if isinstance(m, ModuleType) and is_user_module(m)])
    return _user_modules[1]


_TARGETS: list[tuple[Any, str, Callable[[Any], Any]]] = [
    *[(owner, name, functools.partial(_function_wrapper, api))
      for owner, name, api in _FUNCTION_TARGETS],
    (_datetime, "datetime", lambda current: _class_wrapper(current, {
        "now": DATETIME_NOW, "utcnow": DATETIME_UTCNOW, "today": DATETIME_TODAY})),
    (_datetime, "date", lambda current: _class_wrapper(current, {"today": DATE_TODAY})),
]
"""What a block patches: (owner, name, the replacement of the value found there)."""


@dataclass
class _Plan:
    """How a block patches the values it finds: worked out once for each set of values."""

    found: tuple[int, ...]                              # ids of the values the targets held
    patches: list[tuple[Any, str, Any, bool, Any]]      # owner, name, value, owned, replacement
    replacing: dict[int, Any]
    """id of each function patched in a module, and of all it wraps -> its replacement:
    what a user module's alias of it becomes."""


_plan: _Plan | None = None
"""The last plan: a simulator's blocks find the same values (wrappers are made once each)."""


def _plan_for(values: list[Any]) -> _Plan:
    global _plan
    found = tuple(map(id, values))
    if _plan is None or _plan.found != found:
        patches = [(owner, name, value, name in vars(owner), make(value))
                   for (owner, name, make), value in zip(_TARGETS, values, strict=True)]
        replacing = {id(target): replacement for owner, _, value, _, replacement in patches
                     if isinstance(owner, ModuleType)
                     for target in (value, inspect.unwrap(value))}
        _plan = _Plan(found, patches, replacing)
    return _plan


@contextlib.contextmanager
def intercepted(hook: Hook) -> Iterator[None]:
    """Route the user's calls to catalogued APIs through ``hook`` inside the block.

    Only calls made on the entering thread are intercepted. A nested block
    (or one entered while another is active on any thread) is a no-op: the
    outer hook keeps serving.
    """
    global _session
    if _session is not None:
        yield
        return
    undo: list[tuple[Any, str, Any, bool]] = []
    _session = _Session(hook)
    try:
        plan = _plan_for([getattr(owner, name) for owner, name, _ in _TARGETS])
        for owner, name, value, owned, replacement in plan.patches:
            undo.append((owner, name, value, owned))
            setattr(owner, name, replacement)
        # A user module may hold the function from before other seams wrapped it
        # (``from uuid import uuid4`` under the simulator's seeded uuid4, which nests
        # when a handler's poll drives the worker): match it and all it wraps.
        replacing = plan.replacing
        for module, name in alias_sites("nondeterministic", _modules_of_user(), replacing):
            value = vars(module).get(name)
            if id(value) in replacing:
                undo.append((module, name, value, True))
                setattr(module, name, replacing[id(value)])
        yield
    finally:
        _session = None
        for owner, name, value, owned in reversed(undo):
            if owned:
                setattr(owner, name, value)
            else:
                delattr(owner, name)
