"""Record the v1 histories under ``histories/``: ``python -m scenarios.versioning.record_histories``.

Run it from the repository root while ``function_app_v1.py`` is the code in
production, and commit the files. The runs are seeded and start at a fixed
virtual time, so recording again gives the same bytes (the tests check that
the committed files are what v1 records).
"""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from dafx_testing import Simulator

HERE = Path(__file__).resolve().parent
APP_V1 = HERE / "function_app_v1.py"
HISTORIES = HERE / "histories"
START = "2025-03-01T09:00:00Z"
ORDER = {"id": "A-1001", "item": "kayak", "quantity": 1, "amount": 1200,
         "customer": "ana@example.test"}


def _awaiting_approval(sim: Simulator, instance_id: str) -> None:
    sim.run_until_idle()


def _shipped(sim: Simulator, instance_id: str) -> None:
    sim.run_until_idle()
    sim.advance(timedelta(hours=3))
    sim.raise_event(instance_id, "ShipmentApproved", {"by": "lee"})
    sim.wait_for_completion(instance_id)


def _cancelled(sim: Simulator, instance_id: str) -> None:
    sim.wait_for_completion(instance_id, timeout=timedelta(days=3))


STORIES: dict[str, Callable[[Simulator, str], None]] = {
    "awaiting-approval": _awaiting_approval,
    "shipped": _shipped,
    "cancelled": _cancelled,
}
"""How each recorded instance was driven; the file is ``histories/<name>.json``."""


def record(folder: Path = HISTORIES) -> dict[str, Path]:
    """Run every story against v1 and save its history in ``folder``."""
    written = {}
    for seed, (name, drive) in enumerate(STORIES.items(), start=1):
        sim = Simulator(APP_V1, seed=seed, start_time=START)
        instance_id = sim.start_new("order_fulfillment", ORDER, instance_id=f"order-{name}")
        drive(sim, instance_id)
        written[name] = folder / f"{name}.json"
        sim.save_history(instance_id, written[name])
    return written


if __name__ == "__main__":
    for path in record().values():
        print(f"wrote {path.relative_to(Path.cwd())}")
