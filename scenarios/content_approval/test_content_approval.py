"""The content approval scenario: all three outcomes, in virtual time, plus a code change."""

from datetime import timedelta

import azure.durable_functions as df
import pytest

from dafx_testing import InstanceStateError, NonDeterminismError, Simulator
from fakes.content_service import service

pytestmark = pytest.mark.dafx_app("function_app.py")

REQUEST = {"topic": "tides", "reviewer": "ana@example.test"}


@pytest.fixture(autouse=True)
def fresh_service():
    service.reset()
    yield
    service.reset()


def start(sim: Simulator) -> str:
    instance_id = sim.start_new("content_approval", REQUEST)
    sim.run_until_idle()
    return instance_id


def operations():
    return [call.operation for call in service.calls]


def test_drafts_notifies_then_waits_for_the_reviewer(dafx):
    instance_id = start(dafx)

    status = dafx.get_status(instance_id)
    assert status.runtime_status == "Running"
    assert status.custom_status == {"stage": "awaiting_review", "reviewer": "ana@example.test"}
    assert status.waiting_for == ["ApprovalDecision"]
    assert operations() == ["draft", "notify_reviewer"]
    assert service.calls_to("notify_reviewer")[0].payload == {
        "reviewer": "ana@example.test", "draft": "A short piece about tides."}


def test_approval_publishes_without_waiting_for_the_deadline(dafx):
    instance_id = start(dafx)
    started_at = dafx.now

    dafx.raise_event(instance_id, "ApprovalDecision", True)
    status = dafx.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert status.output == {"status": "published", "url": "https://content.example.test/posts/1"}
    assert operations() == ["draft", "notify_reviewer", "publish"]
    # The cancelled deadline did not hold the instance open: no virtual time passed.
    assert dafx.now == started_at
    dafx.check_replay(instance_id)


def test_rejection_publishes_nothing(dafx):
    instance_id = start(dafx)

    dafx.raise_event(instance_id, "ApprovalDecision", {"approved": False})
    status = dafx.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    assert status.output == "Content rejected"
    assert status.custom_status == {"stage": "rejected"}
    assert service.calls_to("publish") == []
    dafx.check_replay(instance_id)


def test_silence_for_24_hours_escalates_in_virtual_time(dafx):
    instance_id = start(dafx)
    started_at = dafx.now

    dafx.advance(timedelta(hours=23, minutes=59))
    assert dafx.get_status(instance_id).runtime_status == "Running"
    assert service.calls_to("escalate") == []

    dafx.advance(timedelta(minutes=1))
    status = dafx.get_status(instance_id)
    assert status.runtime_status == "Completed"
    assert status.output == {"status": "escalated", "detail": "escalated to the editor-in-chief"}
    (escalation,) = service.calls_to("escalate")
    assert escalation.at == started_at + timedelta(hours=24)   # activity code saw virtual time
    dafx.check_replay(instance_id)


def test_a_late_decision_is_refused_once_escalated(dafx):
    instance_id = start(dafx)
    dafx.wait_for_completion(instance_id)

    with pytest.raises(InstanceStateError, match="Completed"):
        dafx.raise_event(instance_id, "ApprovalDecision", True)


def changed_app() -> df.DFApp:
    """The scenario after someone renamed the notification step mid-flight."""
    from scenarios.content_approval import function_app as v1

    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def content_approval(context):
        request = context.get_input() or {}
        draft = yield context.call_activity("draft_content", request.get("topic"))
        yield context.call_activity("send_review_request", {"reviewer": "x", "draft": draft})
        decision = yield context.wait_for_external_event("ApprovalDecision")
        return decision

    @app.activity_trigger(input_name="topic")
    def draft_content(topic: str) -> str:
        return v1.draft_content(topic)

    @app.activity_trigger(input_name="request")
    def send_review_request(request: dict) -> str:
        return v1.notify_reviewer(request)

    return app


def test_changed_code_replayed_against_an_in_flight_history_fails_like_the_host(dafx, tmp_path):
    instance_id = start(dafx)
    dafx.save_history(instance_id, tmp_path / "in-flight.json")

    redeployed = Simulator(changed_app())
    redeployed.load_history(tmp_path / "in-flight.json")
    redeployed.raise_event(instance_id, "ApprovalDecision", True)
    with pytest.raises(NonDeterminismError) as caught:
        redeployed.run_until_idle()

    message = (
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled an activity task with sequence number 1 named 'notify_reviewer', but the "
        "current orchestration replay instead scheduled an activity task named "
        "'send_review_request' with this sequence number.  Was a change made to the "
        "orchestrator code after this instance had already started running?"
    )
    assert caught.value.host_message == message
    assert caught.value.sequence_number == 1
    assert "activity 'notify_reviewer'" in caught.value.expected
    assert "activity 'send_review_request'" in caught.value.actual
    status = redeployed.get_status(instance_id)
    assert status.runtime_status == "Failed"
    assert status.output == message
