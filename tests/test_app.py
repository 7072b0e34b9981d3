"""Loading and indexing apps: every way to name an app, host name resolution, loud failures."""

from __future__ import annotations

import hashlib
import importlib
import sys
import textwrap
import warnings
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func
import pytest

from dafx_testing import AppLoadError, DafxWarning, UnknownFunctionError
from dafx_testing.functions.app import ACTIVITY, HTTP, ORCHESTRATOR, index_app, load_app

HEADER = """\
import azure.durable_functions as df
import azure.functions as func

"""

HELLO_APP = HEADER + """\
app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def hello(context):
    return (yield context.call_activity("greet", context.get_input()))


@app.activity_trigger(input_name="name")
def greet(name):
    return "hello " + name
"""


@pytest.fixture(autouse=True)
def isolated_imports():
    """Undo what loading apps does to ``sys.path`` and ``sys.modules``."""
    saved_path = sys.path[:]
    saved_modules = {k: v for k, v in sys.modules.items() if k.startswith("function_app")}
    yield
    sys.path[:] = saved_path
    for name in list(sys.modules):
        if name.startswith(("function_app", "dafxtest_")):
            del sys.modules[name]
    sys.modules.update(saved_modules)


def write(folder: Path, source: str, name: str = "function_app.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    importlib.invalidate_caches()
    return path


def module_package(tmp_path: Path, monkeypatch, package: str, source: str) -> str:
    """Write ``<package>/apps.py`` importable from ``tmp_path``; returns ``package.apps``."""
    write(tmp_path / package, "", "__init__.py")
    write(tmp_path / package, source, "apps.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{package}.apps"


def index_quietly(app_ref):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DafxWarning)   # these apps must not trip the pitfalls
        return index_app(app_ref)


# --- every way to name an app ----------------------------------------------------------


def test_an_app_object_is_used_as_is():
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def orchestrate(context):
        return "done"

    index = index_quietly(app)

    assert load_app(app) is app
    assert index.app is app
    assert index.names(ORCHESTRATOR) == ["orchestrate"]


def test_a_path_to_function_app_py_is_imported_as_the_worker_does(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "function_app", raising=False)
    path = write(tmp_path / "app_one", HELLO_APP)

    index = index_quietly(str(path))

    module = sys.modules["function_app"]
    assert Path(module.__file__).resolve() == path.resolve()
    assert index.app is module.app
    assert str(path.parent.resolve()) in sys.path   # the worker puts the app folder on sys.path
    assert index.names(ORCHESTRATOR) == ["hello"]
    assert index.names(ACTIVITY) == ["greet"]


def test_an_app_file_can_import_modules_beside_it(tmp_path):
    folder = tmp_path / "with_helpers"
    write(folder, "GREETING = 'ahoy'\n", "dafxtest_helpers.py")
    path = write(folder, HEADER + "from dafxtest_helpers import GREETING\n\napp = df.DFApp()\n")

    load_app(path)

    assert sys.modules["dafxtest_helpers"].GREETING == "ahoy"


def test_a_second_app_file_gets_a_hashed_module_name(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "function_app", raising=False)
    first = write(tmp_path / "first", HELLO_APP)
    second = write(tmp_path / "second", HELLO_APP)

    first_app = load_app(first)
    second_app = load_app(second)

    digest = hashlib.sha1(str(second.resolve()).encode()).hexdigest()[:10]
    assert sys.modules["function_app"].app is first_app
    assert sys.modules[f"function_app_{digest}"].app is second_app
    assert first_app is not second_app


def test_loading_the_same_file_twice_returns_the_same_module(tmp_path):
    path = write(tmp_path / "app", HELLO_APP)

    by_path = load_app(path)
    by_string = load_app(str(path))
    by_folder = load_app(path.parent)
    by_folder_string = load_app(str(path.parent) + "/")

    assert by_path is by_string is by_folder is by_folder_string
    loaded = [m for m in list(sys.modules.values())
              if getattr(m, "__file__", None) and Path(m.__file__).resolve() == path.resolve()]
    assert len(loaded) == 1


def test_a_folder_is_read_as_its_function_app_py(tmp_path):
    path = write(tmp_path / "folder_app", HELLO_APP)

    index = index_quietly(tmp_path / "folder_app")

    assert index.names(ORCHESTRATOR) == ["hello"]
    assert index.app is load_app(path)


@pytest.mark.parametrize("where, ref", [("", "blueprint"), ("blueprint", "."),
                                        ("", "./blueprint"), ("", "blueprint/")])
def test_an_existing_folder_without_a_slash_is_the_app_in_it(tmp_path, monkeypatch, where, ref):
    path = write(tmp_path / "blueprint", HELLO_APP)
    monkeypatch.chdir(tmp_path / where)

    index = index_quietly(ref)

    assert index.names(ORCHESTRATOR) == ["hello"]
    assert index.app is load_app(path)


def test_a_module_attr_string_is_imported(tmp_path, monkeypatch):
    name = module_package(tmp_path, monkeypatch, "dafxtest_attr", HELLO_APP + "\nother = 1\n")

    index = index_quietly(f"{name}:app")

    assert index.app is sys.modules[name].app
    assert index.names(ACTIVITY) == ["greet"]


def test_a_bare_module_name_finds_its_app(tmp_path, monkeypatch):
    source = HEADER + textwrap.dedent("""\
        my_app = df.DFApp()


        @my_app.activity_trigger(input_name="x")
        def double(x):
            return 2 * x
        """)
    name = module_package(tmp_path, monkeypatch, "dafxtest_bare", source)

    index = index_quietly(name)

    assert index.app is sys.modules[name].my_app
    assert index.names(ACTIVITY) == ["double"]


def test_a_module_with_several_apps_prefers_the_one_named_app(tmp_path, monkeypatch):
    source = HELLO_APP + "\nspare = df.DFApp()\n"
    name = module_package(tmp_path, monkeypatch, "dafxtest_several", source)

    assert load_app(name) is sys.modules[name].app


# --- loud loading failures -------------------------------------------------------------


def test_a_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "function_app.py"

    with pytest.raises(AppLoadError, match="app file not found") as caught:
        load_app(missing)

    assert str(missing) in str(caught.value)


def test_a_folder_without_function_app_py_names_the_file_it_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(AppLoadError, match="app file not found") as caught:
        load_app(str(tmp_path / "empty"))

    assert str(tmp_path / "empty" / "function_app.py") in str(caught.value)


def test_a_folder_without_function_app_py_lists_its_python_files(tmp_path, monkeypatch):
    write(tmp_path / "blueprint", HELLO_APP, "orders.py")
    write(tmp_path / "blueprint", "", "__init__.py")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(AppLoadError) as caught:
        load_app("blueprint")

    assert str(caught.value) == (
        "app file not found: folder 'blueprint' has no function_app.py (looked for "
        f"{tmp_path.resolve() / 'blueprint' / 'function_app.py'}, the file the Python worker "
        "loads); its Python files: __init__.py, orders.py. Pass the app's folder, its file "
        "(e.g. 'blueprint/orders.py'), or 'blueprint:app' for the package")
    assert index_quietly("blueprint/orders.py").names(ORCHESTRATOR) == ["hello"]


def test_an_unimportable_module_names_it_and_the_fix():
    with pytest.raises(AppLoadError) as caught:
        load_app("dafxtest_no_such_module:app")

    message = str(caught.value)
    assert "cannot import 'dafxtest_no_such_module'" in message
    assert "'package.module:app'" in message and "function_app.py" in message
    assert isinstance(caught.value.__cause__, ImportError)


def test_a_module_whose_import_raises_is_an_app_load_error(tmp_path, monkeypatch):
    name = module_package(tmp_path, monkeypatch, "dafxtest_raises",
                          "raise RuntimeError('settings missing')\n")

    with pytest.raises(AppLoadError, match="settings missing"):
        load_app(f"{name}:app")


def test_a_missing_attribute_lists_the_apps_the_module_has(tmp_path, monkeypatch):
    name = module_package(tmp_path, monkeypatch, "dafxtest_missing_attr", HELLO_APP)

    with pytest.raises(AppLoadError) as caught:
        load_app(f"{name}:application")

    message = str(caught.value)
    assert f"module {name!r} has no attribute 'application'" in message
    assert "its apps: app" in message


def test_an_attribute_that_is_not_an_app_is_named(tmp_path, monkeypatch):
    name = module_package(tmp_path, monkeypatch, "dafxtest_not_app", HELLO_APP + "\nVALUE = 3\n")

    with pytest.raises(AppLoadError, match="is a int, not a FunctionApp"):
        load_app(f"{name}:VALUE")


def test_a_module_without_an_app_says_so(tmp_path, monkeypatch):
    name = module_package(tmp_path, monkeypatch, "dafxtest_no_app", "VALUE = 3\n")

    with pytest.raises(AppLoadError, match=f"{name} defines no FunctionApp/DFApp object"):
        load_app(name)


def test_a_file_without_an_app_says_so(tmp_path):
    path = write(tmp_path / "plain", "VALUE = 3\n")

    with pytest.raises(AppLoadError, match="defines no FunctionApp/DFApp object") as caught:
        load_app(path)

    assert str(path) in str(caught.value)


def test_a_file_with_several_apps_and_none_named_app_asks_for_one(tmp_path):
    path = write(tmp_path / "two", HEADER + "first = df.DFApp()\nsecond = df.DFApp()\n")

    with pytest.raises(AppLoadError, match=r"several apps \(first, second\); name one"):
        load_app(path)


def test_a_file_whose_import_raises_names_the_file_and_the_error(tmp_path):
    path = write(tmp_path / "broken", "import os\nraise KeyError('STORAGE_CONNECTION')\n")

    with pytest.raises(AppLoadError) as caught:
        load_app(path)

    message = str(caught.value)
    assert f"importing {path.resolve()} failed" in message
    assert "KeyError" in message and "STORAGE_CONNECTION" in message
    # The half-imported module is not left behind to be returned by the next load.
    assert not any(getattr(m, "__file__", None) and Path(m.__file__).resolve() == path.resolve()
                   for m in list(sys.modules.values()))
    with pytest.raises(AppLoadError, match="failed"):
        load_app(path)


BROKEN_HOST_JSON = '{\n  "version": "2.0",\n  "logging": {"logLevel": {"default": "Debug",}}\n}\n'
BROKEN_HOST_JSON_ERROR = (
    "is not valid JSON: Expecting property name enclosed in double quotes at line 3, column 47 "
    "(the Durable SDK parses it with Python's json module: strict JSON, no comments, no "
    "trailing commas)")


@pytest.mark.parametrize("ref, shown", [("app", "app/host.json"),
                                        ("app/function_app.py", "app/host.json"),
                                        (".", "host.json")])
def test_an_invalid_host_json_beside_the_app_is_named_with_line_and_column(
        tmp_path, monkeypatch, ref, shown):
    path = write(tmp_path / "app", HELLO_APP)
    (tmp_path / "app" / "host.json").write_text(BROKEN_HOST_JSON, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "app" if ref == "." else tmp_path)

    with pytest.raises(AppLoadError) as caught:
        index_app(ref)

    assert str(caught.value) == f"{shown} {BROKEN_HOST_JSON_ERROR}"
    assert not any(getattr(m, "__file__", None) and Path(m.__file__).resolve() == path.resolve()
                   for m in list(sys.modules.values()))      # the app was not imported


def test_an_invalid_host_json_beside_an_app_module_is_named(tmp_path, monkeypatch):
    name = module_package(tmp_path, monkeypatch, "dafxtest_host_json", HELLO_APP)
    (tmp_path / "dafxtest_host_json" / "host.json").write_text(BROKEN_HOST_JSON, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(AppLoadError) as caught:
        index_app(f"{name}:app")

    assert str(caught.value) == f"dafxtest_host_json/host.json {BROKEN_HOST_JSON_ERROR}"


def test_a_valid_host_json_is_no_obstacle(tmp_path):
    write(tmp_path / "app", HELLO_APP)
    (tmp_path / "app" / "host.json").write_text('{"version": "2.0"}', encoding="utf-8")

    assert index_quietly(tmp_path / "app").names(ACTIVITY) == ["greet"]


def test_something_that_is_no_app_reference_is_rejected():
    with pytest.raises(AppLoadError, match="cannot use a int as an app"):
        load_app(42)


# --- names, as the host resolves them --------------------------------------------------


def named_app():
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context", orchestration="ProcessOrder")
    def process_order_impl(context):
        return None

    @app.function_name("Billing")
    @app.orchestration_trigger(context_name="context")
    def billing_impl(context):
        return None

    @app.function_name("IgnoredName")
    @app.orchestration_trigger(context_name="context", orchestration="AliasWins")
    def both_impl(context):
        return None

    @app.orchestration_trigger(context_name="context")
    def plain_orchestrator(context):
        return None

    @app.activity_trigger(input_name="order", activity="ChargeCard")
    def charge_impl(order):
        return order

    @app.function_name("SendMail")
    @app.activity_trigger(input_name="mail")
    def send_mail_impl(mail):
        return mail

    return app


def test_names_follow_alias_then_function_name_then_python_name():
    index = index_quietly(named_app())

    assert index.names(ORCHESTRATOR) == [
        "ProcessOrder", "Billing", "AliasWins", "plain_orchestrator"]
    assert index.names(ACTIVITY) == ["ChargeCard", "SendMail"]
    assert index.get(ORCHESTRATOR, "ProcessOrder").user_function.__name__ == "process_order_impl"
    assert index.get(ACTIVITY, "SendMail").user_function.__name__ == "send_mail_impl"
    assert index.find(ORCHESTRATOR, "process_order_impl") is None
    assert index.find(ORCHESTRATOR, "IgnoredName") is None


def test_lookups_ignore_case():
    index = index_quietly(named_app())

    assert index.get(ORCHESTRATOR, "processorder").name == "ProcessOrder"
    assert index.find(ORCHESTRATOR, "BILLING").name == "Billing"
    assert index.find(ACTIVITY, "chargecard").name == "ChargeCard"
    assert index.find(ACTIVITY, "ProcessOrder") is None   # kinds are separate


def test_an_unknown_name_lists_the_known_ones():
    index = index_quietly(named_app())

    with pytest.raises(UnknownFunctionError) as caught:
        index.get(ORCHESTRATOR, "ProcesOrder")

    assert str(caught.value) == (
        "the app has no orchestrator named 'ProcesOrder'; known orchestrators: "
        "'ProcessOrder', 'Billing', 'AliasWins', 'plain_orchestrator'")
    assert isinstance(caught.value, LookupError)


def test_an_unknown_name_of_a_kind_the_app_lacks_says_none():
    index = index_quietly(named_app())

    with pytest.raises(UnknownFunctionError, match="no entity named 'Counter'; known .*: none$"):
        index.get("entity", "Counter")


def test_duplicate_names_are_rejected_naming_both_functions():
    app = df.DFApp()

    @app.activity_trigger(input_name="x", activity="Charge")
    def charge_v1(x):
        return x

    @app.activity_trigger(input_name="x", activity="charge")
    def charge_v2(x):
        return x

    with pytest.raises(AppLoadError) as caught:
        index_app(app)

    message = str(caught.value)
    assert "two activity functions are both named 'charge'" in message
    assert "charge_v1" in message and "charge_v2" in message


def test_the_same_name_in_different_kinds_is_allowed():
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context", orchestration="Order")
    def order_orchestrator(context):
        return None

    @app.activity_trigger(input_name="x", activity="Order")
    def order_activity(x):
        return x

    index = index_quietly(app)

    assert index.get(ORCHESTRATOR, "Order").user_function.__name__ == "order_orchestrator"
    assert index.get(ACTIVITY, "Order").user_function.__name__ == "order_activity"


# --- pitfalls the host would trip on ---------------------------------------------------


def test_an_orchestrator_not_bound_to_context_is_warned_about():
    app = df.DFApp()

    @app.orchestration_trigger(context_name="ctx")
    def orchestrate(ctx):
        return None

    with pytest.warns(DafxWarning, match="binds its trigger to 'ctx'") as record:
        index = index_app(app)

    assert "context_name='context'" in str(record[0].message)
    assert index.warnings == [str(w.message) for w in record if w.category is DafxWarning]


def test_a_sync_http_function_with_a_durable_client_is_warned_about():
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="start")
    @app.durable_client_input(client_name="client")
    def start(req, client):
        return None

    with pytest.warns(DafxWarning, match="'start' uses a durable client but is not 'async def'"):
        index = index_app(app)

    assert len(index.warnings) == 1


def test_a_correct_app_indexes_without_warnings():
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def orchestrate(context):
        return None

    @app.route(route="start")
    @app.durable_client_input(client_name="client")
    async def start(req, client):
        return None

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = index_app(app)

    assert index.warnings == []


# --- HTTP functions and the SDK's one-shot get_functions -------------------------------


def test_http_functions_are_indexed_with_route_methods_and_client():
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="/orchestrators/{name}/", methods=["post", func.HttpMethod.GET])
    @app.durable_client_input(client_name="starter")
    async def http_start(req, starter):
        return None

    @app.route()
    def health(req):
        return None

    index = index_quietly(app)

    start = index.get(HTTP, "http_start")
    assert (start.route, start.methods) == ("orchestrators/{name}", ("POST", "GET"))
    assert (start.trigger_param, start.client_param) == ("req", "starter")
    assert start.user_function.__name__ == "http_start"
    health_info = index.get(HTTP, "health")
    assert (health_info.route, health_info.methods) == ("health", ())
    assert health_info.client_param is None


def test_indexing_leaves_get_functions_to_the_host():
    app = named_app()

    index_quietly(app)
    index_quietly(app)                 # indexing twice is fine too

    # The SDK's get_functions() refuses a second call; the host's one call must still work.
    functions = app.get_functions()
    assert sorted(f.get_function_name() for f in functions) == sorted(
        ["process_order_impl", "Billing", "IgnoredName", "plain_orchestrator", "charge_impl",
         "SendMail"])
    with pytest.raises(ValueError, match="unique"):
        app.get_functions()


def test_indexing_never_calls_get_functions(monkeypatch):
    app = named_app()

    def forbidden():
        raise AssertionError("index_app called get_functions()")

    monkeypatch.setattr(app, "get_functions", forbidden)

    assert index_quietly(app).names(ACTIVITY) == ["ChargeCard", "SendMail"]
