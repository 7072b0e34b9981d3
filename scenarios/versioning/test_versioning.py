"""Keep v1 histories in the repository and replay them in CI against the code you ship.

The pattern: when a version goes to production, record a few histories of its
instances (in flight and finished) and commit them; from then on, every change
to the orchestrator must replay them. v2 does; v3 would fail every in-flight
instance, and the test says which call at which sequence number.
"""

import filecmp
from datetime import timedelta
from pathlib import Path

import pytest

from dafx_testing import Simulator
from dafx_testing.checks.replayer import Replayer
from dafx_testing.core.errors import ReplayError
from scenarios.versioning.activities import V3_DIVERGENCE
from scenarios.versioning.record_histories import HISTORIES, STORIES, record

HERE = Path(__file__).resolve().parent
V1, V2, V3 = (HERE / f"function_app_v{n}.py" for n in (1, 2, 3))


def test_the_committed_histories_are_what_v1_records(tmp_path):
    fresh = record(tmp_path)

    for name, path in fresh.items():
        assert filecmp.cmp(path, HISTORIES / path.name, shallow=False), (
            f"histories/{path.name} is not what v1 records: v1 must not change; if the "
            "recording itself changed, run python -m scenarios.versioning.record_histories")
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted(STORIES)


def test_the_shipped_code_replays_every_recorded_history():
    # The CI gate: point it at the code you ship.
    for result in Replayer(V2, raise_on_failure=True).replay_dir(HISTORIES):
        assert result.ok


def test_an_incompatible_change_is_caught_before_it_ships():
    results = Replayer(V3).replay_dir(HISTORIES)

    assert [r.ok for r in results] == [False, False, False]
    assert {r.host_message for r in results} == {V3_DIVERGENCE}
    assert {(r.sequence_number, r.expected, r.actual) for r in results} == {
        (1, "activity 'charge_payment' [#1]", "activity 'check_fraud' [#1]")}
    with pytest.raises(ReplayError, match="sequence number: 1"):
        Replayer(V3, raise_on_failure=True).replay(HISTORIES / "awaiting-approval.json")


def test_an_in_flight_v1_instance_finishes_under_v2():
    sim = Simulator(V2)
    instance_id = sim.load_history(HISTORIES / "awaiting-approval.json")

    sim.raise_event(instance_id, "ShipmentApproved", {"by": "lee"})
    status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert status.output == {"order": "A-1001", "status": "shipped", "tracking": "TRACK-A-1001",
                             "receipt": "receipt sent to ana@example.test"}


def test_under_v3_the_host_fails_the_in_flight_instance():
    sim = Simulator(V3, raise_on_nondeterminism=False)
    instance_id = sim.load_history(HISTORIES / "awaiting-approval.json")

    sim.raise_event(instance_id, "ShipmentApproved", {"by": "lee"})
    status = sim.wait_for_completion(instance_id)

    assert status.runtime_status == "Failed"
    assert status.output == V3_DIVERGENCE


def test_new_instances_run_fine_under_v3():
    sim = Simulator(V3)
    instance_id = sim.start_new("order_fulfillment", {"id": "B-7", "item": "paddle",
                                                      "quantity": 2, "amount": 90,
                                                      "customer": "kim@example.test"})
    sim.run_until_idle()
    sim.advance(timedelta(days=3))

    assert sim.get_status(instance_id).output == {"order": "B-7", "status": "cancelled"}
