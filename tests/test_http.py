"""HTTP functions through the simulated host: routing, requests, responses, management URLs."""

from __future__ import annotations

import json
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
import pytest

from dafx_testing import DafxError, Simulator
from dafx_testing.functions.http import HttpTestClient

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def echo_of(req: func.HttpRequest, served: str) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({
        "served": served, "method": req.method, "url": req.url,
        "params": dict(req.params), "route": dict(req.route_params),
        "body": req.get_body().decode(), "type": req.headers.get("content-type"),
        "form": dict(req.form) if req.form else None,
    }), mimetype="application/json")


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_number(req):
    return echo_of(req, "item_by_number")


@app.route(route="items/{slug}", methods=["GET"])
def item_by_slug(req):
    return echo_of(req, "item_by_slug")


@app.route(route="files/{*path}")
def files(req):
    return echo_of(req, "files")


@app.route(route="greeting/{name?}")
def greeting(req):
    return f"Hello {req.route_params.get('name', 'stranger')}"


@app.route(route="lang/{code:alpha:length(2)=en}")
def lang(req):
    return echo_of(req, "lang")


@app.route(route="archive/{year:range(2000,2099)}/{month:regex(^\\d{{2}}$)}")
def archive(req):
    return echo_of(req, "archive")


@app.route(route="echo", methods=["POST", "PUT", "PATCH", "DELETE"])
def echo(req):
    return echo_of(req, "echo")


@app.route()
def unrouted(req):
    return func.HttpResponse("default route", status_code=201)


@app.route(route="broken")
def broken(req):
    raise RuntimeError("the handler failed")


@app.route(route="wrong-type")
def wrong_type(req):
    return {"not": "a response"}


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def starter(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    instance_id = await client.start_new(req.route_params["functionName"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.route(route="wait/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_and_wait(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    instance_id = await client.start_new(req.route_params["functionName"])
    return await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout_in_milliseconds=int(req.params.get("ms", "10000")))


@app.orchestration_trigger(context_name="context")
def review(context):
    decision = yield context.wait_for_external_event("Decision")
    return f"decided: {decision}"


@app.orchestration_trigger(context_name="context")
def nap(context):
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
    return "rested"


@app.orchestration_trigger(context_name="context")
def breaks(context):
    yield context.call_activity("explode")


@app.activity_trigger(input_name="value")
def explode(value):
    raise ValueError("kaboom")


@pytest.fixture
def sim():
    return Simulator(app)


@pytest.fixture
def http(sim):
    return HttpTestClient(sim)


# --- routing ----------------------------------------------------------------------------


def test_route_params_are_decoded_and_typed_by_constraints(http):
    number = http.get("/api/items/42")
    assert number.status_code == 200
    assert number.json()["served"] == "item_by_number"
    assert number.json()["route"] == {"id": "42"}

    slug = http.get("/api/items/blue%20shoes")
    assert slug.json()["served"] == "item_by_slug"
    assert slug.json()["route"] == {"slug": "blue shoes"}
    assert http.get("/api/ITEMS/7").json()["served"] == "item_by_number"   # literals ignore case
    # Kestrel decodes the path except %2F, which stays in the route value as is.
    assert http.get("/api/items/a%2Fb").json()["route"] == {"slug": "a%2Fb"}


def test_optional_default_and_catch_all_parameters(http):
    assert http.get("/api/greeting").text == "Hello stranger"
    assert http.get("/api/greeting/Ada").text == "Hello Ada"
    assert http.get("/api/lang").json()["route"] == {"code": "en"}
    assert http.get("/api/lang/fr").json()["route"] == {"code": "fr"}
    assert http.get("/api/lang/fra").status_code == 404          # length(2)
    assert http.get("/api/files/a/b/c.txt").json()["route"] == {"path": "a/b/c.txt"}
    assert http.get("/api/files").json()["route"] == {}


def test_range_and_regex_constraints(http):
    assert http.get("/api/archive/2024/05").json()["route"] == {"year": "2024", "month": "05"}
    assert http.get("/api/archive/1999/05").status_code == 404
    assert http.get("/api/archive/2024/5").status_code == 404


def test_a_route_defaults_to_the_function_name(http):
    response = http.get("/api/unrouted")
    assert response.status_code == 201
    assert response.served_by == "unrouted"


def test_no_route_is_a_404_with_an_empty_body(http):
    response = http.get("/api/nowhere")
    assert response.status_code == 404
    assert response.get_body() == b""
    assert response.served_by is None
    assert "no route matches /api/nowhere" in response.note
    assert http.get("/unrouted").status_code == 404               # the /api prefix is required


def test_a_wrong_method_is_a_404_like_the_host_not_a_405(http):
    response = http.get("/api/echo")
    assert response.status_code == 404
    assert response.get_body() == b""
    assert "route 'api/echo' of 'echo' takes POST, PUT, PATCH, DELETE" in response.note
    assert "azure-functions-host#10098" in response.note


def test_routes_are_tried_in_registration_order(sim):
    ordered = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @ordered.route(route="things/{name}")
    def any_thing(req):
        return "parameter"

    @ordered.route(route="things/special")
    def special_thing(req):
        return "literal"

    # ASP.NET would prefer the literal; the Functions host takes the first match.
    assert HttpTestClient(Simulator(ordered)).get("/api/things/special").text == "parameter"


def test_a_custom_route_prefix(sim):
    http = HttpTestClient(sim, route_prefix="")
    assert http.get("/greeting/Bo").text == "Hello Bo"


def test_an_unknown_constraint_is_reported_with_the_function(sim):
    bad = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @bad.route(route="odd/{id:even}")
    def odd(req):
        return "never"

    with pytest.raises(DafxError, match=r"'odd' has route 'api/odd/\{id:even\}' with the unknown "
                                        r"constraint 'even'"):
        HttpTestClient(Simulator(bad)).get("/api/odd/2")


# --- requests --------------------------------------------------------------------------


def test_json_bodies_params_and_headers_reach_a_real_http_request(http):
    response = http.post("/api/echo?tag=a", json={"x": 1}, params={"page": 2},
                         headers={"X-Trace": "t1"})
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["url"] == "http://localhost:7071/api/echo?tag=a&page=2"
    assert seen["params"] == {"tag": "a", "page": "2"}
    assert seen["body"] == '{"x": 1}'
    assert seen["type"] == "application/json"


def test_repeated_query_names_are_joined_like_the_host_does(http):
    assert http.delete("/api/echo?tag=a&tag=b").json()["params"] == {"tag": "a,b"}


def test_raw_and_form_bodies(http):
    assert http.put("/api/echo", data="plain text").json()["body"] == "plain text"
    form = http.patch("/api/echo", data={"name": "Ada", "lang": "en"}).json()
    assert form["type"] == "application/x-www-form-urlencoded"
    assert form["form"] == {"name": "Ada", "lang": "en"}


def test_absolute_urls_must_be_on_the_simulated_host(http):
    assert http.get("http://localhost:7071/api/greeting/Al").text == "Hello Al"
    with pytest.raises(DafxError, match="not on the simulated host http://localhost:7071"):
        http.get("https://example.com/api/greeting")
    with pytest.raises(DafxError, match="must start with '/'"):
        http.get("api/greeting")


# --- responses ------------------------------------------------------------------------


def test_the_worker_adds_a_content_type_and_str_results_become_text(http):
    greeting = http.get("/api/greeting/Ada")
    assert isinstance(greeting, func.HttpResponse)
    assert greeting.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert http.get("/api/unrouted").headers["content-type"] == "text/plain; charset=utf-8"
    assert http.get("/api/items/1").headers["Content-Type"] == "application/json"


def test_a_failing_handler_raises_or_answers_500(sim, http):
    with pytest.raises(RuntimeError, match="the handler failed"):
        http.get("/api/broken")
    quiet = HttpTestClient(sim, raise_server_exceptions=False).get("/api/broken")
    assert quiet.status_code == 500
    assert quiet.get_body() == b""


def test_a_return_value_the_worker_cannot_send_is_named(http):
    with pytest.raises(DafxError, match="'wrong_type' returned dict"):
        http.get("/api/wrong-type")


# --- durable client functions and the management URLs ----------------------------------


def test_start_status_event_and_completion_through_management_urls(http):
    started = http.post("/api/orchestrators/review", json={"doc": 7})
    assert started.status_code == 202
    links = started.json()
    assert started.headers["Location"] == links["statusQueryGetUri"]

    running = http.get(links["statusQueryGetUri"])
    assert running.status_code == 202
    assert running.served_by == "durabletask"
    assert running.json()["runtimeStatus"] == "Running"
    assert running.json()["input"] == '{"doc": 7}'       # the SDK's df_dumps text

    raised = http.post(links["sendEventPostUri"].replace("{eventName}", "Decision"), json="yes")
    assert raised.status_code == 202

    done = http.get(links["statusQueryGetUri"])
    assert done.status_code == 200
    assert done.json()["output"] == "decided: yes"       # posted raw JSON: no extra encoding
    assert http.delete(links["purgeHistoryDeleteUri"]).json() == {"instancesDeleted": 1}
    assert http.get(links["statusQueryGetUri"]).status_code == 404


def test_terminate_suspend_resume_and_restart_urls(http, sim):
    links = http.post("/api/orchestrators/review", json=None).json()

    assert http.post(links["suspendPostUri"].replace("{text}", "pause")).status_code == 202
    assert http.get(links["statusQueryGetUri"]).json()["runtimeStatus"] == "Suspended"
    assert http.post(links["resumePostUri"].replace("{text}", "go")).status_code == 202
    assert http.post(links["terminatePostUri"].replace("{text}", "stop%20now")).status_code == 202
    stopped = http.get(links["statusQueryGetUri"]).json()
    assert (stopped["runtimeStatus"], stopped["output"]) == ("Terminated", "stop now")
    assert http.post(links["terminatePostUri"]).status_code == 410

    restarted = http.post(links["restartPostUri"])
    assert restarted.status_code == 202
    assert restarted.json()["id"] != links["id"]
    assert sim.get_status(restarted.json()["id"]).name == "review"


def test_rewind_url_of_a_failed_instance(http, sim):
    links = http.post("/api/orchestrators/breaks", json=None).json()
    assert http.get(links["statusQueryGetUri"]).json()["runtimeStatus"] == "Failed"
    assert http.get(links["statusQueryGetUri"] + "&returnInternalServerErrorOnFailure=true"
                    ).status_code == 500

    sim.mock_activity("explode", lambda value: "fine")
    assert http.post(links["rewindPostUri"].replace("{text}", "retry")).status_code == 202
    assert http.get(links["statusQueryGetUri"]).json()["runtimeStatus"] == "Completed"


def test_waiting_inside_an_http_function_costs_virtual_time_only(http, sim):
    began = sim.now
    timed_out = http.post("/api/wait/nap")
    assert timed_out.status_code == 202                 # 10 s is not enough for a 5 min timer
    assert sim.now - began == timedelta(seconds=10)

    finished = http.post("/api/wait/nap", params={"ms": 600_000})
    assert finished.status_code == 200
    assert finished.get_body() == b"rested"


@pytest.mark.asyncio
async def test_it_works_from_inside_a_running_event_loop(http):
    started = http.post("/api/orchestrators/review", json=None)
    assert http.get(started.json()["statusQueryGetUri"]).json()["runtimeStatus"] == "Running"


def test_a_handler_with_a_binding_dafx_does_not_supply_is_named(sim):
    extra = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @extra.route(route="needs")
    def needs(req, other):
        return "never"

    with pytest.raises(DafxError, match=r"'needs' needs parameter\(s\) other"):
        HttpTestClient(Simulator(extra)).get("/api/needs")
