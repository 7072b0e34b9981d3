"""What finds bugs in an app: the orchestrator guard and its table of non-deterministic
APIs, perturbed replay and hash-seed children, the Replayer, history diffs, crash sweeps
(forked or rerun) and Hypothesis-driven exploration.

Imports :mod:`~dafx_testing.core`, :mod:`~dafx_testing.functions`,
:mod:`~dafx_testing.agents` and :mod:`~dafx_testing.llm` (to count model calls); never
:mod:`~dafx_testing.reports`, which draws what the checks find.
"""
