"""Activity invocation, mocks and the record of every execution.

An activity runs as the Python worker runs it: the input string goes through
the SDK's ``ActivityTriggerConverter.decode`` (so ``df_loads``), the function is
called with its trigger parameter (awaited if async), and the return value goes
through ``ActivityTriggerConverter.encode`` (``df_dumps``). An exception becomes
a ``TaskFailed`` with the reason the extension writes:
``Activity function '<name>' failed: <Type>: <message>``, and details that
name the line of the app's code that raised.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from azure.functions.durable_functions import ActivityTriggerConverter
from azure.functions.meta import Datum

from ..core.async_bridge import LoopFactory, run_sync
from ..core.messages import ActivityWork
from ..core.payloads import unserializable_message
from ..core.user_code import is_user_code, is_user_module, real_path

_RPC_EXCEPTION = "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException, Microsoft.Azure.WebJobs.Script"
@dataclass(frozen=True)
class ActivityOutcome:
    """How one execution ended: ``result`` (df_dumps text) or ``reason``/``details``."""

    ok: bool
    result: str | None = None
    reason: str | None = None
    details: str | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class ActivityCall:
    """One execution of an activity, as :meth:`Simulator.activity_calls` reports it.

    Attributes:
        name: the activity's registered name.
        input: the decoded input the function received.
        attempt: 1 for the first try; retries (``call_activity_with_retry``) count up.
        instance_id: the calling orchestration instance.
        task_id: the ``TaskScheduled`` sequence number.
        at: the virtual time it ran.
        result: the decoded return value (None if it raised).
        error: the exception object of a failed execution (with its traceback), or None;
            the orchestrator only gets its text. A return value that is not JSON-able
            is a ``TypeError`` made by dafx.
        mocked: True when a :meth:`Simulator.mock_activity` override ran instead.
    """

    name: str
    input: Any
    attempt: int
    instance_id: str
    task_id: int
    at: datetime
    result: Any = None
    error: BaseException | None = None
    mocked: bool = False


def run_activity(function: Callable[..., Any], param: str, work: ActivityWork,
                 mock: Callable[..., Any] | None, now: datetime,
                 loop_factory: LoopFactory | None = None) -> tuple:
    """Execute one activity; returns ``(ActivityOutcome, ActivityCall)``.

    An async activity is awaited on a loop from ``loop_factory`` (a new plain loop by
    default; the worker passes one whose sleeps take the activity's virtual time).
    """
    value = ActivityTriggerConverter.decode(Datum(work.input, "json"), trigger_metadata={})
    try:
        returned = mock(value) if mock is not None else function(**{param: value})
        if inspect.isawaitable(returned):
            returned = run_sync(returned, *(() if loop_factory is None else (loop_factory,)))
    except Exception as exc:
        outcome = failure(work.name, exc, raised_at(exc, _import_root(function)))
        return outcome, _call(work, value, now, mock, error=exc)
    try:
        encoded = ActivityTriggerConverter.encode(returned, expected_type=None).value
    except (TypeError, ValueError) as exc:
        error = TypeError(unserializable_message(returned, f"the return value of {work.name!r}", exc))
        return failure(work.name, error), _call(work, value, now, mock, error=error)
    return ActivityOutcome(True, result=encoded), _call(work, value, now, mock, result=returned)


def failure(name: str, exc: BaseException, where: str | None = None) -> ActivityOutcome:
    """The ``TaskFailed`` the extension records for an activity that raised.

    The format is the extension's: ``TaskActivityShim`` (Durable extension,
    ``Listener/TaskActivityShim.cs``) fails the task with ``Activity function
    '<name>' failed: <message>`` and the serialized exception as details. For
    the Python worker that exception is the host's ``RpcException``
    (azure-functions-host, ``Workers/Rpc/RpcException.cs``), whose message is
    ``Result: Failure\\nException: <Type>: <message>\\nStack: <traceback>``.
    The reason keeps the short form; the details carry the stack as ``where``
    (one frame, see :func:`raised_at`), with no machine paths, so saved
    histories stay portable.
    """
    message = f"{type(exc).__name__}: {exc}"
    stack = f"\nStack: {where}" if where else ""
    details = json.dumps({"$type": _RPC_EXCEPTION, "ClassName": "RpcException",
                          "Message": f"Result: Failure\nException: {message}{stack}"})
    return ActivityOutcome(False, reason=f"Activity function '{name}' failed: {message}",
                           details=details, error=exc)


def raised_at(exc: BaseException, root: Path | None) -> str | None:
    """The app's line that raised ``exc``, as a traceback frame: ``  File "x.py", line 8, in f``.

    That is the last frame of the traceback in the app's code (see
    :mod:`dafx_testing.core.user_code`): not the framework, the standard library or
    installed packages. Its
    file is shown relative to ``root`` (the app's folder), or by name alone
    when outside it; None when no frame is the app's (nothing was raised in
    it, e.g. a return value that is not JSON-able).
    """
    frames = [(frame, line) for frame, line in traceback.walk_tb(exc.__traceback__)
              if is_user_code(frame)]
    if not frames:
        return None
    frame, line = frames[-1]
    file = Path(real_path(frame.f_code.co_filename))
    try:
        shown = file.relative_to(root).as_posix() if root is not None else file.name
    except ValueError:
        shown = file.name
    return f'  File "{shown}", line {line}, in {frame.f_code.co_name}'


def _import_root(function: Callable[..., Any]) -> Path | None:
    """The folder ``function``'s module was imported from: the app's folder.

    The worker (and ``load_app``, given a path) puts the app's folder on
    ``sys.path`` and imports ``function_app`` from it, so for ``a.b`` in
    ``<root>/a/b.py`` the root is two folders up.
    """
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    file = getattr(module, "__file__", None)
    if module is None or not file:
        return None
    top = sys.modules.get(module.__name__.partition(".")[0])
    if top is not None and top.__name__.startswith("__app__"):
        # A classic app: the worker's ``__app__`` namespace package *is* the app's folder.
        return Path(real_path(next(iter(top.__path__))))
    path = Path(real_path(file))
    depth = module.__name__.count(".") + (path.name == "__init__.py")
    return path.parents[depth] if depth < len(path.parents) else None


def app_modules(function: Callable[..., Any] | None) -> list[ModuleType]:
    """The loaded modules of the app ``function`` belongs to: the user's, under its import root.

    A test module's root may hold other code (the project, dafx-testing in a
    checkout): only the user's modules count (:mod:`dafx_testing.core.user_code`).
    None (no function registered under the name): none.
    """
    root = _import_root(function) if function is not None else None
    if root is None:
        return []
    cached = _app_modules.get(root)
    if cached is None or cached[0] != len(sys.modules):
        prefix = str(root) + os.sep
        found = [m for m in list(sys.modules.values())
                 if isinstance(m, ModuleType) and (getattr(m, "__file__", None) or "").startswith(prefix)
                 and is_user_module(m)]
        cached = _app_modules[root] = (len(sys.modules), found)
    return cached[1]


_app_modules: dict[Path, tuple[int, list[ModuleType]]] = {}
"""Per app folder: how many modules were loaded when it was scanned, and the app's among them."""


def _call(work: ActivityWork, value: Any, now: datetime, mock: Any, **outcome: Any) -> ActivityCall:
    return ActivityCall(name=work.name, input=value, attempt=work.attempt,
                        instance_id=work.instance_id, task_id=work.task_id, at=now,
                        mocked=mock is not None, **outcome)


class ActivityLedger:
    """Overrides and the record of executions: activity calls and entity operations."""

    def __init__(self) -> None:
        self.mocks: dict[str, Callable[..., Any]] = {}
        self.calls: list[ActivityCall] = []
        self.entity_operations: Counter = Counter()   # "entity.operation" -> executions

    def mock(self, name: str, fn: Callable[..., Any]) -> None:
        self.mocks[name.lower()] = fn

    def mock_for(self, name: str) -> Callable[..., Any] | None:
        return self.mocks.get(name.lower())

    def calls_to(self, name: str | None) -> list[ActivityCall]:
        if name is None:
            return list(self.calls)
        return [c for c in self.calls if c.name.lower() == name.lower()]
