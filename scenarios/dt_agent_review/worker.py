"""A blog post written by agents and approved by a person, on a Durable Task SDK worker.

The ``review_post`` orchestration chains two durable agents hosted by a
``DurableAIAgentWorker``: the ``Writer`` drafts a post, the ``Critic`` adds a
one-line note for the reviewer. The orchestration shows both in its custom
status, then races an ``approval`` external event against a 24-hour timer:

* approved: the ``publish`` activity puts the post on the blog;
* rejected: the Writer rewrites in the same session (it sees its earlier drafts
  and the feedback), the Critic looks again, and the review starts over; after
  ``MAX_ATTEMPTS`` rejections the post is dropped;
* no decision within 24 hours: the run ends with an escalation.

``publish`` is idempotent by key: the key is the orchestration instance id, so
an activity that runs again after a crash (at-least-once delivery) finds the post
already there and returns the same URL instead of publishing it twice.

Run it as a program against a Durable Task Scheduler (the emulator on
``localhost:8080`` by default) with ``OPENAI_API_KEY`` set, from the repository root::

    python -m scenarios.dt_agent_review.worker
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator
from datetime import datetime, timedelta, timezone
from typing import Any

from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient
from agent_framework_durabletask import DurableAIAgentOrchestrationContext, DurableAIAgentWorker
from durabletask import task
from durabletask.worker import TaskHubGrpcWorker

logger = logging.getLogger(__name__)

WRITER = "Writer"
CRITIC = "Critic"
WRITER_INSTRUCTIONS = "You write short, friendly blog posts. Answer with the post only."
CRITIC_INSTRUCTIONS = "You critique blog post drafts in one line for a human editor."
APPROVAL_EVENT = "approval"
REVIEW_WINDOW = timedelta(hours=24)
MAX_ATTEMPTS = 3


class Blog:
    """The outside world ``publish`` changes: posts by idempotency key, and every attempt.

    ``posts`` is the effect (one entry per key, whatever the retries); ``attempts``
    lists every call, so a test can see the at-least-once re-runs that changed nothing.
    """

    def __init__(self) -> None:
        self.posts: dict[str, dict[str, Any]] = {}
        self.attempts: list[str] = []

    def publish(self, key: str, title: str, body: str) -> str:
        self.attempts.append(key)
        if key not in self.posts:
            self.posts[key] = {"title": title, "body": body,
                               "url": f"https://blog.example.test/posts/{len(self.posts) + 1}",
                               "at": datetime.now(timezone.utc).isoformat()}
        return self.posts[key]["url"]

    def effects(self) -> dict[str, dict[str, Any]]:
        """What a crash sweep compares with its baseline: the posts, not the attempts."""
        return {key: dict(post) for key, post in self.posts.items()}

    def reset(self) -> None:
        self.posts.clear()
        self.attempts.clear()


blog = Blog()
"""The blog the ``publish`` activity writes to."""


def publish(ctx: task.ActivityContext, post: dict[str, str]) -> str:
    """Put the approved post on the blog, once per review run (keyed by the instance id)."""
    return blog.publish(ctx.orchestration_id, post["title"], post["body"])


def review_post(ctx: task.OrchestrationContext,
                request: dict[str, Any]) -> Generator[task.Task[Any], Any, dict[str, Any]]:
    """Draft, critique, then wait for a person's approval or 24 hours, up to MAX_ATTEMPTS drafts."""
    topic = request["topic"]
    agents = DurableAIAgentOrchestrationContext(ctx)
    writer, critic = agents.get_agent(WRITER), agents.get_agent(CRITIC)
    writer_session, critic_session = writer.create_session(), critic.create_session()
    conversation = writer_session.durable_session_id.key      # where the Writer's turns are kept

    draft = (yield writer.run(f"Write a short post about {topic}.", session=writer_session)).text
    for attempt in range(1, MAX_ATTEMPTS + 1):
        note = (yield critic.run(f"Critique this draft:\n{draft}", session=critic_session)).text
        ctx.set_custom_status({"stage": "awaiting_approval", "attempt": attempt,
                               "draft": draft, "critic": note, "writer_session": conversation})

        approval = ctx.wait_for_external_event(APPROVAL_EVENT)
        deadline = ctx.create_timer(REVIEW_WINDOW)
        winner = yield task.when_any([approval, deadline])
        if winner is deadline:
            ctx.set_custom_status({"stage": "escalated", "attempt": attempt})
            return {"status": "escalated", "attempt": attempt, "draft": draft,
                    "reason": f"no decision within {REVIEW_WINDOW / timedelta(hours=1):g} hours"}

        decision = approval.get_result() or {}
        if decision.get("approved"):
            url = yield ctx.call_activity(publish, input={"title": topic, "body": draft})
            ctx.set_custom_status({"stage": "published", "attempt": attempt})
            return {"status": "published", "url": url, "attempt": attempt, "draft": draft}
        if attempt == MAX_ATTEMPTS:
            break
        feedback = decision.get("feedback") or "Make it better."
        ctx.set_custom_status({"stage": "rewriting", "attempt": attempt, "feedback": feedback})
        draft = (yield writer.run(f"Rewrite the post. Reviewer feedback: {feedback}",
                                  session=writer_session)).text

    ctx.set_custom_status({"stage": "rejected", "attempt": MAX_ATTEMPTS})
    return {"status": "rejected", "attempt": MAX_ATTEMPTS, "draft": draft}


def create_agents() -> list[Agent]:
    """The Writer and the Critic, on one Chat Completions client (``OPENAI_API_KEY``)."""
    client = OpenAIChatCompletionClient(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    return [Agent(client=client, name=WRITER, instructions=WRITER_INSTRUCTIONS),
            Agent(client=client, name=CRITIC, instructions=CRITIC_INSTRUCTIONS)]


def build_worker(worker: TaskHubGrpcWorker | None = None) -> DurableAIAgentWorker:
    """``worker`` (a plain ``TaskHubGrpcWorker`` by default) with the orchestration, the
    activity and the two agents registered, wrapped as a ``DurableAIAgentWorker``."""
    worker = worker or TaskHubGrpcWorker()
    worker.add_orchestrator(review_post)
    worker.add_activity(publish)
    agent_worker = DurableAIAgentWorker(worker)
    for agent in create_agents():
        agent_worker.add_agent(agent)
    return agent_worker


def main() -> None:
    """Serve the task hub until Ctrl+C, as the samples' workers do."""
    from durabletask.azuremanaged.worker import DurableTaskSchedulerWorker

    logging.basicConfig(level=logging.INFO)
    endpoint = os.getenv("ENDPOINT", "http://localhost:8080")
    credential = None
    if endpoint != "http://localhost:8080":
        from azure.identity import AzureCliCredential

        credential = AzureCliCredential()
    worker = build_worker(DurableTaskSchedulerWorker(
        host_address=endpoint, secure_channel=endpoint != "http://localhost:8080",
        taskhub=os.getenv("TASKHUB", "default"), token_credential=credential))
    try:
        worker.start()
        logger.info("Worker ready: agents %s. Press Ctrl+C to stop.", worker.registered_agent_names)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        logger.info("Worker shutdown initiated")
    finally:
        worker.stop()


if __name__ == "__main__":
    main()
