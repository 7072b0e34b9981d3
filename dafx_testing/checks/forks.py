"""Crash runs as forks of one run: a crash sweep without re-running every prefix.

Until its crash, a crash run is the baseline step for step. Running the scenario
again from the start for every commit point therefore repeats the same prefix
P times over. Instead, a sweep can run the scenario once more and, at each point
it wants a crash at, fork the process: the child *is* that crash run at that
instant (the scenario's position in its own code, the task hub, the app's
module memory and fakes, all copied by the operating system) and crashes there,
while the parent carries on to the next point as if nothing happened. A sweep
then costs one more run plus each crash run's recovery, not one prefix per point.

The copy is the process's memory and nothing else: state an app keeps outside
the process (files, a database) is shared by the forks, so sweeps of such apps
need ``isolation="rerun"``. Forking needs POSIX and a process with one thread
(a fork copies only the calling thread; another thread's locks would stay held
in the child), so :func:`can_fork` says when it is safe and the sweep reruns
otherwise.

The same pass serves crash sweeps that prune (:func:`dafx_testing.checks.sweep.crash_sweep`,
``prune=True``): at each point it first asks whether the crash run there is decided without
running (it provably converges at once) and forks only the others; a ``rerun`` sweep makes
the pass without forking and reruns the points it left undecided.

:class:`Forks` is the part both kinds of sweep share: children forked off one run, each under
a key, each handing its result back through a pipe. :class:`ForkPass` forks a crash sweep's
runs at commit points; a model-fault sweep (:mod:`dafx_testing.checks.fault_sweep`) forks its
runs between worker steps, where its pass is just before a model call.
"""

from __future__ import annotations

import gc
import os
import pickle
import random
import sys
import threading
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, NoReturn, TypeVar

from ..core.crash import CommitPoint

__all__ = ["ForkPass", "Forks", "PassOver", "can_fork", "ISOLATIONS"]

R = TypeVar("R")

ISOLATIONS = ("auto", "fork", "rerun")
"""How crash runs are isolated: ``fork`` one pass at each point, ``rerun`` the
scenario per point, or ``auto``: fork where :func:`can_fork` allows, else rerun."""


def can_fork(explicit: bool = False) -> str | None:
    """None if this process can fork crash runs now, else why not.

    By default only Linux forks; macOS forks when asked explicitly (its system
    frameworks are not fork-safe, which plain Python code rarely meets).
    """
    if not hasattr(os, "fork"):
        return f"the platform ({sys.platform}) has no fork()"
    if not explicit and not sys.platform.startswith("linux"):
        return f"fork() is not used by default on {sys.platform}"
    threads = threading.enumerate()
    if len(threads) > 1:
        names = ", ".join(t.name for t in threads if t is not threading.current_thread())
        return f"other threads are running ({names}); a forked copy would lose them"
    return None


class PassOver(BaseException):
    """Ends the parent's pass: every wanted point is forked, or the run left the baseline."""


class Forks:
    """Children forked off one run of a scenario, each under a key, and what each found.

    :meth:`fork` copies the process: in the child it returns True, and the child runs on to
    the end of its run, where the sweep calls :meth:`finish_child` with what the run found;
    in the parent it returns False and the parent's run goes on. :meth:`collect` waits for
    the children and gives their results by key.

    Args:
        on_result: called in the parent with each child's key and result, in the order the
            children were forked.
        max_running: children running at once (the parent's run goes on meanwhile).
    """

    def __init__(self, on_result: Callable[[Any, Any], None],
                 max_running: int | None = None) -> None:
        self.on_result = on_result
        self.max_running = max_running or max(1, os.cpu_count() or 1)
        self.in_child = False
        self.results: dict[Any, Any] = {}
        self._running: list[tuple[Hashable, int, int]] = []     # (key, pid, read end)
        self._pipe = -1

    def fork(self, key: Hashable) -> bool:
        """Fork a child for ``key``: True in the child, False in the parent."""
        _flush()                                 # or the child would write it out again
        # The child gets the parent's random state, as a rerun would have it (CPython
        # reseeds the random module in a forked child).
        state = random.getstate()
        read, write = os.pipe()
        gc.freeze()        # the child's collections then leave the parent's objects (and pages) alone
        pid = os.fork()
        if pid == 0:
            for *_, sibling in self._running:    # the parent's ends of the other children
                os.close(sibling)
            os.close(read)
            random.setstate(state)
            self.in_child, self._pipe = True, write
            self._running.clear()
            return True
        gc.unfreeze()
        os.close(write)
        self._running.append((key, pid, read))
        while len(self._running) >= self.max_running:
            self._collect_oldest()
        return False

    def finish_child(self, result: Any) -> NoReturn:
        """In the child: hand ``result`` to the parent and exit (never returns)."""
        code = 1
        try:
            data = pickle.dumps(result)
            with os.fdopen(self._pipe, "wb") as pipe:
                pipe.write(data)
            _flush()
            code = 0
        finally:
            os._exit(code)

    def fail_child(self) -> NoReturn:
        """In the child, when its run went wrong: exit without a result (the run is rerun)."""
        os._exit(1)

    def run_pass(self, run: Callable[[], R], child_result: Callable[[R], Any]) -> dict[Any, Any]:
        """Run the forking pass ``run()`` and collect what its children found, by key.

        In a child, the run's outcome (``child_result``) goes to the parent and the child
        exits; a run that raises :class:`PassOver` has nothing left to fork; one that fails
        kills its children (a child that fails exits without a result: it is rerun).
        """
        try:
            result = run()
            if self.in_child:
                self.finish_child(child_result(result))
        except PassOver:
            pass
        except BaseException:
            if self.in_child:
                self.fail_child()
            self.abandon()
            raise
        try:
            return self.collect()
        except BaseException:
            self.abandon()
            raise

    def collect(self) -> dict[Any, Any]:
        """Wait for every child; the results by key (a child that failed has none)."""
        while self._running:
            self._collect_oldest()
        return self.results

    def abandon(self) -> None:
        """Kill and reap the children still running (the parent's run is failing)."""
        for _, pid, read in self._running:
            os.close(read)
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass
        self._running.clear()

    def _collect_oldest(self) -> None:
        key, pid, read = self._running.pop(0)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0 and data:
            self.results[key] = result = pickle.loads(data)
            self.on_result(key, result)


class ForkPass(Forks):
    """Forks a crash run at each wanted commit point of one more run of the scenario.

    Install :meth:`at_point` as the run's ``CrashLog.branch``. In the child it
    returns True (crash here) and the child runs on to the end of its run, where
    the sweep calls :meth:`finish_child` with what the run found. In the parent
    it returns False after starting the child, so the pass goes on; after the
    last wanted point it raises :class:`PassOver` (with ``decide``, at the end of
    that point's step: :meth:`step_done`). Results are keyed by point index.

    Args:
        expected: the baseline's points; a pass that reaches a different point
            left the baseline (the scenario is not deterministic) and stops, so
            the remaining points are left to reruns.
        wanted: indices of the points to fork a crash run at.
        max_running: children running at once (the parent's pass runs meanwhile).
        on_result: called in the parent with each child's point index and result,
            in the order of the points.
        decide: called in the parent at every point with whether it is wanted; True
            when the wanted point needs no crash run (the sweep decided it without
            one, or will at the end of the step: see :meth:`step_done`), so no fork.
        forking: False for a pass that only decides (``rerun`` sweeps that prune): the
            points it does not decide are left to reruns.
    """

    def __init__(self, expected: Sequence[CommitPoint], wanted: Collection[int],
                 on_result: Callable[[int, Any], None], max_running: int | None = None,
                 decide: Callable[[CommitPoint, bool], bool] | None = None,
                 forking: bool = True) -> None:
        super().__init__(on_result, max_running)
        self.expected = expected
        self.wanted = set(wanted)
        self.last = max(self.wanted, default=-1)
        self.decide = decide
        self.forking = forking
        self._over = False

    def at_point(self, point: CommitPoint) -> bool:
        """The ``CrashLog.branch`` hook: True in the child that crashes at ``point``."""
        if self.in_child:
            return False                         # a crash run crashes once, where it was forked
        if point.index >= len(self.expected) or point != self.expected[point.index]:
            raise PassOver()
        wanted = point.index in self.wanted
        if self.decide is not None:
            if (not self.decide(point, wanted) and wanted and self.forking
                    and self.fork(point.index)):
                return True
            # Some decisions wait for the end of the step: the pass ends there (step_done).
            self._over = self._over or point.index >= self.last
            return False
        if not wanted:
            return False
        if self.fork(point.index):
            return True
        if point.index >= self.last:
            raise PassOver()
        return False

    def step_done(self) -> None:
        """Call after each worker step of the pass: with ``decide``, it ends after the last point."""
        if self._over and not self.in_child:
            raise PassOver()


def _flush() -> None:
    """Flush Python's buffered output (none under pythonw, where the streams are None)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
