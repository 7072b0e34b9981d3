"""Fault plans: make the Nth model call fail, whichever fake answers it.

``fake.fault(kind)`` fails the *next* request, which is fine for one test but cannot say
"the third call of this scenario". A :class:`FaultPlan` names calls by number: the model
requests the active fakes answer while a simulator runs, numbered from 1 in the order they are
answered. The simulator (``Simulator(app, fault_plan=...)``) opens a :class:`ModelCalls` counter
around the work it does (:func:`injecting`); every :class:`~dafx_testing.llm.FakeLLM` asks the
open counters before its own fault rules and scripts (:func:`planned_fault`), so the plan
applies to whatever fake is active, the ``fake_llm`` fixture's included. A planned fault, like
any fault, never uses up a scripted reply, and a request it fails draws no ``fake.fault`` rule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from .faults import FAULT_KINDS, FaultKind, FaultRule
from .request import LLMRequest

__all__ = ["FaultPlan", "ModelCalls", "injecting", "planned_fault"]


@dataclass(frozen=True, init=False)
class FaultPlan:
    """Which model calls fail, and how: ``{call number: fault kind}``.

    Three spellings, one value::

        FaultPlan(call=3, fault="rate_limit")             # the third model call gets a 429
        FaultPlan({3: "rate_limit", 5: "timeout"})        # several calls
        FaultPlan([(3, "rate_limit"), (4, "rate_limit")])  # the same, as (call, fault) pairs

    Calls are numbered from 1 in the order the fakes answer them during one simulator's life.
    The kinds are those of ``fake.fault`` (:data:`~dafx_testing.llm.FAULT_KINDS`), rendered on
    the wire the same way; ``retry_after`` is the seconds a ``rate_limit`` asks to wait.
    ``FaultPlan()`` fails nothing (it still numbers the calls). ``repr`` is the line that
    rebuilds the plan, as fault sweeps print it.
    """

    faults: tuple[tuple[int, FaultKind], ...]
    retry_after: float

    def __init__(self, faults: Mapping[int, str] | Iterable[tuple[int, str]] | None = None, /, *,
                 call: int | None = None, fault: str | None = None, retry_after: float = 1.0) -> None:
        pairs: list[tuple[Any, Any]] = []
        if faults is not None:
            pairs = list(faults.items()) if isinstance(faults, Mapping) else list(faults)
        if (call is None) != (fault is None):
            raise ValueError("FaultPlan: give call= and fault= together, e.g. "
                             'FaultPlan(call=3, fault="rate_limit")')
        if call is not None:
            if pairs:
                raise ValueError("FaultPlan: give either a {call: fault} mapping or call=/fault=, "
                                 "not both")
            pairs = [(call, fault)]
        checked: dict[int, FaultKind] = {}
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"FaultPlan: {pair!r} is not a (call, fault) pair, e.g. (3, 'timeout')")
            number, kind = pair
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise ValueError(f"FaultPlan: call {number!r} is not a model call number; calls "
                                 "are numbered from 1")
            if kind not in FAULT_KINDS:
                raise ValueError(f"FaultPlan: unknown fault kind {kind!r} for call {number}; use "
                                 f"one of {', '.join(FAULT_KINDS)}")
            if number in checked:
                raise ValueError(f"FaultPlan: call {number} is given two faults "
                                 f"({checked[number]!r} and {kind!r}); one call fails one way")
            checked[number] = cast(FaultKind, kind)
        if not isinstance(retry_after, (int, float)) or retry_after < 0:
            raise ValueError(f"FaultPlan: retry_after={retry_after!r} is not a duration; give "
                             "seconds >= 0")
        object.__setattr__(self, "faults", tuple(sorted(checked.items())))
        object.__setattr__(self, "retry_after", float(retry_after))

    def fault_at(self, call: int) -> FaultKind | None:
        """The fault planned for model call ``call`` (None: it is answered as usual)."""
        return dict(self.faults).get(call)

    def __bool__(self) -> bool:
        return bool(self.faults)

    def __repr__(self) -> str:
        extra = "" if self.retry_after == 1.0 else f", retry_after={self.retry_after:g}"
        if len(self.faults) == 1:
            (call, kind), = self.faults
            return f'FaultPlan(call={call}, fault="{kind}"{extra})'
        inner = ", ".join(f'{call}: "{kind}"' for call, kind in self.faults)
        return f"FaultPlan({{{inner}}}{extra})" if self.faults or extra else "FaultPlan()"


@dataclass(eq=False)
class ModelCalls:
    """One simulator's model calls, numbered as they are answered, and its plan's faults.

    Attributes:
        plan: the faults to inject.
        requests: every model request answered while the counter was open, in order
            (``requests[n - 1]`` is call ``n``).
        injected: ``(call number, fault kind)`` of each fault the plan injected.
        on_call: called with each call's number and request as it is counted (fault sweeps
            note which work made it).
    """

    plan: FaultPlan = field(default_factory=FaultPlan)
    requests: list[LLMRequest] = field(default_factory=list)
    injected: list[tuple[int, str]] = field(default_factory=list)
    on_call: Callable[[int, LLMRequest], None] | None = field(default=None, repr=False)

    def count(self, request: LLMRequest) -> FaultRule | None:
        """Number ``request``; the fault rule to answer it with, if the plan fails this call."""
        self.requests.append(request)
        number = len(self.requests)
        if self.on_call is not None:
            self.on_call(number, request)
        kind = self.plan.fault_at(number)
        if kind is None:
            return None
        self.injected.append((number, kind))
        return FaultRule(kind, retry_after=self.plan.retry_after)


_OPEN: list[ModelCalls] = []
_lock = threading.Lock()


@contextmanager
def injecting(calls: ModelCalls) -> Iterator[ModelCalls]:
    """Count (and fail, per the plan) the model calls any fake answers inside the block.

    Re-entrant: a block nested in one for the same counter changes nothing. Process-wide,
    not per thread: the Agent Framework calls the model from its own event-loop thread.
    """
    with _lock:
        opened = not any(open_calls is calls for open_calls in _OPEN)
        if opened:
            _OPEN.append(calls)
    try:
        yield calls
    finally:
        if opened:
            with _lock:
                _OPEN.remove(calls)


def planned_fault(request: LLMRequest) -> FaultRule | None:
    """Count ``request`` with every open counter; the first planned fault for it, if any."""
    with _lock:
        counters = list(_OPEN)
    rules = [rule for calls in counters if (rule := calls.count(request)) is not None]
    return rules[0] if rules else None
