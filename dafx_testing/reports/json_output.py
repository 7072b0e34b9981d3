"""What ``dafx ... --json`` prints: one JSON document per command, for scripts.

Keys are camelCase, like the host's status API and our history files; values
are plain JSON (times as ISO strings, commit points as objects). A script can
rely on these keys::

    dafx run function_app.py hello --json | jq .runtimeStatus
    dafx sweep function_app.py saga --json | jq '.failures[].reproduce'
    dafx replay --app function_app.py histories/ --json | jq '.results[] | select(.verdict != "ok")'
    dafx show histories/order-1.json --json | jq '.instances[0].timeline'
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..checks.fault_sweep import FaultSweepReport, ModelCall
from ..checks.replayer import ReplayResult
from ..checks.sweep import SweepReport
from ..core.crash import CommitPoint
from ..core.timeline import timeline
from .agent_calls import conversations_in
from .recorded import RecordedInstance

__all__ = ["dumps", "status_json", "sweep_json", "fault_sweep_json", "replay_json", "instances_json"]


def dumps(document: dict[str, Any]) -> str:
    """The document as indented JSON (values JSON cannot hold become strings)."""
    return json.dumps(document, indent=2, default=str)


def status_json(status: Any, clock: datetime,
                http: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's outcome: the instance's status, the virtual clock, and the HTTP exchange if any."""
    document: dict[str, Any] = {} if http is None else {"http": http}
    if status is not None:
        document.update(
            instanceId=status.instance_id, name=status.name, runtimeStatus=status.runtime_status,
            input=status.input, output=status.output, customStatus=status.custom_status,
            waitingFor=list(status.waiting_for), createdTime=status.created_time.isoformat(),
            lastUpdatedTime=status.last_updated_time.isoformat(), history=status.history)
    document["clock"] = clock.isoformat()
    return document


def sweep_json(report: SweepReport) -> dict[str, Any]:
    """Everything a sweep found, each failure with the crash plan that reproduces it.

    ``baselineProblems`` says why the crash-free run is broken (then no crash
    runs were made); ``repeatedActivities`` are re-runs that left no observable
    difference: information, not failures (``duplicatedEffects`` lists every re-run).
    ``decided`` of the ``runs`` were decided without running them (they provably
    converge at once), and count among the ``converged``.
    """
    return {
        "ok": report.ok,
        "baselineProblems": list(report.baseline_problems),
        "seed": report.seed,
        "runs": report.runs,
        "converged": report.pruned,
        "decided": report.decided,
        "isolation": report.isolation,
        "points": [_point(p) for p in report.points],
        "failures": [{"crashes": [_point(p) for p in f.crashes], "problems": list(f.problems),
                      "reproduce": f"CrashPlan(at={[p.index for p in f.crashes]})",
                      "timelines": dict(f.timelines)} for f in report.failures],
        "duplicatedEffects": [{"name": d.name, "expected": d.expected, "actual": d.actual,
                               "crashes": [p.index for p in d.crashes], "idempotent": d.idempotent}
                              for d in report.duplicated_effects],
        "repeatedActivities": [{"name": d.name, "expected": d.expected, "actual": d.actual,
                                "crashes": [p.index for p in d.crashes]}
                               for d in report.repeated_activities],
        "repeatedModelCalls": [{"expected": r.expected, "actual": r.actual,
                                "crashes": [p.index for p in r.crashes]}
                               for r in report.repeated_model_calls],
    }


def fault_sweep_json(report: FaultSweepReport) -> dict[str, Any]:
    """A model-fault sweep: the baseline's calls, then each run's verdict and its reproduction.

    ``modelCalls`` of a run counts the requests it made (``extraModelCalls`` more than the
    baseline's is what retries cost, ``extraVirtualSeconds`` the virtual time they took);
    ``ok`` is the verdict judged under ``expect`` (the run's own entry: ``expected``);
    ``converged`` says it stopped early, its state the baseline's (the report's ``converged``
    counts them). ``shard`` is ``[index, count]`` for one shard of a sweep, else null;
    ``isolation`` is ``fork`` or ``rerun``.
    """
    return {
        "ok": report.ok,
        "baselineProblems": list(report.baseline_problems),
        "seed": report.seed,
        "expect": report.expect,
        "faults": list(report.faults),
        "shard": list(report.shard) if report.shard is not None else None,
        "isolation": report.isolation,
        "converged": report.converged,
        "baselineModelCalls": report.baseline_model_calls,
        "calls": [_model_call(call) for call in report.calls],
        "runs": [{"call": run.call.number, "agent": run.call.agent, "fault": run.fault,
                  "verdict": run.verdict, "ok": run.ok, "reasons": list(run.reasons),
                  "modelCalls": run.model_calls, "expected": run.expected,
                  "extraModelCalls": run.extra_model_calls,
                  "extraVirtualSeconds": run.extra_time.total_seconds(),
                  "converged": run.converged, "reproduce": repr(run.plan)}
                 for run in report.runs],
    }


def _model_call(call: ModelCall) -> dict[str, Any]:
    return {"number": call.number, "agent": call.agent, "caller": call.caller,
            "stream": call.stream}


def replay_json(results: Iterable[ReplayResult],
                unreadable: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Each history's verdict (``ok``, ``diverged``, ``failed``); each file that was unreadable."""
    entries = [_replayed(result) for result in results]
    errors = [{"source": source, "error": message} for source, message in unreadable]
    return {"ok": not errors and all(e["verdict"] == "ok" for e in entries),
            "results": entries, "errors": errors}


def instances_json(instances: Iterable[RecordedInstance]) -> dict[str, Any]:
    """Saved instances: status, values, the text timeline line by line, conversations, history."""
    return {"instances": [_instance(instance) for instance in instances]}


def replay_verdict(result: ReplayResult) -> str:
    """``"ok"``, ``"diverged"`` (non-determinism) or ``"failed"`` (fails where it did not)."""
    return "ok" if result.ok else "diverged" if result.divergence else "failed"


def _point(point: CommitPoint) -> dict[str, Any]:
    return {"index": point.index, "kind": point.kind, "name": point.name,
            "target": point.target, "work": point.work}


def _replayed(result: ReplayResult) -> dict[str, Any]:
    divergence = result.divergence
    return {
        "source": result.source, "instanceId": result.instance_id,
        "orchestrator": result.orchestrator, "events": result.events,
        "verdict": replay_verdict(result),
        "divergence": None if divergence is None else {
            "sequenceNumber": divergence.sequence_number, "expected": divergence.expected,
            "actual": divergence.actual, "hostMessage": divergence.host_message},
        "failure": result.failure, "notes": list(result.notes),
    }


def _instance(instance: RecordedInstance) -> dict[str, Any]:
    conversations: list[dict[str, Any]] = [
        {"agent": session.agent, "session": session.key,
         "turns": [{"message": turn.message, "reply": turn.reply, "errors": turn.errors}
                   for turn in session.turns]}
        for session in conversations_in(instance.history)]
    return {
        "source": instance.source, "instanceId": instance.instance_id, "name": instance.name,
        "runtimeStatus": instance.runtime_status, "input": instance.input,
        "output": instance.output, "events": len(instance.history),
        "timeline": timeline(instance.history, max_lines=None).splitlines(),
        "conversations": conversations, "history": instance.history,
    }
