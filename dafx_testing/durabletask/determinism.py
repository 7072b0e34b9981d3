"""Non-determinism on the durabletask host: the SDK's own check, read back as dafx's error.

Unlike azure-functions-durable, the Durable Task SDK checks its replay: when a
scheduling event in history has no matching action, an action of another kind, or
another name or target, its executor fails the instance with
``durabletask.task.NonDeterminismError`` (the four messages built in
``durabletask/worker.py``, ``_get_non_determinism_error`` and the three after it).
The instance fails as on any host; :func:`sdk_divergence` turns the message into
dafx's :class:`~dafx_testing.core.errors.NonDeterminismError`, with the sequence
number and both sides read out of it, so a test gets the same error on both hosts.
"""

from __future__ import annotations

import re

from ..core.errors import NonDeterminismError

__all__ = ["SDK_ERROR_TYPE", "sdk_divergence"]

SDK_ERROR_TYPE = "durabletask.task.NonDeterminismError"

# (pattern, how its groups read: the SDK's four messages)
_SHAPES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"called (?P<method>\S+) with ID=(?P<id>\d+), but the current execution doesn't "
                r"have this action"), "missing"),
    (re.compile(r"called (?P<method>\S+) with ID=(?P<id>\d+), but the current execution is "
                r"instead trying to call (?P<other>\S+) as part"), "kind"),
    (re.compile(r"called (?P<method>\S+) with name='(?P<name>.*?)' and sequence number (?P<id>\d+), "
                r"but the current execution is instead trying to call (?P<other>.+?) as part"), "name"),
    (re.compile(r"called (?P<method>\S+) with target instance ID='(?P<name>.*?)' and sequence "
                r"number (?P<id>\d+), but the current execution is instead targeting instance "
                r"ID='(?P<other>.*?)'"), "target"),
]


def sdk_divergence(instance_id: str, error_type: str, message: str) -> NonDeterminismError:
    """dafx's error for the SDK's failure ``error_type: message`` (both sides read out of it)."""
    sequence, expected, actual = -1, None, None
    for pattern, shape in _SHAPES:
        match = pattern.search(message)
        if match is None:
            continue
        method, sequence = match["method"], int(match["id"])
        if shape == "missing":
            expected = method
        elif shape == "kind":
            expected, actual = method, match["other"]
        elif shape == "name":
            expected, actual = f"{method} {match['name']!r}", f"{method} {match['other']!r}"
        else:
            expected = f"{method} targeting {match['name']!r}"
            actual = f"{method} targeting {match['other']!r}"
        break
    return NonDeterminismError(instance_id, sequence, expected, actual, f"{error_type}: {message}")
