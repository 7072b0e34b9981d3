"""Scripts: what the fake model answers, in order, per agent or model.

A :class:`Lane` is a queue of replies plus an optional ``respond_with`` function for whatever the
queue does not cover, and its own faults. ``FakeLLM`` itself scripts the default lane;
``fake.agent(...)`` and ``fake.model(...)`` open routed lanes so a multi-agent app can script
each agent separately. The :class:`Router` picks the lane for each request.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ScriptExhausted, UnmatchedRequest
from .faults import FaultKind, FaultRule
from .replies import Reply, ToolCall, as_reply
from .request import LLMRequest

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Lane", "Responder", "Router", "Scripting"]

Responder = Callable[[LLMRequest], "Reply | str | dict[str, Any] | list[Any]"]
Latency = float | Callable[[LLMRequest], float]


class Scripting:
    """The scripting verbs, shared by ``FakeLLM`` (its default lane) and every routed lane."""

    def _lane(self) -> Lane:
        raise NotImplementedError

    def reply(self, text: str) -> Self:
        """Queue a plain text answer.

        Example::

            fake.reply("Why did the pirate go to school? To improve his arrrticulation!")
        """
        self._lane().steps.append(Reply.text(text))
        return self

    def reply_json(self, value: Any) -> Self:
        """Queue a structured-output answer: ``value`` as JSON text (for ``response_format`` requests).

        Example::

            fake.reply_json({"setup": "Why did the pirate...", "punchline": "Arrr!"})
        """
        self._lane().steps.append(Reply.json(value))
        return self

    def tool_call(self, name: str, arguments: dict[str, Any] | str | None = None, /, **kwargs: Any) -> Self:
        """Queue an answer that calls tool ``name``; the client runs it and asks again.

        Example::

            fake.tool_call("get_weather", {"city": "Rome"}).reply("Sunny in Rome.")
        """
        return self.tool_calls(ToolCall(name, arguments if arguments is not None else kwargs))

    def tool_calls(self, *calls: ToolCall) -> Self:
        """Queue one answer calling several tools in parallel."""
        self._lane().steps.append(Reply.calls(*calls))
        return self

    def respond_with(self, responder: Responder) -> Self:
        """Answer every request the queue does not cover with ``responder(request)``.

        The function gets the :class:`~dafx_testing.llm.request.LLMRequest` and returns a ``str``
        (text), a ``dict``/``list`` (JSON) or a :class:`~dafx_testing.llm.replies.Reply`.

        Example::

            fake.respond_with(lambda request: f"You said: {request.last_user_message}")
        """
        self._lane().responder = responder
        return self

    def fault(
        self,
        kind: FaultKind,
        *,
        times: int | None = None,
        rate: float | None = None,
        seed: int = 0,
        retry_after: float = 1.0,
        partial: str = "The answer was cut",
    ) -> Self:
        """Fail requests the way the service does (see :mod:`dafx_testing.llm.faults` for the kinds).

        Args:
            kind: ``rate_limit``, ``server_error``, ``unavailable``, ``timeout``,
                ``connection_reset``, ``malformed_json``, ``stream_cut`` or ``content_filter``.
            times: how many requests fail; default 1, or unlimited when ``rate`` is given.
            rate: fail each request with this probability, drawn from ``random.Random(seed)``.
            seed: the seed for ``rate``.
            retry_after: seconds a ``rate_limit`` asks the client to wait.
            partial: the text a ``stream_cut`` sends before the connection drops.

        Example::

            fake.fault("rate_limit", retry_after=0.01)     # the next request gets a 429
            fake.fault("server_error", times=2)
            fake.fault("timeout", rate=0.1, seed=7)
        """
        times = times if times is not None or rate is not None else 1
        self._lane().faults.append(FaultRule(kind, times, rate, seed, retry_after, partial))
        return self

    def latency(self, seconds: Latency) -> Self:
        """Make each answer take ``seconds`` (a number, or a function of the request).

        Under the simulator the time is virtual: the activity or entity operation that called
        the model commits that much later, so a request that waits for it can time out and a
        crash meanwhile loses the answer. Used on its own, the fake sleeps for real. Set on
        ``FakeLLM`` it applies to every script without a latency of its own; faults are not
        delayed.

        Example::

            fake.agent("Joker").latency(45).reply("A slow joke.")     # past the 30 s HTTP wait
            fake.latency(lambda request: 2.0 * request.index)
        """
        if not callable(seconds) and (not isinstance(seconds, (int, float)) or seconds < 0):
            raise ValueError(f"latency {seconds!r} is not a duration; give seconds >= 0 or a function of the request")
        self._lane().delay = seconds
        return self


@dataclass
class Lane(Scripting):
    """One script: queued replies, an optional responder, faults, and the rule that routes to it."""

    label: str
    matches: Callable[[LLMRequest], bool] = field(default=lambda request: True, repr=False)
    agent: str | None = None
    steps: deque[Reply] = field(default_factory=deque)
    responder: Responder | None = None
    faults: list[FaultRule] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    delay: Latency | None = None

    def _lane(self) -> Lane:
        return self

    @property
    def ready(self) -> bool:
        """Whether the lane can answer another request."""
        return bool(self.steps) or self.responder is not None

    def summary(self) -> str:
        """What the lane holds, for error messages."""
        left = f"{len(self.steps)} queued" + (" + respond_with" if self.responder else "")
        return f"{self.label}: served {len(self.served)}, {left}"

    def next_reply(self, request: LLMRequest) -> Reply:
        """Take the next reply for ``request``.

        Raises:
            ScriptExhausted: when the queue is empty and no responder is set.
        """
        if self.steps:
            reply = self.steps.popleft()
        elif self.responder is not None:
            reply = as_reply(self.responder(request))
        else:
            served = "\n".join(f"    {line}" for line in self.served) or "    (nothing)"
            raise ScriptExhausted(
                f"{request.describe()}\nfound the script of {self.label} used up. It served:\n{served}\n"
                f"Queue more replies (.reply(...), .tool_call(...)) or answer any number with .respond_with(...)."
            )
        self.served.append(f"#{request.index} {reply.describe()}")
        return reply


def _agent_matcher(name: str, instructions: str | None) -> Callable[[LLMRequest], bool]:
    if instructions:
        wanted = instructions.strip()
        return lambda request: wanted in request.instructions
    word = re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE)
    return lambda request: bool(word.search(request.instructions))


class Router:
    """Chooses the lane for each request: routed lanes in declaration order, then the default."""

    def __init__(self) -> None:
        self.default = Lane("the default script")
        self.lanes: list[Lane] = []

    def add_agent(self, agent: Any, instructions: str | None = None) -> Lane:
        """A lane for an agent, given by name or as an Agent Framework agent object."""
        if not isinstance(agent, str):  # duck-typed: agent_framework stays un-imported
            instructions = instructions or (getattr(agent, "default_options", None) or {}).get("instructions")
            agent = agent.name
        how = "its instructions" if instructions else "its name in the system message"
        lane = Lane(f"agent {agent!r} (recognised by {how})", _agent_matcher(agent, instructions), agent=agent)
        self.lanes.append(lane)
        return lane

    def add_model(self, model: str) -> Lane:
        """A lane for requests to one model or Azure deployment."""
        lane = Lane(f"model {model!r}", lambda request: model in (request.model, request.deployment))
        self.lanes.append(lane)
        return lane

    def agent_of(self, request: LLMRequest) -> str | None:
        """The declared agent ``request`` comes from, if any."""
        return next((lane.agent for lane in self.lanes if lane.agent and lane.matches(request)), None)

    def pick(self, request: LLMRequest) -> Lane | None:
        """The lane that answers ``request``; ``None`` when no routed lane matches and the default is empty."""
        matching = [lane for lane in self.lanes if lane.matches(request)]
        for lane in matching:
            if lane.ready:
                return lane
        if matching:
            return matching[0]  # used up: its next_reply() explains
        return self.default if self.default.ready or not self.lanes else None

    def unmatched(self, request: LLMRequest) -> UnmatchedRequest:
        """The error for a request :meth:`pick` found no lane for, listing the scripts."""
        scripts = "\n".join(f"    {lane.summary()}" for lane in self.lanes)
        return UnmatchedRequest(
            f"{request.describe()}\nmatched no routed script, and the default script is empty.\n"
            f"Scripts:\n{scripts}\nInstructions sent: {request.instructions[:200]!r}\n"
            f'Route it with fake.agent("<name>", instructions="...") / fake.model("...") or script fake.reply(...).'
        )

    def latency_for(self, lane: Lane, request: LLMRequest) -> float:
        """Seconds the answer from ``lane`` takes: the lane's latency, else the default script's."""
        delay = lane.delay if lane.delay is not None else self.default.delay
        return float(delay(request) if callable(delay) else delay or 0.0)

    def faults_for(self, lane: Lane | None) -> list[FaultRule]:
        """The fault rules for a request answered by ``lane``: the lane's own, then the global ones."""
        own = lane.faults if lane is not None and lane is not self.default else []
        return own + self.default.faults
