"""The seams between the simulated sidecar and the real worker, one work item at a time.

:class:`CaptureStub` stands where the worker's gRPC stub would: the worker's own
``_execute_*`` methods hand it their answer (``Complete*Task``) instead of sending it.
:class:`Observers` lets the worker call a registered function through an observer, so a
run can see what the SDK passed in and got back (an activity's input and result, an
orchestration's context) without replacing the user's function.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as pb

__all__ = ["CaptureStub", "ActivityRun", "Observers"]


class CaptureStub:
    """The sidecar's end of one work item: keeps the worker's answer instead of sending it."""

    def __init__(self) -> None:
        self.reply: Any = None
        self.abandoned = False

    def CompleteOrchestratorTask(self, response: pb.OrchestratorResponse) -> None:  # noqa: N802
        self.reply = response

    def CompleteActivityTask(self, response: pb.ActivityResponse) -> None:  # noqa: N802
        self.reply = response

    def CompleteEntityTask(self, response: pb.EntityBatchResult) -> None:  # noqa: N802
        self.reply = response

    def _abandon(self, _request: Any) -> None:
        self.abandoned = True

    AbandonTaskOrchestratorWorkItem = AbandonTaskActivityWorkItem = AbandonTaskEntityWorkItem = _abandon


@dataclass
class ActivityRun:
    """What one activity execution did, seen from inside the SDK's call to the function."""

    input: Any = None
    result: Any = None
    error: BaseException | None = None
    mocked: bool = False

    def record(self, _ctx: Any, value: Any, outcome: Callable[[], Any]) -> Any:
        self.input = value
        try:
            self.result = outcome()
        except BaseException as exc:
            self.error = exc
            raise
        return self.result


class Observers:
    """Let the SDK call a registered function through an observer, one per function.

    The observer wears the function's signature and type hints (``functools.wraps``:
    the SDK reads them to decode inputs) and returns ``on_call(ctx, input, call)``,
    where ``call()`` runs the function (or ``mock``, when a test mocks an activity).
    It is made once per function and kept, because the SDK caches what it reads off
    a function by the function object (``type_discovery._memoized_signature_info``);
    the registration is the user's function again after each call.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[int, str], Callable[..., Any]] = {}
        self._serving: dict[tuple[int, str], tuple[Callable[..., Any], Any, Any]] = {}

    @contextlib.contextmanager
    def observing(self, table: dict[str, Any], name: str,
                  on_call: Callable[[Any, Any, Callable[[], Any]], Any],
                  mock: Callable[[Any], Any] | None = None) -> Iterator[None]:
        fn = table.get(name)
        if fn is None:
            yield           # unregistered: the SDK answers for it
            return
        key = (id(table), name)
        observer = self._made.get(key)
        if observer is None or getattr(observer, "__wrapped__", None) is not fn:
            observer = self._made[key] = self._observer(key, fn)
        self._serving[key] = (on_call, mock, fn)
        table[name] = observer
        try:
            yield
        finally:
            table[name] = fn
            del self._serving[key]

    def _observer(self, key: tuple[int, str], fn: Callable[..., Any]) -> Callable[..., Any]:
        serving = self._serving

        @functools.wraps(fn)
        def observer(ctx: Any, value: Any) -> Any:
            on_call, mock, original = serving[key]
            return on_call(ctx, value, (lambda: mock(value)) if mock is not None
                           else (lambda: original(ctx, value)))

        return observer
