"""The review loop's activities as a Blueprint, registered by both content approval apps.

Each call goes to the ``fakes.content_service`` ledger, which records it and
keys notify/publish/escalate by their natural key (so repeating one is harmless).
"""

import azure.durable_functions as df

from fakes.content_service import service

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def notify_reviewer(request: dict) -> str:
    return service.notify_reviewer(request["reviewer"], request["draft"])


@bp.activity_trigger(input_name="draft")
def publish_content(draft: str) -> str:
    return service.publish(draft)


@bp.activity_trigger(input_name="draft")
def escalate_for_review(draft: str) -> str:
    return service.escalate(draft)
