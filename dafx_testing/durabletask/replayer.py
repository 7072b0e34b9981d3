"""Replay saved durabletask histories through the current worker code.

The same contract as :class:`~dafx_testing.checks.replayer.Replayer` (files written by
``sim.save_history``, bare event lists; results with the same fields), with the
durabletask host's replay: the worker's own executor gets the history (the last
episode as new events, everything before it as past events, as the sidecar sends
them), and the SDK's checks decide. A mismatch is the SDK's ``NonDeterminismError``,
read back as dafx's (:func:`~dafx_testing.durabletask.determinism.sdk_divergence`).
"""

from __future__ import annotations

import logging
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as pb

from ..checks.replayer import Replayer as FunctionsReplayer
from ..checks.replayer import ReplayResult
from ..core.history import Event, EventType
from .capture import CaptureStub
from .determinism import SDK_ERROR_TYPE, sdk_divergence
from .events import failure_message, to_proto
from .loading import load_worker
from .registry import ORCHESTRATOR, WorkerIndex, is_worker

__all__ = ["Replayer", "VERSIONING_HINT"]

VERSIONING_HINT = (
    "instances already in flight replay their recorded history through the new code, so they "
    "would fail like this after the deployment. Keep their path intact: branch on ctx.version "
    "(the worker's use_versioning(VersioningOptions(...)) stamps new instances), or ship it as "
    "a new orchestrator (e.g. '{name}_v2') and keep the old one until its instances have finished."
)
"""What a failed replay suggests on this host; ``{name}`` is the orchestrator's name."""


class Replayer(FunctionsReplayer):
    """Replay saved histories against a durabletask worker's current code.

    Args:
        worker: a worker (or ``DurableAIAgentWorker``), or a worker module's path
            (``"worker.py"``, ``"worker.py:build_worker"``).
        raise_on_failure: raise :class:`~dafx_testing.core.errors.ReplayError` for
            the first history that does not replay.

    Example::

        result = Replayer(build_worker()).replay("histories/review-1.json")
        assert result.ok, result.explain()
    """

    history_events = frozenset(EventType)       # the protocol's entity events included

    def __init__(self, worker: Any, *, raise_on_failure: bool = False) -> None:
        self.worker_index = WorkerIndex.of(worker if is_worker(worker) else load_worker(worker))
        self.raise_on_failure = raise_on_failure

    def _replay_events(self, source: str, events: list[Event], started: Event,
                       instance_id: str, notes: list[str]) -> ReplayResult:
        name = started["Name"]
        base = dict(source=source, instance_id=instance_id, orchestrator=name,
                    events=len(events), notes=tuple(notes), versioning_hint=VERSIONING_HINT)
        worker = self.worker_index.worker_for(ORCHESTRATOR, name)
        if worker is None or self.worker_index.find(ORCHESTRATOR, name) is None:
            known = ", ".join(self.worker_index.names(ORCHESTRATOR)) or "none"
            return ReplayResult(**base, failure=f"the worker no longer registers orchestrator "
                                                f"{name!r} (known: {known})")
        last = max(i for i, e in enumerate(events) if e["EventType"] == EventType.OrchestratorStarted)
        request = pb.OrchestratorRequest(instanceId=instance_id,
                                         pastEvents=[to_proto(e) for e in events[:last]],
                                         newEvents=[to_proto(e) for e in events[last:]])
        stub = CaptureStub()
        level = worker._logger.level
        worker._logger.setLevel(logging.WARNING)
        try:
            worker._execute_orchestrator(request, stub, "replay")
        finally:
            worker._logger.setLevel(level)
        failure = next((a.completeOrchestration.failureDetails for a in stub.reply.actions
                        if a.HasField("completeOrchestration")
                        and a.completeOrchestration.HasField("failureDetails")), None)
        recorded_failure = any(e["EventType"] == EventType.ExecutionCompleted
                               and e.get("FailureDetails") for e in events)
        if failure is not None and failure.errorType == SDK_ERROR_TYPE:
            return ReplayResult(**base, divergence=sdk_divergence(
                instance_id, failure.errorType, failure.errorMessage))
        if failure is not None and not recorded_failure:
            return ReplayResult(**base, failure=failure_message(
                {"ErrorType": failure.errorType, "ErrorMessage": failure.errorMessage}))
        return ReplayResult(**base)
