"""An orchestration instance as a report shows it, whatever it was read from.

Reports draw instances that come from different places: a live simulator
(:class:`~dafx_testing.simulator.InstanceStatus`), a history file written by
:meth:`Simulator.save_history`, or a bare JSON list of host-format events.
:class:`RecordedInstance` is the one shape they all become; what a source does
not say (a bare list has no instance id or status) is read from its history::

    instances = read_instances(["histories/order-123.json", "histories/older/"])
    instances = [RecordedInstance.of(status) for status in sim.list_instances()]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from ..core.errors import HistoryFormatError
from ..core.history import Event, EventType, OrchestrationStatus, find_started, load_history
from .interactions import decode_payload

__all__ = ["RecordedInstance", "read_instances"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class RecordedInstance:
    """One instance: who it is, how it ended, and its history.

    Attributes:
        instance_id, name: the instance and its orchestrator.
        runtime_status: ``"Completed"``, ``"Failed"``, ``"Running"``...
        history: its host-format events.
        input, output, custom_status: decoded values (None when unknown).
        source: the file it was read from (None for a live instance).
    """

    instance_id: str
    name: str
    runtime_status: str
    history: list[Event] = field(repr=False, default_factory=list)
    input: Any = None
    output: Any = None
    custom_status: Any = None
    source: str | None = None

    @classmethod
    def of(cls, value: Any, source: str | None = None) -> RecordedInstance:
        """From an ``InstanceStatus``, a history document (``{"history": [...]}``) or events."""
        if isinstance(value, RecordedInstance):
            return value
        if hasattr(value, "history") and hasattr(value, "runtime_status"):
            return cls(value.instance_id, value.name, value.runtime_status, list(value.history),
                       value.input, value.output, value.custom_status, source)
        if isinstance(value, list):
            value = {"history": value}
        if not isinstance(value, dict) or not isinstance(value.get("history"), list):
            raise HistoryFormatError(
                f"cannot show a {type(value).__name__} as an instance; pass an InstanceStatus, a "
                "history document (an object with a 'history' list) or a list of history events")
        return cls._from_document(value, source)

    @classmethod
    def _from_document(cls, document: dict[str, Any], source: str | None) -> RecordedInstance:
        events = document["history"]
        started = find_started(events) or {}
        completed = _last(events, EventType.ExecutionCompleted)
        instance_id = (document.get("instanceId")
                       or (started.get("OrchestrationInstance") or {}).get("InstanceId")
                       or (Path(source).stem if source else "?"))
        status = document.get("runtimeStatus") or _status(events, completed)
        output = document.get("output",
                              decode_payload(completed.get("Result")) if completed else None)
        return cls(instance_id=instance_id, name=document.get("name") or started.get("Name") or "?",
                   runtime_status=status, history=events,
                   input=document.get("input", decode_payload(started.get("Input"))),
                   output=output, custom_status=document.get("customStatus"), source=source)


def read_instances(paths: Iterable[PathLike]) -> list[RecordedInstance]:
    """Read history files, and folders of them (``*.json``, recursively, in path order).

    Raises:
        HistoryFormatError: naming the file and what is wrong with it (missing,
            not JSON, not a history, an event without its required fields).
    """
    instances: list[RecordedInstance] = []
    for path in map(Path, paths):
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        if not files:
            raise HistoryFormatError(f"{path} is a folder with no history files (*.json) in it")
        instances += [RecordedInstance.of(load_history(file), source=str(file)) for file in files]
    return instances


def _last(events: list[Event], kind: EventType) -> Event | None:
    return next((e for e in reversed(events) if e["EventType"] == kind), None)


def _status(events: list[Event], completed: Event | None) -> str:
    """What the host would report for a history with no recorded status."""
    if completed is not None:
        return OrchestrationStatus(completed.get("OrchestrationStatus", 1)).name
    if _last(events, EventType.ExecutionStarted) is None:
        return "Pending"
    toggles = [e for e in events if e["EventType"] in (EventType.ExecutionSuspended,
                                                       EventType.ExecutionResumed)]
    if toggles and toggles[-1]["EventType"] == EventType.ExecutionSuspended:
        return "Suspended"
    return "Running"
