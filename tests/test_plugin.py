"""The pytest plugin, driven through pytester: configuring the ``dafx`` fixture, and its errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

QUIET = ("-o", "asyncio_default_fixture_loop_scope=function")   # silence pytest-asyncio's notice

HELLO_APP = (Path(__file__).parent / "apps" / "hello_app.py").read_text(encoding="utf-8")

USES_DAFX = """\
import pytest
from dafx_testing import InstanceNotFoundError, Simulator
{mark}

def test_runs_the_app(dafx):
    assert isinstance(dafx, Simulator)
    instance_id = dafx.start_new("hello", "Tokyo", instance_id="first")
    assert dafx.wait_for_completion(instance_id).output == "{greeting} Tokyo"


def test_each_test_gets_a_fresh_simulator(dafx):
    with pytest.raises(InstanceNotFoundError):
        dafx.get_status("first")
"""


def app_source(greeting: str) -> str:
    return HELLO_APP.replace('"hello "', f'"{greeting} "')


def dafx_tests(mark: str = "", greeting: str = "hello") -> str:
    return USES_DAFX.format(mark=mark, greeting=greeting)


def write(pytester: pytest.Pytester, path: str, source: str) -> None:
    target = pytester.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(source), encoding="utf-8")


def test_the_ini_option_is_relative_to_the_rootdir(pytester):
    pytester.makeini("[pytest]\ndafx_app = apps/function_app.py\n")
    write(pytester, "apps/function_app.py", app_source("hello"))
    # A same-named file beside the test must not be picked: the ini path is rootdir-relative.
    write(pytester, "tests/apps/function_app.py", app_source("wrong"))
    write(pytester, "tests/test_ini.py", dafx_tests())

    result = pytester.runpytest(*QUIET, "tests")

    result.assert_outcomes(passed=2)


def test_the_ini_option_takes_a_module_reference(pytester):
    pytester.makeini("[pytest]\ndafx_app = myapps.greeter:app\npythonpath = .\n")
    write(pytester, "myapps/__init__.py", "")
    write(pytester, "myapps/greeter.py", app_source("hi"))
    write(pytester, "test_module_ref.py", dafx_tests(greeting="hi"))

    result = pytester.runpytest(*QUIET)

    result.assert_outcomes(passed=2)


def test_the_marker_path_is_relative_to_the_test_file(pytester):
    write(pytester, "function_app.py", app_source("wrong"))   # rootdir: must not be used
    write(pytester, "tests/orders/function_app.py", app_source("hello"))
    write(pytester, "tests/orders/test_marked.py",
          dafx_tests(mark='pytestmark = pytest.mark.dafx_app("function_app.py")'))

    result = pytester.runpytest(*QUIET)

    result.assert_outcomes(passed=2)


def test_the_marker_overrides_the_ini_option(pytester):
    pytester.makeini("[pytest]\ndafx_app = does/not/exist/function_app.py\n")
    write(pytester, "here/function_app.py", app_source("marked"))
    write(pytester, "here/test_override.py", """\
        import pytest


        @pytest.mark.dafx_app("function_app.py")
        def test_marked(dafx):
            instance_id = dafx.start_new("hello", "Ana")
            assert dafx.wait_for_completion(instance_id).output == "marked Ana"


        def test_unmarked_uses_the_ini(dafx):
            pass
        """)

    result = pytester.runpytest(*QUIET)

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_unmarked_uses_the_ini*", "*app file not found*"])


def test_a_marker_without_the_app_is_a_usage_error(pytester):
    write(pytester, "test_bare_marker.py", """\
        import pytest


        @pytest.mark.dafx_app
        def test_it(dafx):
            pass
        """)

    result = pytester.runpytest(*QUIET)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*UsageError*@pytest.mark.dafx_app needs the app*",
        "*@pytest.mark.dafx_app('function_app.py')*",
    ])


def test_no_configuration_is_a_usage_error_naming_both_ways(pytester):
    write(pytester, "test_unconfigured.py", "def test_it(dafx):\n    pass\n")

    result = pytester.runpytest(*QUIET)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*UsageError: the dafx fixture needs an app: set 'dafx_app' in your pytest "
        "configuration or mark the test with @pytest.mark.dafx_app('path/to/function_app.py')*",
    ])


def test_the_marker_is_registered(pytester):
    result = pytester.runpytest(*QUIET, "--markers")

    result.stdout.fnmatch_lines(["@pytest.mark.dafx_app(app): *dafx fixture*"])
    assert result.ret == 0


def test_the_marker_passes_strict_markers(pytester):
    write(pytester, "function_app.py", app_source("hello"))
    write(pytester, "test_strict.py",
          dafx_tests(mark='pytestmark = pytest.mark.dafx_app("function_app.py")'))

    result = pytester.runpytest(*QUIET, "--strict-markers")

    result.assert_outcomes(passed=2)


def test_the_ini_option_is_listed_in_help(pytester):
    result = pytester.runpytest(*QUIET, "--help")

    result.stdout.fnmatch_lines(["*dafx_app (string):*"])


def test_the_plugin_can_be_disabled(pytester):
    write(pytester, "function_app.py", app_source("hello"))
    write(pytester, "test_disabled.py",
          dafx_tests(mark='pytestmark = pytest.mark.dafx_app("function_app.py")'))

    result = pytester.runpytest(*QUIET, "-p", "no:dafx")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'dafx' not found*"])
    markers = pytester.runpytest(*QUIET, "-p", "no:dafx", "--markers")
    assert "dafx_app" not in markers.stdout.str()
    options = pytester.runpytest(*QUIET, "-p", "no:dafx", "--dafx-seed=1")
    options.stderr.fnmatch_lines(["*unrecognized arguments: --dafx-seed=1*"])


def test_a_failing_sweep_explains_each_failing_run_with_its_history(pytester):
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n")
    # Greeting is an outside effect (a line in a file): the instance completes as in the
    # baseline after every crash, but a crash that makes greet run twice shows in the file.
    write(pytester, "function_app.py", HELLO_APP.replace('    return "hello " + name', """\
    with open("greeted.txt", "a") as greeted:
        greeted.write(name + "\\n")
    return "hello " + name"""))
    write(pytester, "test_ledger.py", """\
        from pathlib import Path

        import pytest


        def greeted():
            return Path("greeted.txt").read_text().split()


        @pytest.mark.crash_sweep(effects=greeted, isolation="rerun")   # forks would share the file
        def test_greets_once(dafx):
            Path("greeted.txt").write_text("")
            dafx.wait_for_completion(dafx.start_new("hello", "Cy", instance_id="greets-cy"))
        """)

    result = pytester.runpytest(*QUIET)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "crash at #* activity greet (greets-cy task 0):",
        "  - the outside world differs: expected *, got *",
        "  recovered history of greets-cy:",
        '      *started hello input=*',
        '      *<- activity greet #0 result="hello Cy"',
        "  reproduce: CrashPlan(at=*",
    ])
