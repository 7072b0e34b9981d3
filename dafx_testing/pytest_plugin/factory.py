"""The ``dafx_factory`` fixture: every simulator a test builds, configured one way.

``dafx`` is the factory's first simulator; a test that needs more (two apps,
two seeds, a second run to compare) calls the factory::

    def test_two_apps(dafx_factory):
        orders = dafx_factory("orders/function_app.py")
        billing = dafx_factory("billing/function_app.py", seed=7)

Each call resolves the app and the options exactly as the ``dafx`` fixture
does (see :mod:`dafx_testing.pytest_plugin.config`), then applies the keywords given.
The factory remembers what it built, so a failing test's report can show every
simulator's timeline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from .config import PluginConfig, resolve_app, resolve_seed

if TYPE_CHECKING:
    from ..llm.fake import FakeLLM
    from ..simulator import Simulator

__all__ = ["SimulatorFactory", "BuiltSimulator"]


@dataclass(frozen=True)
class BuiltSimulator:
    """A simulator the factory built, with the app label and start time reports show."""

    simulator: Simulator
    app: str
    start: datetime


class SimulatorFactory:
    """Builds :class:`~dafx_testing.Simulator` objects for one test.

    Args:
        request: the test's fixture request (for markers and paths).
        config: the session's resolved settings.
        fake_llm: the test's fake LLM, if it uses one; once a simulator is
            built, its replies are stamped with the virtual time of :attr:`current`.

    Attributes:
        seed: the test's seed; ``seed_pinned``: a ``dafx_seed`` marker set it.
        built: every simulator built, in order.
        current: the simulator ``dafx``, ``virtual_clock`` and ``fake_llm``
            follow: the first one built, or the one a crash-sweep run drives.
    """

    def __init__(self, request: pytest.FixtureRequest, config: PluginConfig,
                 fake_llm: FakeLLM | None = None) -> None:
        self._request = request
        self.config = config
        self.seed, self.seed_pinned = resolve_seed(request, config)
        self.built: list[BuiltSimulator] = []
        self.current: Simulator | None = None
        self._fake_llm = fake_llm

    def __call__(self, app: Any = None, **simulator_kwargs: Any) -> Simulator:
        """A new simulator of ``app`` (default: the test's configured app).

        Args:
            app: a path (relative to the test file), ``"pkg.module:app"`` or an
                app object; None uses the ``dafx_app`` marker or ini value.
            simulator_kwargs: any :class:`~dafx_testing.Simulator` keyword; they
                override the configured ``seed``, ``start_time`` and ``guard``.
        """
        from ..simulator import Simulator

        resolved, label = resolve_app(self._request, app)
        options = {"seed": self.seed, "start_time": self.config.start_time,
                   "guard": self.config.guard, **simulator_kwargs}
        sim = Simulator(resolved, **options)
        self.built.append(BuiltSimulator(sim, label, sim.now))
        if self.current is None:
            self.current = sim
            if self._fake_llm is not None:
                self._fake_llm.clock = lambda: self.current_simulator().now
        return sim

    def attached(self, **simulator_kwargs: Any) -> Iterator[Simulator]:
        """A durabletask simulator serving the test program's workers and clients (``attach``).

        Configured as ``dafx`` is (seed, start time, guard), remembered for reports,
        and undone when the test ends; the simulator stays readable meanwhile.
        """
        from ..durabletask.programs import attach

        options = {"seed": self.seed, "start_time": self.config.start_time,
                   "guard": self.config.guard, **simulator_kwargs}
        with attach(**options) as sim:
            self.built.append(BuiltSimulator(sim, "attach()", sim.now))
            if self.current is None:
                self.current = sim
                if self._fake_llm is not None:
                    self._fake_llm.clock = lambda: self.current_simulator().now
            yield sim

    def current_simulator(self) -> Simulator:
        """The :attr:`current` simulator; a :class:`~dafx_testing.DafxError` before any is built."""
        if self.current is None:
            from ..core.errors import DafxError

            raise DafxError("dafx_factory has not built a simulator yet: take the dafx fixture "
                            "or call dafx_factory() first")
        return self.current

    @contextlib.contextmanager
    def driving(self, sim: Simulator) -> Iterator[None]:
        """Make ``sim`` the :attr:`current` simulator inside the block (one crash-sweep run)."""
        previous, self.current = self.current, sim
        try:
            yield
        finally:
            self.current = previous
