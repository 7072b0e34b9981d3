"""Non-determinism on the durabletask host: the SDK's own check, and what it does not check.

Unlike azure-functions-durable, the Durable Task SDK checks its replay: when a
scheduling event in history has no matching action, an action of another kind, or
another name or target, its executor fails the instance with
``durabletask.task.NonDeterminismError`` (the four messages built in
``durabletask/worker.py``, ``_get_non_determinism_error`` and the three after it).
The instance fails as on any host; :func:`sdk_divergence` turns the message into
dafx's :class:`~dafx_testing.core.errors.NonDeterminismError`, with the sequence
number and both sides read out of it, so a test gets the same error on both hosts.

The SDK compares only kinds, names and targets, and only when a replay meets a
recorded event. :func:`perturbed_divergence` adds what it misses: the episode's
work item runs again through the worker in a perturbed world (another clock,
random seed and environment, :class:`~dafx_testing.checks.determinism.
PerturbedReplay`), and its answer must equal the first in full: every action
with its inputs, timer times and entity targets, and the custom status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from durabletask.internal import orchestrator_service_pb2 as pb
from google.protobuf import json_format

from ..checks.determinism import PerturbedReplay
from ..core.errors import NonDeterminismError, PerturbedReplayError
from ..core.timeline import preview

__all__ = ["SDK_ERROR_TYPE", "sdk_divergence", "perturbed_divergence"]

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


def perturbed_divergence(check: PerturbedReplay, worker: Any, request: pb.OrchestratorRequest,
                         answer: pb.OrchestratorResponse, orchestrator: str,
                         capture: Callable[[], Any]) -> PerturbedReplayError | None:
    """The difference when ``request`` runs again through ``worker`` in a perturbed world.

    ``capture()`` makes a fresh capturing stub (its ``reply`` is the answer).
    """
    stub = capture()
    logger = worker._logger
    level = logger.level
    logger.setLevel(logging.WARNING)        # the first run already logged this episode
    try:
        _, causes = check.perturbed(lambda: worker._execute_orchestrator(
            _copy(request), stub, "perturbed-replay"))
    finally:
        logger.setLevel(level)
    replayed: pb.OrchestratorResponse = stub.reply
    recorded_actions, replayed_actions = list(answer.actions), list(replayed.actions)
    for position in range(max(len(recorded_actions), len(replayed_actions))):
        recorded = recorded_actions[position] if position < len(recorded_actions) else None
        other = replayed_actions[position] if position < len(replayed_actions) else None
        if _key(recorded) != _key(other):
            either = recorded if recorded is not None else other
            sequence = either.id if either is not None else -1
            return _error(request.instanceId, sequence, _describe(recorded), _describe(other),
                          causes, orchestrator)
    if answer.customStatus.value != replayed.customStatus.value:
        return _error(request.instanceId, -1, f"custom status {preview(answer.customStatus.value)}",
                      f"custom status {preview(replayed.customStatus.value)}", causes, orchestrator)
    return None


def _copy(request: pb.OrchestratorRequest) -> pb.OrchestratorRequest:
    copied = pb.OrchestratorRequest()
    copied.CopyFrom(request)
    return copied


def _key(action: pb.OrchestratorAction | None) -> bytes | None:
    return None if action is None else action.SerializeToString(deterministic=True)


def _describe(action: pb.OrchestratorAction | None) -> str | None:
    """``scheduleTask {"name": "greet", "input": "\"x\""}``: the action, as the worker sent it."""
    if action is None:
        return None
    kind = action.WhichOneof("orchestratorActionType")
    body = json_format.MessageToDict(getattr(action, kind))
    body.pop("parentTraceContext", None)
    return f"#{action.id} {kind} {preview(body)}"


def _error(instance_id: str, sequence: int, expected: str | None, actual: str | None,
           causes: list[str], orchestrator: str) -> PerturbedReplayError:
    return PerturbedReplayError(
        instance_id=instance_id, sequence_number=sequence, expected=expected, actual=actual,
        host_message=("no failure yet: the Durable Task SDK fails the instance (or, where it "
                      "compares no inputs, carries on with other work) on the next replay "
                      "that takes the other path"),
        exposed_by=causes or ["a second replay of the same history took another path (state "
                              "kept in process memory between replays?)"],
        orchestrator=repr(orchestrator))
