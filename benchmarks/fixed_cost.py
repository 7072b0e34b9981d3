"""The fixed cost of a driving call: binding the virtual clock, with the Agent Framework loaded.

Every driving call (``run_until_idle``, ``advance``, each wait, each ``sim.http``
request) points the wall clock at virtual time for its duration. With
freezegun's ``start``/``stop`` that cost one read of every loaded module per
call (13 ms with the Agent Framework's modules loaded); the simulator's own
binding (:mod:`dafx_testing.core.time_patch`) reads only the modules loaded
since the last call. Both sides are measured here, in this process, taking
turns, with the Agent Framework packages imported first::

    python benchmarks/fixed_cost.py

``fixed_cost_section()`` gives the figures to ``benchmarks/run.py``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

from runner import run_module

AGENT_FRAMEWORK = ["agent_framework", "agent_framework.azure", "agent_framework.openai",
                   "agent_framework.foundry"]
"""What an agent project imports: the Agent Framework, its Functions host and model clients."""

TARGET_SECONDS = 0.001
"""The issue's bound: at most 1 ms of fixed cost per driving call."""


def _runner() -> ModuleType:
    return run_module()


def load_agent_framework() -> int:
    """Import the Agent Framework packages; return how many modules are loaded then."""
    for name in AGENT_FRAMEWORK:
        try:
            importlib.import_module(name)
        except ImportError:           # an optional client missing: fewer modules, still measured
            pass
    return len(sys.modules)


def fixed_cost_section(repetitions: int = 15, batch: int = 20) -> list[Any]:
    """Two figures: binding the clock (before vs after), and a whole idle driving call.

    Each repetition times ``batch`` calls of each side (the sides taking turns) and
    the figure is the median repetition's time per call.
    """
    import azure.durable_functions as df
    import freezegun

    from dafx_testing import Simulator
    from dafx_testing.core.clock import VirtualClock

    run = _runner()
    modules = load_agent_framework()

    def freezegun_binding() -> None:           # what VirtualClock.bound() did per outermost block
        patch = freezegun.freeze_time("2025-01-01", real_asyncio=True)
        patch.start()
        patch.stop()

    clock = VirtualClock()

    def our_binding() -> None:
        with clock.bound():
            pass

    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def idle(context: Any) -> None:
        return None

    sim = Simulator(app)

    def driving_call() -> None:                # an idle run_until_idle: the fixed cost and no work
        sim.run_until_idle()

    for warm_up in (freezegun_binding, our_binding, driving_call):
        warm_up()
    # freezegun's start reads every attribute of every module, which imports some lazily:
    # count the modules once all sides have run, as the figures were measured with.
    def batched(action: Any) -> Any:
        def calls() -> None:
            for _ in range(batch):
                action()
        return calls

    freezegun_time, ours, call = (median / batch for median in run.medians(
        repetitions, batched(freezegun_binding), batched(our_binding), batched(driving_call)))
    modules = max(modules, len(sys.modules))
    target = run.Target(TARGET_SECONDS, unit="s")
    case = f"{modules} modules loaded (Agent Framework imported)"
    return [
        run.Figure("fixed cost per driving call", f"clock binding, {case}", "s", ours,
                   freezegun_time, "freezegun start/stop (before)", freezegun_time / ours,
                   "x faster", target, repetitions),
        run.Figure("fixed cost per driving call", f"idle run_until_idle, {case}", "s", call,
                   target=target, repetitions=repetitions),
    ]


def main() -> None:
    run = _runner()
    figures = fixed_cost_section()
    print(run.table(figures))
    for figure in figures:
        print(f"{figure.case}: {figure.ours * 1e3:.3f} ms "
              f"({'met' if figure.met else 'MISSED'} <= {TARGET_SECONDS * 1e3:g} ms)")


if __name__ == "__main__":
    main()
