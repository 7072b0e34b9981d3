"""The pytest plugin: ``dafx`` (a Simulator for the configured app) and ``fake_llm``.

Configure the app once in ``pytest.ini``/``pyproject.toml`` (``dafx_app``) or per
module/test with ``@pytest.mark.dafx_app("path/to/function_app.py")``. A marker
path is relative to the test file's folder; an ini path to the rootdir. Only
pytest is imported here; the engine and the fake LLM load when a fixture is used.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dafx", "dafx-testing (in-memory Durable Functions)")
    group.addoption("--dafx-record", action="store_true", default=None,
                    help="fake_llm cassette markers record from the real model instead of replaying")
    group.addoption("--dafx-update-goldens", action="store_true", default=None,
                    help="rewrite golden files instead of comparing with them")
    parser.addini("dafx_app", "app the dafx fixture simulates: path to function_app.py or "
                              "pkg.module:app", default="")
    parser.addini("dafx_record", "record fake_llm cassettes (like --dafx-record)", type="bool",
                  default=False)
    parser.addini("dafx_update_goldens", "rewrite golden files (like --dafx-update-goldens)",
                  type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    from dafx_testing.llm.pytest_fixture import MARKER

    for flag in ("record", "update_goldens"):      # command line over ini over default
        if config.getoption(f"dafx_{flag}") is None:
            setattr(config.option, f"dafx_{flag}", config.getini(f"dafx_{flag}"))
    config.addinivalue_line(
        "markers", "dafx_app(app): the app (function_app.py path or pkg.module:app) that the "
                   "dafx fixture simulates for this test")
    config.addinivalue_line("markers", MARKER)


@pytest.fixture
def fake_llm(request: pytest.FixtureRequest):
    """A :class:`dafx_testing.llm.FakeLLM` answering every model call of the test."""
    from dafx_testing.llm.pytest_fixture import fake_llm as body

    yield from body(request)


@pytest.fixture
def dafx(request: pytest.FixtureRequest):
    """A fresh :class:`dafx_testing.Simulator` for the configured app.

    When the test also uses ``fake_llm``, the fake starts first (so apps that
    build model clients at import time find its credentials and endpoints) and
    stamps its replies with the simulator's virtual time.
    """
    from dafx_testing import Simulator

    fake = request.getfixturevalue("fake_llm") if "fake_llm" in request.fixturenames else None
    marker = request.node.get_closest_marker("dafx_app")
    if marker is not None:
        if not marker.args:
            raise pytest.UsageError("@pytest.mark.dafx_app needs the app, e.g. "
                                    "@pytest.mark.dafx_app('function_app.py')")
        app, base = marker.args[0], Path(request.node.path).parent
    else:
        app, base = request.config.getini("dafx_app"), Path(request.config.rootpath)
    if not app:
        raise pytest.UsageError(
            "the dafx fixture needs an app: set 'dafx_app' in your pytest configuration or mark "
            "the test with @pytest.mark.dafx_app('path/to/function_app.py')")
    if isinstance(app, str) and app.endswith(".py"):
        app = str((base / app).resolve())
    sim = Simulator(app)
    if fake is not None:
        fake.clock = lambda: sim.now
    return sim
