"""Every history reader, fed mutated saved histories, accepts them or raises dafx's own error.

The mutations change types, fields, event kinds and nesting of real saved histories (the
versioning scenario's DTFx files and a status-API answer). The readers are the ones users
reach: ``load_history``, ``Simulator.load_history`` (a path and a document), ``Replayer``
(what ``dafx replay`` runs) and ``dafx show``. Anything but a :class:`DafxError` (a
``KeyError`` deep inside, a ``RecursionError``, "unexpected ..." from the command line's
fallback) fails the property.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dafx_testing import DafxError, Simulator
from dafx_testing.checks.replayer import Replayer
from dafx_testing.cli import main
from dafx_testing.core.async_bridge import run_sync
from dafx_testing.core.history import load_history

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "scenarios" / "versioning" / "histories"
V1 = ROOT / "scenarios" / "versioning" / "function_app_v1.py"
NAMES = ("shipped", "awaiting-approval", "cancelled")


class Deep:
    """A value nested ``depth`` arrays deep: built without recursion, written as brackets."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def build(self) -> list:
        value: list = []
        for _ in range(self.depth):
            value = [value]
        return value

    def marker(self) -> str:
        return f"@@deep{self.depth}@@"


def _status_document() -> dict[str, Any]:
    """A status-API answer (``historyEvents`` with EventType names) for a v1 history."""
    sim = Simulator(V1)
    instance_id = sim.load_history(HISTORIES / "shipped.json")
    status = run_sync(sim.client.get_status(instance_id, show_history=True,
                                            show_history_output=True))
    return {"name": status.name, "instanceId": status.instance_id, "input": status.input_,
            "runtimeStatus": "Completed", "historyEvents": status.historyEvents}


BASES = [json.loads((HISTORIES / f"{name}.json").read_text("utf-8")) for name in NAMES]
FIELDS = sorted({key for base in BASES for event in base["history"] for key in event}
                | {"FunctionName", "ScheduledTime", "Reason", "Details", "Data", "Unknown"})
DEPTHS = st.sampled_from([2, 400, 501, 3000, 50_000])
EVENT_TYPES = st.one_of(st.integers(-2, 23), st.sampled_from(
    ["TaskScheduled", "ExecutionStarted", "TaskSchedueld", "4", "", True, False, 4.0, None]))
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 30), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["", "{not json", "null", "[1, 2]", '"text"', "2025-03-01T09:00:00Z",
                     "yesterday", "Completed", "order_fulfillment", "charge_payment", "NaN"]),
    DEPTHS.map(lambda d: "[" * d + "]" * d),            # a payload nested too deep
    DEPTHS.map(Deep),                                    # a value nested too deep
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.sampled_from(["InstanceId", "ExecutionId", "Name", "x"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=4)), max_size=3),
)
INDICES = st.integers(0, 40)
MUTATIONS = st.one_of(
    st.tuples(st.just("set"), INDICES, st.sampled_from(FIELDS), VALUES),
    st.tuples(st.just("delete"), INDICES, st.sampled_from(FIELDS)),
    st.tuples(st.just("set"), INDICES, st.just("EventType"), EVENT_TYPES),
    st.tuples(st.just("nested"), INDICES, st.sampled_from(["OrchestrationInstance",
                                                           "ParentInstance"]),
              st.sampled_from(["InstanceId", "ExecutionId", "Name", "TaskScheduleId",
                               "OrchestrationInstance"]), VALUES),
    st.tuples(st.just("drop"), INDICES),
    st.tuples(st.just("duplicate"), INDICES),
    st.tuples(st.just("replace"), INDICES, VALUES),
    st.tuples(st.just("document"), st.sampled_from(
        ["format", "version", "instanceId", "name", "runtimeStatus", "input", "history",
         "historyEvents"]), VALUES),
    st.tuples(st.just("whole"), VALUES),
)


def _mutate(document: Any, mutation: tuple) -> Any:
    kind, *rest = mutation
    if kind == "whole":
        return rest[0]
    if kind == "document":
        if isinstance(document, dict):
            document[rest[0]] = rest[1]
        return document
    events = document.get("history", document.get("historyEvents")) \
        if isinstance(document, dict) else document
    if not isinstance(events, list) or not events:
        return document
    index = rest[0] % len(events)
    event = events[index]
    if kind == "drop":
        del events[index]
    elif kind == "duplicate":
        events.insert(index, copy.deepcopy(event))
    elif kind == "replace":
        events[index] = rest[1]
    elif isinstance(event, dict):
        if kind == "set":
            event[rest[1]] = rest[2]
        elif kind == "delete":
            event.pop(rest[1], None)
        elif kind == "nested":
            inner = event.get(rest[1])
            if isinstance(inner, dict):
                inner[rest[2]] = rest[3]
            else:
                event[rest[1]] = {rest[2]: rest[3]}
    return document


def _as_text(document: Any) -> str:
    """The file: Deep values become real brackets (json.dumps itself would recurse)."""
    deep: list[Deep] = []

    def default(value: Any) -> str:
        deep.append(value)
        return value.marker()

    text = json.dumps(document, default=default)
    for value in deep:
        text = text.replace(json.dumps(value.marker()), "[" * value.depth + "]" * value.depth)
    return text


def _as_object(value: Any) -> Any:
    """The document in memory: Deep values become nested lists (the document itself is shallow)."""
    if isinstance(value, Deep):
        return value.build()
    if isinstance(value, dict):
        return {key: _as_object(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_object(item) for item in value]
    return value


def _accepts_or_refuses(read: Any, *args: Any) -> None:
    """The property: the reader returns, or raises a DafxError; anything else propagates."""
    with contextlib.suppress(DafxError):
        read(*args)


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mutated")
    return folder / "history.json", Replayer(V1), Simulator(V1), itertools.count()


@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(base=st.sampled_from(range(len(BASES) + 1)), mutations=st.lists(MUTATIONS, min_size=1,
                                                                       max_size=3))
def test_every_reader_accepts_a_mutated_history_or_raises_a_dafx_error(readers, base, mutations):
    path, replayer, sim, ids = readers
    document: Any = copy.deepcopy(BASES[base]) if base < len(BASES) else _status_copy()
    for mutation in mutations:
        document = _mutate(document, mutation)
    path.write_text(_as_text(document), encoding="utf-8")

    _accepts_or_refuses(load_history, path)
    _accepts_or_refuses(replayer.replay, path)
    _accepts_or_refuses(replayer.replay, _as_object(document))
    _accepts_or_refuses(sim.load_history, path, f"from-file-{next(ids)}")
    _accepts_or_refuses(sim.load_history, _as_object(document), f"from-object-{next(ids)}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["show", str(path)])
    assert code in (0, 2), err.getvalue()
    assert "unexpected" not in err.getvalue() and "Traceback" not in err.getvalue(), err.getvalue()


_STATUS: list[dict[str, Any]] = []


def _status_copy() -> dict[str, Any]:
    if not _STATUS:
        _STATUS.append(_status_document())
    return copy.deepcopy(_STATUS[0])
