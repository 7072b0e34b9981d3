"""Durable agents as MCP tools, driven only over ``sim.http`` as an MCP client drives the host.

The shapes asserted here were read from the Functions MCP extension
(Azure/azure-functions-mcp-extension at cd0d1e8, ``src/Microsoft.Azure.Functions.Extensions.Mcp/``)
and the MCP C# SDK it uses (modelcontextprotocol/csharp-sdk v0.4.0-preview.3); the file and line
of each is in the docstring of :mod:`dafx_testing.functions.mcp`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.functions as func
import pytest

from dafx_testing import DafxError, Simulator
from dafx_testing.functions.http import HttpTestClient
from dafx_testing.functions.mcp import read_sse

pytestmark = pytest.mark.dafx_app("apps/mcp_app.py")

MCP = "/runtime/webhooks/mcp"
ACCEPT = {"Accept": "application/json, text/event-stream"}   # what MCP Inspector sends
HELLO = {"protocolVersion": "2025-03-26", "capabilities": {},
         "clientInfo": {"name": "inspector", "version": "0.16"}}
QUERY_SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "The query to send to the agent."},
        "sessionId": {"type": "string",
                      "description": "Optional session identifier for conversation continuity."},
    },
    "required": ["query"],
}


@pytest.fixture
def sim(dafx, fake_llm):
    for name in ("Librarian", "Scout", "Clerk"):
        fake_llm.agent(name).respond_with(
            lambda request, name=name: f"{name} on {request.last_user_message}")
    return dafx


def rpc(http: HttpTestClient, method: str, params: Any = None, *, id: int | None = 1,
        session: str | None = None) -> Any:
    """One JSON-RPC post; the reply parsed from its SSE event (None for a notification)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = id
    if params is not None:
        message["params"] = params
    headers = {**ACCEPT, **({"Mcp-Session-Id": session} if session else {})}
    response = http.post(MCP, json=message, headers=headers)
    if id is None:
        assert response.status_code == 202 and response.get_body() == b"", response
        return None
    assert response.status_code == 200, response
    assert response.headers["Content-Type"] == "text/event-stream"
    reply, = read_sse(response.text)
    return reply


def call(http: HttpTestClient, name: str, **arguments: Any) -> Any:
    return rpc(http, "tools/call", {"name": name, "arguments": arguments})


def test_initialize_answers_a_session_id_and_the_extension_capabilities(sim):
    response = sim.http.post(MCP, headers=ACCEPT, json={"jsonrpc": "2.0", "id": 1,
                                                        "method": "initialize", "params": HELLO})
    client_id, instance_id = response.headers["Mcp-Session-Id"].split("|")
    reply, = read_sse(response.text)
    again = sim.http.post(MCP, headers={**ACCEPT, "Mcp-Session-Id": f"{client_id}|{instance_id}"},
                          json={"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": HELLO})
    newest = rpc(sim.http, "initialize", {**HELLO, "protocolVersion": "2099-01-01"})

    assert len(client_id) == len(instance_id) == 16          # Utility.CreateId, unencrypted locally
    assert reply == {"jsonrpc": "2.0", "id": 1, "result": {
        "protocolVersion": "2025-03-26",
        "capabilities": {"logging": {}, "prompts": {}, "resources": {}, "tools": {}},
        "serverInfo": {"name": "Azure Functions MCP server", "version": "1.0.0"}}}
    assert "Mcp-Session-Id" not in again.headers              # only a new session gets one
    assert newest["result"]["protocolVersion"] == "2025-06-18"   # unsupported: the SDK's latest
    assert rpc(sim.http, "notifications/initialized", id=None) is None
    assert rpc(sim.http, "ping", id=7) == {"jsonrpc": "2.0", "id": 7, "result": {}}


def test_tools_list_lists_exactly_the_mcp_enabled_agents_with_their_schema(sim):
    tools = rpc(sim.http, "tools/list")["result"]["tools"]

    assert tools == [
        {"name": "Librarian", "description": "Finds books.", "inputSchema": QUERY_SCHEMA},
        {"name": "Scout", "description": "Interact with Scout agent", "inputSchema": QUERY_SCHEMA},
    ]                                                     # Clerk opted out
    assert [t.function.name for t in sim.http.mcp.tools] == ["mcptool-Librarian", "mcptool-Scout"]
    assert sim.http.post("/api/agents/Clerk/run", json={"message": "hi"}).status_code == 200


def test_a_call_answers_through_the_model_and_the_next_in_its_session_sees_it(sim, fake_llm):
    first = sim.http.post(MCP, headers=ACCEPT, json={
        "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "librarian", "arguments": {"query": "tides", "sessionId": "s1"}}})
    second = call(sim.http, "Librarian", query="and moons?", sessionId="s1")

    assert first.served_by == "mcptool-Librarian"
    assert read_sse(first.text) == [{"jsonrpc": "2.0", "id": 5, "result": {
        "content": [{"type": "text", "text": "Librarian on tides"}]}}]
    assert second["result"]["content"][0]["text"] == "Librarian on and moons?"
    fake_llm.last_request.assert_conversation("tides", ("assistant", "Librarian on tides"),
                                              "and moons?")
    assert sim.agent_session("Librarian", "s1").user_messages == ["tides", "and moons?"]


def test_without_a_session_id_each_call_is_a_new_conversation(sim):
    call(sim.http, "Scout", query="north")
    call(sim.http, "Scout", query="south")

    sessions = sim.agent_sessions("Scout")
    assert [s.user_messages for s in sessions] == [["north"], ["south"]]


def test_protocol_errors_are_the_hosts_json_rpc_errors(sim):
    unknown = call(sim.http, "Nobody", query="hi")
    no_query = call(sim.http, "Librarian", sessionId="s1")
    no_method = rpc(sim.http, "sampling/createMessage", {})

    assert unknown == {"jsonrpc": "2.0", "id": 1,
                       "error": {"code": -32602, "message": "Unknown tool: 'Nobody'"}}
    assert no_query["error"] == {"code": -32602, "message": "One or more required tool "
                                 "properties are missing values. Please provide: query"}
    assert no_method["error"] == {"code": -32601,
                                  "message": "Method 'sampling/createMessage' is not available."}
    assert rpc(sim.http, "tools/call", {"arguments": {}})["error"] == {
        "code": -32603, "message": "An error occurred."}       # "name" is required


def test_transport_errors_are_the_extensions(sim):
    no_accept = sim.http.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    bad_state = sim.http.post(MCP, headers={**ACCEPT, "Mcp-Session-Id": "nope"},
                              json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    wildcard = sim.http.post(MCP, headers={"Accept": "*/*"},
                             json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})

    assert no_accept.status_code == 406
    assert no_accept.json()["error"] == {"code": -32000, "message": "Not Acceptable: Client must "
                                         "accept both application/json and text/event-stream"}
    assert (bad_state.status_code, bad_state.json()["error"]["message"]) == (
        400, "Invalid client state.")
    assert wildcard.status_code == 200
    assert sim.http.get(MCP, headers=ACCEPT).status_code == 405   # stateless: no GET stream
    with pytest.raises(DafxError, match="not a known JSON content type"):
        sim.http.post(MCP, headers=ACCEPT, data="{}")


def test_the_legacy_sse_transport(sim):
    opened = sim.http.get(f"{MCP}/sse")
    stream = opened.stream
    endpoint = f"{MCP}/{stream.endpoint}"
    accepted = sim.http.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                             "params": HELLO})
    sim.http.post(endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    answered = sim.http.post(endpoint, json={
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "Scout", "arguments": {"query": "east"}}})
    stream.close()
    gone = sim.http.post(endpoint, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"})

    assert opened.headers["Content-Type"] == "text/event-stream"
    assert opened.text.startswith("event: endpoint\ndata: message?azmcpcs=")
    assert (accepted.status_code, accepted.text, answered.served_by) == (
        202, "Accepted", "mcptool-Scout")
    init, reply = stream.messages()
    assert init["result"]["serverInfo"]["name"] == "Azure Functions MCP server"
    assert reply["result"]["content"] == [{"type": "text", "text": "Scout on east"}]
    assert gone.status_code == 400 and "No active session for client" in gone.json()
    assert sim.http.post(f"{MCP}/message", json={}).json() == (
        "Missing service context. Please connect to the /sse endpoint to initiate your session.")


# --- a plain mcpToolTrigger function: what it receives, and what a failure becomes ---


def echo_app() -> func.FunctionApp:
    app = func.FunctionApp()
    properties = json.dumps([{"propertyName": "tags", "propertyType": "string", "isArray": True,
                              "description": "Tags.", "isRequired": False}])

    @app.mcp_tool_trigger(arg_name="context", tool_name="echo", description="Echoes.",
                          tool_properties=properties)
    def echo(context: str) -> str:
        return context

    @app.mcp_tool_trigger(arg_name="context", tool_name="broken", tool_properties="[]")
    def broken(context: str) -> str:
        raise RuntimeError("boom")

    return app


def test_the_function_gets_the_tool_invocation_context_as_json():
    http = HttpTestClient(Simulator(echo_app()))
    session = "abcdefghijklmnop|qrstuvwxyz012345"
    reply = rpc(http, "tools/call", {"name": "ECHO", "arguments": {"tags": ["a"]}},
                session=session)
    tools = rpc(http, "tools/list")["result"]["tools"]

    context = json.loads(reply["result"]["content"][0]["text"])
    assert context == {"name": "ECHO", "arguments": {"tags": ["a"]}, "sessionid": session,
                       "transport": {"name": "http-streamable", "sessionId": session,
                                     "properties": {"headers": {
                                         **ACCEPT, "Mcp-Session-Id": session,
                                         "Content-Type": "application/json"}}}}
    assert tools[0]["inputSchema"] == {
        "type": "object", "required": [],
        "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                "description": "Tags."}}}
    assert "description" not in tools[1]


def test_a_failing_tool_raises_by_default_and_is_an_error_result_like_on_the_host():
    sim = Simulator(echo_app())
    with pytest.raises(RuntimeError, match="boom"):
        call(HttpTestClient(sim), "broken")

    reply = call(HttpTestClient(sim, raise_server_exceptions=False), "broken")

    assert reply["result"] == {"content": [{"type": "text",
                                            "text": "An error occurred invoking 'broken'."}],
                               "isError": True}


def test_the_mcp_packages_client_over_sim_http(sim):
    import httpx2  # the mcp package's HTTP client (the test extra has both)
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    def route(request: Any) -> Any:
        answer = sim.http.request(request.method, request.url.raw_path.decode(),
                                  data=request.content, headers=dict(request.headers))
        return httpx2.Response(answer.status_code, headers=dict(answer.headers.items()),
                               content=answer.get_body())

    async def session() -> Any:
        transport = httpx2.MockTransport(route)
        async with httpx2.AsyncClient(transport=transport) as http, \
                streamable_http_client(f"http://localhost:7071{MCP}", http_client=http) as (
                    read, write), ClientSession(read, write) as client:
            await client.initialize()
            listed = await client.list_tools()
            return listed, await client.call_tool("Librarian", {"query": "rain"})

    listed, result = asyncio.run(session())

    assert [tool.name for tool in listed.tools] == ["Librarian", "Scout"]
    assert result.content[0].text == "Librarian on rain" and not result.is_error
