"""An entity that keeps a model error in its state, for the fault sweep's locked-entity check.

``Drafts`` asks the Writer (the openai client, no client retries) on its ``draft`` operation
and keeps each draft. On a model error it keeps the error itself, to show it later: the
exception does not serialize, so the whole batch fails (the Python SDK's
``EntityState.to_json_string``), nothing commits and the host puts the operation back in the
entity's queue, to be retried when the next message arrives, which never comes. The entity is
left locked (tests/test_fault_sweep.py).

* ``draft_later``: signals ``draft`` and completes at once with "queued": its output is the
  baseline's whatever the model did, and no instance waits for the entity.
* ``draft_and_read``: calls ``draft``, then reads the drafts: a fault leaves it waiting for a
  reply that never comes.
* ``safe_draft_later``: the same signal to ``SafeDrafts``, which keeps the error's text: the
  batch commits and nothing is left locked.
* ``poison``, an operation of either entity, stores what does not serialize whatever the
  model does: a scenario that signals it leaves the entity locked in the baseline too.
"""

import functools

import azure.durable_functions as df
import openai

app = df.DFApp()

DRAFTS = df.EntityId("Drafts", "tides")
SAFE_DRAFTS = df.EntityId("SafeDrafts", "tides")


@functools.cache
def _client() -> openai.OpenAI:
    """One client for every call (each new one loads an SSL context: about 20 ms);
    max_retries=0: the retries are the orchestration's."""
    return openai.OpenAI(max_retries=0)


def _ask(topic: str) -> str:
    answer = _client().chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "You are the Writer. Draft one sentence."},
        {"role": "user", "content": topic}])
    return answer.choices[0].message.content or ""


def _drafts(context: df.DurableEntityContext, keep_error) -> None:
    state = context.get_state(lambda: {"drafts": []})
    if context.operation_name == "draft":
        try:
            state["drafts"].append(_ask(context.get_input()))
        except openai.OpenAIError as error:
            state["error"] = keep_error(error)
    elif context.operation_name == "poison":
        state["poison"] = object()
    context.set_result(state.get("drafts"))
    context.set_state(state)


@app.entity_trigger(context_name="context")
def Drafts(context: df.DurableEntityContext):
    _drafts(context, lambda error: error)          # the exception object: it does not serialize


@app.entity_trigger(context_name="context")
def SafeDrafts(context: df.DurableEntityContext):
    _drafts(context, str)


@app.orchestration_trigger(context_name="context")
def draft_later(context: df.DurableOrchestrationContext):
    context.signal_entity(DRAFTS, "draft", context.get_input())
    return "queued"


@app.orchestration_trigger(context_name="context")
def safe_draft_later(context: df.DurableOrchestrationContext):
    context.signal_entity(SAFE_DRAFTS, "draft", context.get_input())
    return "queued"


@app.orchestration_trigger(context_name="context")
def draft_and_read(context: df.DurableOrchestrationContext):
    yield context.call_entity(DRAFTS, "draft", context.get_input())
    return (yield context.call_entity(DRAFTS, "read"))
