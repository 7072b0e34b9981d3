"""One exception tree for everything dafx-testing raises.

Every message names the thing that was wrong, where it was (instance id, event
index, file) and what to do about it, so a failing test explains itself.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
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


class DafxError(Exception):
    """Base class of every error raised by dafx-testing."""


class AppLoadError(DafxError):
    """The app could not be found, imported, or does not look like a Functions app."""


class UnknownFunctionError(DafxError, LookupError):
    """A function name that the app does not define; the message lists the known ones."""


class InstanceNotFoundError(DafxError, KeyError):
    """No orchestration instance with that id exists in the simulated task hub."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InstanceStateError(DafxError):
    """The operation does not apply to the instance in its current runtime status."""


class NonDeterminismError(DafxError):
    """Replayed orchestrator code disagreed with the recorded history.

    The host fails the instance with ``host_message`` (the exact text DTFx
    produces); this error adds the first divergent event so the fix is obvious.

    Attributes:
        instance_id: the instance whose replay diverged.
        sequence_number: the DTFx sequence number (history ``EventId``) that differs.
        expected: what the history recorded at that sequence number.
        actual: what the current code produced there (``None`` if nothing).
        host_message: the ``Non-Deterministic workflow detected: ...`` text.
    """

    def __init__(
        self,
        instance_id: str,
        sequence_number: int,
        expected: str,
        actual: Optional[str],
        host_message: str,
    ) -> None:
        self.instance_id = instance_id
        self.sequence_number = sequence_number
        self.expected = expected
        self.actual = actual
        self.host_message = host_message
        super().__init__(
            f"instance {instance_id!r}: replay diverged from history at sequence number "
            f"{sequence_number}\n  expected (history): {expected}\n"
            f"  actual (current code): {actual or 'nothing scheduled'}\n"
            f"  host: {host_message}\n"
            "  hint: orchestrator code changed while the instance was in flight, or it "
            "depends on something that differs between replays (time, random, I/O). "
            "Version the orchestrator instead of editing it in place."
        )


class SerializationError(DafxError, TypeError):
    """A value that must cross the wire as JSON cannot be serialized."""


class RunawayOrchestrationError(DafxError):
    """An instance kept running past a safety cap (episodes or history size)."""


class WaitTimeoutError(DafxError, TimeoutError):
    """An instance did not finish within the (virtual) time allowed."""


class HistoryFormatError(DafxError, ValueError):
    """A history file or event list is not in a format dafx-testing reads."""


class UnhandledHttpCallError(DafxError):
    """An orchestrator's ``call_http`` had no handler; tests never reach the network."""


def describe_value(value: Any, limit: int = 80) -> str:
    """A short, single-line ``repr`` for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
