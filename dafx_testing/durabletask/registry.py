"""What a durabletask worker has registered, looked up the way its backend looks it up.

A ``TaskHubGrpcWorker`` (or a ``DurableTaskSchedulerWorker``, or one wrapped by
the Agent Framework's ``DurableAIAgentWorker``) keeps its orchestrators,
activities and entities in ``worker._registry``; the SDK itself dispatches work
items by those names. Orchestrator and activity names match exactly; entity
names are stored lowercased (``_Registry.add_named_entity``), and
``EntityInstanceId`` lowercases what callers pass, so entity lookups fold case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from durabletask.worker import TaskHubGrpcWorker

from ..core.errors import ArgumentError, UnknownFunctionError
from ..core.payloads import short_repr

__all__ = ["WorkerIndex", "unwrap_worker", "is_worker"]

ORCHESTRATOR, ACTIVITY, ENTITY = "orchestrator", "activity", "entity"


def is_worker(target: Any) -> bool:
    """Whether ``target`` is a durabletask worker, or an object wrapping one."""
    return isinstance(target, TaskHubGrpcWorker) or isinstance(
        getattr(target, "_worker", None), TaskHubGrpcWorker)


def unwrap_worker(target: Any) -> TaskHubGrpcWorker:
    """The ``TaskHubGrpcWorker`` itself: ``target`` or the one a ``DurableAIAgentWorker`` wraps."""
    if isinstance(target, TaskHubGrpcWorker):
        return target
    inner = getattr(target, "_worker", None)
    if isinstance(inner, TaskHubGrpcWorker):
        return inner
    raise ArgumentError(
        f"expected a durabletask worker (TaskHubGrpcWorker, DurableTaskSchedulerWorker, or a "
        f"DurableAIAgentWorker wrapping one), got {short_repr(target)}")


@dataclass(frozen=True)
class WorkerFunction:
    """One registration: its name as the worker dispatches it, its kind and the user's callable."""

    name: str
    kind: str
    user_function: Any


@dataclass
class WorkerIndex:
    """The registrations of the workers a simulation runs, read like the Functions app index.

    ``workers`` holds every worker ever attached, so their registrations stay
    readable after they stop (samples stop theirs before you look); ``running``
    those that take work now. ``wrappers`` keeps what the user handed over when
    it wraps a worker (a ``DurableAIAgentWorker`` knows its agents' names).
    """

    workers: list[TaskHubGrpcWorker] = field(default_factory=list)
    running: list[TaskHubGrpcWorker] = field(default_factory=list)
    wrappers: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, target: Any) -> WorkerIndex:
        """The index of ``target`` (a worker, a wrapper, or an index), running."""
        if isinstance(target, WorkerIndex):
            return target
        index = cls()
        index.start(target)
        return index

    def start(self, target: Any) -> None:
        """Attach a worker (or the worker a wrapper holds): it takes work from now on."""
        worker = unwrap_worker(target)
        if target is not worker and target not in self.wrappers:
            self.wrappers.append(target)
        if worker not in self.workers:
            self.workers.append(worker)
        if worker not in self.running:
            self.running.append(worker)

    def stop(self, worker: TaskHubGrpcWorker) -> None:
        """Detach a worker: its registrations stay readable, it takes no more work."""
        if worker in self.running:
            self.running.remove(worker)

    @property
    def app(self) -> Any:
        """What the simulation runs: the one worker (or its wrapper), else the index itself."""
        if len(self.workers) == 1:
            return self.wrappers[0] if self.wrappers else self.workers[0]
        return self

    @property
    def functions(self) -> list[WorkerFunction]:
        """Every registration, the first worker's first when two register one name."""
        found: dict[tuple[str, str], WorkerFunction] = {}
        for worker in self.workers:
            for kind in (ORCHESTRATOR, ACTIVITY, ENTITY):
                for name, function in _table(worker, kind).items():
                    found.setdefault((kind, name), WorkerFunction(name, kind, function))
        return list(found.values())

    def worker_for(self, kind: str, name: str) -> TaskHubGrpcWorker | None:
        """The running worker that gets work for ``name``: one that registers it, else the
        first running one (which answers as the SDK does for an unknown name), else None."""
        wanted = name.lower() if kind == ENTITY else name
        for worker in self.running:
            if wanted in _table(worker, kind):
                return worker
        return self.running[0] if self.running else None

    def agent_names(self) -> list[str] | None:
        """The agents' names as registered (a ``DurableAIAgentWorker`` keeps their case)."""
        names: list[str] = []
        for wrapper in self.wrappers:
            if getattr(wrapper, "_worker", None) in self.workers:
                listed = getattr(wrapper, "registered_agent_names", ())   # a property, or a method
                names.extend(listed() if callable(listed) else listed)
        return names or None

    def agent(self, name: str) -> Any:
        """The agent object a ``DurableAIAgentWorker`` registered as ``name`` (case folds), or None."""
        for wrapper in self.wrappers:
            if getattr(wrapper, "_worker", None) not in self.workers:
                continue
            for registered, agent in getattr(wrapper, "_registered_agents", {}).items():
                if registered.lower() == name.lower():
                    return agent
        return None

    def names(self, kind: str) -> list[str]:
        return [f.name for f in self.functions if f.kind == kind]

    def find(self, kind: str, name: str) -> WorkerFunction | None:
        """The registration ``name`` refers to (entity names fold case), or None."""
        wanted = name.lower() if kind == ENTITY else name
        return next((f for f in self.functions if f.kind == kind and f.name == wanted), None)

    def get(self, kind: str, name: str) -> WorkerFunction:
        found = self.find(kind, name)
        if found is None:
            known = ", ".join(repr(n) for n in self.names(kind)) or "none"
            raise UnknownFunctionError(
                f"the worker registers no {kind} {name!r}; its {kind}s: {known}")
        return found


def _table(worker: TaskHubGrpcWorker, kind: str) -> dict[str, Any]:
    """The worker's registrations of one kind, by the name it dispatches them under."""
    registry = worker._registry
    tables: dict[str, dict[str, Any]] = {ORCHESTRATOR: registry.orchestrators,
                                         ACTIVITY: registry.activities, ENTITY: registry.entities}
    return tables[kind]
