"""Several specialist agents orchestrated: chaining, fan-out/fan-in, a branch, a fire-and-forget.

The agents are plain Agent Framework agents on one Chat Completions client;
``AgentFunctionApp`` hosts each as a ``dafx-{name}`` entity. The orchestrations
call them with ``app.get_agent(context, name)``: every ``yield agent.run(...)``
becomes a CallEntity action that the host replays from history, so the
orchestrator code stays deterministic while the model calls happen once, inside
the entities.

- ``write_article``: Researcher -> Writer, the second agent building on the first.
- ``review_article``: Legal and Style review the same text in parallel (``task_all``).
- ``triage_ticket``: the Triage agent answers a ``Triage`` model (structured output);
  a bug goes to Engineer, anything else to Support. The Notifier is told without
  waiting for its reply (``wait_for_response=False``): the call signals its
  entity at once and is *not* yielded. (Yielding it fails the orchestration on
  Azure Functions: its pre-completed task carries a ``NoOpAction`` that the
  SDK cannot serialize.)
"""

from typing import Literal

import azure.durable_functions as df
from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient
from pydantic import BaseModel

client = OpenAIChatCompletionClient(model="gpt-4o-mini")


def _agent(name: str, instructions: str) -> Agent:
    return Agent(client=client, name=name, instructions=instructions)


app = AgentFunctionApp(agents=[
    _agent("Researcher", "You list the key facts about a topic."),
    _agent("Writer", "You write a short article from research notes."),
    _agent("Legal", "You check a text for legal problems."),
    _agent("Style", "You check a text for style problems."),
    _agent("Triage", "You classify support tickets."),
    _agent("Engineer", "You diagnose software bugs."),
    _agent("Support", "You answer customer questions."),
    _agent("Notifier", "You write a one-line notice for the on-call channel."),
])


class Triage(BaseModel):
    """The Triage agent's structured answer."""

    category: Literal["bug", "question"]
    summary: str


@app.orchestration_trigger(context_name="context")
def write_article(context: df.DurableOrchestrationContext):
    topic = context.get_input()
    researcher = app.get_agent(context, "Researcher")
    writer = app.get_agent(context, "Writer")
    notes = yield researcher.run(f"Research: {topic}", session=researcher.create_session())
    article = yield writer.run(f"Write about {topic} from these notes:\n{notes.text}",
                               session=writer.create_session())
    return {"notes": notes.text, "article": article.text}


@app.orchestration_trigger(context_name="context")
def review_article(context: df.DurableOrchestrationContext):
    text = context.get_input()
    reviewers = [app.get_agent(context, name) for name in ("Legal", "Style")]
    reviews = yield context.task_all([
        reviewer.run(f"Review:\n{text}", session=reviewer.create_session()) for reviewer in reviewers
    ])
    return {"legal": reviews[0].text, "style": reviews[1].text}


@app.orchestration_trigger(context_name="context")
def triage_ticket(context: df.DurableOrchestrationContext):
    ticket = context.get_input()
    triage = app.get_agent(context, "Triage")
    verdict = yield triage.run(ticket, session=triage.create_session(),
                               options={"response_format": Triage})
    handler = "Engineer" if verdict.value.category == "bug" else "Support"
    specialist = app.get_agent(context, handler)
    answer = yield specialist.run(f"{verdict.value.summary}\n\nTicket: {ticket}",
                                  session=specialist.create_session())
    notifier = app.get_agent(context, "Notifier")
    notifier.run(f"{handler} took ticket: {verdict.value.summary}",
                 session=notifier.create_session(), options={"wait_for_response": False})
    return {"category": verdict.value.category, "handled_by": handler, "answer": answer.text}
