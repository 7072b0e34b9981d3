"""Durable entities: one batch of operations through the SDK's generated handle.

The host keeps, per entity, whether it exists and its state as the JSON text the
entity returned last time (``entityState``), and a queue of operation requests.
It runs a batch by sending ``{"self", "exists", "state", "batch"}`` to the
entity function and storing ``entityExists``/``entityState`` from the reply
verbatim. Operation inputs arrive double-encoded (``json.dumps(df_dumps(x))``)
from orchestrators and clients alike; results go back to callers as
``EventRaised`` events named by the request id.

The SDK's quirks are kept, not fixed: an operation that does not call
``set_result`` reports the previous operation's result, a failing operation
does not roll back ``set_state`` calls it made, and a signal without input makes
``get_input()`` raise ``TypeError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from ..core.errors import DafxError
from ..core.messages import EntityRequest

EntityRef = tuple[str, str] | str | Any
"""An entity: ``(name, key)``, ``"@name@key"``, or ``azure.durable_functions.EntityId``."""

DEFAULT_BATCH_SIZE = 50
"""The extension's ``maxEntityOperationBatchSize`` on the Consumption plan."""


def entity_key(entity: EntityRef) -> tuple[str, str]:
    """``(name, key)`` of any accepted entity reference."""
    if isinstance(entity, str):
        if entity.startswith("@") and entity.count("@") >= 2:
            name, key = entity[1:].split("@", 1)
            return name, key
        raise DafxError(f"entity {entity!r} is not '@name@key'; pass (name, key) or an EntityId")
    if isinstance(entity, tuple) and len(entity) == 2:
        return str(entity[0]), str(entity[1])
    id_name, id_key = getattr(entity, "name", None), getattr(entity, "key", None)
    if id_name is None or id_key is None:
        raise DafxError(
            f"cannot use {type(entity).__name__} as an entity id; pass (name, key), "
            "'@name@key' or azure.durable_functions.EntityId")
    return str(id_name), str(id_key)


def scheduler_id(name: str, key: str) -> str:
    """The host's instance id for an entity: ``@<name lower-cased>@<key>``."""
    return f"@{name.lower()}@{key}"


@dataclass(frozen=True)
class OperationOutcome:
    """One operation's result: the serialized result text and whether it failed."""

    request: EntityRequest
    is_error: bool
    result: str | None

    def response_message(self) -> str:
        """The ``ResponseMessage`` JSON sent back to a calling orchestration."""
        message = {"result": self.result}
        if self.is_error:
            message["exceptionType"] = "Error"
        return json.dumps(message)


@dataclass(frozen=True)
class BatchOutcome:
    """What the entity function returned for a batch."""

    exists: bool
    state: str | None
    operations: list[OperationOutcome]


def run_batch(handle: Callable[..., str], name: str, key: str, exists: bool,
              state: str | None, requests: list[EntityRequest]) -> BatchOutcome:
    """Run ``requests`` as one batch through the entity's generated handle."""
    body = json.dumps({
        "self": {"name": name.lower(), "key": key},
        "exists": exists,
        "state": state,
        "batch": [{"name": r.operation, "input": r.input, "isSignal": r.is_signal}
                  for r in requests],
    })
    try:
        reply = json.loads(handle(func.EntityContext(body)))
    except Exception as exc:  # the function invocation itself failed: every operation fails
        error = json.dumps(f"{type(exc).__name__}: {exc}")
        return BatchOutcome(exists, state, [OperationOutcome(r, True, error) for r in requests])
    results = reply.get("results") or []
    return BatchOutcome(
        exists=bool(reply.get("entityExists")),
        state=reply.get("entityState") if reply.get("entityExists") else None,
        operations=[OperationOutcome(r, bool(res.get("isError")), res.get("result"))
                    for r, res in zip(requests, results)],
    )
