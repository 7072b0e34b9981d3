"""A durable workflow with a human in the loop, hosted by ``AgentFunctionApp(workflow=...)``.

The ``slogan`` workflow: the ``Writer`` agent drafts a slogan, ``polish`` (a
plain function executor) tidies it, and ``review`` asks a person to approve it
(``request_info``) before the workflow yields its output. The framework turns
this into Durable Functions: the ``dafx-slogan`` orchestration, the
``dafx-slogan-Writer`` entity (one conversation per run, keyed by the
instance id), activities for ``polish`` and ``review``, and the routes
``POST /api/workflow/slogan/run``, ``GET .../status/{instanceId}`` and
``POST .../respond/{instanceId}/{requestId}``.
"""

from dataclasses import dataclass

from agent_framework import (
    Agent,
    AgentExecutorResponse,
    Executor,
    WorkflowBuilder,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient

writer = Agent(client=OpenAIChatCompletionClient(model="gpt-4o-mini"), name="Writer",
               instructions="You write one-line slogans.")


@executor(id="polish")
async def polish(response: AgentExecutorResponse, ctx: WorkflowContext[str]) -> None:
    """Trim the model's slogan and drop surrounding quotes."""
    await ctx.send_message(response.agent_response.text.strip().strip('"'))


@dataclass
class ReviewRequest:
    """What the reviewer is asked to approve."""

    slogan: str


class Review(Executor):
    """Asks a person; ``"approve"`` publishes the slogan, anything else is the reason to reject."""

    @handler
    async def ask(self, slogan: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(ReviewRequest(slogan=slogan), str)

    @response_handler
    async def decided(self, request: ReviewRequest, verdict: str,
                      ctx: WorkflowContext[None, str]) -> None:
        if verdict == "approve":
            await ctx.yield_output(f"Published: {request.slogan}")
        else:
            await ctx.yield_output(f"Rejected ({verdict}): {request.slogan}")


workflow = (WorkflowBuilder(name="slogan", start_executor=writer)
            .add_edge(writer, polish)
            .add_edge(polish, Review(id="review"))
            .build())

app = AgentFunctionApp(workflow=workflow)
