"""The Replayer: does the current code still replay histories recorded by older code?

Instances in flight when you deploy are replayed from their recorded history
through the *new* code. If the new code schedules something else at a recorded
sequence number, the host fails them with a non-determinism error. Keep a few
histories from each released version (``sim.save_history(...)``, or the
status API with ``showHistory=true``) and replay them in CI::

    from dafx_testing.checks.replayer import Replayer

    result = Replayer("function_app.py").replay("histories/order-123.json")
    assert result.ok, result.explain()

    Replayer("function_app.py", raise_on_failure=True).replay_dir("histories/")

A history can be our history file, a bare JSON list of DTFx events (the
host's stored history), or the status API's answer (an object with
``historyEvents``, or just that list). The replay is the host's: the current
orchestrator gets the whole history at once, and its actions are matched
against the recorded ones with the DTFx checks and messages.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from ..core.errors import ArgumentError, HistoryFormatError, NonDeterminismError, ReplayError
from ..core.history import (
    DTFX_EVENTS,
    STATUS_API,
    Event,
    EventType,
    OrchestrationStatus,
    check_host_events,
    check_replayable,
    read_document,
    read_history_json,
)
from ..functions.app import ORCHESTRATOR, index_app
from ..functions.host import COMPLETE, FunctionCatalog, HostReplay
from ..functions.orchestrations import (
    AZURE_STORAGE_TIMER_LIMITS,
    Execution,
    TimerLimits,
    call_handle,
    context_json,
)
from ..functions.status_history import from_status_history

__all__ = ["Replayer", "ReplayResult", "VERSIONING_HINT"]

VERSIONING_HINT = (
    "instances already in flight replay their recorded history through the new code, so they "
    "would fail like this after the deployment. Keep their path intact: put the change behind "
    "context.version (orchestration versioning: set defaultVersion in host.json and branch on "
    "it), or ship it as a new orchestrator (e.g. '{name}_v2') and keep the old one until its "
    "instances have finished."
)
"""What a failed replay suggests; ``{name}`` is the orchestrator's name."""

HistorySource = Union[str, "os.PathLike[str]", dict[str, Any], list[Any], Any]

@dataclass(frozen=True)
class ReplayResult:
    """The outcome of replaying one history under the current code.

    Attributes:
        source: where the history came from (a path, or ``"<history>"``).
        instance_id: the recorded instance.
        orchestrator: the orchestrator's name in the history.
        events: how many history events were replayed.
        divergence: the non-determinism found, if any.
        failure: set when the current code fails (or is missing) where the
            recorded run did not: the failure message the host would record.
        notes: what the history did not include (status-API histories drop payloads).
    """

    source: str
    instance_id: str
    orchestrator: str
    events: int
    divergence: NonDeterminismError | None = None
    failure: str | None = None
    notes: tuple[str, ...] = ()
    versioning_hint: str = ""    # the host's way to version (default: the Functions host's)

    @property
    def ok(self) -> bool:
        """True when the current code replays the history as recorded."""
        return self.divergence is None and self.failure is None

    @property
    def sequence_number(self) -> int | None:
        """The DTFx sequence number where the replay diverged."""
        return self.divergence.sequence_number if self.divergence else None

    @property
    def expected(self) -> str | None:
        """What the history recorded at the divergence."""
        return self.divergence.expected if self.divergence else None

    @property
    def actual(self) -> str | None:
        """What the current code did there (None if it scheduled nothing)."""
        return self.divergence.actual if self.divergence else None

    @property
    def host_message(self) -> str | None:
        """The ``Non-Deterministic workflow detected: ...`` text the host records."""
        return self.divergence.host_message if self.divergence else None

    @property
    def hint(self) -> str | None:
        """How to make the change without breaking instances in flight."""
        return None if self.ok else (self.versioning_hint or VERSIONING_HINT).format(
            name=self.orchestrator)

    def explain(self) -> str:
        """A readable account: one line when ok, the details when not."""
        what = f"orchestrator {self.orchestrator!r}, instance {self.instance_id!r}"
        notes = "".join(f"\n  note: {note}" for note in self.notes)
        if self.ok:
            return f"ok: {self.source} ({what}, {self.events} events) replays{notes}"
        if self.divergence is not None:
            also = f"\n  the code also failed: {self.failure}" if self.failure else ""
            return (f"{self.source}: the current code diverges from the recorded history ({what})\n"
                    f"  sequence number: {self.sequence_number}\n"
                    f"  recorded:        {self.expected}\n"
                    f"  current code:    {self.actual or 'nothing scheduled'}\n"
                    f"  host:            {self.host_message}{also}\n"
                    f"  hint: {self.hint}{notes}")
        return (f"{self.source}: the current code fails replaying the recorded history ({what})\n"
                f"  failure: {self.failure}\n  hint: {self.hint}{notes}")


class Replayer:
    """Replay saved histories against the current code, with the host's checks.

    Args:
        app: the app as the simulator takes it (object, ``"pkg.module:app"``,
            or a path to ``function_app.py``).
        raise_on_failure: raise :class:`~dafx_testing.core.errors.ReplayError` for the
            first history that does not replay, instead of returning its result.
        timer_limits: the storage provider's timer limits (Azure Storage's by default).

    Example::

        results = Replayer("function_app.py").replay_dir("histories/v1")
        assert all(r.ok for r in results), "\\n".join(r.explain() for r in results)
    """

    history_events: frozenset[EventType] = DTFX_EVENTS
    """The event types its host's histories hold (a history is checked against them)."""

    def __init__(self, app: Any, *, raise_on_failure: bool = False,
                 timer_limits: TimerLimits = AZURE_STORAGE_TIMER_LIMITS) -> None:
        if any(type(candidate).__module__.startswith("durabletask")
               for candidate in (app, getattr(app, "_worker", None))):
            raise ArgumentError(f"Replayer({type(app).__name__}): a durabletask worker replays its "
                                "histories with dafx_testing.durabletask.Replayer (the same API)")
        self.index = index_app(app)
        self.raise_on_failure = raise_on_failure
        self.timer_limits = timer_limits
        self._catalog = FunctionCatalog(activities=self.index.names("activity"),
                                        orchestrators=self.index.names(ORCHESTRATOR),
                                        entities=self.index.names("entity"))

    def replay(self, history: HistorySource, *, instance_id: str | None = None) -> ReplayResult:
        """Replay one history (a file path, a document, an event list or a status).

        Raises:
            HistoryFormatError: the history cannot be read or lacks what a replay
                needs; the message names the file, the event index and the problem.
            ReplayError: with ``raise_on_failure``, when the history does not replay.
        """
        source, events, recorded_id, notes = _load(history)
        check_replayable(events, source)
        check_host_events(events, source, self.history_events)
        started = next(e for e in events if e["EventType"] == EventType.ExecutionStarted)
        instance = started.get("OrchestrationInstance") or {}
        instance_id = instance_id or recorded_id or instance.get("InstanceId") or "replayed"
        result = self._replay_events(source, events, started, instance_id, notes)
        if self.raise_on_failure and not result.ok:
            raise ReplayError(result)
        return result

    def replay_dir(self, path: str | os.PathLike[str],
                   pattern: str = "*.json") -> list[ReplayResult]:
        """Replay every history file under ``path`` (recursively), in path order."""
        folder = Path(path)
        if not folder.is_dir():
            raise HistoryFormatError(f"{folder} is not a directory of history files")
        files = sorted(folder.rglob(pattern))
        if not files:
            raise HistoryFormatError(f"{folder} holds no history files matching {pattern!r}")
        return [self.replay(file) for file in files]

    def _replay_events(self, source: str, events: list[Event], started: Event,
                       instance_id: str, notes: list[str]) -> ReplayResult:
        name = started["Name"]
        info = self.index.find(ORCHESTRATOR, name)
        base = dict(source=source, instance_id=instance_id, orchestrator=name,
                    events=len(events), notes=tuple(notes))
        if info is None:
            known = ", ".join(self.index.names(ORCHESTRATOR)) or "none"
            return ReplayResult(**base, failure=f"the app no longer defines orchestrator "
                                                f"{name!r} (known: {known})")
        instance = started.get("OrchestrationInstance") or {}
        parent = ((started.get("ParentInstance") or {}).get("OrchestrationInstance") or {})
        execution = Execution(instance_id, instance.get("ExecutionId") or "replayed-execution",
                              name, parent.get("InstanceId"), started.get("Input"))
        played = [dict(event, IsPlayed=True) for event in events]
        body = json.dumps(context_json(execution, played, True, self.timer_limits))
        state = call_handle(info.handler, body)
        outcome = HostReplay(instance_id=instance_id, execution_id=execution.execution_id,
                             name=name, parent_instance_id=execution.parent_instance_id,
                             catalog=self._catalog).replay(played, state)
        recorded_failure = any(e["EventType"] == EventType.ExecutionCompleted
                               and e["OrchestrationStatus"] == OrchestrationStatus.Failed
                               for e in events)
        failure = None
        if state.get("error") and not recorded_failure:
            failure = f"Orchestrator function '{name}' failed: {state['error']}"
        elif not recorded_failure:
            failure = next((d.result for d in outcome.decisions if d.kind == COMPLETE
                            and d.status == OrchestrationStatus.Failed), None)
        if outcome.divergence is not None and failure == outcome.divergence.host_message:
            failure = None   # the divergence is the failure
        return ReplayResult(**base, divergence=outcome.divergence, failure=failure)


# -- reading histories ---------------------------------------------------------------


def _load(history: HistorySource) -> tuple[str, list[Event], str | None, list[str]]:
    """``(source, DTFx events, instance id, notes)`` from any accepted form, every field checked."""
    source = "<history>"
    document: Any = history
    parsed = False                                    # read from a file: its nesting is bounded
    if isinstance(history, (str, os.PathLike)):
        parsed = True
        source = os.fspath(history)
        document = read_history_json(Path(history))
    elif isinstance(history, (dict, list)):
        pass                                          # already a document
    elif hasattr(history, "historyEvents"):          # the SDK's DurableOrchestrationStatus
        document = {"historyEvents": history.historyEvents, "instanceId": history.instance_id,
                    "input": history.input_}
    elif hasattr(history, "history") and hasattr(history, "instance_id"):   # InstanceStatus
        document = {"history": history.history, "instanceId": history.instance_id}
    if not isinstance(document, (dict, list)):
        raise HistoryFormatError(f"{source}: expected a history (a dafx history file, a JSON list "
                                 f"of DTFx events, or a status with historyEvents), got "
                                 f"{type(document).__name__}")
    form, document = read_document(document, source, parsed=parsed)
    recorded_id = document.get("instanceId")
    if form == STATUS_API:
        rebuilt = from_status_history(document["historyEvents"], source, instance_id=recorded_id,
                                      input=document.get("input"),
                                      has_input="input" in document)
        return source, rebuilt.events, recorded_id, rebuilt.notes
    return source, document["history"], recorded_id, []
