"""The second host: Durable Task SDK workers (``durabletask``) and their durable agents.

Teams that host orchestrations and Agent Framework durable agents outside Azure
Functions run a ``TaskHubGrpcWorker`` (or ``DurableTaskSchedulerWorker``, or a
``DurableAIAgentWorker`` wrapping one) against a sidecar. Here the sidecar is the
simulator: ``Simulator(worker)`` drives the worker's own executors one work item
at a time, on the same task hub, clock, crash points and checks as the Functions
host (:mod:`dafx_testing.functions`), whose engine it shares; :func:`attach` serves
an unmodified program's workers and clients.

May import ``core``, ``agents``, ``functions`` (the shared engine), ``checks`` and
the ``simulator`` front end it extends.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["attach", "DurableTaskSimulator", "Replayer"]

_HOMES = {"attach": "programs", "DurableTaskSimulator": "simulator", "Replayer": "replayer"}


def __getattr__(name: str) -> Any:
    """``attach``, ``DurableTaskSimulator`` and ``Replayer``, imported when first asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
