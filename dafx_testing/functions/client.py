"""The real durable client, in memory.

:class:`InMemoryClient` *is* the SDK's ``DurableOrchestrationClient``: its URL
building, request bodies and response parsing all run unchanged. Only its
three request functions are swapped (the seam of reference §6.3) for an
in-memory transport that hands each request to :class:`ManagementApi`, a
re-implementation of the Durable extension's ``HttpApiHandler`` over the
simulator: same routes, same status codes, same JSON. So a test sees what the
SDK does with the host's answers, quirks included::

    client = InMemoryClient(sim)                 # or sim.client
    iid = await client.start_new("approval", client_input={"doc": 1})
    status = await client.get_status(iid)        # a DurableOrchestrationStatus
    status.runtime_status                        # OrchestrationRuntimeStatus.Running
    status.input_                                # '{"doc": 1}' -- a str: the SDK double-encodes
    await client.get_status("nope")              # falsy status: the host's 404 has no body

Timing, as the host would have it: a request only enqueues work, but every
request first lets the simulator finish what it had already accepted
(``run_until_idle``), so a status read observes the instance's progress.
Polling sleeps (``wait_for_completion_or_create_check_status_response``) run
on a :class:`~dafx_testing.core.virtual_loop.VirtualTimeLoop`, so they move the
*virtual* clock instead of sleeping: a 10-second wait costs no real time,
timers due within it fire, and the SDK's timeout is measured in virtual time.

HTTP functions that take ``durable_client_input`` build their client inside
the SDK's middleware from the binding JSON, so the request functions cannot be
set per instance there; for them the module globals of
``azure.durable_functions.models.DurableOrchestrationClient`` are replaced,
once, by dispatchers that serve this module's in-memory hosts (addressed by
their ``rpcBaseUrl``) and pass every other URL to the original functions.
Code that is not talking to a simulator sees no difference.
"""

from __future__ import annotations

import importlib
import itertools
import json
import unicodedata
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus

import yarl
from azure.durable_functions import DurableOrchestrationClient

from ..core.errors import DafxError, InstanceNotFoundError
from ..core.history import EventType, OrchestrationStatus
from ..core.payloads import decode_input, decode_json
from .app import ENTITY, ORCHESTRATOR

__all__ = ["InMemoryClient", "ManagementApi", "ApiResponse", "DEFAULT_ORIGIN", "WEBHOOK_PATH",
           "instance_id_error", "already_exists_message", "REWIND_NOT_FAILED"]

DEFAULT_ORIGIN = "http://localhost:7071"
"""Where ``func start`` serves the app; management URLs point here."""

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
"""The extension's webhook path, under which the management URLs live."""

TASK_HUB = "TestHubName"
"""The extension's default task hub name (``DurableTaskOptions.HubName``)."""

CONNECTION = "Storage"
"""The connection name the extension puts into management URLs for Azure Storage."""

_RPC_PATH = "/durabletask/"          # the extension's local RPC listener: http://127.0.0.1:17071/durabletask/
_RUNNING = ("Running", "Pending", "ContinuedAsNew", "Suspended")
_FINISHED = ("Completed", "Failed", "Terminated", "Canceled")
_JSON_TYPE = "application/json; charset=utf-8"
_ARGUMENT_EXCEPTION = "System.ArgumentException"
_ALREADY_EXISTS = "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"
_SOMETHING_WENT_WRONG = "Something went wrong while processing your request"
_MAX_INSTANCE_ID_LENGTH = 256    # DurableClient.MaxInstanceIdLength (DurableClient.cs:33)

REWIND_NOT_FAILED = "The rewind operation is only supported on failed orchestration instances."
"""``RewindAsync``'s ``InvalidOperationException`` text (DurableClient.cs:451)."""
_SDK_MODULE = importlib.import_module("azure.durable_functions.models.DurableOrchestrationClient")


@dataclass(frozen=True)
class ApiResponse:
    """One answer of the management API: status, headers and the body bytes (JSON or empty)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def parsed(self) -> Any:
        """The body as aiohttp's ``response.json(content_type=None)`` gives it: None when empty."""
        text = self.body.strip()
        return json.loads(text.decode("utf-8")) if text else None


@dataclass(frozen=True)
class _Request:
    method: str
    url: yarl.URL
    segments: list[str]          # the decoded path below the API's base, split on "/"
    query: dict[str, str]        # lower-cased names; repeated names joined by "," (NameValueCollection)
    body: bytes
    headers: dict[str, str]      # lower-cased names

    @property
    def origin(self) -> str:
        return str(self.url.origin())

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class ManagementApi:
    """The Durable extension's HTTP management API, served by a :class:`Simulator`.

    One object answers both addresses the host has: the RPC base URL that the
    SDK's client calls (``rpc_base_url``) and the public webhook URLs under
    ``{origin}/runtime/webhooks/durabletask`` that ``create_check_status_response``
    hands out. Routing, status codes and bodies follow ``HttpApiHandler.cs``
    (Azure/azure-functions-durable-extension); where the extension needs a
    decision the engine does not model, the docstring of the handler says so.

    Args:
        simulator: the simulator whose task hub the API reads and writes.
        origin: scheme and authority of the public management URLs.

    Example::

        api = ManagementApi(sim)
        api.handle("POST", api.rpc_base_url + "orchestrators/approval").status   # 202
    """

    _ids = itertools.count(1)

    def __init__(self, simulator: Any, origin: str = DEFAULT_ORIGIN) -> None:
        self.simulator = simulator
        self.origin = origin.rstrip("/")
        # A name that cannot resolve (RFC 2606 .invalid): if a request ever bypassed the
        # in-memory transport it would fail at once instead of reaching a real host.
        self._rpc_origin = f"http://dafx-host-{next(self._ids)}.invalid"
        self.rpc_base_url = self._rpc_origin + _RPC_PATH
        _install_seam()
        _HOSTS[self._rpc_origin] = self

    # -- the binding the host passes to durable_client_input --

    def binding_json(self) -> str:
        """The durable client binding JSON string, as ``BindingHelper`` serializes it."""
        base = self.origin + WEBHOOK_PATH
        return json.dumps({
            "taskHubName": TASK_HUB,
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": base + "/orchestrators/{functionName}[/{instanceId}]?",
                "createAndWaitOnNewInstancePostUri":
                    base + "/orchestrators/{functionName}[/{instanceId}]"
                    "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&",
            },
            "managementUrls": _management_urls(self.origin, "INSTANCEID", rewind=True),
            "baseUrl": base,
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": self.rpc_base_url,
        })

    # -- the SDK's transport: same signatures as models/utils/http_utils.py --

    async def post(self, url: str, data: Any = None, trace_parent: str | None = None,
                   trace_state: str | None = None,
                   function_invocation_id: str | None = None) -> list[Any]:
        """``post_async_request``: ``data`` goes out as aiohttp's ``json=`` would send it."""
        if data is None:
            response = self.handle("POST", url)
        else:
            response = self.handle("POST", url, json.dumps(data).encode(),
                                   {"Content-Type": "application/json"})
        return [response.status, response.parsed()]

    async def get(self, url: str, function_invocation_id: str | None = None) -> list[Any]:
        """``get_async_request``: an empty body comes back as ``""``, as there."""
        response = self.handle("GET", url)
        data = response.parsed()
        return [response.status, "" if data is None else data]

    async def delete(self, url: str, function_invocation_id: str | None = None) -> list[Any]:
        """``delete_async_request``."""
        response = self.handle("DELETE", url)
        return [response.status, response.parsed()]

    # -- routing (HttpApiHandler.HandleRequestAsync) --

    def handle(self, method: str, url: str, body: bytes = b"",
               headers: Mapping[str, str] | None = None) -> ApiResponse:
        """Answer one request to the RPC base URL or to a public management URL.

        Args:
            method: the HTTP method.
            url: the absolute URL, as the caller would send it (it is normalized
                the way aiohttp/yarl sends it, then decoded the way the host does).
            body: the raw request body.
            headers: the request headers (``Content-Type`` matters for raiseEvent
                and entity signals, ``x-ms-continuation-token`` for queries).
        """
        parsed = yarl.URL(url)
        base = _RPC_PATH if str(parsed.origin()) == self._rpc_origin else WEBHOOK_PATH + "/"
        # The host decodes the whole path (WebUtility.UrlDecode: %XX and '+') before matching.
        path = unquote_plus(parsed.raw_path)
        if not (path + "/").startswith(base):
            return ApiResponse(404)
        rest = path[len(base):].strip("/")
        query: dict[str, str] = {}
        for name, value in parse_qsl(parsed.raw_query_string, keep_blank_values=True):
            key = name.lower()
            query[key] = f"{query[key]},{value}" if key in query else value
        request = _Request(method.upper(), parsed, rest.split("/") if rest else [], query,
                           body or b"", {k.lower(): v for k, v in (headers or {}).items()})
        self.simulator.run_until_idle()      # the host has processed what it accepted so far
        return self._route(request)

    def _route(self, req: _Request) -> ApiResponse:
        segs = req.segments
        head = segs[0].lower() if segs else ""
        if head == "orchestrators" and len(segs) in (2, 3):
            if req.method != "POST":
                return ApiResponse(404)
            return self._start(req, segs[1], segs[2] if len(segs) == 3 else None)
        if head == "entities" and len(segs) <= 3:
            return self._entity(req, segs[1] if len(segs) > 1 else "", segs[2] if len(segs) > 2 else "")
        if head == "instances" and len(segs) <= 3:
            instance_id = segs[1] if len(segs) > 1 else None
            operation = segs[2].lower() if len(segs) > 2 else None
            if instance_id is None:
                by_filter = {"GET": self._query, "DELETE": self._purge_by_filter}.get(req.method)
                return by_filter(req) if by_filter else ApiResponse(404)
            if operation is None:
                handler = {"GET": self._status, "DELETE": self._purge}.get(req.method)
                return handler(req, instance_id) if handler else ApiResponse(404)
            if req.method != "POST":
                return ApiResponse(404)
            handler = {"terminate": self._terminate, "rewind": self._rewind,
                       "restart": self._restart, "suspend": self._suspend,
                       "resume": self._resume}.get(operation)
            if handler is not None:
                return handler(req, instance_id)
            # An unknown POST operation falls through to the next routes, as in the extension.
        if head == "instances" and len(segs) == 4 and segs[2].lower() == "raiseevent":
            if req.method != "POST":
                return ApiResponse(404)
            return self._raise_event(req, segs[1], segs[3])
        if head == "makeprimary":
            _not_served(req)
        return ApiResponse(404)

    # -- orchestrations --

    def _start(self, req: _Request, function_name: str, instance_id: str | None) -> ApiResponse:
        """``POST orchestrators/{name}[/{id}]``: 202 with the check-status payload.

        ``StartNewAsync`` (DurableClient.cs:178-216) checks the name, then the
        id, then lets the store dedupe. An unknown orchestrator or an invalid id
        throws ``ArgumentException``, which ``HandleRequestAsync`` answers 400
        with ``ExceptionMessage``, the text the SDK raises (HttpApiHandler.cs:442-445).
        The id of an unfinished instance makes Azure Storage throw
        ``OrchestrationAlreadyExistsException``, an ``InvalidOperationException``
        nothing catches before the generic handler: 500, not 409 (HttpApiHandler.cs:446-449).
        """
        value = None
        if req.body:
            try:
                value = _sdk_value(req.body)
            except ValueError as exc:
                return _error(400, "Invalid JSON content", exc, "Newtonsoft.Json.JsonReaderException")
        info = self.simulator.index.find(ORCHESTRATOR, function_name)
        if info is None:
            return _error(400, "One or more of the arguments submitted is incorrect",
                          _unknown_function(function_name, "orchestrator",
                                            self.simulator.index.names(ORCHESTRATOR)),
                          _ARGUMENT_EXCEPTION)
        invalid = instance_id_error(instance_id)
        if invalid is not None:
            return _error(400, "One or more of the arguments submitted is incorrect", invalid,
                          _ARGUMENT_EXCEPTION)
        existing = self._find(instance_id) if instance_id else None
        if existing is not None and existing.runtime_status not in _FINISHED:
            return _error(500, _SOMETHING_WENT_WRONG,
                          already_exists_message(existing.runtime_status), _ALREADY_EXISTS)
        new_id = self.simulator.start_new(info.name, value, instance_id or None)
        return self._check_status(req, new_id)

    def _status(self, req: _Request, instance_id: str) -> ApiResponse:
        """``GET instances/{id}``: 202 while running, 200 when finished, 404 (empty) if unknown."""
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404)
        show_input = _flag(req.query.get("showinput"), True)
        history = None
        if _flag(req.query.get("showhistory"), False) and status.runtime_status != "Pending":
            history = _history_events(status.history, _flag(req.query.get("showhistoryoutput"), False))
        payload = self._payload(status, show_input, history)
        if status.runtime_status in _RUNNING:
            return _json(202, payload, {"Location": str(req.url), "Retry-After": "5"})
        if status.runtime_status == "Failed" and _flag(
                req.query.get("returninternalservererroronfailure"), False):
            return _json(500, payload)
        return _json(200, payload)

    def _query(self, req: _Request) -> ApiResponse:
        """``GET instances/?createdTimeFrom=&createdTimeTo=&runtimeStatus=&instanceIdPrefix=``.

        Unparseable filters are ignored, as the extension ignores them. Results
        come in instance-id order (Azure Storage's partition order), 100 per page
        unless ``top`` says otherwise; the SDK reads only the first page.
        """
        statuses = self.simulator.list_instances(
            created_from=_parse_time(req.query.get("createdtimefrom")),
            created_to=_parse_time(req.query.get("createdtimeto")),
            runtime_status=_parse_statuses(req.query.get("runtimestatus")),
            instance_id_prefix=req.query.get("instanceidprefix"))
        statuses.sort(key=lambda status: status.instance_id)
        show_input = _flag(req.query.get("showinput"), True)
        size = int(req.query["top"]) if req.query.get("top", "").isdigit() else 100
        token = req.headers.get("x-ms-continuation-token", "")
        start = int(token) if token.isdigit() else 0
        page = statuses[start:start + size]
        headers = {}
        if start + size < len(statuses):
            headers["x-ms-continuation-token"] = str(start + size)
        return _json(200, [self._payload(s, show_input, None) for s in page], headers)

    def _purge(self, req: _Request, instance_id: str) -> ApiResponse:
        """``DELETE instances/{id}``: 200 ``{"instancesDeleted": 1}`` whatever the status, 404 unknown.

        The handler checks only that the instance exists (HttpApiHandler.cs:554-567)
        and Azure Storage's tracking store deletes the instance row and its history
        with no status check (AzureTableTrackingStore.cs:801-834), so a running
        instance is purged too.
        """
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404)
        self.simulator.purge(instance_id)
        return _json(200, {"instancesDeleted": 1})

    def _purge_by_filter(self, req: _Request) -> ApiResponse:
        """``DELETE instances/?createdTimeFrom=...``: 404 when nothing was deleted.

        Azure Storage keeps only the terminal statuses of ``runtimeStatus``
        (Completed, Terminated, Canceled, Failed) and, when none is left, filters
        on creation time alone (AzureTableTrackingStore.cs:837-849 with
        OrchestrationInstanceStatusQueryCondition.cs:133): no status, or only
        non-terminal ones, deletes running instances as well.
        """
        created_from = _parse_time(req.query.get("createdtimefrom"))
        if created_from is None:
            return _text(400, "Please provide value for 'createdTimeFrom' parameter.")
        terminal = [name for name in _parse_statuses(req.query.get("runtimestatus")) or []
                    if name in _FINISHED]
        statuses = self.simulator.list_instances(
            created_from=created_from,
            created_to=_parse_time(req.query.get("createdtimeto")) or self.simulator.now,
            runtime_status=terminal or None)
        for status in statuses:
            self.simulator.purge(status.instance_id)
        return _json(200, {"instancesDeleted": len(statuses)}) if statuses else ApiResponse(404)

    def _terminate(self, req: _Request, instance_id: str) -> ApiResponse:
        return self._steer(req, instance_id, self.simulator.terminate)

    def _suspend(self, req: _Request, instance_id: str) -> ApiResponse:
        return self._steer(req, instance_id, self.simulator.suspend)

    def _resume(self, req: _Request, instance_id: str) -> ApiResponse:
        return self._steer(req, instance_id, self.simulator.resume)

    def _steer(self, req: _Request, instance_id: str,
               operation: Callable[[str, str | None], None]) -> ApiResponse:
        """terminate/suspend/resume: 202, 404 if unknown, 410 Gone if finished."""
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404)
        if status.runtime_status in _FINISHED:
            return ApiResponse(410)
        operation(instance_id, req.query.get("reason"))
        return ApiResponse(202)

    def _rewind(self, req: _Request, instance_id: str) -> ApiResponse:
        """``POST instances/{id}/rewind``: 202 Failed, 404 unknown, 410 finished, 500 otherwise.

        HttpApiHandler.cs:949-976 answers 404 and 410 (Completed, Terminated,
        Canceled) with empty bodies; for any other status but Failed,
        ``RewindAsync`` throws ``InvalidOperationException`` (DurableClient.cs:446-452),
        which the generic handler answers 500 (HttpApiHandler.cs:446-449).
        """
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404)
        if status.runtime_status in ("Completed", "Terminated", "Canceled"):
            return ApiResponse(410)
        if status.runtime_status != "Failed":
            return _error(500, _SOMETHING_WENT_WRONG, REWIND_NOT_FAILED,
                          "System.InvalidOperationException")
        self.simulator.rewind(instance_id, req.query.get("reason"))
        return ApiResponse(202)

    def _restart(self, req: _Request, instance_id: str) -> ApiResponse:
        """``POST instances/{id}/restart?restartWithNewInstanceId=``: 202 with the check-status payload.

        Unknown id: ``RestartAsync``'s ``ArgumentException``, caught here as 400
        (HttpApiHandler.cs:939-942, DurableClient.cs:1142-1153). Restarting an
        unfinished instance under its own id goes through ``StartNewAsync``, whose
        ``OrchestrationAlreadyExistsException`` this handler does not catch: 500.
        """
        new_id = _flag(req.query.get("restartwithnewinstanceid"), True)
        status = self._find(instance_id)
        if status is None:
            return _error(400, "InstanceId does not match a valid orchestration instance.",
                          f"An orchestrastion with the instanceId {instance_id} was not found.",
                          "System.ArgumentException")
        if not new_id and status.runtime_status not in _FINISHED:
            return _error(500, _SOMETHING_WENT_WRONG,
                          already_exists_message(status.runtime_status), _ALREADY_EXISTS)
        return self._check_status(req, self.simulator.restart(instance_id, new_id))

    def _raise_event(self, req: _Request, instance_id: str, event_name: str) -> ApiResponse:
        """``POST instances/{id}/raiseEvent/{name}``: 202, 404, 410 Gone, or 400.

        The body's JSON value is the event data. The SDK's ``raise_event`` sends
        ``json.dumps(data)`` as that value, so the orchestrator receives a *string*
        (Azure/azure-functions-durable-python#295); that is reproduced, not fixed.
        """
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404)
        if status.runtime_status in _FINISHED:
            return ApiResponse(410)
        if req.media_type != "application/json":
            return _message(400, "Only application/json request content is supported")
        try:
            data = json.loads(req.body)
        except ValueError as exc:
            return _error(400, "Invalid JSON content", exc, "Newtonsoft.Json.JsonReaderException")
        self.simulator.raise_event(instance_id, event_name, data)
        return ApiResponse(202)

    # -- entities --

    def _entity(self, req: _Request, name: str, key: str) -> ApiResponse:
        """``GET entities/{name}/{key}`` reads (200/404), ``POST``/``DELETE`` signal (202).

        ``$`` stands for the empty key. The operation is ``?op=`` (``delete`` for
        DELETE); a JSON body is the operation input, other content a string.
        """
        if req.method not in ("GET", "POST", "DELETE"):
            return ApiResponse(404)
        if req.method == "GET" and not key:
            _not_served(req)             # the entity listing
        if not name or self.simulator.index.find(ENTITY, name) is None:
            return _message(400, _unknown_function(name, "entity", self.simulator.index.names(ENTITY)))
        if req.method == "GET":
            entity = self.simulator.get_entity((name, "" if key == "$" else key))
            if entity is None or not entity.exists:
                return ApiResponse(404)
            return _json(200, json.loads(entity.raw_state))
        operation = "delete" if req.method == "DELETE" else req.query.get("op", "")
        value = None
        if req.body:
            if req.media_type == "application/json":
                try:
                    value = _sdk_value(req.body)
                except ValueError as exc:
                    return _message(400, f"Could not parse JSON content: {exc}")
            else:
                value = req.body.decode("utf-8")
        self.simulator.signal_entity((name, key), operation, value)
        return ApiResponse(202)

    # -- helpers --

    def _find(self, instance_id: str) -> Any:
        try:
            return self.simulator.get_status(instance_id)
        except InstanceNotFoundError:
            return None

    def _payload(self, status: Any, show_input: bool, history: list[dict[str, Any]] | None
                 ) -> dict[str, Any]:
        """``StatusResponsePayload``: the stored JSON texts parsed once.

        As ``DurableClient.ParseToJToken`` does, text that is not JSON (a
        termination reason) stays a string.
        """
        stored = self.simulator.hub.get(status.instance_id)
        payload = {
            "name": status.name,
            "instanceId": status.instance_id,
            "runtimeStatus": status.runtime_status,
            "input": decode_json(stored.input) if show_input else None,
            "customStatus": decode_json(stored.custom_status),
            "output": decode_json(stored.output),
            "createdTime": _seconds(status.created_time),
            "lastUpdatedTime": _seconds(status.last_updated_time),
        }
        if history is not None:
            payload["historyEvents"] = history
        return payload

    def _check_status(self, req: _Request, instance_id: str) -> ApiResponse:
        links = _management_urls(req.origin, instance_id, rewind=False)
        return _json(202, links, {"Location": links["statusQueryGetUri"], "Retry-After": "10"})


class InMemoryClient(DurableOrchestrationClient):
    """The SDK's ``DurableOrchestrationClient``, with the simulator as its host.

    Every method is the SDK's own; only the request functions (set on the
    instance, reference §6.3 (b)) reach :class:`ManagementApi` instead of the
    network. ``wait_for_completion_or_create_check_status_response`` waits in
    virtual time (see :meth:`Simulator.run_async`).

    Args:
        simulator: the :class:`~dafx_testing.Simulator` to serve the calls.
        origin: scheme and authority of the management URLs it hands out.

    Example::

        client = InMemoryClient(sim)
        iid = asyncio.run(client.start_new("content_approval", None, {"topic": "tides"}))
        asyncio.run(client.raise_event(iid, "ApprovalDecision", True))
    """

    def __init__(self, simulator: Any, origin: str = DEFAULT_ORIGIN) -> None:
        self.host = ManagementApi(simulator, origin)
        super().__init__(self.host.binding_json())
        self._post_async_request = self.host.post
        self._get_async_request = self.host.get
        self._delete_async_request = self.host.delete

    async def wait_for_completion_or_create_check_status_response(
            self, request: Any, instance_id: str, timeout_in_milliseconds: int = 10000,
            retry_interval_in_milliseconds: int = 1000) -> Any:
        """The SDK's method, polling in virtual time: timers due within the wait fire.

        It runs on the simulator's virtual-time loop (on a helper thread when
        called from a running loop), since only there do its sleeps move the clock.
        """
        parent = super().wait_for_completion_or_create_check_status_response
        return self.host.simulator.run_async(parent(request, instance_id, timeout_in_milliseconds,
                                                    retry_interval_in_milliseconds))


# --- the seam in the SDK module ------------------------------------------------------

_HOSTS: weakref.WeakValueDictionary[str, ManagementApi] = weakref.WeakValueDictionary()
_ORIGINAL: dict[str, Any] = {}


def _host_for(url: str) -> ManagementApi | None:
    return _HOSTS.get(str(yarl.URL(url).origin()))


async def _post(url: str, data: Any = None, trace_parent: str | None = None,
                trace_state: str | None = None, function_invocation_id: str | None = None
                ) -> list[Any]:
    host = _host_for(url)
    if host is None:
        return await _ORIGINAL["post_async_request"](url, data, trace_parent, trace_state,
                                                     function_invocation_id)
    return await host.post(url, data)


async def _get(url: str, function_invocation_id: str | None = None) -> list[Any]:
    host = _host_for(url)
    if host is None:
        return await _ORIGINAL["get_async_request"](url, function_invocation_id)
    return await host.get(url)


async def _delete(url: str, function_invocation_id: str | None = None) -> list[Any]:
    host = _host_for(url)
    if host is None:
        return await _ORIGINAL["delete_async_request"](url, function_invocation_id)
    return await host.delete(url)


def _install_seam() -> None:
    """Swap the SDK module's request functions for dispatchers, once.

    ``DurableOrchestrationClient.__init__`` copies the request functions from
    the module, so clients the SDK middleware builds pick the dispatchers up;
    what was there before is kept and called for every URL no simulator serves.
    """
    if _ORIGINAL:
        return
    for name, replacement in (("post_async_request", _post), ("get_async_request", _get),
                              ("delete_async_request", _delete)):
        _ORIGINAL[name] = getattr(_SDK_MODULE, name)
        setattr(_SDK_MODULE, name, replacement)


# --- the host's checks -----------------------------------------------------------------


def instance_id_error(instance_id: str | None) -> str | None:
    """The ``ArgumentException`` message ``StartNewAsync`` throws for this id, or None if valid.

    Extension v2.13.7, DurableClient.cs:185-201: an empty id gets a new GUID; an
    id starting with '@' or holding ``/ \\ ? #`` or a control character
    (``char.IsControl``: Unicode category Cc) is refused, and so is one longer
    than 256 UTF-16 code units (``string.Length``). The first two checks pass
    their text as the *parameter name* (``new ArgumentException(nameof(instanceId),
    "...")``), so on .NET Core the message reads ``instanceId (Parameter '...')``
    (dotnet/runtime ArgumentException.Message, resource Arg_ParamName_Name).
    """
    if not instance_id:
        return None
    if instance_id.startswith("@"):
        return "instanceId (Parameter 'Orchestration instance ids must not start with @.')"
    if any(c in "/\\?#" or unicodedata.category(c) == "Cc" for c in instance_id):
        return ("instanceId (Parameter 'Orchestration instance ids must not contain "
                "/, \\, #, ?, or control characters.')")
    if len(instance_id.encode("utf-16-le", "surrogatepass")) // 2 > _MAX_INSTANCE_ID_LENGTH:
        return f"Instance ID lengths must not exceed {_MAX_INSTANCE_ID_LENGTH} characters."
    return None


def already_exists_message(runtime_status: str) -> str:
    """DTFx Azure Storage's ``OrchestrationAlreadyExistsException`` text.

    DurableTask.AzureStorage 1.17.5, AzureStorageOrchestrationService.cs:1689-1694:
    thrown when the existing instance's status is one of the extension's dedupe
    statuses (Running, ContinuedAsNew, Pending, Suspended: OverridableStates.cs:35-41,
    the default ``NonRunningStates``), since the extension sets
    ``ThrowExceptionOnInvalidDedupeStatus`` (AzureStorageDurabilityProviderFactory.cs:210).
    """
    return f"An Orchestration instance with the status {runtime_status} already exists."


# --- the host's formats ----------------------------------------------------------------


def _management_urls(origin: str, instance_id: str, rewind: bool) -> dict[str, str]:
    """``HttpApiHandler.GetClientResponseLinks``: the management URLs of one instance.

    The binding's ``managementUrls`` include ``rewindPostUri``; the 202 payload
    the API itself returns does not (``CreateCheckStatusResponseMessage``).
    """
    prefix = f"{origin}{WEBHOOK_PATH}/instances/{quote_plus(instance_id)}"
    suffix = f"taskHub={quote_plus(TASK_HUB)}&connection={quote_plus(CONNECTION)}"
    links = {
        "id": instance_id,
        "statusQueryGetUri": f"{prefix}?{suffix}",
        "sendEventPostUri": f"{prefix}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{prefix}/terminate?reason={{text}}&{suffix}",
    }
    if rewind:
        links["rewindPostUri"] = f"{prefix}/rewind?reason={{text}}&{suffix}"
    links.update({
        "purgeHistoryDeleteUri": f"{prefix}?{suffix}",
        "restartPostUri": f"{prefix}/restart?{suffix}",
        "suspendPostUri": f"{prefix}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{prefix}/resume?reason={{text}}&{suffix}",
    })
    return links


def _not_served(req: _Request) -> None:
    raise DafxError(
        f"{req.method} {req.url} is a management API the simulator does not serve (entity "
        "listing, app-lease 'makeprimary'); read entities one at a time with "
        "GET entities/{name}/{key}, client.read_entity_state() or sim.get_entity()")


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    """``request.CreateResponse(status, value)``: compact JSON, as Newtonsoft writes it."""
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return ApiResponse(status, body, {"Content-Type": _JSON_TYPE, **(headers or {})})


def _text(status: int, message: str) -> ApiResponse:
    """``request.CreateResponse(status, "a string")``: the string as a JSON string."""
    return _json(status, message)


def _message(status: int, message: str) -> ApiResponse:
    """``request.CreateErrorResponse(status, message)``: an ``HttpError`` with ``Message``."""
    return _json(status, {"Message": message})


def _error(status: int, message: str, exception: Any, exception_type: str) -> ApiResponse:
    """``request.CreateErrorResponse(status, message, exception)``, error detail included."""
    return _json(status, {"Message": message, "ExceptionMessage": str(exception),
                          "ExceptionType": exception_type, "StackTrace": None})


def _unknown_function(name: str, kind: str, known: list[str]) -> str:
    """``DurableTaskExtension.GetInvalid{Orchestrator,Entity}FunctionMessage``."""
    message = (f"The function '{name}' doesn't exist, is disabled, or is not an {kind} "
               "function. Additional info: ")
    if known:
        listing = "', '".join(known)
        return message + f"The following are the known {kind} functions: '{listing}'."
    return message + f"No {kind} functions are currently registered!"


def _sdk_value(body: bytes) -> Any:
    """The Python value behind a start or signal body (ValueError if it is not JSON).

    The SDK serializes start inputs (``df_dumps``) and entity inputs
    (``json.dumps``) itself and aiohttp serializes that text again, so the
    JSON value is a string holding JSON. The engine serializes values itself,
    so that layer is undone (as for a stored input), which makes the stored
    text exactly what the host stores. Other JSON (curl's ``{"a": 1}``) is
    taken as the value itself.
    """
    text = body.decode("utf-8")
    json.loads(text)
    return decode_input(text)


def _history_events(history: list[dict[str, Any]], show_output: bool) -> list[dict[str, Any]]:
    """``showHistory=true``: the history as ``DurableClient.GetDurableOrchestrationStatusAsync`` shapes it.

    Event types become names; each completion absorbs its scheduling event
    (``FunctionName``, ``ScheduledTime``); episode markers, inputs and (unless
    ``showHistoryOutput``) results are dropped.
    """
    events = [dict(event) for event in history]
    scheduled: dict[tuple[str, Any], tuple[int, dict[str, Any]]] = {}
    dropped = set()
    for index, item in enumerate(events):
        kind = EventType(int(item["EventType"]))
        item["EventType"] = kind.name
        if kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
            scheduled[(kind.name, item.get("EventId"))] = (index, item)
            item.pop("Version", None)
            item.pop("Input", None)
        elif kind in (EventType.TaskCompleted, EventType.TaskFailed,
                      EventType.SubOrchestrationInstanceCompleted,
                      EventType.SubOrchestrationInstanceFailed):
            origin = ("TaskScheduled" if kind in (EventType.TaskCompleted, EventType.TaskFailed)
                      else "SubOrchestrationInstanceCreated")
            found = scheduled.get((origin, item.pop("TaskScheduledId", None)))
            if found is not None:
                item["ScheduledTime"] = found[1]["Timestamp"]
                item["FunctionName"] = found[1].get("Name")
                dropped.add(found[0])
            if kind in (EventType.TaskCompleted, EventType.SubOrchestrationInstanceCompleted):
                _shape_result(item, show_output)
        elif kind == EventType.ExecutionStarted:
            item["FunctionName"] = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags", "Input"):
                item.pop(key, None)
        elif kind == EventType.ExecutionCompleted:
            status = item.get("OrchestrationStatus")
            if isinstance(status, int):
                item["OrchestrationStatus"] = OrchestrationStatus(status).name
            _shape_result(item, show_output)
        elif kind in (EventType.ExecutionTerminated, EventType.EventRaised):
            item.pop("Input", None)
        elif kind == EventType.TimerFired:
            item.pop("TimerId", None)
        elif kind in (EventType.OrchestratorStarted, EventType.OrchestratorCompleted):
            dropped.add(index)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
    return [item for index, item in enumerate(events) if index not in dropped]


def _shape_result(item: dict[str, Any], show_output: bool) -> None:
    if show_output:
        item["Result"] = decode_json(item.get("Result"))
    else:
        item.pop("Result", None)


def _seconds(moment: datetime) -> str:
    """``DateTime.ToString("s") + "Z"``: whole seconds, UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _flag(value: str | None, default: bool) -> bool:
    """``bool.TryParse``: ``true``/``false`` in any case; anything else is the default."""
    text = (value or "").strip().lower()
    return {"true": True, "false": False}.get(text, default)


def _parse_time(value: str | None) -> datetime | None:
    """A query-string date (the SDK's ``%Y-%m-%dT%H:%M:%S.%fZ``); None when absent or bad.

    As the extension does, a year written with fewer than four digits (Python's
    ``strftime`` on Linux) is padded before parsing. Times are UTC.
    """
    if not value:
        return None
    text = value.strip()
    year, dash, rest = text.partition("-")
    if dash and year.isdigit() and len(year) < 4:
        text = year.zfill(4) + dash + rest
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _parse_statuses(value: str | None) -> list[str] | None:
    """``runtimeStatus=Running,Completed``: exact status names; none valid means no filter."""
    names = [part.strip() for part in (value or "").split(",")]
    known = [name for name in names if name in OrchestrationStatus.__members__]
    return known or None
