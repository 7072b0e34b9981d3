"""What a person reads: a history as interactions, Mermaid diagrams, standalone HTML pages,
recorded instances and the agent calls they hold, JSON output for scripts, the progress bar.

Imports :mod:`~dafx_testing.core`, :mod:`~dafx_testing.functions`,
:mod:`~dafx_testing.agents` and :mod:`~dafx_testing.checks` (to draw their results).
"""
