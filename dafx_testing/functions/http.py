"""Call the app's HTTP functions the way the Functions host does, in memory.

:class:`HttpTestClient` routes ``/api/...`` to the app's ``route`` templates,
builds a real ``func.HttpRequest``, passes the durable client binding JSON to
functions that take ``durable_client_input`` (the SDK's middleware turns it
into a real client, served by the simulator), awaits async handlers and
returns the ``func.HttpResponse``. Management URLs that
``create_check_status_response`` hands out (``statusQueryGetUri``,
``sendEventPostUri``, ...) are served by the same in-memory host::

    http = HttpTestClient(sim)                       # or sim.http
    started = http.post("/api/orchestrators/content_approval", json={"topic": "tides"})
    started.status_code                              # 202
    status = http.get(started.json()["statusQueryGetUri"])
    status.json()["runtimeStatus"]                   # "Running"

Host behaviour reproduced on purpose:

* Routes are tried in registration order, with no ASP.NET-style precedence: a
  template with a parameter registered first wins over a literal registered
  later (the Functions host's ``WebJobsRouteBuilder``).
* A path that matches a route but not its methods gets **404** with an empty
  body, like any unknown path: the host has no 405
  (Azure/azure-functions-host#10098). The response's ``note`` says which
  route and methods were there.
* The worker adds ``Content-Type`` (``mimetype; charset=...``) to responses
  without one; a ``str`` return value becomes a 200 ``text/plain`` response.
* ``/runtime/webhooks/mcp`` (and ``.../sse``, ``.../message``) is the MCP
  extension's endpoint over the app's ``mcpToolTrigger`` functions: see
  :mod:`.mcp`.
"""

from __future__ import annotations

import inspect
import json as jsonlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlencode

import azure.functions as func
import yarl

from ..core.errors import DafxError
from .app import HTTP, FunctionInfo, unbound_parameters
from .client import DEFAULT_ORIGIN, WEBHOOK_PATH, ManagementApi
from .mcp import MCP_PATH, McpEndpoint, SseStream

__all__ = ["HttpTestClient", "Response"]

Body = str | bytes | Mapping[str, str] | None
_NO_JSON = object()


class Response(func.HttpResponse):
    """A response from the simulated host: a real ``func.HttpResponse`` plus conveniences.

    Attributes:
        served_by: the function that answered, ``"durabletask"`` for the
            management API, ``"mcp"`` for the MCP endpoint when no tool function
            ran, None when no route matched.
        note: why a request found no function (None otherwise).
        stream: for ``GET /runtime/webhooks/mcp/sse``, the open event stream
            (:class:`~dafx_testing.functions.mcp.SseStream`); None otherwise.

    Example::

        response = sim.http.get("/api/status/abc")
        assert response.status_code == 200, response
        response.json()["runtimeStatus"]
    """

    def __init__(self, body: str | bytes | None = None, *, status_code: int,
                 headers: Mapping[str, str] | None = None, mimetype: str | None = None,
                 charset: str | None = None, served_by: str | None = None,
                 note: str | None = None, stream: SseStream | None = None) -> None:
        super().__init__(body, status_code=status_code, headers=headers, mimetype=mimetype,
                         charset=charset)
        self.served_by = served_by
        self.note = note
        self.stream = stream

    @property
    def text(self) -> str:
        """The body decoded with the response's charset."""
        return self.get_body().decode(self.charset or "utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.get_body())

    def __repr__(self) -> str:
        preview = self.text if len(self.text) <= 200 else self.text[:197] + "..."
        where = f" from {self.served_by!r}" if self.served_by else ""
        note = f" ({self.note})" if self.note else ""
        return f"<Response {self.status_code}{where}: {preview!r}{note}>"


class HttpTestClient:
    """Send HTTP requests to the app's functions and to the durable management API.

    Args:
        simulator: the :class:`~dafx_testing.Simulator` running the app.
        origin: scheme and authority requests are addressed to (``func start``'s
            by default); absolute URLs must use it.
        route_prefix: ``extensions.http.routePrefix`` of host.json (``"api"``).
        raise_server_exceptions: re-raise an exception from a function (the
            default, so a test shows the real traceback); if False, answer 500
            with an empty body, as the host does.

    Example::

        http = HttpTestClient(sim)
        response = http.post("/api/orchestrators/content_approval", json={"topic": "tides"})
        assert response.status_code == 202
    """

    def __init__(self, simulator: Any, origin: str = DEFAULT_ORIGIN, route_prefix: str = "api",
                 raise_server_exceptions: bool = True) -> None:
        self.simulator = simulator
        self.origin = origin.rstrip("/")
        self.route_prefix = route_prefix.strip("/")
        self.raise_server_exceptions = raise_server_exceptions
        self.management = ManagementApi(simulator, self.origin)
        self._routes: list[_Route] | None = None
        self._mcp: McpEndpoint | None = None

    def get(self, path: str, **options: Any) -> Response:
        """``GET path``; see :meth:`request` for the options."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Response:
        """``POST path``; see :meth:`request` for the options."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> Response:
        """``PUT path``; see :meth:`request` for the options."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Response:
        """``PATCH path``; see :meth:`request` for the options."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Response:
        """``DELETE path``; see :meth:`request` for the options."""
        return self.request("DELETE", path, **options)

    def request(self, method: str, path: str, *, json: Any = _NO_JSON, data: Body = None,
                headers: Mapping[str, str] | None = None,
                params: Mapping[str, Any] | None = None) -> Response:
        """Send one request and return the host's response.

        Args:
            method: the HTTP method.
            path: ``/api/...``, a management path, or an absolute URL on ``origin``
                (as found in a check-status payload).
            json: a value sent as a JSON body (``Content-Type: application/json``).
            data: a raw body (``str``/``bytes``) or a form (a mapping, sent
                ``application/x-www-form-urlencoded``).
            headers: request headers.
            params: query parameters, merged into the query of ``path`` (a name in
                both takes the value from ``params``).
        """
        url = self._url(path, params)
        body, headers = _encode_body(json, data, dict(headers or {}))
        response = self._respond(method, url, body, headers)
        for observe in getattr(self.simulator, "http_observers", ()):
            observe(method.upper(), path, response)
        return response

    def _respond(self, method: str, url: yarl.URL, body: bytes,
                 headers: dict[str, str]) -> Response:
        """The answer of whatever serves ``url``: the management API, MCP, or a function."""
        decoded = _decoded_path(url.raw_path)
        if decoded == WEBHOOK_PATH or decoded.startswith(WEBHOOK_PATH + "/"):
            answer = self.management.handle(method, str(url), body, headers)
            return Response(answer.body, status_code=answer.status, headers=answer.headers,
                            mimetype=answer.headers.get("Content-Type", "").split(";")[0] or None,
                            served_by="durabletask")
        if decoded.lower() == MCP_PATH or decoded.lower().startswith(MCP_PATH + "/"):
            mcp = self.mcp.handle(method, decoded, _query_params(url), body, headers)
            return Response(mcp.body, status_code=mcp.status, headers=mcp.headers,
                            mimetype=mcp.headers.get("Content-Type", "").split(";")[0] or None,
                            served_by=mcp.served_by, stream=mcp.stream)
        return self._call_function(method.upper(), url, decoded, body, headers)

    @property
    def mcp(self) -> McpEndpoint:
        """The MCP extension's endpoint (``/runtime/webhooks/mcp``); ``.tools`` lists the tools."""
        if self._mcp is None:
            self._mcp = McpEndpoint(self.simulator, self.management.binding_json,
                                    self.raise_server_exceptions)
        return self._mcp

    # -- routing --

    def _call_function(self, method: str, url: yarl.URL, decoded: str, body: bytes,
                       headers: dict[str, str]) -> Response:
        path = decoded.strip("/")
        near_misses = []
        for route in self._route_table():
            values = route.match(path)
            if values is None:
                continue
            if route.info.methods and method not in route.info.methods:
                near_misses.append(route)
                continue
            request = func.HttpRequest(method, str(url), headers=headers,
                                       params=_query_params(url), route_params=values, body=body)
            return self._invoke(route.info, request)
        return Response(status_code=404, note=_miss_note(method, path, near_misses,
                                                         self._route_table()))

    def _route_table(self) -> list[_Route]:
        if self._routes is None:
            prefix = self.route_prefix + "/" if self.route_prefix else ""
            self._routes = [_Route.compile(info, prefix + (info.route or ""))
                            for info in self.simulator.index.functions if info.kind == HTTP]
        return self._routes

    def _url(self, path: str, params: Mapping[str, Any] | None) -> yarl.URL:
        target = yarl.URL(path)
        if target.is_absolute():
            if str(target.origin()) != self.origin:
                raise DafxError(
                    f"{path!r} is not on the simulated host {self.origin}; pass a path "
                    f"(/api/...) or a URL on {self.origin}, or build the client with "
                    f"HttpTestClient(sim, origin=...)")
        elif not path.startswith("/"):
            raise DafxError(f"path {path!r} must start with '/', e.g. '/api/{path}'")
        else:
            target = yarl.URL(self.origin).join(target)
        if params:
            target = target.update_query({k: str(v) for k, v in params.items()})
        return target

    # -- invocation (what the Python worker does) --

    def _invoke(self, info: FunctionInfo, request: func.HttpRequest) -> Response:
        kwargs: dict[str, Any] = {info.trigger_param: request}
        if info.client_param:
            kwargs[info.client_param] = self.management.binding_json()
        missing = unbound_parameters(info.user_function, kwargs)
        if missing:
            raise DafxError(
                f"HTTP function {info.name!r} needs parameter(s) {', '.join(missing)}, which "
                "dafx-testing does not bind (it passes the HTTP request and the durable client); "
                "give them defaults or read them from the request")
        try:
            with self.simulator.host_code():
                outcome = info.handler(**kwargs)
                if inspect.isawaitable(outcome):
                    outcome = self.simulator.run_async(outcome)
        except Exception:
            if self.raise_server_exceptions:
                raise
            return Response(status_code=500, served_by=info.name)
        return _as_response(info.name, outcome)


# --- route templates -------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    name: str
    group: str
    constraints: tuple[tuple[str, str], ...]       # (name, argument text)
    default: str | None
    optional: bool
    catch_all: bool


@dataclass(frozen=True)
class _Route:
    """One function's route template, compiled to a case-insensitive regex."""

    info: FunctionInfo
    template: str
    pattern: re.Pattern[str]
    params: tuple[_Param, ...]

    @classmethod
    def compile(cls, info: FunctionInfo, template: str) -> _Route:
        params: list[_Param] = []
        regex = ""
        segments = template.strip("/").split("/") if template.strip("/") else []
        for index, segment in enumerate(segments):
            separator = "/" if index else ""
            parts: list[Any] = []
            for part in _parse_segment(segment, info, template):
                if isinstance(part, _Param):
                    part = replace(part, group=f"p{len(params)}")
                    params.append(part)
                parts.append(part)
            if len(parts) == 1 and isinstance(parts[0], _Param):
                regex += _whole_segment(parts[0], separator)
            else:
                regex += separator + "".join(_inline(part) for part in parts)
        return cls(info, template, re.compile(f"^{regex}/?$", re.IGNORECASE), tuple(params))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values if the decoded ``path`` (no leading slash) matches, else None."""
        found = self.pattern.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for param in self.params:
            value = found.group(param.group)
            if value is None or value == "":
                if param.default is not None:
                    values[param.name] = param.default
                continue
            if not all(_CONSTRAINTS[name](value, argument) for name, argument in param.constraints):
                return None
            values[param.name] = value
        return values


def _whole_segment(param: _Param, separator: str) -> str:
    """A parameter that is a whole segment; optional ones take their '/' with them."""
    group = f"(?P<{param.group}>{'.*' if param.catch_all else '[^/]+'})"
    if param.catch_all or param.optional or param.default is not None:
        return f"(?:{separator}{group})?"
    return separator + group


def _inline(part: Any) -> str:
    """Literal text or a parameter inside a complex segment such as ``{name}.{ext?}``."""
    if isinstance(part, str):
        return re.escape(part)
    group = f"(?P<{part.group}>[^/]+?)"
    return f"(?:{group})?" if part.optional else group


def _parse_segment(segment: str, info: FunctionInfo, template: str) -> list[Any]:
    """Split a template segment into literal text and parameters (``{{``/``}}`` escape braces)."""
    parts: list[Any] = []
    literal = ""
    i = 0
    while i < len(segment):
        char = segment[i]
        if segment.startswith("{{", i) or segment.startswith("}}", i):
            literal += char
            i += 2
            continue
        if char == "}":
            raise _template_error(info, template, "an unmatched '}'")
        if char != "{":
            literal += char
            i += 1
            continue
        end = i + 1
        text = ""
        while end < len(segment):
            if segment.startswith("}}", end) or segment.startswith("{{", end):
                text += segment[end]
                end += 2
            elif segment[end] == "}":
                break
            else:
                text += segment[end]
                end += 1
        else:
            raise _template_error(info, template, "an unclosed '{'")
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(_parse_parameter(text, info, template))
        i = end + 1
    if literal:
        parts.append(literal)
    return parts


_PARAM_NAME = re.compile(r"^(\*{1,2})?([^:?=*]+)")


def _parse_parameter(text: str, info: FunctionInfo, template: str) -> _Param:
    head = _PARAM_NAME.match(text)
    if head is None:
        raise _template_error(info, template, f"a parameter without a name: {{{text}}}")
    catch_all, name = bool(head.group(1)), head.group(2).strip()
    rest = text[head.end():]
    constraints: list[tuple[str, str]] = []
    while rest.startswith(":"):
        constraint = re.match(r":([A-Za-z]+)", rest)
        if constraint is None:
            raise _template_error(info, template, f"an empty constraint in {{{text}}}")
        rest = rest[constraint.end():]
        argument = ""
        if rest.startswith("("):
            depth, end = 0, 0
            for end, char in enumerate(rest):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    break
            argument, rest = rest[1:end], rest[end + 1:]
        constraints.append((constraint.group(1).lower(), argument))
        _check_constraint(constraints[-1][0], info, template)
    default = None
    optional = False
    if rest == "?":
        optional = True
    elif rest.startswith("="):
        default = rest[1:]
    elif rest:
        raise _template_error(info, template, f"unexpected {rest!r} in {{{text}}}")
    return _Param(name, "", tuple(constraints), default, optional, catch_all)


def _template_error(info: FunctionInfo, template: str, problem: str) -> DafxError:
    return DafxError(f"HTTP function {info.name!r} has route {template!r} with {problem}; the "
                     "Functions host would not register it")


def _check_constraint(name: str, info: FunctionInfo, template: str) -> None:
    if name not in _CONSTRAINTS:
        raise DafxError(
            f"HTTP function {info.name!r} has route {template!r} with the unknown constraint "
            f"{name!r}; the host resolves only: {', '.join(sorted(_CONSTRAINTS))}")


def _integer(value: str, bits: int) -> bool:
    if not re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return False
    return -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _length_in(value: str, argument: str) -> bool:
    bounds = [int(b) for b in argument.split(",")]
    return bounds[0] <= len(value) <= bounds[-1]


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_CONSTRAINTS: dict[str, Callable[[str, str], bool]] = {
    # ASP.NET Core's inline route constraints, as the Functions host resolves them.
    "int": lambda v, a: _integer(v, 32),
    "long": lambda v, a: _integer(v, 64),
    "bool": lambda v, a: v.strip().lower() in ("true", "false"),
    "guid": lambda v, a: _is_guid(v),
    "alpha": lambda v, a: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "decimal": lambda v, a: _number(v) is not None,
    "double": lambda v, a: _number(v) is not None,
    "float": lambda v, a: _number(v) is not None,
    "datetime": lambda v, a: _is_datetime(v),
    "min": lambda v, a: _integer(v, 64) and int(v) >= int(a),
    "max": lambda v, a: _integer(v, 64) and int(v) <= int(a),
    "range": lambda v, a: _integer(v, 64) and int(a.split(",")[0]) <= int(v) <= int(a.split(",")[1]),
    "length": _length_in,
    "minlength": lambda v, a: len(v) >= int(a),
    "maxlength": lambda v, a: len(v) <= int(a),
    "regex": lambda v, a: re.search(a, v, re.IGNORECASE) is not None,
    "required": lambda v, a: v != "",
}


# --- requests and responses ------------------------------------------------------------


def _encode_body(json: Any, data: Body, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    named = {name.lower() for name in headers}
    if json is not _NO_JSON:
        if data is not None:
            raise DafxError("pass either json= or data=, not both")
        if "content-type" not in named:
            headers["Content-Type"] = "application/json"
        return jsonlib.dumps(json).encode("utf-8"), headers
    if isinstance(data, Mapping):
        if "content-type" not in named:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode(data).encode("utf-8"), headers
    if isinstance(data, str):
        return data.encode("utf-8"), headers
    return data or b"", headers


def _decoded_path(raw_path: str) -> str:
    """The path as the host routes on it: decoded, except ``%2F``, which Kestrel keeps as is."""
    return "/".join(unquote(segment).replace("/", "%2F") for segment in raw_path.split("/"))


def _query_params(url: yarl.URL) -> dict[str, str]:
    """``req.params``: one value per name, repeated names joined with "," (the host's query map)."""
    params: dict[str, str] = {}
    for name, value in url.query.items():
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


def _as_response(name: str, outcome: Any) -> Response:
    """What the worker's ``HttpResponseConverter.encode`` makes of a return value."""
    if isinstance(outcome, func.HttpResponse):
        headers = dict(outcome.headers.items())
        if not any(key.lower() == "content-type" for key in headers):
            mimetype = outcome.mimetype
            headers["Content-Type"] = (f"{mimetype}; charset={outcome.charset}"
                                       if mimetype.startswith("text/") else mimetype)
        return Response(outcome.get_body(), status_code=outcome.status_code, headers=headers,
                         mimetype=outcome.mimetype, charset=outcome.charset, served_by=name)
    if isinstance(outcome, str):
        return Response(outcome, status_code=200,
                        headers={"Content-Type": "text/plain; charset=utf-8"}, served_by=name)
    raise DafxError(
        f"HTTP function {name!r} returned {type(outcome).__name__}; the Python worker turns "
        "only a func.HttpResponse or a str into an HTTP response (anything else fails the "
        "invocation with a 500). Return func.HttpResponse(...).")


def _miss_note(method: str, path: str, near_misses: list[_Route], routes: list[_Route]) -> str:
    if near_misses:
        offers = "; ".join(f"route {r.template!r} of {r.info.name!r} takes "
                           f"{', '.join(r.info.methods)}" for r in near_misses)
        return (f"no route takes {method} /{path}: {offers}. The Functions host answers 404 "
                "here, not 405 (Azure/azure-functions-host#10098)")
    known = ", ".join(f"{r.template!r}" for r in routes) or "none"
    return f"no route matches /{path}; the app's routes: {known}"
