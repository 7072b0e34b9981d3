"""The pytest plugin: a ``dafx`` fixture that simulates the configured app.

Configure the app once in ``pytest.ini``/``pyproject.toml`` (``dafx_app``) or per
module/test with ``@pytest.mark.dafx_app("path/to/function_app.py")``. A marker
path is relative to the test file's folder; an ini path to the rootdir. Only
pytest is imported here; the engine loads when the fixture is first used.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("dafx_app", "app the dafx fixture simulates: path to function_app.py or "
                              "pkg.module:app", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dafx_app(app): the app (function_app.py path or pkg.module:app) that the "
                   "dafx fixture simulates for this test")


@pytest.fixture
def dafx(request: pytest.FixtureRequest):
    """A fresh :class:`dafx_testing.Simulator` for the configured app."""
    from dafx_testing import Simulator

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
    return Simulator(app)
