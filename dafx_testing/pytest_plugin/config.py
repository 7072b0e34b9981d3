"""The pytest plugin's configuration surface: options, ini values, markers, precedence.

Every setting is resolved once per session into a :class:`PluginConfig` (and
per test for what a marker can override), with one rule everywhere::

    marker  >  command line  >  ini value  >  default

* the app: ini ``dafx_app``, marker ``dafx_app(app)``;
* the seed: ``--dafx-seed=N``, ini ``dafx_seed``, marker ``dafx_seed(n)`` (default 0);
* the virtual start time: ini ``dafx_start_time``, ISO 8601 (default 2025-01-01T00:00:00Z);
* the non-determinism guard: ini ``dafx_guard``: error (default), warn or off;
* crash sweeps of ``crash_sweep`` tests (and whether ``fault_sweep`` tests are swept):
  ``--dafx-sweep``, ini ``dafx_sweep``: off, points (default) or pairs;
* sweep shards: ``--dafx-sweep-shards``, ini ``dafx_sweep_shards``: N, or auto (default: one
  per pytest-xdist worker, else 1);
* fake_llm cassettes record: ``--dafx-record``, ini ``dafx_record``;
* golden files are rewritten: ``--dafx-update-goldens``, ini ``dafx_update_goldens``.

A bad value stops the run with a :class:`pytest.UsageError` that names the
setting, where it came from, and the valid values.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

__all__ = ["PluginConfig", "SWEEP_MODES", "MARKERS", "add_options", "resolve_app", "resolve_seed"]

SWEEP_MODES = ("off", "points", "pairs")
"""``off``: a ``crash_sweep`` (or ``fault_sweep``) test runs once, as a plain test; ``points``:
it is swept with one crash at every commit point; ``pairs``: and at every pair (a
``fault_sweep`` test is swept the same way under both)."""

MARKERS = (
    "dafx_app(app): the app (function_app.py path relative to the test file, or "
    "pkg.module:app) that the dafx fixture simulates for this test",
    "dafx_seed(n): the seed of the simulators this test builds (over --dafx-seed and dafx_seed)",
    "crash_sweep(once=(), idempotent=(), kinds=None, effects=None, isolation='auto'): the test "
    "is a scenario over the dafx fixture; run it with a crash at every commit point "
    "(--dafx-sweep) and fail on any lost or duplicated work. The keywords are those of "
    "Simulator.crash_sweep",
    "fault_sweep(faults=FAULT_KINDS, expect=None, effects=None): the test is a scenario over the "
    "dafx fixture; run it again with each model call failing each way (a FaultPlan per run) and "
    "fail on a broken run (expect='survive': on any run that did not survive). The keywords are "
    "those of Simulator.fault_sweep; --dafx-sweep=off runs the test once",
)

_T = TypeVar("_T")


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--dafx-*`` options (group "dafx") and their ini twins."""
    group = parser.getgroup("dafx", "dafx-testing (in-memory Durable Functions)")
    group.addoption("--dafx-seed", metavar="N", default=None,
                    help="seed of every simulator (a dafx_seed marker still wins); ini: dafx_seed")
    group.addoption("--dafx-sweep", metavar="MODE", default=None,
                    help="how crash_sweep tests run: off (once, as a plain test), points (a crash "
                         "at every commit point, the default) or pairs; fault_sweep tests are "
                         "swept unless off; ini: dafx_sweep")
    group.addoption("--dafx-sweep-shards", metavar="N", default=None,
                    help="split each crash or fault sweep into N test items; 'auto' (the default) makes one "
                         "per pytest-xdist worker; ini: dafx_sweep_shards")
    group.addoption("--dafx-record", action="store_true", default=None,
                    help="fake_llm cassette markers record from the real model instead of "
                         "replaying; ini: dafx_record")
    group.addoption("--dafx-update-goldens", action="store_true", default=None,
                    help="write golden files (dafx_golden) instead of comparing with them; "
                         "ini: dafx_update_goldens")
    group.addoption("--dafx-html", metavar="DIR", default=None,
                    help="write a self-contained HTML page per test that used a simulator "
                         "(timelines, agent sessions, sweep results) and DIR/index.html; "
                         "ini: dafx_html")
    parser.addini("dafx_app", "app the dafx fixture simulates: path to function_app.py (relative "
                              "to the rootdir) or pkg.module:app", default="")
    parser.addini("dafx_seed", "seed of every simulator (like --dafx-seed)", default="0")
    parser.addini("dafx_start_time", "the virtual clock's first instant, ISO 8601 "
                                     "(default 2025-01-01T00:00:00Z)", default="")
    parser.addini("dafx_guard", "non-deterministic API guard around orchestrator code: error, "
                                "warn or off", default="error")
    parser.addini("dafx_sweep", "how crash_sweep tests run: off, points or pairs; fault_sweep "
                                "tests are swept unless off (like --dafx-sweep)", default="points")
    parser.addini("dafx_sweep_shards", "test items per crash sweep: a number, or auto (one per "
                                       "xdist worker)", default="auto")
    parser.addini("dafx_record", "record fake_llm cassettes (like --dafx-record)", type="bool",
                  default=False)
    parser.addini("dafx_update_goldens", "write golden files (like --dafx-update-goldens)",
                  type="bool", default=False)
    parser.addini("dafx_html", "folder for HTML pages of the tests (like --dafx-html), relative "
                               "to the rootdir", default="")


@dataclass(frozen=True)
class PluginConfig:
    """The session's effective dafx settings (before per-test markers).

    Attributes:
        app: the ``dafx_app`` ini value ('' when unset).
        seed: from ``--dafx-seed``, else ``dafx_seed``, else 0.
        start_time: the virtual clock's first instant.
        guard: the guard mode every simulator gets.
        sweep: one of :data:`SWEEP_MODES`.
        shards: test items each crash or fault sweep is split into (1: not split).
        record: fake_llm cassettes record instead of replaying.
        update_goldens: golden files are written instead of compared.
        html: the folder HTML pages go to (None: no pages).
    """

    app: str
    seed: int
    start_time: datetime
    guard: str
    sweep: str
    shards: int
    record: bool
    update_goldens: bool
    html: Path | None = None

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> PluginConfig:
        """Resolve and validate every setting; raise :class:`pytest.UsageError` on a bad one."""
        from dafx_testing.checks.guard import MODES
        from dafx_testing.core.clock import DEFAULT_START, to_utc

        return cls(
            app=config.getini("dafx_app"),
            seed=_setting(config, "seed", _parse_seed, "an integer, e.g. 7"),
            start_time=_setting(config, "start_time",
                                lambda raw: to_utc(raw) if raw else DEFAULT_START,
                                "an ISO 8601 time, e.g. 2025-01-01T09:30:00Z"),
            guard=_setting(config, "guard", _choice(MODES), _listing(MODES)),
            sweep=_setting(config, "sweep", _choice(SWEEP_MODES), _listing(SWEEP_MODES)),
            shards=_setting(config, "sweep_shards", lambda raw: _parse_shards(raw, config),
                            "a positive integer or 'auto'"),
            record=bool(_setting(config, "record", bool, "true or false")),
            update_goldens=bool(_setting(config, "update_goldens", bool, "true or false")),
            html=_html_folder(config),
        )

    def header(self) -> str:
        """The line pytest shows under its header: what every simulator starts from."""
        return (f"dafx: app {self.app or '(per test)'}, seed {self.seed}, start "
                f"{self.start_time.isoformat()}, guard {self.guard}, crash sweeps {self.sweep}"
                + (f" in {self.shards} shards" if self.shards > 1 else ""))

    def reproduce(self, nodeid: str, seed_pinned: bool, swept: bool) -> str:
        """The command line that runs ``nodeid`` again with the same seed and sweep split.

        ``seed_pinned``: a marker fixes the seed, so ``--dafx-seed`` is not needed.
        """
        words = ["pytest", nodeid]
        if not seed_pinned:
            words.append(f"--dafx-seed={self.seed}")
        if swept:
            words.append(f"--dafx-sweep={self.sweep}")
            if self.shards > 1:
                words.append(f"--dafx-sweep-shards={self.shards}")
        return " ".join(shlex.quote(word) for word in words)


def resolve_app(request: pytest.FixtureRequest, app: Any = None) -> tuple[Any, str]:
    """The app a simulator of this test runs, and a label for reports.

    ``app`` given in code or by the ``dafx_app`` marker is relative to the
    test file's folder; the ``dafx_app`` ini value to the rootdir. Module
    references (``pkg.module:app``) and app objects pass through unchanged.
    """
    if app is not None:
        base = Path(request.node.path).parent
    else:
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
    if isinstance(app, str) and (app.endswith(".py") or (base / app).is_dir()):
        return str((base / app).resolve()), app       # a file or an app folder
    file, colon, name = app.rpartition(":") if isinstance(app, str) else ("", "", "")
    if colon and file.endswith(".py") and name.isidentifier():   # a worker module's builder
        return f"{(base / file).resolve()}:{name}", app
    return app, app if isinstance(app, str) else type(app).__name__


def resolve_seed(request: pytest.FixtureRequest, config: PluginConfig) -> tuple[int, bool]:
    """The test's seed and whether a ``dafx_seed`` marker pinned it."""
    marker = request.node.get_closest_marker("dafx_seed")
    if marker is None:
        return config.seed, False
    if len(marker.args) != 1 or marker.kwargs or not _is_int(marker.args[0]):
        given = ", ".join([repr(a) for a in marker.args]
                          + [f"{k}={v!r}" for k, v in marker.kwargs.items()])
        raise pytest.UsageError(f"@pytest.mark.dafx_seed({given}) on {request.node.nodeid}: "
                                "the marker takes one integer, e.g. @pytest.mark.dafx_seed(7)")
    return marker.args[0], True


def _setting(config: pytest.Config, name: str, parse: Callable[[Any], _T], valid: str) -> _T:
    """The command-line value of ``dafx_<name>`` if given, else its ini value, parsed."""
    raw = config.getoption(f"dafx_{name}", default=None)
    where = f"--dafx-{name.replace('_', '-')}"
    if raw is None:
        raw, where = config.getini(f"dafx_{name}"), f"the ini value dafx_{name}"
    try:
        return parse(raw)
    except ValueError:
        raise pytest.UsageError(f"{where}: {raw!r} is not valid; expected {valid}") from None


def _html_folder(config: pytest.Config) -> Path | None:
    """``--dafx-html`` (relative to where pytest runs), else ``dafx_html`` (to the rootdir)."""
    given = config.getoption("dafx_html", default=None)
    if given:
        return config.invocation_params.dir / given
    configured = config.getini("dafx_html")
    return config.rootpath / configured if configured else None


def _parse_seed(raw: str) -> int:
    return int(str(raw).strip())


def _parse_shards(raw: str, config: pytest.Config) -> int:
    text = str(raw).strip().lower()
    if text == "auto":           # pytest-xdist gives each worker the count of all of them
        return int(getattr(config, "workerinput", {}).get("workercount", 1))
    count = int(text)
    if count < 1:
        raise ValueError(count)
    return count


def _choice(valid: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = str(raw).strip().lower()
        if value not in valid:
            raise ValueError(value)
        return value

    return parse


def _listing(valid: tuple[str, ...]) -> str:
    return "one of " + ", ".join(valid)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
