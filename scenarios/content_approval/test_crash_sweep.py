"""Crash sweeps over all three content approval paths: every crash recovers."""

from datetime import timedelta

import pytest

from fakes.content_service import service

pytestmark = pytest.mark.dafx_app("function_app.py")

# Drafting has no side effect; the others are idempotent by natural key in the service.
IDEMPOTENT = ["draft_content", "notify_reviewer", "publish_content", "escalate_for_review"]


def effects():
    return service.effects()


def reviewed(decision):
    def scenario(sim):
        service.reset()
        instance_id = sim.start_new("content_approval", {"topic": "tides"}, instance_id="post-1")
        sim.run_until_idle()
        sim.raise_event(instance_id, "ApprovalDecision", decision)
        sim.wait_for_completion(instance_id)
    return scenario


def unanswered(sim):
    service.reset()
    instance_id = sim.start_new("content_approval", {"topic": "tides"}, instance_id="post-1")
    sim.run_until_idle()
    sim.advance(timedelta(hours=24))
    assert sim.get_status(instance_id).runtime_status == "Completed"


@pytest.mark.parametrize("scenario", [reviewed(True), reviewed(False), unanswered],
                         ids=["approved", "rejected", "timed-out"])
def test_every_crash_point_recovers_to_the_same_outcome(dafx, scenario):
    report = dafx.crash_sweep(scenario, idempotent=IDEMPOTENT, effects=effects)

    assert report.ok, report.explain()
    assert report.runs == len(report.points) > 10
    kinds = {point.kind for point in report.points}
    assert kinds == {"dequeue", "episode", "activity", "after-commit", "duplicate"}


def test_without_declarations_the_sweep_lists_each_harmless_rerun_as_information(dafx):
    # The service keys its effects naturally, so a re-run leaves the outside world as it was:
    # at-least-once delivery, not a failure; the report names each re-run and the strict switch.
    report = dafx.crash_sweep(reviewed(True), effects=effects)

    assert report.ok, report.explain()
    repeated = {d.name for d in report.repeated_activities}
    assert repeated == {"draft_content", "notify_reviewer", "publish_content"}
    assert "information, not a failure" in report.explain()


def test_declaring_an_activity_once_makes_its_rerun_a_failure(dafx):
    report = dafx.crash_sweep(reviewed(True), effects=effects, once=["publish_content"])

    assert not report.ok
    assert "publish_content ran 2 times (baseline 1) after a crash at" in report.explain()
    assert "declared once=" in report.explain()


def test_pairs_of_crashes_recover_too(dafx):
    report = dafx.crash_sweep(reviewed(True), idempotent=IDEMPOTENT, effects=effects,
                              pairs=True, kinds=["episode", "activity"])

    assert report.ok, report.explain()
    assert report.runs > len([p for p in report.points if p.kind in ("episode", "activity")])
