"""The Functions MCP extension's endpoint, in memory: ``/runtime/webhooks/mcp``.

Functions with an ``mcpToolTrigger`` binding (``AgentFunctionApp(...,
enable_mcp_tool_trigger=True)`` registers one per agent, ``mcptool-{name}``) are
MCP tools. The host serves them as the extension does, so an MCP client (MCP
Inspector, the ``mcp`` package) can list and call them over ``sim.http``::

    accept = {"Accept": "application/json, text/event-stream"}
    hello = sim.http.post("/runtime/webhooks/mcp", headers=accept, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {...}})
    session = {**accept, "Mcp-Session-Id": hello.headers["Mcp-Session-Id"]}
    answer = sim.http.post("/runtime/webhooks/mcp", headers=session, json={
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "StockAdvisor", "arguments": {"query": "MSFT?"}}})
    read_sse(answer.text)   # [{"result": {"content": [{"type": "text", ...}]}, "id": 2, ...}]

What is reproduced, and where it was read (EXT is Azure/azure-functions-mcp-extension
at cd0d1e8, ``src/Microsoft.Azure.Functions.Extensions.Mcp/``; SDK is the MCP C# SDK
it references, modelcontextprotocol/csharp-sdk ``v0.4.0-preview.3``
(EXT ``Extensions.Mcp.csproj``:20), ``src/ModelContextProtocol.Core/``):

* Streamable HTTP is **stateless**: every POST gets a fresh server
  (EXT ``Http/StreamableHttpRequestHandler.cs``:109-200). Only POST (else 405, :33-40);
  ``Accept`` must cover both ``application/json`` and ``text/event-stream``
  (else 406 with a JSON-RPC error -32000, :91-107; ``*/*`` matches, per ASP.NET's
  ``MediaTypeHeaderValue.MatchesMediaType``). An ``initialize`` without
  ``Mcp-Session-Id`` answers one, ``{16 chars}|{instance id}`` (:139-152;
  ``Utility.cs``:20-38; plain, not encrypted, under Core Tools:
  ``ClientStateManager.cs``:23-34); a header that is not two ``|`` parts is a 400
  "Invalid client state." (:120-125). A request's answer is one SSE event
  (``event: message``, SDK ``Server/SseWriter.cs``:63-64) with the SSE headers of
  EXT ``Http/McpHttpUtility.cs``:34-43; a notification gets 202 and no body (:73-77).
* ``initialize``: ``serverInfo`` "Azure Functions MCP server" 1.0.0 and the
  capabilities the extension configures (EXT ``Configuration/McpOptions.cs``:25-30,
  ``Configuration/FunctionsMcpServerOptionsSetup.cs``:18-31) plus ``logging``, which
  the SDK always adds (SDK ``Server/McpServerImpl.cs``:631); the client's
  ``protocolVersion`` if the SDK supports it, else its latest (McpServerImpl.cs:206-212,
  ``McpSessionHandler.cs``:32-40).
* ``tools/list``: one entry per trigger, ``name``/``description``/``inputSchema``
  built from ``toolProperties`` as EXT ``ToolInputSchema/PropertyBasedToolInputSchema.cs``:48-113
  builds it (``required`` always present), ``_meta`` from ``metadata``
  (``DefaultToolRegistry.cs``:35-50).
* ``tools/call``: an unknown tool (names compare case-insensitively,
  ``DefaultToolRegistry.cs``:12) is JSON-RPC error -32602 "Unknown tool: 'X'"
  (``McpWebJobsBuilderExtensions.cs``:66-77); a missing required argument is -32602
  "One or more required tool properties are missing values. Please provide: ..."
  (``ToolInputSchema/ToolInputSchema.cs``:20-72). The function gets the
  ToolInvocationContext as a JSON string (``Trigger/McpToolTriggerBinding.cs``:58-64,
  95-109; ``Abstractions/ToolInvocationContext.cs``: ``name``, ``arguments``,
  ``sessionid``, ``clientinfo``, ``transport``; ``Abstractions/Transport.cs``;
  ``Trigger/McpTriggerTransportHelper.cs``:10-37: ``sessionid`` is the request's
  ``Mcp-Session-Id`` header as sent). Its return value, as the Python worker
  encodes it (``azure.functions.mcp._MCPToolTriggerConverter.encode``), becomes one
  text block (``Trigger/SimpleToolReturnValueBinder.cs``:13-27) or, with
  ``useResultSchema``, the result it describes (``Trigger/ToolReturnValueBinder.cs``:17-65).
  A function that raises gives ``isError: true`` and "An error occurred invoking
  'X'." (McpServerImpl.cs:585-598) when the client is built with
  ``raise_server_exceptions=False``; by default the exception propagates, as for
  HTTP functions.
* Other methods: ``ping``, ``logging/setLevel``, empty ``resources/list``,
  ``resources/templates/list``, ``prompts/list``; anything else is -32601
  "Method 'X' is not available." (``McpSessionHandler.cs``:345). Errors a handler
  throws that are not MCP errors are -32603 "An error occurred." (:184-200).
* The legacy SSE transport (EXT ``Http/SseRequestHandler.cs``): ``GET .../sse``
  opens a stream whose first event is ``endpoint`` (``message?azmcpcs={client}|{instance}``,
  relative, :145-168); each ``POST .../message?azmcpcs=...`` answers 202 "Accepted" and
  its reply is written to that stream (:96-143). Here the GET returns at once with the
  events so far; ``response.stream`` (:class:`SseStream`) reads the ones that follow.

Not simulated: the server's 25-second pings on SSE streams, ``host.json``'s
``extensions.mcp`` options (server name, instructions), resources and prompts
triggers, ``useWorkerInputSchema`` tools, and the exact bytes of System.Text.Json
(key order and escaping differ; the JSON is the same).
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.functions.mcp import _MCPToolTriggerConverter

from ..core.errors import DafxError
from .app import FunctionInfo, unbound_parameters

__all__ = ["MCP_PATH", "MCP_TOOL_TRIGGER", "McpEndpoint", "McpTool", "SseStream", "read_sse"]

MCP_PATH = "/runtime/webhooks/mcp"
MCP_TOOL_TRIGGER = "mcpToolTrigger"

SERVER_INFO = {"name": "Azure Functions MCP server", "version": "1.0.0"}
CAPABILITIES: dict[str, dict[str, Any]] = {"logging": {}, "prompts": {}, "resources": {},
                                           "tools": {}}
LATEST_PROTOCOL_VERSION = "2025-06-18"
SUPPORTED_PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", LATEST_PROTOCOL_VERSION)

# McpErrorCode.cs; -32000 is what StreamableHttpRequestHandler writes for transport errors.
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
TRANSPORT_ERROR = -32000

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache,no-store",
                "Connection": "keep-alive", "Content-Encoding": "identity"}
_JSON = "application/json; charset=utf-8"
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_SSE_HINT = " Please connect to the /sse endpoint to initiate your session."


class _ProtocolError(Exception):
    """An McpProtocolException: answered as a JSON-RPC error with this code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad_params() -> _ProtocolError:
    """Params the SDK cannot deserialize: a JsonException, answered as any non-MCP error."""
    return _ProtocolError(INTERNAL_ERROR, "An error occurred.")


class _Unhandled(Exception):
    """What the extension does not catch: the host fails the request (a 500)."""


@dataclass(frozen=True)
class McpTool:
    """One ``mcpToolTrigger`` function as the extension registers it.

    Attributes:
        name: the tool name clients call (``toolName``).
        description: ``description``, or None.
        input_schema: the JSON schema ``tools/list`` shows.
        required: the arguments the extension insists on before calling.
        function: the function that runs.
        use_result_schema: the function returns a described result, not text.
        meta: ``_meta`` from the binding's ``metadata``, or None.
    """

    name: str
    description: str | None
    input_schema: dict[str, Any]
    required: tuple[str, ...]
    function: FunctionInfo
    use_result_schema: bool = False
    meta: dict[str, Any] | None = None

    def listing(self) -> dict[str, Any]:
        """The ``tools/list`` entry (``Tool`` of the SDK, nulls left out)."""
        entry: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            entry["description"] = self.description
        entry["inputSchema"] = self.input_schema
        if self.meta:
            entry["_meta"] = self.meta
        return entry


def mcp_tools(index: Any) -> list[McpTool]:
    """The app's MCP tools, in the app's order, from their trigger bindings.

    Raises :class:`DafxError` where the host would refuse to start them: two tools with
    one name (``DefaultToolRegistry.cs``:14-22) or ``toolProperties`` that are not a
    JSON list.
    """
    tools: dict[str, McpTool] = {}
    for info in index.functions:
        if info.kind != MCP_TOOL_TRIGGER:
            continue
        tool = _tool(info, _trigger_binding(index.app, info))
        if tool.name.lower() in tools:
            raise DafxError(
                f"functions {tools[tool.name.lower()].function.name!r} and {info.name!r} both "
                f"register the MCP tool {tool.name!r}; the extension refuses the second (\"Tool "
                f"with name '{tool.name}' is already registered.\"). Give each a distinct toolName")
        tools[tool.name.lower()] = tool
    return list(tools.values())


def _trigger_binding(app: Any, info: FunctionInfo) -> dict[str, Any]:
    """The trigger binding's JSON, as the worker reports it to the host."""
    for builder in getattr(app, "_function_builders", ()):
        function = builder._function            # built and validated when the app was indexed
        if function.get_function_name() == info.name:
            return dict(function.get_trigger().get_dict_repr())
    folder, sources = getattr(app, "folder", None), getattr(app, "sources", {})
    if folder is not None and info.name in sources:          # a classic app: its function.json
        bindings = json.loads((folder / sources[info.name]).read_text(encoding="utf-8"))
        for binding in bindings.get("bindings", []):
            if str(binding.get("type", "")).lower() == MCP_TOOL_TRIGGER.lower():
                return dict(binding)
    raise DafxError(f"cannot find the mcpToolTrigger binding of function {info.name!r}")


def _tool(info: FunctionInfo, binding: dict[str, Any]) -> McpTool:
    name = binding.get("toolName")
    if not isinstance(name, str) or not name:
        raise DafxError(f"MCP tool function {info.name!r} has no toolName in its mcpToolTrigger "
                        "binding; the extension needs one (tool_name=...)")
    if binding.get("useWorkerInputSchema"):
        raise DafxError(f"MCP tool {name!r} sets useWorkerInputSchema; dafx-testing builds "
                        "input schemas from toolProperties only")
    properties = _tool_properties(name, binding.get("toolProperties"))
    schema_properties: dict[str, Any] = {}
    for prop in properties:
        prop_name = prop.get("propertyName")
        if not isinstance(prop_name, str) or not prop_name.strip():
            continue
        typed: dict[str, Any] = {"type": prop.get("propertyType")}
        if prop.get("enumValues"):
            typed["enum"] = list(prop["enumValues"])
        schema = {"type": "array", "items": typed} if prop.get("isArray") else dict(typed)
        schema["description"] = prop.get("description") or ""
        schema_properties[prop_name] = schema
    required = tuple(dict.fromkeys(
        p["propertyName"] for p in properties
        if p.get("isRequired") and isinstance(p.get("propertyName"), str)
        and p["propertyName"].strip()))
    meta = None
    if binding.get("metadata"):
        meta = json.loads(binding["metadata"])
        if not isinstance(meta, dict):
            raise DafxError(f"MCP tool {name!r} has metadata that is not a JSON object; the "
                            "extension fails to start it (\"Metadata root must be a JSON object\")")
    return McpTool(name=name, description=binding.get("description"),
                   input_schema={"type": "object", "properties": schema_properties,
                                 "required": list(required)},
                   required=required, function=info,
                   use_result_schema=bool(binding.get("useResultSchema")), meta=meta or None)


def _tool_properties(name: str, raw: Any) -> list[dict[str, Any]]:
    if raw is None or raw == "":
        return []
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise DafxError(f"MCP tool {name!r} has toolProperties that are not JSON ({exc}); the "
                        "extension expects a JSON list of {propertyName, propertyType, ...}") from None
    if not isinstance(parsed, list) or not all(isinstance(p, dict) for p in parsed):
        raise DafxError(f"MCP tool {name!r} has toolProperties {raw!r}; the extension expects a "
                        "JSON list of objects {propertyName, propertyType, description, "
                        "isRequired, isArray}")
    # McpJsonSerializerOptions reads property names case-insensitively.
    return [{_PROPERTY_KEYS.get(k.lower(), k): v for k, v in p.items()} for p in parsed]


_PROPERTY_KEYS = {k.lower(): k for k in ("propertyName", "propertyType", "description",
                                         "isRequired", "isArray", "enumValues")}


# --- SSE ---------------------------------------------------------------------------------


def sse_event(data: str, event: str = "message") -> str:
    """One SSE event as ``SseFormatter`` writes it."""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n"


def read_sse(text: str) -> list[Any]:
    """The JSON-RPC messages in an SSE body (``message`` events), parsed.

    Example::

        reply, = read_sse(sim.http.post("/runtime/webhooks/mcp", ...).text)
        reply["result"]["content"][0]["text"]
    """
    return [json.loads(data) for event, data in _events(text) if event == "message"]


def _events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((event, "\n".join(data)))
    return events


@dataclass
class SseStream:
    """A legacy SSE connection (``GET /runtime/webhooks/mcp/sse``) as the client reads it.

    The simulated GET returns at once; the server keeps writing here. ``text`` is
    everything written so far, :meth:`messages` the JSON-RPC messages in it, and
    :meth:`close` disconnects (later posts to its message endpoint get the host's
    "No active session" 400).
    """

    text: str = ""
    closed: bool = False

    def events(self) -> list[tuple[str, str]]:
        """``(event type, data)`` of every event so far, in order."""
        return _events(self.text)

    def messages(self) -> list[Any]:
        """The JSON-RPC messages written so far (the ``message`` events), parsed."""
        return read_sse(self.text)

    @property
    def endpoint(self) -> str:
        """The ``endpoint`` event's data: where to post messages, relative to the SSE URL."""
        return next(data for event, data in self.events() if event == "endpoint")

    def close(self) -> None:
        """Disconnect, as a client closing the stream does."""
        self.closed = True

    def write(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self.text += sse_event(json.dumps(message))


# --- the endpoint ------------------------------------------------------------------------


@dataclass
class McpAnswer:
    """The host's answer to one request on the MCP webhook."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    served_by: str = "mcp"
    stream: SseStream | None = None


@dataclass
class _Session:
    """What one server instance remembers: only an SSE session outlives its request."""

    transport: str
    headers: dict[str, str]
    client_info: Any = None
    stream: SseStream | None = None


class McpEndpoint:
    """The MCP extension's webhook over the app's ``mcpToolTrigger`` functions.

    Args:
        simulator: the simulator whose app is served.
        client_binding: the durable client binding JSON for functions that take one.
        raise_server_exceptions: re-raise a tool function's exception (and a request
            the host would fail with a 500) instead of answering as the host does.
    """

    def __init__(self, simulator: Any, client_binding: Callable[[], str],
                 raise_server_exceptions: bool = True) -> None:
        self.simulator = simulator
        self.client_binding = client_binding
        self.raise_server_exceptions = raise_server_exceptions
        self.tools = mcp_tools(simulator.index)
        self._by_name = {tool.name.lower(): tool for tool in self.tools}
        self._instance_id = self._new_id()          # one per host start
        self._sse_sessions: dict[str, _Session] = {}

    def handle(self, method: str, path: str, query: Mapping[str, str], body: bytes,
               headers: Mapping[str, str]) -> McpAnswer:
        """Answer a request whose decoded path is ``MCP_PATH`` or under it."""
        try:
            tail = path.rstrip("/").lower()
            if tail.endswith("sse"):                        # SseRequestHandler.cs:28-48
                return self._open_sse(method, query, headers)
            if tail.endswith("message"):
                return self._sse_message(query, body, headers)
            return self._streamable(method, body, headers)
        except _Unhandled as exc:
            if self.raise_server_exceptions:
                raise DafxError(f"the MCP extension fails this request (the host answers 500): "
                                f"{exc}") from None
            return McpAnswer(500)

    # -- streamable HTTP (StreamableHttpRequestHandler.cs) --

    def _streamable(self, method: str, body: bytes, headers: Mapping[str, str]) -> McpAnswer:
        if method.upper() != "POST":
            return McpAnswer(405)
        accept = _header(headers, "Accept") or ""
        if not (_accepts(accept, "application", "json")
                and _accepts(accept, "text", "event-stream")):
            return _transport_error(
                406, "Not Acceptable: Client must accept both application/json and "
                "text/event-stream")
        sent_session = _header(headers, "Mcp-Session-Id")
        if sent_session and len([p for p in sent_session.split("|") if p]) != 2:
            return _transport_error(400, "Invalid client state.")
        message = _read_message(body, headers)
        if message is None:
            return _transport_error(
                400, "Bad Request: The POST body did not contain a valid JSON-RPC message.")
        session = _Session("http-streamable", dict(headers))
        answer = McpAnswer(202, headers={k: v for k, v in _SSE_HEADERS.items()
                                         if k != "Content-Type"})
        if "method" not in message or "id" not in message:
            return answer                                   # a notification or a response
        if message["method"] == "initialize" and not sent_session:
            # OnInitRequestReceived reads the params first, outside any handler
            # (StreamableHttpPostTransport.cs:39-43): bad ones fail the request.
            if _initialize_problem(message.get("params")):
                raise _Unhandled(f"initialize params {_initialize_problem(message['params'])}")
            answer.headers["Mcp-Session-Id"] = f"{self._new_id()}|{self._instance_id}"
        reply, answer.served_by = self._dispatch(message, session)
        answer.status, answer.headers = 200, {**_SSE_HEADERS, **answer.headers}
        answer.body = sse_event(json.dumps(reply))
        return answer

    # -- legacy SSE (SseRequestHandler.cs) --

    def _open_sse(self, method: str, query: Mapping[str, str],
                  headers: Mapping[str, str]) -> McpAnswer:
        if method.upper() != "GET":
            return McpAnswer(405)
        client_id = self._new_id()
        endpoint = f"message?azmcpcs={client_id}|{self._instance_id}"
        code = query.get("code") or _header(headers, "x-functions-key")
        if code:
            endpoint += f"&code={code}"
        stream = SseStream(sse_event(endpoint, "endpoint"))
        self._sse_sessions[client_id] = _Session("http-sse", dict(headers), stream=stream)
        return McpAnswer(200, stream.text, dict(_SSE_HEADERS), stream=stream)

    def _sse_message(self, query: Mapping[str, str], body: bytes,
                     headers: Mapping[str, str]) -> McpAnswer:
        state = query.get("azmcpcs")
        if state is None:
            return _bad_request("Missing service context." + _SSE_HINT)
        parts = [p for p in state.split("|") if p]
        if len(parts) != 2:
            return _bad_request("Invalid client state." + _SSE_HINT)
        client_id, instance_id = parts
        message = _read_message(body, headers)
        if message is None:
            return _bad_request("No message in request body.")
        session = self._sse_sessions.get(client_id)
        if session is None or session.stream is None or session.stream.closed:
            if instance_id.lower() == self._instance_id.lower():
                return _bad_request(f"No active session for client '{client_id}' and instance "
                                    f"'{instance_id}'." + _SSE_HINT)
            return McpAnswer(202, "Accepted")   # the host hands it to another instance's queue
        served_by = "mcp"
        if "method" in message and "id" in message:
            reply, served_by = self._dispatch(message, session)
            session.stream.write(reply)
        return McpAnswer(202, "Accepted", served_by=served_by)

    # -- JSON-RPC (McpSessionHandler.cs, McpServerImpl.cs) --

    def _dispatch(self, request: dict[str, Any], session: _Session) -> tuple[dict[str, Any], str]:
        """The response to one request, and the function that served it ("mcp" if none)."""
        served_by = "mcp"
        try:
            method, params = request["method"], request.get("params")
            if method == "initialize":
                result = self._initialize(params, session)
            elif method == "tools/call":
                tool = self._find_tool(params)
                served_by = tool.function.name
                result = self._call(tool, params or {}, session)
            else:
                result = self._simple(method, params)
            return {"result": result, "id": request["id"], "jsonrpc": "2.0"}, served_by
        except _ProtocolError as exc:
            error = {"code": exc.code, "message": exc.message}
        return {"error": error, "id": request["id"], "jsonrpc": "2.0"}, served_by

    def _initialize(self, params: Any, session: _Session) -> dict[str, Any]:
        if _initialize_problem(params):
            raise _bad_params()
        params = params or {}
        session.client_info = params.get("clientInfo")
        asked = params.get("protocolVersion")
        version = asked if asked in SUPPORTED_PROTOCOL_VERSIONS else LATEST_PROTOCOL_VERSION
        return {"protocolVersion": version, "capabilities": json.loads(json.dumps(CAPABILITIES)),
                "serverInfo": dict(SERVER_INFO)}

    def _simple(self, method: str, params: Any) -> dict[str, Any]:
        if method == "tools/list":
            return {"tools": [tool.listing() for tool in self.tools]}
        if method in ("ping", "logging/setLevel", "resources/subscribe",
                      "resources/unsubscribe"):
            return {}
        if method == "resources/list":
            return {"resources": []}
        if method == "resources/templates/list":
            return {"resourceTemplates": []}
        if method == "prompts/list":
            return {"prompts": []}
        if method == "resources/read":
            raise _ProtocolError(INVALID_PARAMS, f"Unknown resource: '{(params or {}).get('uri') or ''}'")
        if method == "prompts/get":
            raise _ProtocolError(INVALID_PARAMS, f"Unknown prompt: '{(params or {}).get('name') or ''}'")
        raise _ProtocolError(METHOD_NOT_FOUND, f"Method '{method}' is not available.")

    def _find_tool(self, params: Any) -> McpTool:
        if params is None:
            raise _ProtocolError(INVALID_PARAMS, "Unknown tool: ''")
        # CallToolRequestParams: "name" is a required string, "arguments" an object.
        if (not isinstance(params, dict) or not isinstance(params.get("name"), str)
                or not isinstance(params.get("arguments", {}), (dict, type(None)))):
            raise _bad_params()
        name = params["name"]
        tool = self._by_name.get(name.lower())
        if tool is None:
            raise _ProtocolError(INVALID_PARAMS, f"Unknown tool: '{name or ''}'")
        return tool

    def _call(self, tool: McpTool, params: dict[str, Any], session: _Session) -> dict[str, Any]:
        arguments = params.get("arguments")
        missing = [name for name in tool.required
                   if not isinstance(arguments, dict) or arguments.get(name) is None]
        if missing:
            raise _ProtocolError(
                INVALID_PARAMS, "One or more required tool properties are missing values. "
                f"Please provide: {', '.join(missing)}")
        transport: dict[str, Any] = {"name": session.transport}
        transport_session = _header(session.headers, "Mcp-Session-Id")
        if transport_session is not None:
            transport["sessionId"] = transport_session
        transport["properties"] = {"headers": dict(session.headers)}
        context: dict[str, Any] = {"name": params["name"]}
        if arguments is not None:
            context["arguments"] = arguments
        if transport_session is not None:      # else the server's, null in both transports
            context["sessionid"] = transport_session
        if session.client_info is not None:
            context["clientinfo"] = session.client_info
        context["transport"] = transport
        try:
            value = self._run(tool.function, json.dumps(context))
        except Exception:
            if self.raise_server_exceptions:
                raise
            return {"content": [{"type": "text",
                                 "text": f"An error occurred invoking '{params['name']}'."}],
                    "isError": True}
        if tool.use_result_schema:
            return _described_result(tool, value)
        return {"content": [{"type": "text", "text": value}]}

    def _run(self, info: FunctionInfo, context: str) -> str:
        """Call the function as the Python worker does; its return value as the host gets it."""
        kwargs: dict[str, Any] = {info.trigger_param: context}
        if info.client_param:
            kwargs[info.client_param] = self.client_binding()
        missing = unbound_parameters(info.user_function, kwargs)
        if missing:
            raise DafxError(
                f"MCP tool function {info.name!r} needs parameter(s) {', '.join(missing)}, which "
                "dafx-testing does not bind (it passes the tool context and the durable client)")
        with self.simulator.host_code():
            outcome = info.handler(**kwargs)
            if inspect.isawaitable(outcome):
                outcome = self.simulator.run_async(outcome)
        datum = _MCPToolTriggerConverter.encode(outcome)     # the worker's own encoding
        if datum.type != "string":
            raise DafxError(f"MCP tool function {info.name!r} returned {type(outcome).__name__}; "
                            "dafx-testing simulates text results only (return a str)")
        return str(datum.value)

    def _new_id(self) -> str:
        """``Utility.CreateId``: 16 of [a-z0-9], drawn from the seeded ids."""
        with self.simulator.host_code():
            number = uuid.uuid4().int
        chars = []
        for _ in range(16):
            number, digit = divmod(number, len(_ID_CHARS))
            chars.append(_ID_CHARS[digit])
        return "".join(chars)


def _described_result(tool: McpTool, value: str) -> dict[str, Any]:
    """``ToolReturnValueBinder``: the function's ``{type, content, structuredContent}``."""
    try:
        described = {k.lower(): v for k, v in json.loads(value).items()}
        kind = described["type"]
        content = json.loads(described["content"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DafxError(f"MCP tool {tool.name!r} uses useResultSchema but returned {value!r}, "
                        "not a JSON McpToolResult {type, content, structuredContent} "
                        f"({exc})") from None
    if str(kind).lower() == "call_tool_result":
        return dict(content)
    blocks = list(content) if str(kind).lower() == "multi_content_result" else [content]
    if not blocks:
        raise DafxError(f"MCP tool {tool.name!r} returned no content items; the extension "
                        "fails the call (\"No content items were produced from the McpToolResult.\")")
    result: dict[str, Any] = {"content": blocks}
    if described.get("structuredcontent"):
        result["structuredContent"] = json.loads(described["structuredcontent"])
    return result


def _initialize_problem(params: Any) -> str | None:
    """Why ``InitializeRequestParams`` would not deserialize (its required members)."""
    if params is None:
        return None
    if not isinstance(params, dict):
        return "are not an object"
    if not isinstance(params.get("protocolVersion"), str):
        return "lack the required string 'protocolVersion'"
    info = params.get("clientInfo")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str)
                                             for k in ("name", "version")):
        return "lack the required 'clientInfo' {name, version}"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _accepts(accept: str, kind: str, subtype: str) -> bool:
    """Whether an ``Accept`` entry matches, wildcards included (``MatchesMediaType``)."""
    for entry in accept.split(","):
        media = entry.split(";")[0].strip().lower()
        if "/" not in media:
            continue
        a, b = media.split("/", 1)
        if a in ("*", kind) and b in ("*", subtype):
            return True
    return False


def _read_message(body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """``ReadFromJsonAsync<JsonRpcMessage>``: None for a JSON ``null``; what it throws, unhandled."""
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise _Unhandled(
            f"Unable to read the request as JSON because the request content type "
            f"'{_header(headers, 'Content-Type') or ''}' is not a known JSON content type. "
            "Send Content-Type: application/json (json=... does)")
    try:
        message = json.loads(body or b"")
    except ValueError as exc:
        raise _Unhandled(f"the body is not JSON ({exc})") from None
    if message is None:
        return None
    problem = _message_problem(message)
    if problem:
        raise _Unhandled(f"the body is not a JSON-RPC 2.0 message: {problem}; send one object "
                         '{"jsonrpc": "2.0", "id": 1, "method": ..., "params": ...} (batches '
                         "are not accepted)")
    return message


def _message_problem(message: Any) -> str | None:
    """Why ``JsonRpcMessage.Converter`` would reject ``message`` (None if it reads it)."""
    if not isinstance(message, dict):
        return f"a JSON {type(message).__name__}, not an object"
    if message.get("jsonrpc") != "2.0":
        return "'jsonrpc' is not \"2.0\""
    if "id" in message and (isinstance(message["id"], bool)
                            or not isinstance(message["id"], (str, int))):
        return f"the id {message['id']!r} is neither a string nor an integer"
    if "method" not in message and "id" not in message:
        return "it has neither 'method' nor 'id'"
    if "method" not in message and "result" not in message and "error" not in message:
        return "a response must have 'result' or 'error'"
    if "method" in message and not isinstance(message["method"], str):
        return "'method' is not a string"
    return None


def _transport_error(status: int, message: str) -> McpAnswer:
    body = {"error": {"code": TRANSPORT_ERROR, "message": message}, "id": "", "jsonrpc": "2.0"}
    return McpAnswer(status, json.dumps(body), {"Content-Type": _JSON})


def _bad_request(message: str) -> McpAnswer:
    """``Results.BadRequest(string)``: the message as a JSON string."""
    return McpAnswer(400, json.dumps(message), {"Content-Type": _JSON})
