"""A durabletask worker whose critical section outlives a model fault, for the fault sweep's
locked-entity check (tests/test_fault_sweep.py).

``record_draft`` locks the ``ledger`` entity, asks the Writer in an activity (the openai
client, no client retries) and adds the draft to the ledger. When the model fails, it waits
for a ``retry`` event inside the critical section, which nobody sends: the instance is stuck,
and the ledger stays locked by it, so any other operation on the ledger waits for good.
``record_draft_outside`` waits for the same event after the section ends: the lock is released.
"""

from __future__ import annotations

import functools
from typing import Any

import openai
from durabletask import entities, task
from durabletask.worker import TaskHubGrpcWorker

LEDGER = entities.EntityInstanceId("ledger", "drafts")


@functools.cache
def _client() -> openai.OpenAI:
    """One client for every call (each new one loads an SSL context: about 20 ms);
    max_retries=0: the retries are the orchestration's."""
    return openai.OpenAI(max_retries=0)


def ask_writer(ctx: task.ActivityContext, topic: str) -> str:
    answer = _client().chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "You are the Writer. Draft one sentence."},
        {"role": "user", "content": topic}])
    return answer.choices[0].message.content or ""


def ledger(ctx: entities.EntityContext, value: Any) -> Any:
    drafts = ctx.get_state(list, [])
    if ctx.operation == "add":
        drafts.append(value)
        ctx.set_state(drafts)
    return drafts


def record_draft(ctx: task.OrchestrationContext, topic: str):
    lock = yield ctx.lock_entities([LEDGER])
    with lock:
        try:
            draft = yield ctx.call_activity(ask_writer, input=topic)
        except task.TaskFailedError:
            draft = yield ctx.wait_for_external_event("retry")   # inside the section: still locked
        yield ctx.call_entity(LEDGER, "add", draft)
    return draft


def record_draft_outside(ctx: task.OrchestrationContext, topic: str):
    lock = yield ctx.lock_entities([LEDGER])
    with lock:
        try:
            draft = yield ctx.call_activity(ask_writer, input=topic)
        except task.TaskFailedError:
            draft = None
        if draft is not None:
            yield ctx.call_entity(LEDGER, "add", draft)
    if draft is None:
        draft = yield ctx.wait_for_external_event("retry")      # the lock is released by now
    return draft


def build_worker() -> TaskHubGrpcWorker:
    worker = TaskHubGrpcWorker()
    worker.add_orchestrator(record_draft)
    worker.add_orchestrator(record_draft_outside)
    worker.add_activity(ask_writer)
    worker.add_entity(ledger)
    return worker
