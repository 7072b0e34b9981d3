"""A progress bar for long work, drawn only where a person is watching.

The bar goes to stderr, so stdout stays clean for pipes and ``--json``; and it
is drawn only when that stream is a terminal, so logs and CI output get no
control characters::

    bar = ProgressBar("sweep", "crash runs")
    report = sim.crash_sweep(scenario, progress=bar)     # bar(done, planned) after each run
    bar.close()

It redraws in place (a carriage return, no cursor codes) and only when what it
shows changes. The total may grow while the work runs (a pairs sweep plans
more runs as it goes).
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Call it with ``(done, total)``; :meth:`close` ends the line.

    Args:
        label: what is running, shown first (``"sweep"``).
        unit: what is counted (``"crash runs"``).
        stream: where to draw (default ``sys.stderr``); nothing is drawn unless
            it is a terminal.
        width: the bar's width in characters.
    """

    def __init__(self, label: str, unit: str, stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = ""

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        filled = self.width * done // total if total else self.width
        text = (f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total} {self.unit}")
        if text != self._shown:
            self.stream.write(text)
            self.stream.flush()
            self._shown = text

    def close(self) -> None:
        """End the bar's line (if one was drawn), so later output starts on a fresh line."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = ""
