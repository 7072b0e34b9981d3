"""The facade: :class:`FakeLLM`, the model on the real wire."""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from ..core.latency import charge
from .cassette import Cassette, Exchange
from .clock import Clock, epoch_seconds, wall_clock
from .conversation import Message, from_chat, from_responses, reply_messages
from .credentials import faking_azure_credentials
from .environment import DEFAULT_ENV, env_defaults
from .errors import FakeLLMError, through_openai
from .faults import render_fault
from .forward import forward
from .intercept import intercepting
from .masking import mask_headers, mask_url, secret_values
from .netguard import blocked, guarding
from .plan import planned_fault
from .render import render
from .replies import Stamp
from .request import LLMRequest
from .responses_api import response_id
from .routes import Route, classify
from .runs import Run, current_run
from .script import Lane, Router, Scripting
from .wire import Drop, RawRequest, WireResponse

__all__ = ["FakeLLM", "active_fakes"]

_ACTIVE: list[FakeLLM] = []


def active_fakes() -> list[FakeLLM]:
    """The fakes currently entered, outermost first (crash sweeps count their model calls)."""
    return list(_ACTIVE)


class FakeLLM(Scripting):
    """A scripted, failing or recorded model behind every OpenAI-wire client of the process.

    While the context is open, every Chat Completions and Responses API call made through
    ``httpx`` (openai 2.x) or ``httpx2`` (openai 3.x) is answered here, whatever the host:
    OpenAI, Azure OpenAI deployments, Azure AI Foundry projects. The app passes no
    ``http_client`` and changes nothing. Azure credentials hand out fake tokens, the usual
    environment variables point at fake endpoints, and any other outbound HTTP fails naming
    its URL.

    The ids of the replies (``chatcmpl-dafx0001``, ``resp_dafx0001``, ``call_1_0``) count the
    model calls of the simulator at work, from 1 in each (:mod:`~dafx_testing.llm.runs`), so
    every run of a scenario gets the same bytes; outside a simulator they count the fake's
    requests.

    Args:
        clock: returns the aware ``datetime`` stamped as ``created`` on replies (the simulator's
            virtual clock, say); default the real time.
        allow_hosts: hosts whose non-model traffic may go out for real.
        credentials: fake ``azure.identity`` tokens while open.
        env: environment defaults set while open (only variables not already set);
            ``None`` sets none.
        strict: on a clean exit, raise the first script error the app swallowed (clear
            ``fake.errors`` after handling one deliberately).

    Attributes:
        requests: every model call received, in order (:class:`LLMRequest`, secrets masked).
        errors: the script and cassette errors raised into the app.
        clock: what ``created`` stamps and token expiries read; reassign it to follow a
            virtual clock that exists only after the fake started.

    Example::

        from dafx_testing.llm import FakeLLM

        with FakeLLM() as fake:
            fake.reply("Why did the pirate go to school? To improve his arrrticulation!")
            result = asyncio.run(agent.run("Tell me a pirate joke."))
            assert fake.requests[0].last_user_message == "Tell me a pirate joke."
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        allow_hosts: Iterable[str] = (),
        credentials: bool = True,
        env: Mapping[str, str] | None = DEFAULT_ENV,
        strict: bool = True,
    ) -> None:
        self.requests: list[LLMRequest] = []
        self.errors: list[FakeLLMError] = []
        self.clock: Clock = clock or wall_clock
        self._allow_hosts = {host.lower() for host in allow_hosts}
        self._credentials, self._env, self._strict = credentials, env, strict
        self._router = Router()
        self._cassette: Cassette | None = None
        self._recording = False
        self._upstream: str | None = None
        # Responses API history by response id, then by run (ids repeat from run to run).
        self._conversations: dict[str, dict[int | None, list[Message]]] = {}
        self._lock = threading.RLock()
        self._stack: ExitStack | None = None

    @classmethod
    def replaying(cls, path: str | os.PathLike[str], *, secrets: Iterable[str] = (), **options: Any) -> FakeLLM:
        """A fake answering from the cassette at ``path``; an unrecorded request fails naming the nearest.

        Args:
            path: the cassette to replay.
            secrets: the values marked when recording, so requests carrying them still match.

        Example::

            with FakeLLM.replaying("fakes/cassettes/joker.jsonl") as fake:
                ...
        """
        fake = cls(**options)
        fake._cassette = Cassette.load(path)
        fake._cassette.secrets.update(secrets)
        return fake

    @classmethod
    def recording(
        cls,
        path: str | os.PathLike[str],
        *,
        upstream: str | None = None,
        secrets: Iterable[str] = (),
        **options: Any,
    ) -> FakeLLM:
        """A fake forwarding each model call to a real endpoint and writing the exchanges to ``path``.

        Credentials and environment defaults are off unless asked for: the real service needs
        the real ones.

        Args:
            path: the cassette to (re)write.
            upstream: scheme, host and port to send to instead of each request's own URL.
            secrets: extra values to scrub from the file (keys and tokens in headers and query
                strings are scrubbed anyway).

        Example::

            with FakeLLM.recording("fakes/cassettes/joker.jsonl", secrets=[os.environ["KEY"]]):
                ...
        """
        fake = cls(**{"credentials": False, "env": None, **options})
        fake._cassette = Cassette(Path(path), secrets=set(secrets))
        fake._recording, fake._upstream = True, upstream
        return fake

    # -- scripting ---------------------------------------------------------------------------

    def _lane(self) -> Lane:
        return self._router.default

    def agent(self, agent: Any, instructions: str | None = None) -> Lane:
        """A script for one agent's requests, recognised by its instructions or by its name in them.

        Args:
            agent: the agent's name, or an Agent Framework agent (its name and instructions are used).
            instructions: text of the agent's instructions that identifies it (any part of it).

        Example::

            fake.agent("Writer").reply("A draft.")
            fake.agent("Critic", instructions="You review drafts").reply("Approved.")
        """
        return self._router.add_agent(agent, instructions)

    def model(self, name: str) -> Lane:
        """A script for requests to the model or Azure deployment ``name``."""
        return self._router.add_model(name)

    # -- capture and assertions --------------------------------------------------------------

    @property
    def last_request(self) -> LLMRequest:
        """The most recent model call.

        Raises:
            AssertionError: when there was none.
        """
        assert self.requests, "the fake model received no request"
        return self.requests[-1]

    def requests_for(self, agent: str) -> list[LLMRequest]:
        """The requests from the declared agent ``agent``."""
        return [request for request in self.requests if request.agent == agent]

    def assert_all_used(self) -> None:
        """Assert that every queued reply was served.

        Raises:
            AssertionError: naming the lanes with replies left.
        """
        left = [lane.summary() for lane in [self._router.default, *self._router.lanes] if lane.steps]
        assert not left, "scripted replies were never requested:\n  " + "\n  ".join(left)

    # -- the wire ----------------------------------------------------------------------------

    def checkpoint(self) -> Callable[[], None]:
        """What the scripts hold now; calling the result puts it back.

        A sweep runs one scenario many times against the same fake: each run must
        find the replies, faults and lanes the first run found.
        """
        lanes = list(self._router.lanes)
        saved = [(lane, list(lane.steps), copy.deepcopy(lane.faults), list(lane.served))
                 for lane in [self._router.default, *lanes]]

        def restore() -> None:
            self._router.lanes = list(lanes)
            for lane, steps, faults, served in saved:
                lane.steps, lane.faults, lane.served = deque(steps), copy.deepcopy(faults), list(served)

        return restore

    def admits(self, url: str) -> bool:
        """Whether non-model traffic to ``url`` may go out for real (its host is allowed)."""
        return (urlsplit(url).hostname or "").lower() in self._allow_hosts

    def handle(self, raw: RawRequest) -> WireResponse | Drop | None:
        """Answer one HTTP request: a model call gets the fake's answer; ``None`` lets it through.

        Also usable without entering the context, to serve the fake over a socket.

        Raises:
            NetworkBlocked: for a request that is neither a model call nor to an allowed host.
            ScriptExhausted, UnmatchedRequest, CassetteMiss: when there is no answer for it.
        """
        route = classify(raw)
        if route is None:
            if self.admits(raw.url):
                return None
            raise blocked(raw.method, raw.url, raw.via)
        with self._lock:
            run = current_run()       # the simulator whose work made the call, if any
            request = self._capture(raw, route, run)
            try:
                response, seconds = self._answer(request, raw, run)
            except FakeLLMError as error:
                surfaced = through_openai(error)
                self.errors.append(surfaced)
                raise surfaced from None
        wait = charge(seconds)
        # Only scripted answers take model time; faults arrive at once (their seconds are 0).
        return dataclasses.replace(response, delay=wait) if wait and isinstance(response, WireResponse) else response

    def _capture(self, raw: RawRequest, route: Route, run: Run | None) -> LLMRequest:
        body = raw.json()
        if route.api == "chat.completions":
            messages = from_chat(body)
        else:
            messages = from_responses(body, self._history(body.get("previous_response_id"), run))
        request = LLMRequest(
            index=len(self.requests) + 1,
            api=route.api,
            method=raw.method,
            url=mask_url(raw.url),
            headers=mask_headers(raw.headers),
            body=body,
            messages=messages,
            deployment=route.deployment,
            api_version=route.api_version,
        )
        request = dataclasses.replace(request, agent=self._router.agent_of(request))
        self.requests.append(request)
        return request

    def _answer(self, request: LLMRequest, raw: RawRequest, run: Run | None) -> tuple[WireResponse | Drop, float]:
        """The response to ``request`` and the seconds of model latency it takes.

        Its ids are numbered per simulator run (see :mod:`~dafx_testing.llm.runs`): every
        run of a scenario gets the same bytes. Outside a simulator, per fake.
        """
        stamp = Stamp(run.next_serial() if run is not None else request.index, epoch_seconds(self.clock))
        planned = planned_fault(request)      # a simulator's FaultPlan: numbered calls fail first
        if planned is not None:
            return render_fault(planned, request, stamp), 0.0
        lane = self._router.pick(request) if self._cassette is None else self._router.default
        for rule in self._router.faults_for(lane):
            if rule.draw():
                return render_fault(rule, request, stamp), 0.0
        if self._cassette is None:
            if lane is None:
                raise self._router.unmatched(request)
            return self._from_script(lane, request, stamp, run), self._router.latency_for(lane, request)
        secrets = secret_values(raw.headers, raw.url)
        if not self._recording:
            return self._cassette.match(request, secrets), 0.0
        response = forward(raw, self._upstream)
        self._cassette.add(Exchange.of(request, urlsplit(raw.url).path, response), secrets)
        return response, 0.0

    def _from_script(self, lane: Lane, request: LLMRequest, stamp: Stamp, run: Run | None) -> WireResponse:
        reply = lane.next_reply(request)
        if request.api == "responses":  # the server keeps history: remember it for previous_response_id
            calls = [{"id": stamp.call_id(i), "name": c.name, "arguments": c.arguments_json} for i, c in enumerate(reply.tool_calls)]
            by_run = self._conversations.setdefault(response_id(stamp), {})
            key = run.key if run is not None else None
            by_run.pop(key, None)                                       # the newest comes last
            by_run[key] = request.messages + reply_messages(reply.content, calls)
        return render(reply, request, stamp)

    def _history(self, previous: str | None, run: Run | None) -> list[Message]:
        """The conversation up to the response ``previous``: the one this run was served.

        Response ids repeat from run to run, so each run has its own; a request made outside
        the run that got the response (or in another) finds the newest of that id.
        """
        by_run = self._conversations.get(previous or "", {})
        key = run.key if run is not None else None
        if key in by_run:
            return by_run[key]
        return next(reversed(by_run.values()), [])

    # -- the context ---------------------------------------------------------------------------

    def __enter__(self) -> FakeLLM:
        stack = ExitStack()
        if self._env is not None:
            stack.enter_context(env_defaults(self._env))
        if self._credentials:
            stack.enter_context(faking_azure_credentials(lambda: self.clock()))
        stack.enter_context(guarding(self.admits))
        stack.enter_context(intercepting(self))
        _ACTIVE.append(self)
        stack.callback(_ACTIVE.remove, self)
        self._stack = stack
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        assert self._stack is not None, "FakeLLM exited without being entered"
        self._stack.close()
        self._stack = None
        if exc is None and self._strict and self.errors:
            first = self.errors[0]
            raise type(first)(f"{first}\n(The app caught this error; FakeLLM re-raises it on exit. strict=False turns that off.)")
