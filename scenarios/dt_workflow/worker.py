"""A support-ticket workflow hosted on a Durable Task SDK worker by ``configure_workflow``.

The ``ticket_reply`` workflow (Agent Framework ``WorkflowBuilder``):

* ``intake`` (a plain executor, the start) receives a :class:`Ticket`, keeps it
  in the workflow's shared state and routes it: an outage goes to ``page_oncall``
  as an :class:`Escalation`, anything else to the ``Responder`` agent as a prompt;
* ``Responder`` (an agent executor) drafts the reply;
* ``signoff`` (a plain executor) signs the draft and yields a :class:`Reply`;
* ``page_oncall`` (a plain executor) yields a :class:`Reply` without asking the model.

``DurableAIAgentWorker.configure_workflow`` turns that into durable primitives:
the ``dafx-ticket_reply`` orchestration, the ``dafx-ticket_reply-Responder``
agent entity (one conversation per run, keyed by the instance id) and an activity
per plain executor (``dafx-ticket_reply-intake``, ``-signoff``, ``-page_oncall``).

The messages between executors and the workflow's outputs are pickled by the
framework and their classes found again by module name, so the workflow must be
built from this module under its own name, ``scenarios.dt_workflow.worker``, never
from a copy running as ``__main__`` (its classes would be written as
``__main__:Reply``, which no client process can read back). Run as a program, the
module therefore hands over to its named import. ``main()`` serves a Durable Task
Scheduler (the emulator on ``localhost:8080`` by default) with ``OPENAI_API_KEY``
set; from the repository root::

    python -m scenarios.dt_workflow.worker
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from agent_framework import (
    Agent,
    AgentExecutorResponse,
    Case,
    Default,
    Executor,
    Workflow,
    WorkflowBuilder,
    WorkflowContext,
    executor,
    handler,
)
from agent_framework.openai import OpenAIChatCompletionClient
from agent_framework_durabletask import DurableAIAgentWorker
from durabletask.worker import TaskHubGrpcWorker

logger = logging.getLogger(__name__)

WORKFLOW_NAME = "ticket_reply"
RESPONDER = "Responder"
RESPONDER_INSTRUCTIONS = "You answer customer support tickets in two friendly sentences."
URGENT_WORDS = ("outage", "down")


@dataclass
class Ticket:
    """What a customer sent: the workflow's input (a JSON object on the wire)."""

    customer: str
    text: str


@dataclass
class Escalation:
    """An urgent ticket, on its way to the on-call engineer."""

    customer: str
    text: str


@dataclass
class Reply:
    """The workflow's output: who answered the ticket, and how."""

    customer: str
    route: str
    text: str


class Intake(Executor):
    """Keeps the ticket in shared state; pages on-call for outages, else asks the Responder."""

    @handler
    async def triage(self, ticket: Ticket, ctx: WorkflowContext[str | Escalation]) -> None:
        ctx.set_state("ticket", ticket)
        if any(word in ticket.text.lower() for word in URGENT_WORDS):
            await ctx.send_message(Escalation(customer=ticket.customer, text=ticket.text))
        else:
            await ctx.send_message(f"Ticket from {ticket.customer}: {ticket.text}")


@executor(id="signoff")
async def signoff(response: AgentExecutorResponse, ctx: WorkflowContext[None, Reply]) -> None:
    """Sign the Responder's draft for the customer kept in shared state."""
    ticket: Ticket = ctx.get_state("ticket")
    text = f"{response.agent_response.text.strip()}\n-- The support team"
    await ctx.yield_output(Reply(customer=ticket.customer, route="agent", text=text))


@executor(id="page_oncall")
async def page_oncall(escalation: Escalation, ctx: WorkflowContext[None, Reply]) -> None:
    """Hand an outage to a person at once: no model call."""
    await ctx.yield_output(Reply(customer=escalation.customer, route="on-call",
                                 text=f"We are on it, {escalation.customer}: an engineer has been paged."))


def is_escalation(message: object) -> bool:
    return isinstance(message, Escalation)


def create_workflow() -> Workflow:
    """The ``ticket_reply`` workflow, its Responder on a Chat Completions client."""
    client = OpenAIChatCompletionClient(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    responder = Agent(client=client, name=RESPONDER, instructions=RESPONDER_INSTRUCTIONS)
    intake = Intake(id="intake")
    return (WorkflowBuilder(name=WORKFLOW_NAME, start_executor=intake)
            .add_switch_case_edge_group(intake, [Case(condition=is_escalation, target=page_oncall),
                                                 Default(target=responder)])
            .add_edge(responder, signoff)
            .build())


def build_worker(worker: TaskHubGrpcWorker | None = None) -> DurableAIAgentWorker:
    """``worker`` (a plain ``TaskHubGrpcWorker`` by default) hosting the workflow."""
    agent_worker = DurableAIAgentWorker(worker or TaskHubGrpcWorker())
    agent_worker.configure_workflow(create_workflow())
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
        logger.info("Worker ready: workflows %s. Press Ctrl+C to stop.", worker.registered_workflow_names)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        logger.info("Worker shutdown initiated")
    finally:
        worker.stop()


if __name__ == "__main__":
    # Build the workflow from the module under its own name, not from this __main__ copy.
    from scenarios.dt_workflow.worker import main as named_main

    named_main()
