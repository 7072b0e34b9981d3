"""Per-run numbering: the ids the fakes put on the wire start again with every simulator.

A served reply's ids derive from its serial number (:class:`~dafx_testing.llm.replies.Stamp`):
``chatcmpl-dafx0003``, ``resp_dafx0003``, ``msg_dafx0003``, tool calls ``call_3_0`` and
``fc_call_3_0``. Numbered per fake, the runs of a crash sweep (each a fresh simulator, one fake
for all) would see ``…0001`` in the baseline and ``…0002`` in the next run; an agent entity
stores the model's replies with their ids, so no crash run would ever hold the baseline's state
and converge early. So a simulator numbers the model calls answered while it works: it opens
:func:`numbering` around its work (``Simulator.host_code``), and every
:class:`~dafx_testing.llm.FakeLLM` takes its serials from the innermost open run. Each
simulator counts from 1, whichever fake answers, so one scenario gets byte-identical replies
in every run, and ids stay unique within a run. Outside any simulator a fake numbers its own
requests (``LLMRequest.index``), as before.

Like :func:`~dafx_testing.llm.plan.injecting`, the open runs are process-wide, not per thread:
the Agent Framework calls the model from its own event-loop thread.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Run", "current_run", "numbering"]


@dataclass(eq=False)
class Run:
    """The numbering of one simulator's model calls.

    Attributes:
        key: unique in the process, for what a fake keeps per run (stored Responses API
            conversations).
        served: the serials handed out so far (the last one handed out).
    """

    key: int
    served: int = 0

    def next_serial(self) -> int:
        """The serial of the next call answered in this run: 1, 2, 3, ..."""
        with _lock:
            self.served += 1
            return self.served


_RUNS: weakref.WeakKeyDictionary[object, Run] = weakref.WeakKeyDictionary()
_OPEN: list[Run] = []
_KEYS = itertools.count(1)
_lock = threading.Lock()


@contextmanager
def numbering(owner: object) -> Iterator[Run]:
    """Number the model calls any fake answers inside the block as ``owner``'s (a simulator).

    ``owner`` keeps one :class:`Run` for its life: its second block goes on counting where
    the first stopped. Blocks nest: the innermost open run numbers the calls (a simulator
    driven inside another's work numbers its own).
    """
    with _lock:
        run = _RUNS.get(owner)
        if run is None:
            run = _RUNS[owner] = Run(next(_KEYS))
        _OPEN.append(run)
    try:
        yield run
    finally:
        with _lock:      # the innermost entry of this run: blocks close in reverse order
            del _OPEN[len(_OPEN) - 1 - _OPEN[::-1].index(run)]


def current_run() -> Run | None:
    """The innermost open run; ``None`` outside any simulator's work."""
    with _lock:
        return _OPEN[-1] if _OPEN else None
