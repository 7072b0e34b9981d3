"""The progress bar: drawn in place on a terminal, silent anywhere else."""

from __future__ import annotations

import io

from dafx_testing.reports.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_redraws_in_place_and_ends_its_line():
    screen = Terminal()
    bar = ProgressBar("sweep", "crash runs", stream=screen, width=10)

    bar(1, 4)
    bar(2, 4)
    bar.close()

    assert screen.getvalue() == ("\rsweep [##........] 1/4 crash runs"
                                 "\rsweep [#####.....] 2/4 crash runs\n")


def test_it_draws_only_what_changed_and_follows_a_growing_total():
    screen = Terminal()
    bar = ProgressBar("sweep", "runs", stream=screen, width=4)

    bar(1, 2)
    bar(1, 2)
    bar(2, 8)          # a pairs sweep plans more runs as it goes

    assert screen.getvalue() == "\rsweep [##..] 1/2 runs\rsweep [#...] 2/8 runs"


def test_anywhere_but_a_terminal_nothing_is_drawn():
    log = io.StringIO()
    bar = ProgressBar("sweep", "crash runs", stream=log)

    bar(1, 2)
    bar.close()

    assert not bar.enabled
    assert log.getvalue() == ""


def test_closing_a_bar_that_never_drew_writes_nothing_and_zero_work_is_full():
    screen = Terminal()
    bar = ProgressBar("sweep", "runs", stream=screen, width=3)
    bar.close()
    assert screen.getvalue() == ""

    bar(0, 0)
    assert screen.getvalue() == "\rsweep [###] 0/0 runs"
