"""The fake models' scripts as a sweep found them, put back before each of its runs.

A scripted reply is served once (``fake.reply("A").reply("B")`` is a queue). A sweep runs
its scenario many times against the same fakes: without putting the scripts back, the
baseline would use the replies up and every later run would find them gone. Forked runs
inherit the pass's fakes as they stood at the fork, so only runs that start afresh need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.timeline import preview

if TYPE_CHECKING:
    from ..llm.fake import FakeLLM

__all__ = ["FakeScripts"]


class FakeScripts:
    """The scripts of the active fakes as a sweep found them, restored before each of its runs."""

    def __init__(self, fakes: list[FakeLLM]) -> None:
        self.saved = [(fake, fake.checkpoint(), len(fake.errors)) for fake in fakes]

    def __enter__(self) -> FakeScripts:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()                  # the sweep leaves the fakes scripted as it found them

    def restore(self) -> None:
        for _, restore, _ in self.saved:
            restore()

    def has_new_errors(self) -> bool:
        """Whether the run so far made a fake raise a script error."""
        return any(len(fake.errors) > errors for fake, _, errors in self.saved)

    def state(self) -> tuple[Any, ...]:
        """Where each fake's scripts are: what each lane has served and holds, its fault rules.

        (Read from the fake's router, as :meth:`FakeLLM.checkpoint` saves it.)
        """
        state: list[Any] = []
        for fake, _, _ in self.saved:
            router = fake._router
            for lane in [router.default, *router.lanes]:
                rules = tuple((rule.kind, rule.fired, rule.times,
                               None if rule.rate is None else hash(rule._rng.getstate()))
                              for rule in lane.faults)
                state.append((lane.label, len(lane.steps), len(lane.served), rules))
            state.append(len(fake._conversations))
        return tuple(state)

    def take_errors(self) -> list[str]:
        """Script errors raised into the app during the run, cleared so no fake re-raises them."""
        found = []
        for fake, _, errors in self.saved:
            found += [f"the fake model's script failed: {type(e).__name__}: "
                      f"{preview(' '.join(str(e).split()), 300)}" for e in fake.errors[errors:]]
            del fake.errors[errors:]
        return found
