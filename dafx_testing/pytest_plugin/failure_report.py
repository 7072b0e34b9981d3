"""What a failing test's report says about its simulators.

When a test that used ``dafx`` (or ``dafx_factory``) fails, the plugin adds a
``dafx`` section to the pytest report, under the traceback::

    reproduce: pytest tests/test_orders.py::test_refund --dafx-seed=0
    simulator 1 of 1: function_app.py, seed 0, virtual time 2025-01-01T00:00:00+00:00 -> ...
      crashes injected: #4 activity charge_card (order-1 #2)
      instance 'order-1' (place_order): Failed
           +00:00:00  ep1  started place_order input={"item": "book"}
           +00:00:00  ep1  -> activity charge_card #0 input=...
           ...
      entity @inventory@book: {"count": 2}

Each instance's history is rendered by :func:`dafx_testing.core.timeline.timeline`;
long ones keep their first and last lines and say how many events were left
out, and a simulator with many instances shows the first few and names the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..simulator import Simulator
    from .factory import BuiltSimulator

__all__ = ["render"]

MAX_INSTANCES = 8
"""Instances shown with their timeline per simulator; the rest are only named."""

MAX_TIMELINE_LINES = 40
"""Lines per timeline; longer ones keep their head and tail."""

MAX_ENTITIES = 10
"""Entities shown with their state per simulator."""

_PREVIEW = 100


def render(built: Sequence[BuiltSimulator], reproduce: str) -> str:
    """The report section for a failed test: the reproduction line, then each simulator."""
    lines = [f"reproduce: {reproduce}"]
    for number, entry in enumerate(built, 1):
        sim = entry.simulator
        lines.append(f"simulator {number} of {len(built)}: {entry.app}, seed {sim.seed}, virtual "
                     f"time {entry.start.isoformat()} -> {sim.now.isoformat()}")
        lines += ["  " + line for line in _simulator_lines(sim)]
    return "\n".join(lines)


def _simulator_lines(sim: Simulator) -> list[str]:
    from ..core.timeline import preview, timeline

    crashes = sim.crashes
    lines = ["crashes injected: " + (", ".join(str(point) for point in crashes) or "none")]
    instances = sim.list_instances()
    for status in instances[:MAX_INSTANCES]:
        lines.append(f"instance {status.instance_id!r} ({status.name}): {status.runtime_status}")
        lines += ["  " + line for line in timeline(status.history, MAX_TIMELINE_LINES).splitlines()]
    rest = instances[MAX_INSTANCES:]
    if rest:
        lines.append(f"... {len(rest)} more instance(s): "
                     + ", ".join(f"{s.instance_id!r} {s.runtime_status}" for s in rest))
    entities = list(sim.hub.entities.values())
    for record in entities[:MAX_ENTITIES]:
        state = preview(record.state, _PREVIEW) if record.exists else "(no state)"
        lines.append(f"entity @{record.name}@{record.key}: {state}")
    if len(entities) > MAX_ENTITIES:
        lines.append(f"... {len(entities) - MAX_ENTITIES} more entities")
    if not instances and not entities:
        lines.append("no instances or entities")
    return lines

