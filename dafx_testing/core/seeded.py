"""Seeded ``uuid.uuid4`` and ``random`` for host-side code: same seed, same ids and draws.

App code names things with ``uuid4()``: the Agent Framework's
``/agents/{name}/run`` picks a session id and a correlation id that way, a
workflow executor its request ids, and they end up in the task hub (the
entity key, the stored conversation, the history). With real randomness, two
runs of one scenario would store different state, so a crash sweep could not
compare a recovered run with its baseline and a golden file could not hold a
conversation. While the simulator runs the app, ``uuid.uuid4`` draws from a
stream seeded by the simulator's seed instead. A stream, not a value per unit
of work: work retried after a crash still gets new ids, as it would for real,
so an "idempotency key" made up inside an activity is still caught.
In orchestrator code the determinism guard still reports a ``uuid4()``
(and without the guard a stream value still differs on every replay, as on a
real host, so perturbed replay sees it).

The ``random`` module's shared generator is seeded the same way (:class:`RandomStream`):
libraries draw from it too (the openai client's retry jitter, ``from random import
random``), and a back-off drawn from it lands at another virtual time on every run
unless the simulator owns the stream while it works.
"""

from __future__ import annotations

import contextlib
import functools
import random
import uuid
from collections.abc import Iterator

__all__ = ["random_uuid4", "seeded_uuid4", "RandomStream"]


def random_uuid4(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng`` (reproducible, unlike ``uuid.uuid4()``)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@contextlib.contextmanager
def seeded_uuid4(rng: random.Random) -> Iterator[None]:
    """Make ``uuid.uuid4()`` return version-4 UUIDs drawn from ``rng`` inside the block."""
    original = uuid.uuid4

    @functools.wraps(original)
    def seeded() -> uuid.UUID:
        return random_uuid4(rng)

    uuid.uuid4 = seeded
    try:
        yield
    finally:
        uuid.uuid4 = original


class RandomStream:
    """The state of ``random``'s shared generator while one simulator works.

    :meth:`owning` swaps the module's state for this stream's around the outermost
    block and swaps back after, so test code between driving calls keeps its own
    random numbers, and every ``from random import ...`` alias (they are bound to the
    same generator) draws from the simulator's stream meanwhile.
    """

    def __init__(self, seed: str) -> None:
        self._state = random.Random(seed).getstate()
        self._depth = 0

    @contextlib.contextmanager
    def owning(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        outside = random.getstate()
        random.setstate(self._state)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self._state = random.getstate()
            random.setstate(outside)
