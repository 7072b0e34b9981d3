"""A fake content platform that records every call, for the content_approval scenario.

Activities call the module-level :data:`service`; tests read its ledger to see
which side effects happened, how often and when (in virtual time, since the
simulator points ``datetime.now`` at its clock while activities run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, List


@dataclass(frozen=True)
class ServiceCall:
    """One side effect: which operation, with what, and when."""

    operation: str
    payload: Any
    at: datetime


class ContentService:
    """Drafts, notifies, publishes and escalates, remembering each call."""

    def __init__(self) -> None:
        self.calls: List[ServiceCall] = []

    def _record(self, operation: str, payload: Any) -> None:
        self.calls.append(ServiceCall(operation, payload, datetime.now(timezone.utc)))

    def draft(self, topic: str) -> str:
        self._record("draft", topic)
        return f"A short piece about {topic}."

    def notify_reviewer(self, reviewer: str, draft: str) -> str:
        self._record("notify_reviewer", {"reviewer": reviewer, "draft": draft})
        return f"notified {reviewer}"

    def publish(self, draft: str) -> str:
        self._record("publish", draft)
        return f"https://content.example.test/posts/{len(self.calls_to('publish'))}"

    def escalate(self, draft: str) -> str:
        self._record("escalate", draft)
        return "escalated to the editor-in-chief"

    def calls_to(self, operation: str) -> List[ServiceCall]:
        return [call for call in self.calls if call.operation == operation]

    def reset(self) -> None:
        self.calls.clear()


service = ContentService()
"""The instance the scenario's activities use."""
