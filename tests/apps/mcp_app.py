"""Durable agents served as MCP tools: the app-wide switch, and one agent that opts out.

Used by tests/test_mcp.py. ``enable_mcp_tool_trigger=True`` gives every agent an
``mcpToolTrigger`` function (``mcptool-{name}``) unless the agent says otherwise:
Librarian (with a description) and Scout (without, so the framework makes one up)
are MCP tools; Clerk keeps only its HTTP endpoint.
"""

from agent_framework import Agent
from agent_framework.azure import AgentFunctionApp
from agent_framework.openai import OpenAIChatCompletionClient

client = OpenAIChatCompletionClient(model="gpt-4o-mini")

librarian = Agent(client=client, name="Librarian", instructions="You are the Librarian.",
                  description="Finds books.")
scout = Agent(client=client, name="Scout", instructions="You are the Scout.")
clerk = Agent(client=client, name="Clerk", instructions="You are the Clerk.")

app = AgentFunctionApp(enable_mcp_tool_trigger=True)
app.add_agent(librarian)
app.add_agent(scout)
app.add_agent(clerk, enable_mcp_tool_trigger=False)
