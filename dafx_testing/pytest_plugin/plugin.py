"""The pytest plugin (entry point ``dafx``; disable it with ``-p no:dafx``).

Fixtures:

* ``dafx``: a fresh :class:`~dafx_testing.Simulator` of the configured app, per test;
* ``dafx_factory``: ``dafx_factory(app=None, **simulator_kwargs)`` builds more
  (another app, another seed), configured like ``dafx``;
* ``virtual_clock``: ``dafx``'s virtual time (:class:`~dafx_testing.pytest_plugin.virtual_clock.ClockControl`):
  ``.now``, ``.elapsed``, ``.advance(hours=1)``, ``.move_to("2025-01-02T09:00Z")``;
* ``fake_llm``: a :class:`~dafx_testing.llm.FakeLLM` answering the app's model calls;
* ``dafx_golden``: ``dafx_golden(name, value)`` compares with a golden file
  (:mod:`dafx_testing.pytest_plugin.goldens`).

Markers: ``dafx_app(app)``, ``dafx_seed(n)``, ``crash_sweep(...)``
(:mod:`dafx_testing.pytest_plugin.sweep_marker`), ``fault_sweep(...)``
(:mod:`dafx_testing.pytest_plugin.fault_sweep_marker`) and ``fake_llm(...)``. Options, ini values and
their precedence: :mod:`dafx_testing.pytest_plugin.config`. A failing test that built
simulators gets a ``dafx`` report section with their timelines and the command
that reproduces it (:mod:`dafx_testing.pytest_plugin.failure_report`). The two SDK
warnings the simulator provokes on purpose are silenced in every test (:data:`SDK_WARNINGS`).

The app is configured once in ``pytest.ini``/``pyproject.toml`` (``dafx_app``,
relative to the rootdir) or per module/test with
``@pytest.mark.dafx_app("function_app.py")`` (relative to the test file).
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import sweep_marker
from .config import MARKERS, PluginConfig, add_options

if TYPE_CHECKING:
    from ..simulator import Simulator
    from .factory import SimulatorFactory
    from .goldens import Goldens
    from .virtual_clock import ClockControl

_CONFIG = pytest.StashKey[PluginConfig]()
_FACTORY = pytest.StashKey["SimulatorFactory"]()
_GOLDEN_WRITTEN = "dafx_golden_written"

SDK_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # The SDK warns when a completion arrives twice; crash sweeps deliver duplicates on purpose.
    ("Potential duplicate Task completion", UserWarning),
    # azure.functions' one-time notice when the SDK decodes history without a type.
    (r"azure\.functions df_loads was called without expected_type", DeprecationWarning),
)
"""(message regex, category) of the SDK warnings every test ignores; the tool provokes them."""


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from .fake_llm import MARKER

    settings = PluginConfig.from_pytest(config)
    config.stash[_CONFIG] = settings
    config.option.dafx_record = settings.record     # what the fake_llm fixture reads
    for marker in (*MARKERS, MARKER):
        config.addinivalue_line("markers", marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Ignore :data:`SDK_WARNINGS` inside pytest's own warning filters.

    Added innermost (not as ini lines), so ``-W error`` or a ``filterwarnings``
    mark cannot turn them into failures of the replay; other warnings stay as configured.
    """
    with warnings.catch_warnings():
        for message, category in SDK_WARNINGS:
            warnings.filterwarnings("ignore", message, category)
        return (yield)


def pytest_report_header(config: pytest.Config) -> str:
    return config.stash[_CONFIG].header()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sweep_marker.parametrize(metafunc, metafunc.config.stash[_CONFIG])


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    if not _swept(pyfuncitem):
        return None
    factory = pyfuncitem.stash.get(_FACTORY, None)
    if pyfuncitem.get_closest_marker(sweep_marker.MARKER) is not None:
        sweep_marker.run(pyfuncitem, pyfuncitem.config.stash[_CONFIG], factory)
    else:
        from . import fault_sweep_marker

        fault_sweep_marker.run(pyfuncitem, factory)
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None],
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    factory = item.stash.get(_FACTORY, None)
    if factory is None or not (report.failed or report.when == "call"):
        return report
    swept = _swept(item)         # the sweep's own explanation shows its runs' timelines
    reproduce = factory.config.reproduce(item.nodeid, factory.seed_pinned, swept)
    if report.failed:
        from .failure_report import render

        report.sections.append(("dafx", render([] if swept else factory.built, reproduce)))
    folder = factory.config.html
    if folder is not None and factory.built and report.when in ("setup", "call"):
        from .html_pages import PAGE, failure_message, write_test_page

        page = write_test_page(folder, item.nodeid, report.outcome, factory.built, reproduce,
                               item.stash.get(sweep_marker.SWEEP_REPORT, None),
                               failure_message(report),
                               item.stash.get(sweep_marker.SWEEP_BASELINE, None))
        report.user_properties.append((PAGE, page))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reports = [r for group in terminalreporter.stats.values() for r in group
               if getattr(r, "when", None) == "call"]
    from . import fault_sweep_marker

    for title, sweeps in (("dafx crash sweeps", sweep_marker.summary(reports)),
                          ("dafx fault sweeps", fault_sweep_marker.summary(reports))):
        if sweeps:
            terminalreporter.write_sep("=", title)
            for line in sweeps:
                terminalreporter.write_line(line)
    written = [path for r in reports for key, path in r.user_properties if key == _GOLDEN_WRITTEN]
    if written:
        terminalreporter.write_sep("=", f"dafx: wrote {len(written)} golden file(s)")
        for path in written:
            terminalreporter.write_line(path)
    _write_html_index(terminalreporter)


def _write_html_index(terminalreporter: Any) -> None:
    """Link the pages of ``--dafx-html`` (written by whichever process ran each test)."""
    folder = terminalreporter.config.stash[_CONFIG].html
    if folder is None:
        return
    from .html_pages import PAGE, write_index_page

    reports = [r for group in terminalreporter.stats.values() for r in group
               if getattr(r, "when", None) in ("setup", "call")]
    pages = [page for r in reports for key, page in r.user_properties if key == PAGE]
    index = write_index_page(folder, pages)
    terminalreporter.write_sep("=", f"dafx: {len(pages)} HTML page(s), index at {index}")


@pytest.fixture
def fake_llm(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A :class:`dafx_testing.llm.FakeLLM` answering every model call of the test."""
    from .fake_llm import fake_llm as body

    yield from body(request)


@pytest.fixture
def dafx_factory(request: pytest.FixtureRequest) -> SimulatorFactory:
    """Build simulators: ``dafx_factory(app=None, **simulator_kwargs)``.

    ``app`` defaults to the test's configured app (marker, then ini); a path is
    relative to the test file. Keywords go to :class:`~dafx_testing.Simulator`
    over the configured seed, start time and guard. With ``fake_llm`` the fake
    starts first (apps that build model clients at import find its endpoints)
    and stamps replies with the first simulator's virtual time.
    """
    from .factory import SimulatorFactory

    fake = request.getfixturevalue("fake_llm") if "fake_llm" in request.fixturenames else None
    factory = SimulatorFactory(request, request.config.stash[_CONFIG], fake)
    request.node.stash[_FACTORY] = factory
    return factory


@pytest.fixture
def dafx(dafx_factory: SimulatorFactory) -> Simulator:
    """A fresh :class:`dafx_testing.Simulator` for the configured app.

    Configured by ``dafx_app``/``@pytest.mark.dafx_app``, the seed
    (``@pytest.mark.dafx_seed`` > ``--dafx-seed`` > ``dafx_seed``), ``dafx_start_time``
    and ``dafx_guard``.
    """
    return dafx_factory()


@pytest.fixture
def dafx_attached(dafx_factory: SimulatorFactory) -> Iterator[Simulator]:
    """A durabletask simulator that serves every worker and client the test's program makes.

    Inside the test, ``worker.start()`` attaches a ``TaskHubGrpcWorker`` (or
    ``DurableAIAgentWorker``) to it and every durabletask client talks to it, with
    sleeps and ``asyncio.run`` in virtual time (:func:`dafx_testing.durabletask.programs.attach`),
    so a sample's ``main()`` runs unmodified. Configured like ``dafx``.
    """
    yield from dafx_factory.attached()


@pytest.fixture
def virtual_clock(dafx: Simulator, dafx_factory: SimulatorFactory) -> ClockControl:
    """The virtual time of ``dafx``: ``.now``, ``.elapsed``, ``.advance(hours=1)``, ``.move_to()``.

    See :class:`~dafx_testing.pytest_plugin.virtual_clock.ClockControl`.
    """
    from .virtual_clock import ClockControl

    # Taking dafx makes sure the simulator exists; a crash sweep swaps the current one per run.
    return ClockControl(dafx_factory.current_simulator)


@pytest.fixture
def dafx_golden(request: pytest.FixtureRequest) -> Goldens:
    """Compare a value with a golden file: ``dafx_golden(name, value)``.

    Files live in ``goldens/<test module>/`` beside the test file;
    ``--dafx-update-goldens`` writes them. See :mod:`dafx_testing.pytest_plugin.goldens`.
    """
    from .goldens import Goldens

    test_file = Path(request.node.path)

    def written(path: str) -> None:
        request.node.user_properties.append((_GOLDEN_WRITTEN, path))

    return Goldens(test_file.parent / "goldens" / test_file.stem, Path(request.config.rootpath),
                   request.config.stash[_CONFIG].update_goldens, request.node.nodeid, written)


def _swept(item: pytest.Item) -> bool:
    return (item.config.stash[_CONFIG].sweep != "off"
            and any(item.get_closest_marker(name) is not None
                    for name in sweep_marker.SWEEP_MARKERS))
