"""The second host: Durable Task SDK workers (``durabletask``) and their durable agents.

Teams that host orchestrations and Agent Framework durable agents outside Azure
Functions run a ``TaskHubGrpcWorker`` (or ``DurableTaskSchedulerWorker``, or a
``DurableAIAgentWorker`` wrapping one) against a sidecar. Here the sidecar is the
simulator: ``Simulator(worker)`` drives the worker's own executors one work item
at a time, on the same task hub, clock, crash points and checks as the Functions
host (:mod:`dafx_testing.functions`), whose engine it shares.

May import ``core``, ``agents``, ``functions`` (the shared engine) and the
``simulator`` front end it extends.
"""
