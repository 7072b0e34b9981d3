"""Agent Framework durable agents as a test reads them: sessions and turns read back
from the agent entities' stored state.

Imports only :mod:`dafx_testing.core`.
"""
