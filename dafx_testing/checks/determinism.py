"""Perturbed replays: run each episode again in another world and compare.

The host replays an orchestrator from its history every time the instance
wakes up, possibly in another process, on another machine, hours later. A
replay must make the same decisions. After each episode, :class:`PerturbedReplay`
calls the same orchestrator again with the very same history, but in a
perturbed world:

* **the wall clock** reads another time (``datetime.now``, ``time.time``...
  shifted by :attr:`PerturbedReplay.clock_shift`);
* **random** is reseeded (and restored afterwards, so your run's own random
  stream is untouched); ``uuid4``, ``os.urandom`` and ``secrets`` differ anyway;
* **environment variables** the orchestrator reads are flipped: a set one
  reads as unset, an unset one as ``"dafx-perturbed"``;
* **the process** is the same one, so anything the first run left in memory
  (a module-level list, a cache, a class attribute) is still there, as it is
  when the host replays in a warm worker;
* **the hash seed** (the iteration order of sets of strings) cannot change in
  a running interpreter: when the orchestrator's code touches sets (a static
  look at its bytecode), the episode is also replayed in two child interpreters
  with other ``PYTHONHASHSEED`` values.

If the actions, the completion or the output differ, the check returns a
:class:`~dafx_testing.core.errors.PerturbedReplayError` naming the first divergent
action (with the DTFx message the host will produce when it replays the
instance) and what exposed it: the perturbation and the file:line that read it::

    from dafx_testing import Simulator
    from dafx_testing.checks.determinism import PerturbedReplay

    sim = Simulator(app, episode_checks=[PerturbedReplay()])

:func:`configure` turns the simulator's settings into the guard and the checks.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from ..core.errors import DafxWarning, NonDeterminismError, PerturbedReplayError
from ..core.history import Event, EventType, new_event, parse_timestamp
from ..core.timeline import preview
from ..functions.host import COMPLETE, Decision, FunctionCatalog, HostReplay
from ..functions.orchestrations import Episode, call_handle
from . import hashseed as _hashseed
from .guard import Guard
from .nondeterministic_apis import (
    ASYNCIO,
    CLOCK,
    ENTROPY,
    ENVIRONMENT,
    FILE,
    NETWORK,
    RANDOM,
    SLEEP,
    THREAD,
    UUID,
    Call,
    CallSite,
    Outcome,
    call_through,
    intercepted,
)

__all__ = ["PerturbedReplay", "configure", "PERTURBED_ENVIRONMENT_VALUE"]

PERTURBED_ENVIRONMENT_VALUE = "dafx-perturbed"
"""What an unset environment variable reads as during a perturbed replay."""

EpisodeCheck = Callable[[Callable[..., Any], Episode], NonDeterminismError | None]

T = TypeVar("T")

_ACTIVE = {CLOCK, ENVIRONMENT, RANDOM}                 # changed on purpose
_NATURAL = {RANDOM, UUID, ENTROPY, FILE, NETWORK, SLEEP, ASYNCIO, THREAD}   # differ anyway
_CAUSES = {
    CLOCK: "another wall-clock time (shifted by {shift})",
    ENVIRONMENT: "changed environment variables (set ones unset, unset ones set)",
    RANDOM: "another random seed",
    UUID: "other uuid values",
    ENTROPY: "other random bytes",
    FILE: "file contents that can change between replays",
    NETWORK: "network answers that can change between replays",
    SLEEP: "sleeping (time passes differently on every replay)",
    ASYNCIO: "an event loop (its scheduling can change between replays)",
    THREAD: "threads (their timing can change between replays)",
}
_MEMORY_CAUSE = ("state kept in process memory between replays (a module-level or class-level "
                 "variable, a cache): a second replay of the same history in the same process "
                 "took another path without reading the clock, random numbers or the environment")
_UNSEEN_BY_HOST = ("none yet: DTFx compares only the kind and name of each scheduled task, so "
                   "this difference (an input, a timer's time, an event name or the output) does "
                   "not fail the instance, but what the orchestrator does now depends on more "
                   "than its history")


class _AnyFunction(FunctionCatalog):
    """A catalog that knows every name: both replays compared here see the same app."""

    def __init__(self) -> None:
        super().__init__(activities=[], orchestrators=[], entities=[])

    def missing(self, kind: str, name: str) -> str | None:
        return None

    def check(self, kind: str, name: str) -> None:
        return None


class _DecisionLog(dict):
    """DTFx's orchestrator action map, remembering every action ever put in it."""

    def __init__(self) -> None:
        super().__init__()
        self.decisions: list[Decision] = []

    def __setitem__(self, key: int, decision: Decision) -> None:
        self.decisions.append(decision)
        super().__setitem__(key, decision)


@dataclass(frozen=True)
class _Difference:
    sequence_number: int
    expected: str | None
    actual: str | None
    host_message: str
    recorded_action: int | None = None    # index of the SDK action behind each side
    replayed_action: int | None = None


@contextlib.contextmanager
def _action_sites(sites: list[CallSite | None]) -> Iterator[None]:
    """Collect where the orchestrator stood when each SDK action was added, in action order.

    The SDK adds an action when ``resume_user_code`` receives the yielded task
    (fire-and-forget ones while the code runs), so the executor's generator is
    either suspended at that ``yield`` or running the call: its frame's line is
    the user's line (through ``yield from`` to the innermost generator).
    """
    # The module, not the package attribute (the package __init__ shadows it with the class).
    context_class = importlib.import_module(
        "azure.durable_functions.models.DurableOrchestrationContext").DurableOrchestrationContext
    original = context_class._add_to_actions

    def recording(context: Any, action_repr: Any) -> None:
        before = len(context._action_payload_v2)
        original(context, action_repr)
        if len(context._action_payload_v2) > before:
            sites.append(_generator_site(sys._getframe(1)))

    context_class._add_to_actions = recording
    try:
        yield
    finally:
        context_class._add_to_actions = original


def _generator_site(frame: Any) -> CallSite | None:
    """The user's line in the generator the SDK executor (up the stack from ``frame``) drives."""
    while frame is not None:
        generator = getattr(frame.f_locals.get("self"), "generator", None)
        if generator is not None and hasattr(generator, "gi_frame"):
            while getattr(generator, "gi_yieldfrom", None) is not None and hasattr(
                    generator.gi_yieldfrom, "gi_frame") and generator.gi_yieldfrom.gi_frame:
                generator = generator.gi_yieldfrom
            return CallSite.of(generator.gi_frame) if generator.gi_frame is not None else None
        frame = frame.f_back
    return None


class PerturbedReplay:
    """An episode check that replays every episode again in a perturbed world.

    Pass it in the simulator's ``episode_checks``; it costs one extra call into
    the orchestrator per episode while nothing differs.

    Args:
        clock_shift: how far the perturbed wall clock is from the real (virtual)
            one; the default moves the year, the weekday (by four days), AM/PM
            and every smaller unit.
        seed: the seed ``random`` gets for the perturbed replay.
        environment: flip the environment variables orchestrator code reads.
        hash_seed: ``"auto"`` (default) replays in child interpreters with other
            ``PYTHONHASHSEED`` values when the orchestrator's code touches sets;
            ``True`` always; ``False`` never. The children start once per test
            process (about a second), then cost about a millisecond per episode.

    Example::

        sim = Simulator(app, episode_checks=[PerturbedReplay(hash_seed=True)])
    """

    def __init__(self, clock_shift: timedelta = timedelta(days=403, hours=12, minutes=13,
                                                          seconds=17, microseconds=123457),
                 seed: int = 7919, environment: bool = True,
                 hash_seed: bool | str = "auto") -> None:
        if hash_seed not in (True, False, "auto"):
            raise ValueError(f"hash_seed={hash_seed!r}; use True, False or 'auto'")
        self.clock_shift = clock_shift
        self.seed = seed
        self.environment = environment
        self.hash_seed = hash_seed
        self._children_failed: dict[str, str] = {}

    def __repr__(self) -> str:
        return (f"PerturbedReplay(clock_shift={self.clock_shift!r}, seed={self.seed}, "
                f"environment={self.environment}, hash_seed={self.hash_seed!r})")

    def __call__(self, handle: Callable[..., Any],
                 episode: Episode) -> PerturbedReplayError | None:
        """Replay ``episode`` through ``handle`` in a perturbed world; the error if it differs."""
        if episode.outcome.divergence is not None:
            return None   # already reported by the host replay
        reads: list[Call] = []
        state = self._replay(handle, episode.body, reads, perturbed=True)
        if not _same(state, episode.state):
            return self._error(handle, episode, state, self._causes(handle, episode, reads))
        return self._check_hash_order(handle, episode)

    # -- replays --

    def perturbed(self, replay: Callable[[], T]) -> tuple[T, list[str]]:
        """Run ``replay`` (any host's replay of an episode) in the perturbed world.

        Returns what it returned and the perturbations it read, one line each
        (``"another wall-clock time (...): datetime.now() at app.py:12"``): the
        durabletask host compares its worker's answers with this.
        """
        reads: list[Call] = []
        result = self._run(replay, reads, perturbed=True)
        return result, _describe_reads(reads, _ACTIVE | _NATURAL, self.clock_shift)

    def _replay(self, handle: Callable[..., Any], body: str, reads: list[Call],
                perturbed: bool, sites: list[CallSite | None] | None = None) -> dict[str, Any]:
        return self._run(lambda: call_handle(handle, body), reads, perturbed, sites)

    def _run(self, replay: Callable[[], T], reads: list[Call], perturbed: bool,
             sites: list[CallSite | None] | None = None) -> T:
        def hook(call: Call) -> Outcome:
            reads.append(call)
            if perturbed and call.api.kind == CLOCK:
                return self._shifted
            if perturbed and self.environment and call.api.kind == ENVIRONMENT:
                return _flipped
            return call_through

        saved = random.getstate()
        if perturbed:
            random.seed(self.seed)
        recording = _action_sites(sites) if sites is not None else contextlib.nullcontext()
        try:
            with warnings.catch_warnings(), intercepted(hook), recording:
                warnings.simplefilter("ignore")   # the first run already warned
                return replay()
        finally:
            random.setstate(saved)

    def _shifted(self, original: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        value = original(*args, **kwargs)
        if isinstance(value, datetime):
            return value + self.clock_shift
        if isinstance(value, date):
            return value + timedelta(days=self.clock_shift.days)
        if isinstance(value, int):   # the *_ns clocks
            return value + int(self.clock_shift.total_seconds() * 1e9)
        return value + self.clock_shift.total_seconds()

    def _causes(self, handle: Callable[..., Any], episode: Episode,
                reads: list[Call]) -> list[str]:
        """Name what exposed the difference: the perturbations read, or memory."""
        plain_reads: list[Call] = []
        plain = self._replay(handle, episode.body, plain_reads, perturbed=False)
        if _same(plain, episode.state):
            causes = _describe_reads(reads, _ACTIVE, self.clock_shift)
        else:
            causes = _describe_reads(plain_reads, _NATURAL, self.clock_shift) or [_MEMORY_CAUSE]
        return causes or ["a second replay of the same history took another path"]

    def _check_hash_order(self, handle: Callable[..., Any],
                          episode: Episode) -> PerturbedReplayError | None:
        function = getattr(handle, "orchestrator_function", handle)
        if self.hash_seed is False or (
                self.hash_seed == "auto" and not _hashseed.may_depend_on_set_order(function)):
            return None
        key = f"{function.__module__}.{function.__qualname__}"
        if key in self._children_failed:
            return None
        try:
            replays = _hashseed.replay_in_children(handle, episode.body,
                                                   episode.started["Timestamp"])
        except _hashseed.ChildReplayError as exc:
            self._children_failed[key] = str(exc)
            warnings.warn(f"the hash-seed replay of orchestrator {function.__qualname__!r} is "
                          f"skipped: {exc}", DafxWarning, stacklevel=2)
            return None
        baseline = episode.state
        for seed, state in replays:
            if not _same(state, baseline):
                cause = (f"another PYTHONHASHSEED ({seed}, in a child interpreter): the iteration "
                         "order of a set of strings changed; iterate sorted(...) instead")
                return self._error(handle, episode, state, [cause], in_child=True)
            baseline = state
        return None

    # -- the report --

    def _error(self, handle: Callable[..., Any], episode: Episode, state: dict[str, Any],
               causes: list[str], in_child: bool = False) -> PerturbedReplayError:
        difference = _first_difference(episode, state)
        recorded = self._site(handle, episode, episode.state, difference.recorded_action,
                              perturbed=False)
        replayed = None if in_child else self._site(handle, episode, state,
                                                    difference.replayed_action, perturbed=True)
        function = getattr(handle, "orchestrator_function", handle)
        code = getattr(function, "__code__", None)
        orchestrator = repr(_started(episode).get("Name") or function.__name__)
        if code is not None:
            defined = CallSite(code.co_filename, code.co_firstlineno, code.co_name, "")
            orchestrator += f" ({function.__qualname__}, {defined})"
        return PerturbedReplayError(
            instance_id=_instance_id(episode), sequence_number=difference.sequence_number,
            expected=difference.expected, actual=difference.actual,
            host_message=difference.host_message, exposed_by=causes, orchestrator=orchestrator,
            recorded_at=None if recorded is None else str(recorded),
            diverged_at=None if replayed is None else str(replayed))

    def _site(self, handle: Callable[..., Any], episode: Episode, target: dict[str, Any],
              action: int | None, perturbed: bool) -> CallSite | None:
        """Where the code yielded SDK action ``action`` in a (perturbed) replay giving ``target``.

        The replay runs once more, recording sites; a replay that no longer gives
        ``target`` (state kept in memory moved on) tells nothing, so None.
        """
        if action is None or action < 0:
            return None
        sites: list[CallSite | None] = []
        again = self._replay(handle, episode.body, [], perturbed=perturbed, sites=sites)
        if not _same(again, target) or action >= len(sites):
            return None
        return sites[action]


def configure(guard: str | Guard | None = "error", perturb: bool | PerturbedReplay = True,
              allow: Sequence[str] = ()) -> tuple[Callable[[], AbstractContextManager[Any]],
                                                  list[EpisodeCheck]]:
    """Resolve the simulator's determinism settings into its ``guard`` and ``episode_checks``.

    Args:
        guard: a mode (``"error"``, ``"warn"``, ``"off"``), a :class:`Guard`,
            or None (off).
        perturb: True for :class:`PerturbedReplay` with its defaults, False for
            none, or a configured instance.
        allow: the guard's allow-list (only with a mode string).

    Returns:
        ``(guard_factory, checks)`` for ``Simulator(guard=..., episode_checks=...)``.

    Example::

        guard, checks = configure("warn", perturb=False)
        sim = Simulator(app, guard=guard, episode_checks=checks)
    """
    if guard is None:
        guard = Guard("off")
    elif isinstance(guard, str):
        guard = Guard(guard, allow=allow)
    elif allow:
        raise ValueError("pass allow= to the Guard itself when giving a Guard object")
    if perturb is True:
        checks: list[EpisodeCheck] = [PerturbedReplay()]
    elif perturb is False:
        checks = []
    elif isinstance(perturb, PerturbedReplay):
        checks = [perturb]
    else:
        raise ValueError(f"perturb={perturb!r}; use True, False or a PerturbedReplay")
    return guard, checks


# -- comparing two states --------------------------------------------------------------


def _decisive(state: dict[str, Any]) -> tuple[Any, ...]:
    """What the host acts on: the actions, whether it is done, its output, whether it failed."""
    return (state.get("actions"), state.get("isDone"), state.get("output"),
            bool(state.get("error")))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _decisive(a) == _decisive(b)


def _flipped(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``os.environ[key]`` with the variable's presence inverted."""
    try:
        original(*args, **kwargs)
    except KeyError:
        return PERTURBED_ENVIRONMENT_VALUE
    raise KeyError(args[1])


def _describe_reads(reads: list[Call], kinds: set, shift: timedelta) -> list[str]:
    by_kind: dict[str, list[str]] = {}
    for call in reads:
        if call.api.kind in kinds:
            sites = by_kind.setdefault(call.api.kind, [])
            text = f"{call.render()} at {call.site}"
            if text not in sites:
                sites.append(text)
    return [f"{_CAUSES[kind].format(shift=shift)}: {', '.join(sites)}"
            for kind, sites in by_kind.items()]


def _started(episode: Episode) -> Event:
    return next((e for e in episode.events if e["EventType"] == EventType.ExecutionStarted), {})


def _instance_id(episode: Episode) -> str:
    return (_started(episode).get("OrchestrationInstance") or {}).get("InstanceId", "?")


def _first_difference(episode: Episode, state: dict[str, Any]) -> _Difference:
    """The first action where ``state`` departs from the episode, as the host would see it.

    Both states are replayed host-side against the history as it stands after
    this episode (its decisions recorded), so a changed name or kind yields the
    exact DTFx message of the host's next replay.
    """
    committed = [*episode.events,
                 *(d.to_event(parse_timestamp(episode.started["Timestamp"]))
                   for d in episode.outcome.decisions),
                 new_event(EventType.OrchestratorCompleted,
                           parse_timestamp(episode.started["Timestamp"]))]
    recorded, _ = _replay_host(episode, committed, episode.state)
    replayed, divergence = _replay_host(episode, committed, state)
    if divergence is not None:
        number = divergence.sequence_number
        return _Difference(number, divergence.expected, divergence.actual,
                           divergence.host_message, _origin(recorded, number),
                           _origin(replayed, number) if divergence.actual else None)
    for index in range(max(len(recorded), len(replayed))):
        before = recorded[index] if index < len(recorded) else None
        after = replayed[index] if index < len(replayed) else None
        if before is None or after is None or _decision_key(before) != _decision_key(after):
            anchor = before or after
            assert anchor is not None   # index is within the longer of the two lists
            return _Difference(anchor.id, _describe_decision(before), _describe_decision(after),
                               _UNSEEN_BY_HOST, before.origin if before else None,
                               after.origin if after else None)
    # Same host decisions: the difference is in what takes no sequence number.
    before_actions, after_actions = _flat(episode.state), _flat(state)
    for index in range(max(len(before_actions), len(after_actions))):
        before_action = before_actions[index] if index < len(before_actions) else None
        after_action = after_actions[index] if index < len(after_actions) else None
        if before_action != after_action:
            return _Difference(-1, _describe_action(before_action), _describe_action(after_action),
                               _UNSEEN_BY_HOST, _top_level(episode.state, index),
                               _top_level(state, index))
    return _Difference(-1, f"output {episode.state.get('output')!r}",
                       f"output {state.get('output')!r}", _UNSEEN_BY_HOST)


def _replay_host(episode: Episode, history: list[Event],
                 state: dict[str, Any]) -> tuple[list[Decision], NonDeterminismError | None]:
    started = next(e for e in history if e["EventType"] == EventType.ExecutionStarted)
    instance = started.get("OrchestrationInstance") or {}
    parent = (started.get("ParentInstance") or {}).get("OrchestrationInstance") or {}
    replay = HostReplay(instance_id=instance.get("InstanceId", "?"),
                        execution_id=instance.get("ExecutionId", "?"),
                        name=started.get("Name") or "?",
                        parent_instance_id=parent.get("InstanceId"), catalog=_AnyFunction())
    log = _DecisionLog()
    replay.actions = log
    outcome = replay.replay(history, state)
    return log.decisions, outcome.divergence


def _origin(decisions: list[Decision], sequence_number: int) -> int | None:
    """The SDK action (index) that made the decision with this sequence number."""
    for decision in decisions:
        if decision.id == sequence_number and decision.kind != COMPLETE:
            return decision.origin
    return None


def _top_level(state: dict[str, Any], flat_index: int) -> int | None:
    """The top-level action holding the ``flat_index``-th action of :func:`_flat`."""
    seen = 0
    for group in state.get("actions") or ():
        for top, action in enumerate(group):
            size = len(_flat({"actions": [[action]]}))
            if flat_index < seen + size:
                return top
            seen += size
    return None


def _decision_key(decision: Decision) -> tuple[Any, ...]:
    return (decision.id, decision.kind, decision.name, decision.input, decision.fire_at,
            decision.instance_id, decision.status, decision.result)


def _describe_decision(decision: Decision | None) -> str | None:
    if decision is None:
        return None
    if decision.kind == COMPLETE:
        return f"{decision.describe()} output={preview(decision.result)}"
    text = decision.describe()
    return f"{text} input={preview(decision.input)}" if decision.input is not None else text


def _flat(state: dict[str, Any]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []

    def visit(action: dict[str, Any]) -> None:
        flat.append({k: v for k, v in action.items() if k != "compoundActions"})
        for child in action.get("compoundActions") or ():
            visit(child)

    for group in state.get("actions") or ():
        for action in group:
            visit(action)
    return flat


def _describe_action(action: dict[str, Any] | None) -> str | None:
    if action is None:
        return None
    if action.get("actionType") == 6:
        return f"wait for external event {action.get('externalEventName')!r}"
    return preview(action, 120)

