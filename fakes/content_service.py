"""A fake content platform that records every call, for the content_approval scenario.

Activities call the module-level :data:`service`; tests read its ledger to see
which side effects happened, how often and when (in virtual time, since the
simulator points ``datetime.now`` at its clock while activities run).

Like a well-behaved real service, notifying, publishing and escalating are
idempotent by natural key: repeating a call for the same reviewer and draft (or
the same draft) returns the first result and takes no second effect. Every
call is still recorded, marked ``repeated``, so tests can see retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class ServiceCall:
    """One call: which operation, with what, when, and whether it repeated an earlier one."""

    operation: str
    payload: Any
    at: datetime
    repeated: bool = False


class ContentService:
    """Drafts, notifies, publishes and escalates, remembering each call."""

    def __init__(self) -> None:
        self.calls: list[ServiceCall] = []
        self._done: dict[tuple[str, str], str] = {}

    def _once(self, operation: str, key: str, payload: Any, make_result) -> str:
        repeated = (operation, key) in self._done
        if not repeated:
            self._done[(operation, key)] = make_result()
        self.calls.append(ServiceCall(operation, payload, datetime.now(timezone.utc), repeated))
        return self._done[(operation, key)]

    def draft(self, topic: str) -> str:
        self.calls.append(ServiceCall("draft", topic, datetime.now(timezone.utc)))
        return f"A short piece about {topic}."

    def notify_reviewer(self, reviewer: str, draft: str) -> str:
        return self._once("notify_reviewer", f"{reviewer}\n{draft}",
                          {"reviewer": reviewer, "draft": draft}, lambda: f"notified {reviewer}")

    def publish(self, draft: str) -> str:
        return self._once("publish", draft, draft, lambda: (
            f"https://content.example.test/posts/{len(self.effects('publish')) + 1}"))

    def escalate(self, draft: str) -> str:
        return self._once("escalate", draft, draft, lambda: "escalated to the editor-in-chief")

    def calls_to(self, operation: str) -> list[ServiceCall]:
        return [call for call in self.calls if call.operation == operation]

    def effects(self, operation: str = "") -> list[tuple[str, Any]]:
        """The side effects that took place (first calls of notify/publish/escalate)."""
        return [(c.operation, c.payload) for c in self.calls
                if not c.repeated and c.operation != "draft"
                and (not operation or c.operation == operation)]

    def reset(self) -> None:
        self.calls.clear()
        self._done.clear()


service = ContentService()
"""The instance the scenario's activities use."""
