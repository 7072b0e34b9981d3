"""The determinism guard: catch orchestrator code calling non-deterministic APIs.

Orchestrator code is replayed from history many times, on different machines.
A call whose result changes from one replay to the next (the wall clock, a
uuid4, a random number, an environment variable, a file, the network) can make
a replay take another path, and the host then fails the instance with a
non-determinism error, days after the deployment. The guard reports such calls
while the test runs, with the file and line in *your* code and the replay-safe
alternative::

    from dafx_testing import Simulator
    from dafx_testing.checks.guard import Guard

    sim = Simulator("function_app.py", guard=Guard())           # mode "error"
    sim.start_new("my_orchestrator")
    sim.run_until_idle()
    # NonDeterministicCallError: orchestrator code called datetime.now() at
    # function_app.py:31 (in my_orchestrator): ... Fix: use
    # context.current_utc_datetime, the replay-safe time of the current episode. ...

Only orchestrator code is watched (the simulator enters the guard around each
call into an orchestrator; activities and entities may do anything). Calls that
the Durable SDK, ``azure.functions`` or the Agent Framework make on your behalf
(``context.new_uuid()``, the SDK's own environment reads, logging) are never
reported: the guard looks at who called, through the standard library and
third-party packages, to the first frame that is either framework or yours.

The durable SDK catches every exception your orchestrator raises and turns it
into a failed orchestration, so in ``"error"`` mode the error is raised twice:
inside your code, at the call (your code stops there), and again when the
orchestrator returns to the simulator, so it reaches your test even when your
code or the SDK swallowed it. The guard also keeps every report in
:attr:`Guard.reports`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..core.errors import DafxWarning, NonDeterministicCallError
from .nondeterministic_apis import Call, CallSite, Outcome, call_through, intercepted

__all__ = ["Guard", "GuardReport", "NonDeterministicCallWarning", "MODES"]

MODES: tuple[str, ...] = ("error", "warn", "off")
"""The guard's modes: raise, warn (and carry on), or do nothing."""


class NonDeterministicCallWarning(DafxWarning):
    """The guard's warning in ``"warn"`` mode; it points at your file and line."""


@dataclass(frozen=True)
class GuardReport:
    """One non-deterministic call the guard saw.

    Attributes:
        call: the call as written, e.g. ``"uuid.uuid4()"`` or ``"os.environ['REGION']"``.
        site: where in your code (``str(site)`` is ``"path/file.py:LINE"``).
        alternative: the replay-safe way to do the same thing.
    """

    call: str
    site: CallSite
    alternative: str

    def error(self) -> NonDeterministicCallError:
        """The error that reports this call."""
        return NonDeterministicCallError(self.call, str(self.site), self.site.function,
                                         self.alternative)


@dataclass(frozen=True)
class _Allowed:
    """One allow-list entry: a module (and its submodules), a file, or a file and line."""

    module: str | None = None
    path: str | None = None
    line: int | None = None

    @classmethod
    def parse(cls, entry: str) -> _Allowed:
        text = entry.strip().replace("\\", "/")
        path, sep, line = text.rpartition(":")
        if sep and path.endswith(".py"):
            if not line.isdigit():
                raise ValueError(f"allow entry {entry!r}: the line after ':' must be a number, "
                                 "e.g. 'app/function_app.py:42'")
            return cls(path=path, line=int(line))
        if text.endswith(".py"):
            return cls(path=text)
        if not text or not all(part.isidentifier() for part in text.split(".")):
            raise ValueError(
                f"allow entry {entry!r} is neither a module ('pkg.module') nor a call site "
                "('path/file.py' or 'path/file.py:LINE')")
        return cls(module=text)

    def matches(self, site: CallSite) -> bool:
        if self.module is not None:
            return site.module == self.module or site.module.startswith(self.module + ".")
        assert self.path is not None   # parse() sets either the module or the path
        filename = site.filename.replace("\\", "/")
        if not (filename == self.path or filename.endswith("/" + self.path.lstrip("/"))):
            return False
        return self.line is None or self.line == site.lineno


class Guard:
    """Report calls to non-deterministic APIs made by orchestrator code.

    Pass it as the simulator's ``guard``: the simulator calls it around every
    call into an orchestrator, and each call patches the guarded APIs for that
    one episode (no tracing; nothing is patched in between).

    Args:
        mode: ``"error"`` (default) raises :class:`NonDeterministicCallError`;
            ``"warn"`` issues a :class:`NonDeterministicCallWarning` pointing at
            your line and lets the call through; ``"off"`` does nothing.
        allow: calls to let through: ``"pkg.module"`` (every call made from that
            module or its submodules), ``"path/file.py"`` (a file, matched by
            its trailing path) or ``"path/file.py:123"`` (one line).

    Guarded: ``datetime.now/utcnow/today``, ``date.today``,
    ``time.time/monotonic/perf_counter`` (and ``_ns``), ``time.sleep``,
    ``uuid.uuid1/uuid4``, the ``random`` module's functions, ``secrets``,
    ``os.urandom``, ``os.environ``/``os.getenv`` reads, ``open``, socket
    connections and name lookups, ``asyncio.run/new_event_loop/get_event_loop/sleep``
    and starting a ``threading.Thread``.

    Example::

        sim = Simulator(app, guard=Guard("warn", allow=["myapp.telemetry"]))
    """

    def __init__(self, mode: str = "error", allow: Sequence[str] = ()) -> None:
        if mode not in MODES:
            raise ValueError(f"guard mode {mode!r} is not one of {', '.join(map(repr, MODES))}")
        if isinstance(allow, str):
            allow = [allow]
        self.mode = mode
        self.allow: tuple[str, ...] = tuple(allow)
        self._allowed = [_Allowed.parse(entry) for entry in self.allow]
        self.reports: list[GuardReport] = []
        """Every call reported so far, oldest first."""
        self._raised: list[NonDeterministicCallError] = []
        self._warned: dict[Any, Any] = {}   # the warnings registry: one warning per line

    def __repr__(self) -> str:
        return f"Guard(mode={self.mode!r}, allow={list(self.allow)!r})"

    def __call__(self) -> AbstractContextManager[None]:
        """The context manager for one call into orchestrator code."""
        return self._watch()

    @contextlib.contextmanager
    def _watch(self) -> Iterator[None]:
        __tracebackhide__ = True
        if self.mode == "off":
            yield
            return
        self._raised = []
        with intercepted(self._on_call):
            yield
        if self._raised:
            # The SDK turned the error into a failed orchestration; raise the
            # same object again (its traceback still shows your line).
            raise self._raised[0]

    def _on_call(self, call: Call) -> Outcome:
        __tracebackhide__ = True
        if any(allowed.matches(call.site) for allowed in self._allowed):
            return call_through
        report = GuardReport(call.render(), call.site, call.api.alternative)
        self.reports.append(report)
        error = report.error()
        if self.mode == "error":
            self._raised.append(error)
            raise error
        warnings.warn_explicit(str(error), NonDeterministicCallWarning, call.site.filename,
                               call.site.lineno, module=call.site.module, registry=self._warned)
        return call_through
