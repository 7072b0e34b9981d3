"""The order saga: happy path, compensation, retries, and what a crash sweep finds."""

from datetime import timedelta

import pytest

from fakes import shop

pytestmark = pytest.mark.dafx_app("function_app.py")

ALL_BUT_CHARGE = ["reserve_inventory", "ship_order", "refund_payment", "release_inventory"]


@pytest.fixture(autouse=True)
def clean_shop():
    shop.reset()
    yield
    shop.reset()


def place(order):
    """A sweep scenario: a clean shop, one order, run to the end."""
    def scenario(sim):
        shop.reset()
        sim.wait_for_completion(sim.start_new("place_order", order, instance_id="order-1"))
    return scenario


def test_an_order_ships_and_charges_once(dafx):
    status = dafx.wait_for_completion(
        dafx.start_new("place_order", {"id": "o1", "item": "book", "amount": 30}))

    assert status.output == {"status": "shipped", "charge": "ch_1", "parcel": "parcel-o1"}
    assert shop.payments.balance() == 30 and shop.warehouse.stock["book"] == 4
    dafx.check_replay(status.instance_id)


def test_a_failed_shipment_refunds_and_releases_in_reverse_order(dafx):
    status = dafx.wait_for_completion(
        dafx.start_new("place_order", {"id": "o2", "item": "lamp", "amount": 30}))

    assert status.output == {"status": "cancelled", "reason":
                             "Activity function 'ship_order' failed: OutOfStock: no lamp left to ship"}
    assert [c.name for c in dafx.activity_calls()] == [
        "reserve_inventory", "charge_payment", "ship_order", "refund_payment", "release_inventory"]
    assert shop.payments.balance() == 0 and shop.warehouse.reserved == {}


def test_a_declined_card_is_retried_then_the_order_is_cancelled_without_refund(dafx):
    status = dafx.wait_for_completion(
        dafx.start_new("place_order", {"id": "o3", "item": "book", "amount": 5000}))

    assert status.output["status"] == "cancelled"
    assert [c.attempt for c in dafx.activity_calls("charge_payment")] == [1, 2, 3]
    assert dafx.activity_calls("refund_payment") == []
    assert status.last_updated_time - status.created_time == timedelta(seconds=4)   # 2 s backoff x 2


def test_a_sweep_finds_the_double_charge_when_no_idempotency_key_is_sent(dafx):
    order = {"id": "o1", "item": "book", "amount": 30, "idempotency": False}

    report = dafx.crash_sweep(place(order), effects=shop.snapshot,
                              idempotent=ALL_BUT_CHARGE + ["charge_payment"])

    assert not report.ok
    # The minimal schedules: one crash, right after a charge ran but before it was recorded
    # (or a duplicate delivery of the charge message).
    assert {(f.crashes[0].kind, f.crashes[0].name) for f in report.failures} == {
        ("activity", "charge_payment"), ("duplicate", "charge_payment")}
    assert all(len(f.crashes) == 1 for f in report.failures)
    explanation = report.explain()
    assert "'ch_2'" in explanation and "the outside world differs" in explanation
    assert "reproduce: CrashPlan(at=[" in explanation


def test_with_an_idempotency_key_every_crash_recovers_with_one_charge(dafx):
    report = dafx.crash_sweep(place({"id": "o1", "item": "book", "amount": 30}),
                              effects=shop.snapshot, idempotent=ALL_BUT_CHARGE + ["charge_payment"])

    assert report.ok, report.explain()
    assert report.runs == len(report.points) and report.pruned > report.runs // 2
    assert {d.name for d in report.duplicated_effects} >= {"charge_payment"}


def test_compensation_survives_every_crash(dafx):
    report = dafx.crash_sweep(place({"id": "o2", "item": "lamp", "amount": 30}),
                              effects=shop.snapshot, idempotent=ALL_BUT_CHARGE + ["charge_payment"])

    assert report.ok, report.explain()
