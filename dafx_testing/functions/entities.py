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
    """What the entity function returned for a batch, or why the host aborted it.

    ``aborted`` is set when the invocation itself failed (the state or a result
    could not be serialized, the handle raised): nothing commits and no caller
    gets a reply (see :func:`run_batch`).
    """

    exists: bool
    state: str | None
    operations: list[OperationOutcome]
    aborted: str | None = None


def run_batch(handle: Callable[..., str], name: str, key: str, exists: bool,
              state: str | None, requests: list[EntityRequest]) -> BatchOutcome:
    """Run ``requests`` as one batch through the entity's generated handle.

    An invocation that throws is not a batch of failed operations: the extension
    rethrows it from ``ExecuteOutOfProcBatch`` (TaskEntityShim.cs:589-600), records it as
    an internal error (DurableTaskExtension.cs:1053-1056), skips the commit
    (TaskEntityShim.cs:233-241) and aborts the session (DurableTaskExtension.cs:1142,
    DurableEntityContext.cs:147-152), so DTFx puts the messages back and retries them.
    """
    body = json.dumps({
        "self": {"name": name.lower(), "key": key},
        "exists": exists,
        "state": state,
        "batch": [{"name": r.operation, "input": r.input, "isSignal": r.is_signal}
                  for r in requests],
    })
    try:
        reply = json.loads(handle(func.EntityContext(body)))
    except Exception as exc:  # the invocation itself failed: the host aborts the batch
        return BatchOutcome(exists, state, [], aborted=(
            f"its batch of {len(requests)} operation(s) fails as a whole ({type(exc).__name__}: "
            f"{exc}): the extension aborts the session and retries it, nothing commits and no "
            "caller gets a reply (TaskEntityShim.cs:589-600)"))
    results = reply.get("results") or []
    return BatchOutcome(
        exists=bool(reply.get("entityExists")),
        state=reply.get("entityState") if reply.get("entityExists") else None,
        operations=[OperationOutcome(r, bool(res.get("isError")), res.get("result"))
                    for r, res in zip(requests, results)],
    )
