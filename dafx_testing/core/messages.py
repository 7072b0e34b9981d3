"""The messages the task hub queues: work for an activity, a request for an entity.

They are the store's own vocabulary, so they live with it; the host that runs the
work (``functions/``, or any other host) reads them from the hub and decides how
to execute them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["ActivityWork", "EntityRequest"]


@dataclass(frozen=True)
class ActivityWork:
    """A scheduled activity: one ``TaskScheduled`` waiting to run."""

    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: Any    # the action's input: df_dumps text (a request dict for call_http)
    attempt: int = 1


@dataclass(frozen=True)
class EntityRequest:
    """One queued operation, as the host's ``RequestMessage`` carries it."""

    operation: str
    input: str | None            # serialized, double-encoded; None when absent
    is_signal: bool
    request_id: str
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None

    @classmethod
    def from_message(cls, message: str) -> EntityRequest:
        """Parse the ``RequestMessage`` JSON an orchestrator's ``EventSent`` carries."""
        data = json.loads(message)
        return cls(operation=data.get("op"), input=data.get("input"),
                   is_signal=bool(data.get("signal")), request_id=data.get("id"),
                   parent_instance_id=data.get("parent"),
                   parent_execution_id=data.get("parentExecution"))
