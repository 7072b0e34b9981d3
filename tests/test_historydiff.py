"""History diffs: equivalent runs compare equal; real differences are listed with context."""

from __future__ import annotations

from pathlib import Path

import pytest

from dafx_testing import Simulator
from dafx_testing.checks.historydiff import diff_histories

ROOT = Path(__file__).resolve().parent.parent
CONTENT_APPROVAL = ROOT / "scenarios" / "content_approval" / "function_app.py"
COUNTER = ROOT / "scenarios" / "counter_entity" / "function_app.py"


def approval_run(decision, seed=0, start_time=None):
    sim = Simulator(CONTENT_APPROVAL, seed=seed, start_time=start_time)
    instance_id = sim.start_new("content_approval", {"topic": "tides"})
    sim.run_until_idle()
    if decision is not None:   # None: nobody answers, the 24-hour deadline escalates
        sim.raise_event(instance_id, "ApprovalDecision", decision)
    return sim.wait_for_completion(instance_id)


def test_runs_that_differ_only_in_ids_and_times_are_the_same():
    first = approval_run(None, seed=1, start_time="2025-01-01T00:00:00Z")
    second = approval_run(None, seed=2, start_time="2026-06-30T17:45:00Z")

    diff = diff_histories(first, second)

    assert diff.same and diff.first_difference is None
    assert str(diff) == "histories are the same (20 events, ids and timestamps ignored)"


def test_entity_request_ids_do_not_count():
    runs = []
    for seed in (1, 2):
        sim = Simulator(COUNTER, seed=seed)
        runs.append(sim.wait_for_completion(sim.start_new(
            "tally", {"counter": "c", "numbers": [1, 2], "bonus": 3})))

    assert diff_histories(*runs).same


def test_a_different_path_is_listed_with_context_from_the_first_difference():
    approved, rejected = approval_run(True), approval_run(False)

    diff = diff_histories(approved, rejected, labels=("approved", "rejected"))

    assert not diff.same and diff.first_difference == 13 and diff.lengths == (20, 16)
    assert diff.lines[0] == ("histories differ at approved event 13 / rejected event 13 "
                             "(approved: 20 events, rejected: 16 events)")
    assert "  = 12 | 12  OrchestratorStarted" in diff.lines
    assert "  - 13 |     EventRaised Name=ApprovalDecision Input=true" in diff.lines
    assert "  +    | 13  EventRaised Name=ApprovalDecision Input=false" in diff.lines
    assert ('  +    | 14  ExecutionCompleted #3 OrchestrationStatus=Completed '
            'Result="Content rejected"') in diff.lines
    assert diff.lines[2].strip() == "..."   # the equal start is folded


def test_timer_times_count_from_the_start_of_the_history():
    history = approval_run(True).history
    timer = next(e for e in history if e["EventType"] == 10)
    moved = [dict(e, FireAt="2025-01-02T00:00:00.5Z") if e is timer else e for e in history]

    diff = diff_histories(history, moved)

    assert [line for line in diff.lines if "TimerCreated" in line] == [
        "  - 10 |     TimerCreated #2 FireAt=start+1d 00:00:00.000",
        "  +    | 10  TimerCreated #2 FireAt=start+1d 00:00:00.500",
    ]


def test_only_histories_are_compared():
    with pytest.raises(TypeError, match="compares event lists, or objects with a 'history' list"):
        diff_histories("a.json", [])
