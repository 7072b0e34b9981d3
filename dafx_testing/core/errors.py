"""One exception tree for everything dafx-testing raises, and the one warning class it warns with.

Every message names the thing that was wrong, where it was (instance id, event
index, file) and what to do about it, so a failing test explains itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "DafxError",
    "AppLoadError",
    "ArgumentError",
    "UnknownFunctionError",
    "InstanceNotFoundError",
    "InstanceStateError",
    "NonDeterminismError",
    "SerializationError",
    "RunawayOrchestrationError",
    "WaitTimeoutError",
    "HistoryFormatError",
    "UnhandledHttpCallError",
    "NonDeterministicCallError",
    "PerturbedReplayError",
    "ReplayError",
    "DafxWarning",
]


class DafxError(Exception):
    """Base class of every error raised by dafx-testing."""


class DafxWarning(UserWarning):
    """Something the real host would trip on, or a check that had to be skipped; the run goes on."""


class AppLoadError(DafxError):
    """The app could not be found, imported, or does not look like a Functions app."""


class ArgumentError(DafxError, TypeError, ValueError):
    """An API argument of the wrong type or value; the message names the call, the argument and what is valid.

    A ``TypeError`` and a ``ValueError`` too, so code that caught the bare errors
    these arguments used to cause still catches them.
    """


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
        expected: what the history recorded at that sequence number (``None`` if nothing).
        actual: what the current code produced there (``None`` if nothing).
        host_message: the ``Non-Deterministic workflow detected: ...`` text.
        orchestrator_error: the error the orchestrator function returned in the
            same replay, if it failed (it then scheduled less than the history holds).
    """

    def __init__(
        self,
        instance_id: str,
        sequence_number: int,
        expected: str | None,
        actual: str | None,
        host_message: str,
        orchestrator_error: str | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.sequence_number = sequence_number
        self.expected = expected
        self.actual = actual
        self.host_message = host_message
        self.orchestrator_error = orchestrator_error
        if orchestrator_error:
            hint = (f"  the orchestrator function failed in this replay: {orchestrator_error}\n"
                    "  hint: that failure, not a code change, is why the task is missing; the "
                    "host reports it as non-determinism because the history already holds the task.")
        else:
            hint = ("  hint: orchestrator code changed while the instance was in flight, or it "
                    "depends on something that differs between replays (time, random, I/O). "
                    "Version the orchestrator instead of editing it in place.")
        super().__init__(
            f"instance {instance_id!r}: replay diverged from history at sequence number "
            f"{sequence_number}\n  expected (history): {expected or 'nothing recorded'}\n"
            f"  actual (current code): {actual or 'nothing scheduled'}\n"
            f"  host: {host_message}\n" + hint
        )


class PerturbedReplayError(NonDeterminismError):
    """A replay of the same history under a perturbed world took another path.

    Nothing has failed yet: the host would fail the instance the next time it
    replays it on a machine where the clock, the random numbers or the
    environment differ.

    Attributes (besides :class:`NonDeterminismError`'s):
        exposed_by: what differed in the perturbed replay, with the call sites
            that read it (e.g. ``"another wall-clock time: datetime.now() at
            app.py:12"``), one entry each.
        orchestrator: the orchestrator's name and where its function is defined
            (``"'by_clock' (by_clock, app.py:30)"``), or None.
        recorded_at, diverged_at: ``"path/file.py:LINE"`` where the orchestrator
            yielded (or made) the recorded action and the diverging one: the
            generator's line when the SDK took the action; None when it cannot be
            told (no action on that side, a replay in a child interpreter, or a
            recorded run that depended on memory since changed).
    """

    def __init__(self, instance_id: str, sequence_number: int, expected: str | None,
                 actual: str | None, host_message: str, exposed_by: Sequence[str], *,
                 orchestrator: str | None = None, recorded_at: str | None = None,
                 diverged_at: str | None = None) -> None:
        super().__init__(instance_id, sequence_number, expected, actual, host_message)
        self.exposed_by = list(exposed_by)
        self.orchestrator = orchestrator
        self.recorded_at = recorded_at
        self.diverged_at = diverged_at
        causes = "".join(f"\n    - {cause}" for cause in self.exposed_by)
        where = (f"at sequence number {sequence_number}" if sequence_number >= 0
                 else "in an action that takes no sequence number")
        of = f" (orchestrator {orchestrator})" if orchestrator else ""
        recorded = f"{expected or 'nothing recorded'}" + (
            f", scheduled at {recorded_at}" if recorded_at else "")
        replayed = f"{actual or 'nothing scheduled'}" + (
            f", scheduled at {diverged_at}" if diverged_at else "")
        self.args = (
            f"instance {instance_id!r}{of}: replaying the same history under a perturbed world "
            f"took another path {where}\n"
            f"  recorded (this episode): {recorded}\n"
            f"  perturbed replay:        {replayed}\n"
            f"  exposed by:{causes}\n"
            f"  host: {host_message}\n"
            "  hint: orchestrator code must make the same decisions on every replay; read time, "
            "randomness and configuration through the context or an activity.",
        )


class NonDeterministicCallError(DafxError):
    """Orchestrator code called an API whose result differs from one replay to the next.

    Raised by the determinism guard (``dafx_testing.checks.guard.Guard``) for calls
    like ``datetime.now()``, ``uuid.uuid4()``, ``random.random()``, environment
    reads, file and socket I/O made while orchestrator code runs.

    Attributes:
        call: the call as written, e.g. ``"datetime.now()"``.
        location: ``"path/to/file.py:LINE"`` in your code.
        function: the function that made the call.
        alternative: the replay-safe way to do the same thing.
    """

    def __init__(self, call: str, location: str, function: str, alternative: str) -> None:
        self.call = call
        self.location = location
        self.function = function
        self.alternative = alternative
        super().__init__(
            f"orchestrator code called {call} at {location} (in {function}): its result differs "
            "when the host replays the orchestration, so a replay can take another path and "
            f"fail. Fix: {alternative}. If the call cannot affect what the orchestrator "
            f"schedules, allow it: Guard(allow=[{location!r}])."
        )


class ReplayError(DafxError):
    """A saved history no longer replays under the current code.

    Attributes:
        result: the :class:`~dafx_testing.checks.replayer.ReplayResult` that failed.
    """

    def __init__(self, result: Any) -> None:
        self.result = result
        super().__init__(result.explain())


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
