"""Classic (v1, function.json) apps: indexed as the Functions host and the Python worker do.

The host facts these tests pin, and where they were read (details in
``dafx_testing/functions/classic_app.py``):

* function name = folder name; an HTTP route defaults to it
  (azure-functions-host ``HostFunctionMetadataProvider``, ``WebScriptHostHttpRoutesManager``);
* the script is ``scriptFile`` in the function folder, else ``__init__.py``, and the
  entry point ``entryPoint``, else ``main``; modules are ``__app__.<Folder>`` with the app
  folder on ``sys.path`` (azure-functions-python-worker ``loader.load_function``, PR #726);
* parameters must match the bindings' names, ``out`` bindings get ``func.Out``, an unbound
  ``context`` gets ``func.Context`` (worker ``functions.Registry.add_function``);
* ``AzureWebJobs.<name>.Disabled`` disables a function (WebJobs SDK
  ``FunctionIndexer.IsDisabled``); the v2+ host ignores ``disabled`` in function.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from dafx_testing import AppLoadError, DafxWarning, NonDeterminismError, Simulator, WaitTimeoutError
from dafx_testing.cli import main
from dafx_testing.core.history import EventType
from dafx_testing.functions.app import ACTIVITY, ENTITY, HTTP, ORCHESTRATOR, index_app, load_app

APPS = Path(__file__).parent / "apps"
CHAINING = APPS / "classic_chaining"
COUNTER = APPS / "classic_counter"
HOST_JSON = '{"version": "2.0"}'
ACTIVITY_SOURCE = "def main(name: str) -> str:\n    return 'hi ' + name\n"
ACTIVITY_BINDINGS = [{"name": "name", "type": "activityTrigger", "direction": "in"}]


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch):
    """Undo what loading apps does to ``sys.path`` and ``sys.modules`` (the ``__app__`` modules)."""
    monkeypatch.setattr(sys, "path", sys.path[:])
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("__app__"):
            del sys.modules[name]


def quiet(app_ref):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DafxWarning)
        return Simulator(app_ref)


def classic(root: Path, functions: dict[str, tuple[list[dict], str]], **files: str) -> Path:
    """Write a classic app: ``{folder: (bindings, __init__ source)}`` plus extra files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "host.json").write_text(HOST_JSON)
    for name, (bindings, source) in functions.items():
        (root / name).mkdir()
        (root / name / "function.json").write_text(json.dumps({"bindings": bindings}))
        (root / name / "__init__.py").write_text(source)
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


# --- indexing ----------------------------------------------------------------------------


def test_functions_are_named_after_their_folders_with_the_bindings_parameters():
    index = quiet(CHAINING).index

    assert index.names(ORCHESTRATOR) == ["Chain", "Shout"]
    assert index.names(ACTIVITY) == ["Greet", "Upper"]
    starter = index.get(HTTP, "HttpStart")
    assert (starter.trigger_param, starter.client_param) == ("req", "starter")
    assert (starter.route, starter.methods) == ("orchestrators/{functionName}", ("POST", "GET"))
    assert index.get(ACTIVITY, "greet").trigger_param == "city"
    assert index.get(ORCHESTRATOR, "chain").trigger_param == "context"


def test_an_http_function_without_a_route_is_served_at_its_name_for_any_method():
    sim = quiet(COUNTER)

    assert sim.index.get(HTTP, "Ping").route == "Ping"
    assert sim.http.put("/api/ping").text == "pong"


def test_an_app_setting_disables_a_function_and_its_route_is_gone():
    sim = quiet(CHAINING)     # local.settings.json: AzureWebJobs.Legacy.Disabled = true

    assert sim.index.find(HTTP, "Legacy") is None
    assert sim.http.get("/api/Legacy").status_code == 404


def test_a_disabled_activity_is_unknown_to_the_extension(monkeypatch):
    monkeypatch.setenv("AzureWebJobs_Greet_Disabled", "1")   # the Linux spelling
    sim = quiet(CHAINING)

    with pytest.raises(WaitTimeoutError, match="The function 'Greet' doesn't exist, is disabled"):
        sim.wait_for_completion(sim.start_new("Chain"))


def test_the_disabled_property_is_ignored_like_the_v2_host_does_with_a_warning(tmp_path):
    app = classic(tmp_path / "app", {"Hi": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE)})
    config = json.loads((app / "Hi" / "function.json").read_text())
    (app / "Hi" / "function.json").write_text(json.dumps({**config, "disabled": False}))
    assert quiet(app).index.names(ACTIVITY) == ["Hi"]          # false: nothing to say
    (app / "Hi" / "function.json").write_text(json.dumps({**config, "disabled": True}))

    with pytest.warns(DafxWarning, match=r"Hi/function.json sets 'disabled'.*AzureWebJobs.Hi.Disabled"):
        index = index_app(app)

    assert index.names(ACTIVITY) == ["Hi"]


def test_a_folder_with_function_app_py_stays_a_decorator_app(tmp_path):
    app = classic(tmp_path / "app", {"Hi": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE)},
                  **{"function_app.py": "import azure.durable_functions as df\napp = df.DFApp()\n"})

    assert hasattr(load_app(app), "_function_builders")


# --- running -----------------------------------------------------------------------------


def test_a_chain_with_a_sub_orchestration_relative_imports_and_an_entry_point_override():
    sim = quiet(CHAINING)

    status = sim.wait_for_completion(sim.start_new("Chain", ["Oslo", "Kyiv"]))

    assert status.output == {"greetings": ["Hello Oslo!", "Hello Kyiv!"],
                             "shouted": "HELLO OSLO! HELLO KYIV!"}


def test_the_http_starter_gets_the_client_binding_json_and_starts_by_route():
    sim = quiet(CHAINING)

    started = sim.http.post("/api/orchestrators/Chain", json=["Rome"])

    assert started.status_code == 202, started
    status = sim.http.get(started.json()["statusQueryGetUri"]).json()
    assert (status["runtimeStatus"], status["output"]["shouted"]) == ("Completed", "HELLO ROME!")


def test_entities_named_http_out_bindings_out_parameters_and_the_invocation_context():
    sim = quiet(COUNTER)

    started = sim.http.post("/api/tally", json=5)           # response set on the 'message' binding
    sim.run_until_idle()

    assert started.status_code == 202, started
    assert sim.get_status(started.json()["id"]).output == {"total": 5, "note": "Record recorded 5"}
    assert sim.index.names(ENTITY) == ["Counter"]
    assert sim.entity_state(("Counter", "k1")) == 5
    assert sim.http.get("/api/counter/k1").json() == {"value": 5}
    assert sim.http.get("/api/counter/k9").status_code == 404


def test_an_input_binding_the_simulator_does_not_provide_is_none_with_a_warning(tmp_path):
    bindings = [*ACTIVITY_BINDINGS, {"name": "doc", "type": "blob", "direction": "in", "path": "x/y"}]
    app = classic(tmp_path / "app", {
        "Hi": (bindings, "def main(name, doc):\n    return [name, doc]\n"),
        "Run": ([{"name": "context", "type": "orchestrationTrigger", "direction": "in"}],
                "import azure.durable_functions as df\n\n\ndef run(context):\n"
                "    return (yield context.call_activity('Hi', 'a'))\n\n\n"
                "main = df.Orchestrator.create(run)\n")})

    with pytest.warns(DafxWarning, match=r"Hi/function.json: binding 'doc' \(type 'blob'\) is not"):
        sim = Simulator(app)

    assert sim.wait_for_completion(sim.start_new("Run")).output == ["a", None]


def test_two_classic_apps_with_the_same_folder_names_load_side_by_side(tmp_path):
    first = classic(tmp_path / "one", {"Hi": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE)})
    second = classic(tmp_path / "two", {"Hi": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE.replace("hi", "yo"))})

    one, two = index_app(first).get(ACTIVITY, "Hi"), index_app(second).get(ACTIVITY, "Hi")

    assert (one.handler("x"), two.handler("x")) == ("hi x", "yo x")


# --- loud failures -----------------------------------------------------------------------


def test_a_function_json_without_a_trigger_names_the_file_and_the_valid_triggers(tmp_path):
    app = classic(tmp_path / "app", {"Hi": ([{"name": "x", "type": "blob", "direction": "in"}], "")})

    with pytest.raises(AppLoadError, match=r"Hi/function.json has no trigger binding \(types: "
                                           r"'blob'\).*orchestrationTrigger, activityTrigger"):
        load_app(app)


def test_parameters_must_match_the_bindings_as_the_worker_requires(tmp_path):
    bindings = [{"name": "ctx", "type": "orchestrationTrigger", "direction": "in"}]
    source = "import azure.durable_functions as df\nmain = df.Orchestrator.create(lambda c: None)\n"
    app = classic(tmp_path / "app", {"Run": (bindings, source)})

    with pytest.raises(AppLoadError, match=r"Run/function.json: the parameters \['ctx'\] are "
                                           "declared in function.json but not in Python"):
        load_app(app)


def test_a_missing_script_file_and_entry_point_are_named(tmp_path):
    app = classic(tmp_path / "app", {"Hi": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE)})
    path = app / "Hi" / "function.json"
    path.write_text(json.dumps({"scriptFile": "nope.py", "bindings": ACTIVITY_BINDINGS}))
    with pytest.raises(AppLoadError, match=r"Hi/function.json: scriptFile 'nope.py' does not exist"):
        load_app(app)

    path.write_text(json.dumps({"entryPoint": "run", "bindings": ACTIVITY_BINDINGS}))
    with pytest.raises(AppLoadError, match=r"Hi/function.json: function run\(\) is not present "
                                           r"in Hi/__init__.py"):
        load_app(app)


def test_invalid_json_and_invalid_names_are_named(tmp_path):
    app = classic(tmp_path / "app", {"Hi": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE)})
    (app / "Hi" / "function.json").write_text('{"bindings": [,]}')
    with pytest.raises(AppLoadError, match=r"Hi/function.json is not valid JSON: .* line 1, column 15"):
        load_app(app)

    bad = classic(tmp_path / "bad", {"1st": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE)})
    with pytest.raises(AppLoadError, match=r"'1st' is not a valid function name"):
        load_app(bad)


def test_function_folders_without_host_json_say_what_a_classic_app_is(tmp_path):
    app = classic(tmp_path / "app", {"Hi": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE)})
    (app / "host.json").unlink()

    with pytest.raises(AppLoadError, match=r"has function folders \(Hi\) but no host.json"):
        load_app(app)


def test_a_folder_with_host_json_and_no_functions_mentions_the_classic_layout(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "host.json").write_text(HOST_JSON)

    with pytest.raises(AppLoadError, match=r"has no function_app.py .* A classic app \(function"
                                           r".json model\) is a folder with host.json"):
        load_app(tmp_path / "app")


# --- the front ends ----------------------------------------------------------------------


@pytest.mark.dafx_app(str(CHAINING))
def test_the_plugin_fixture_runs_a_classic_app(dafx):
    assert dafx.wait_for_completion(dafx.start_new("Chain", ["Lyon"])).output["shouted"] == "HELLO LYON!"


def test_dafx_run_takes_the_folder_and_an_orchestrator(capsys):
    assert main(["run", str(CHAINING), "Chain", "--input", '["Nice"]']) == 0

    out = capsys.readouterr().out
    assert "status     Completed" in out and "-> sub-orchestration Shout" in out


def test_dafx_run_calls_an_http_starter_of_a_classic_app(capsys):
    assert main(["run", str(COUNTER), "--http", "POST", "/api/tally", "--body", "2"]) == 0

    assert '"total": 2' in capsys.readouterr().out


def test_dafx_sweep_crash_sweeps_a_classic_app(capsys):
    assert main(["sweep", str(CHAINING), "Chain", "--idempotent", "Greet", "Upper"]) == 0

    assert "all invariants held" in capsys.readouterr().out


# --- what other parts make of a classic app ------------------------------------------


ORCHESTRATOR_BINDINGS = [{"name": "context", "type": "orchestrationTrigger", "direction": "in"}]
ORCHESTRATOR_SOURCE = """\
import azure.durable_functions as df


def orchestrator_function(context):
    {body}


main = df.Orchestrator.create(orchestrator_function)
"""


def test_an_activity_failure_names_the_line_relative_to_the_classic_app(tmp_path):
    app = classic(tmp_path / "app", {
        "Run": (ORCHESTRATOR_BINDINGS, ORCHESTRATOR_SOURCE.format(
            body='return (yield context.call_activity("Fail", "x"))')),
        "Fail": (ACTIVITY_BINDINGS, "def main(name: str) -> str:\n    raise ValueError(name)\n"),
    })
    sim = quiet(app)

    history = sim.wait_for_completion(sim.start_new("Run")).history
    (failed,) = [e for e in history if e.get("EventType") == EventType.TaskFailed]
    assert 'File \\"Fail/__init__.py\\", line 2, in main' in failed["Details"]


def test_the_hash_seed_check_replays_a_classic_orchestrator_in_its_children(tmp_path):
    # Set order differs between interpreters with other hash seeds: the check must load the
    # classic orchestrator in its child interpreters, not skip it with a warning.
    app = classic(tmp_path / "app", {
        "Run": (ORCHESTRATOR_BINDINGS, ORCHESTRATOR_SOURCE.format(
            body='for name in {"ada", "bob", "cy", "dee", "eve"}:\n'
                 '        yield context.call_activity("Greet", name)')),
        "Greet": (ACTIVITY_BINDINGS, ACTIVITY_SOURCE),
    })
    sim = Simulator(app)

    with warnings.catch_warnings():
        warnings.simplefilter("error", DafxWarning)          # no "skipped" warning
        with pytest.raises(NonDeterminismError, match="hash seed|set"):
            sim.wait_for_completion(sim.start_new("Run"))


def test_a_marker_folder_is_relative_to_the_test_file(pytester):
    app = pytester.path / "apps" / "chaining"
    app.parent.mkdir()
    shutil.copytree(CHAINING, app)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(**{"tests/test_rel.py": """
        import pytest

        @pytest.mark.dafx_app("../apps/chaining")
        def test_runs(dafx):
            assert "Chain" in dafx.index.names("orchestrator")
    """})
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "tests/test_rel.py").assert_outcomes(passed=1)
