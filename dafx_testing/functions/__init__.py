"""The Azure Functions host: the app index, host-side replay, one orchestration episode,
entity batches, activities, the worker that commits one step at a time, the durable client
and HTTP routing in memory, status-API histories and the replay fast path.

Imports only :mod:`dafx_testing.core`.
"""
