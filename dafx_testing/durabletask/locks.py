"""Entity critical sections on the durabletask host: locks granted, held and released.

An orchestration's ``ctx.lock_entities([...])`` sends an ``entityLockRequested``; the
sidecar grants all of the section's locks at once when every entity is free, or queues
the request, in the order asked (durabletask's in-memory backend, ``_try_grant_lock``
and ``_try_grant_pending_locks``). The grant reaches the orchestration as an
``entityLockGranted`` event; each ``entityUnlockSent`` frees one entity and lets waiting
sections in. While locked, an entity runs only its holder's operations (the dispatcher
asks :attr:`EntityRecord.locked_by <dafx_testing.core.hub.EntityRecord>`). All of it is
task-hub state, so a crash keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from durabletask.entities import EntityInstanceId
from durabletask.internal import orchestrator_service_pb2 as pb

from ..core.hub import EntityLock, EntityRecord, TaskHub

__all__ = ["EntityLocks"]

Deliver = Callable[[str, pb.HistoryEvent, str], object]
"""Send an event to an orchestration: (instance id, protocol event, execution id)."""


class EntityLocks:
    """The sidecar's lock table over one task hub."""

    def __init__(self, hub: TaskHub, deliver: Deliver) -> None:
        self.hub = hub
        self._deliver = deliver

    def request(self, lock: EntityLock) -> None:
        """A section asks for its locks: granted now if all are free, else it waits its turn."""
        self.hub.lock_requests.append(lock)
        self._grant()

    def unlock(self, entity_id: str, section: str) -> None:
        """A section releases one entity; what waited for it may run, and sections may enter."""
        record = self.hub.entities.get(entity_id)
        if record is not None and record.locked_by is not None and record.locked_by.section == section:
            record.locked_by = None
            if record.queue and entity_id not in self.hub.entities_ready:
                self.hub.entities_ready.append(entity_id)
        self._grant()

    def waits_of(self, instance_id: str) -> list[str]:
        """Why ``instance_id``'s critical section is not entered yet, one line per request."""
        causes = []
        for lock in self.hub.lock_requests:
            if lock.owner == instance_id:
                holders = {record.locked_by.owner for entity_id in lock.entities
                           if (record := self.hub.entities.get(entity_id)) is not None
                           and record.locked_by is not None}
                causes.append(f"its critical section waits for the locks of "
                              f"{', '.join(lock.entities)}, held by instance(s) "
                              f"{', '.join(sorted(holders))}")
        return causes

    def _grant(self) -> None:
        """Grant every waiting section whose entities are all free, in the order they asked."""
        waiting = []
        for lock in self.hub.lock_requests:
            records = [self.hub.entities.get(entity_id) for entity_id in lock.entities]
            if any(r is not None and r.locked_by is not None for r in records):
                waiting.append(lock)
                continue
            for entity_id in lock.entities:
                parsed = EntityInstanceId.parse(entity_id)
                record = self.hub.entities.setdefault(
                    entity_id, EntityRecord(name=parsed.entity, key=parsed.key))
                record.locked_by = lock
            granted = pb.HistoryEvent(eventId=-1, entityLockGranted=pb.EntityLockGrantedEvent(
                criticalSectionId=lock.section))
            self._deliver(lock.owner, granted, lock.owner_execution)
        self.hub.lock_requests = waiting
