"""Activity invocation, mocks and the record of every execution.

An activity runs as the Python worker runs it: the input string goes through
the SDK's ``ActivityTriggerConverter.decode`` (so ``df_loads``), the function is
called with its trigger parameter (awaited if async), and the return value goes
through ``ActivityTriggerConverter.encode`` (``df_dumps``). An exception becomes
a ``TaskFailed`` with the reason the extension writes:
``Activity function '<name>' failed: <Type>: <message>``.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.functions.durable_functions import ActivityTriggerConverter
from azure.functions.meta import Datum

from ..core.async_bridge import run_sync
from ..core.messages import ActivityWork
from ..core.payloads import unserializable_message

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
        error: the exception it raised, if any.
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
                 mock: Callable[..., Any] | None, now: datetime) -> tuple:
    """Execute one activity; returns ``(ActivityOutcome, ActivityCall)``."""
    value = ActivityTriggerConverter.decode(Datum(work.input, "json"), trigger_metadata={})
    try:
        returned = mock(value) if mock is not None else function(**{param: value})
        if inspect.isawaitable(returned):
            returned = run_sync(returned)
    except Exception as exc:
        outcome = failure(work.name, exc)
        return outcome, _call(work, value, now, mock, error=exc)
    try:
        encoded = ActivityTriggerConverter.encode(returned, expected_type=None).value
    except (TypeError, ValueError) as exc:
        error = TypeError(unserializable_message(returned, f"the return value of {work.name!r}", exc))
        return failure(work.name, error), _call(work, value, now, mock, error=error)
    return ActivityOutcome(True, result=encoded), _call(work, value, now, mock, result=returned)


def failure(name: str, exc: BaseException) -> ActivityOutcome:
    """The ``TaskFailed`` the extension records for an activity that raised.

    The Python stack is left out of ``Details`` so saved histories carry no
    machine paths.
    """
    message = f"{type(exc).__name__}: {exc}"
    details = json.dumps({"$type": _RPC_EXCEPTION, "ClassName": "RpcException",
                          "Message": f"Result: Failure\nException: {message}"})
    return ActivityOutcome(False, reason=f"Activity function '{name}' failed: {message}",
                           details=details, error=exc)


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
