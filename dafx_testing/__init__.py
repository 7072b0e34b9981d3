"""dafx-testing: run Azure Durable Functions apps in memory, faithfully.

The public face is :class:`Simulator`; everything else is internal detail::

    from dafx_testing import Simulator

    sim = Simulator("function_app.py")
    iid = sim.start_new("hello_orchestrator", "Tokyo")
    status = sim.wait_for_completion(iid)
    assert status.runtime_status == "Completed"
"""

from .agents.sessions import AgentSession, AgentTurn
from .core.crash import POINT_KINDS, CommitPoint, CrashPlan
from .core.errors import (
    AppLoadError,
    DafxError,
    HistoryFormatError,
    InstanceNotFoundError,
    InstanceStateError,
    NonDeterminismError,
    RunawayOrchestrationError,
    SerializationError,
    UnhandledHttpCallError,
    UnknownFunctionError,
    WaitTimeoutError,
)
from .functions.activities import ActivityCall
from .functions.app import DafxWarning
from .functions.orchestrations import AZURE_STORAGE_TIMER_LIMITS, NO_TIMER_LIMITS, TimerLimits
from .simulator import EntityStatus, HttpCall, InstanceStatus, Simulator

__all__ = [
    "AgentSession",
    "AgentTurn",
    "Simulator",
    "InstanceStatus",
    "EntityStatus",
    "CrashPlan",
    "CommitPoint",
    "POINT_KINDS",
    "ActivityCall",
    "HttpCall",
    "TimerLimits",
    "AZURE_STORAGE_TIMER_LIMITS",
    "NO_TIMER_LIMITS",
    "DafxWarning",
    "DafxError",
    "AppLoadError",
    "UnknownFunctionError",
    "InstanceNotFoundError",
    "InstanceStateError",
    "NonDeterminismError",
    "SerializationError",
    "RunawayOrchestrationError",
    "WaitTimeoutError",
    "HistoryFormatError",
    "UnhandledHttpCallError",
]

__version__ = "0.1.0"
