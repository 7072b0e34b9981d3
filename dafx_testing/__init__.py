"""dafx-testing: run Azure Durable Functions apps and durable agents in memory, faithfully.

Everything a test needs is importable from here (the fake model is in
:mod:`dafx_testing.llm`)::

    from dafx_testing import Simulator

    sim = Simulator("function_app.py")
    iid = sim.start_new("hello_orchestrator", "Tokyo")
    status = sim.wait_for_completion(iid)
    assert status.runtime_status == "Completed"

The names load on first use, so the pytest plugin starts without the engine.
The subpackages (``core``, ``functions``, ``agents``, ``checks``, ``reports``,
``pytest_plugin``) are the engine's own layout, not an API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agents.sessions import AgentMessage, AgentSession, AgentToolCall, AgentTurn
    from .checks.determinism import PerturbedReplay
    from .checks.explore import Schedule, ScheduleFailure
    from .checks.fault_sweep import FaultPlan, FaultSweepReport
    from .checks.guard import Guard, GuardReport, NonDeterministicCallWarning
    from .checks.historydiff import HistoryDiff, diff_histories
    from .checks.replayer import Replayer, ReplayResult
    from .checks.sweep import DuplicatedEffect, RepeatedModelCalls, SweepFailure, SweepReport
    from .core.crash import POINT_KINDS, CommitPoint, CrashPlan
    from .core.errors import (
        AppLoadError,
        ArgumentError,
        DafxError,
        DafxWarning,
        HistoryFormatError,
        InstanceNotFoundError,
        InstanceStateError,
        NonDeterminismError,
        NonDeterministicCallError,
        PerturbedReplayError,
        ReplayError,
        RunawayOrchestrationError,
        SerializationError,
        UnhandledHttpCallError,
        UnknownFunctionError,
        WaitTimeoutError,
    )
    from .functions.activities import ActivityCall
    from .functions.orchestrations import AZURE_STORAGE_TIMER_LIMITS, NO_TIMER_LIMITS, TimerLimits
    from .simulator import EntityStatus, HttpCall, InstanceStatus, Simulator

__version__ = "0.1.0"

_HOMES = {
    "Simulator": "simulator", "InstanceStatus": "simulator", "EntityStatus": "simulator",
    "HttpCall": "simulator",
    "CrashPlan": "core.crash", "CommitPoint": "core.crash", "POINT_KINDS": "core.crash",
    "ActivityCall": "functions.activities",
    "TimerLimits": "functions.orchestrations",
    "AZURE_STORAGE_TIMER_LIMITS": "functions.orchestrations",
    "NO_TIMER_LIMITS": "functions.orchestrations",
    "AgentSession": "agents.sessions", "AgentTurn": "agents.sessions",
    "AgentMessage": "agents.sessions", "AgentToolCall": "agents.sessions",
    "Replayer": "checks.replayer", "ReplayResult": "checks.replayer",
    "Guard": "checks.guard", "GuardReport": "checks.guard",
    "NonDeterministicCallWarning": "checks.guard",
    "PerturbedReplay": "checks.determinism",
    "diff_histories": "checks.historydiff", "HistoryDiff": "checks.historydiff",
    "SweepReport": "checks.sweep", "SweepFailure": "checks.sweep",
    "DuplicatedEffect": "checks.sweep", "RepeatedModelCalls": "checks.sweep",
    "Schedule": "checks.explore", "ScheduleFailure": "checks.explore",
    "FaultPlan": "checks.fault_sweep", "FaultSweepReport": "checks.fault_sweep",
    **{name: "core.errors" for name in (
        "DafxError", "DafxWarning", "AppLoadError", "ArgumentError", "UnknownFunctionError",
        "InstanceNotFoundError", "InstanceStateError", "NonDeterminismError",
        "NonDeterministicCallError", "PerturbedReplayError", "ReplayError",
        "SerializationError", "RunawayOrchestrationError", "WaitTimeoutError",
        "HistoryFormatError", "UnhandledHttpCallError")},
}
"""Where each public name is defined, relative to this package."""

__all__ = [
    # the simulator and what it returns
    "Simulator",
    "InstanceStatus",
    "EntityStatus",
    "HttpCall",
    "ActivityCall",
    "AgentSession",
    "AgentTurn",
    "AgentMessage",
    "AgentToolCall",
    "TimerLimits",
    "AZURE_STORAGE_TIMER_LIMITS",
    "NO_TIMER_LIMITS",
    # crashes
    "CrashPlan",
    "CommitPoint",
    "POINT_KINDS",
    "SweepReport",
    "SweepFailure",
    "DuplicatedEffect",
    "RepeatedModelCalls",
    "Schedule",
    "ScheduleFailure",
    # model faults
    "FaultPlan",
    "FaultSweepReport",
    # determinism
    "Replayer",
    "ReplayResult",
    "Guard",
    "GuardReport",
    "PerturbedReplay",
    "diff_histories",
    "HistoryDiff",
    # errors and warnings
    "DafxError",
    "AppLoadError",
    "ArgumentError",
    "UnknownFunctionError",
    "InstanceNotFoundError",
    "InstanceStateError",
    "NonDeterminismError",
    "NonDeterministicCallError",
    "PerturbedReplayError",
    "ReplayError",
    "SerializationError",
    "RunawayOrchestrationError",
    "WaitTimeoutError",
    "HistoryFormatError",
    "UnhandledHttpCallError",
    "DafxWarning",
    "NonDeterministicCallWarning",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dafx_testing' has no attribute {name!r}")
    # Not cached here: the defining module stays the one source of truth, even when a test
    # tool (pytester) takes modules out of sys.modules and imports them again.
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
