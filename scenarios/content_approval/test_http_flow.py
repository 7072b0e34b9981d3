"""The content approval scenario driven only over HTTP, the way a user would curl it.

``POST /api/orchestrators/content_approval`` starts a review, the check-status
payload's ``statusQueryGetUri`` reports progress, and ``POST /api/approvals/{id}``
carries the reviewer's answer. Everything goes through the simulated host:
the starter and the approval endpoint run the SDK's real durable client.
"""

import pytest

from fakes.content_service import service

pytestmark = pytest.mark.dafx_app("function_app.py")


@pytest.fixture(autouse=True)
def fresh_service():
    service.reset()
    yield
    service.reset()


@pytest.fixture
def http(dafx):
    return dafx.http


def start_review(http):
    started = http.post("/api/orchestrators/content_approval",
                        json={"topic": "tides", "reviewer": "ana@example.test"})
    assert started.status_code == 202, started
    return started.json()


def test_start_then_approve_over_http(http):
    links = start_review(http)

    waiting = http.get(links["statusQueryGetUri"])
    assert waiting.status_code == 202
    assert waiting.json()["runtimeStatus"] == "Running"
    assert waiting.json()["customStatus"] == {"stage": "awaiting_review",
                                              "reviewer": "ana@example.test"}

    answered = http.post(f"/api/approvals/{links['id']}", json={"approved": True})
    assert answered.status_code == 202

    done = http.get(links["statusQueryGetUri"])
    assert done.status_code == 200
    assert done.json()["runtimeStatus"] == "Completed"
    assert done.json()["output"] == {"status": "published",
                                     "url": "https://content.example.test/posts/1"}
    assert [call.operation for call in service.calls] == ["draft", "notify_reviewer", "publish"]


def test_approving_an_unknown_review_is_a_404_from_the_endpoint(http):
    response = http.post("/api/approvals/no-such-review", json={"approved": True})
    assert response.status_code == 404
    assert response.text == "no review no-such-review"


def test_approving_a_finished_review_is_an_error(http):
    links = start_review(http)
    http.post(links["terminatePostUri"].replace("{text}", "withdrawn"))
    assert http.get(links["statusQueryGetUri"]).json()["runtimeStatus"] == "Terminated"

    # raise_event on a finished instance: the host answers 410, the SDK raises.
    with pytest.raises(Exception, match="is gone"):
        http.post(f"/api/approvals/{links['id']}", json={"approved": True})


def test_a_rejection_over_http_is_not_published(http):
    # The durable client double-encodes event data (azure-functions-durable-python#295); the
    # orchestrator decodes a decision that arrives as JSON text.
    links = start_review(http)
    http.post(f"/api/approvals/{links['id']}", json={"approved": False})

    assert http.get(links["statusQueryGetUri"]).json()["output"] == "Content rejected"
