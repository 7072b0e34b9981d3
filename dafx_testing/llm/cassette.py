"""Cassettes: recorded model exchanges, for golden tests against a real model's answers.

A cassette is a JSON-lines file, one exchange per line, keys sorted::

    {"request": {"api": ..., "body": {...}, "deployment": ..., "method": "POST", "path": ...},
     "response": {"headers": {...}, "json": {...} | "sse": ["event: ...\\ndata: {...}", ...],
                  "status": 200}}

Requests are matched by a normalised body: ids, ``created`` stamps and similar volatile fields
are blanked, and headers and hosts are ignored, so a replay matches however the endpoint or key
differ. Nothing secret is written: headers are not stored at all, secret query parameters are
dropped, and every secret value seen in a request (and every value the user marks) is scrubbed
from the bytes before they reach disk. Files are replaced atomically.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CassetteMiss
from .masking import scrub
from .request import LLMRequest
from .wire import WireResponse, sse_events

__all__ = ["Cassette", "Exchange", "normalize"]

_VOLATILE = frozenset(
    {"id", "call_id", "tool_call_id", "previous_response_id", "created", "created_at", "user", "safety_identifier"}
)
_KEPT_HEADERS = ("content-type", "retry-after", "retry-after-ms")
_BLANK = "<volatile>"


def normalize(value: Any) -> Any:
    """``value`` with volatile fields (ids, timestamps, user ids) blanked, recursively."""
    if isinstance(value, dict):
        return {k: _BLANK if k in _VOLATILE else normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=indent, separators=None if indent else (",", ":"))


@dataclass(frozen=True)
class Exchange:
    """One recorded request and the response the upstream gave."""

    request: dict[str, Any]
    response: dict[str, Any]

    @classmethod
    def of(cls, request: LLMRequest, path: str, response: WireResponse) -> Exchange:
        """Record ``request`` (sent to ``path``) and ``response``."""
        headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        text = response.body.decode()
        if response.is_sse:
            payload: dict[str, Any] = {"sse": sse_events(text)}
        else:
            try:
                payload = {"json": json.loads(text)}
            except ValueError:
                payload = {"text": text}
        described = {"api": request.api, "body": request.body, "deployment": request.deployment, "method": request.method}
        return cls({**described, "path": path}, {"headers": headers, "status": response.status, **payload})

    @property
    def key(self) -> str:
        """What replay matches on: API, deployment and the normalised body."""
        return _match_key(self.request["api"], self.request["deployment"], self.request["body"], ())

    def wire_response(self) -> WireResponse:
        """The recorded response, streamed event by event when it was a stream."""
        status, headers = self.response["status"], self.response["headers"]
        if "sse" in self.response:
            return WireResponse(status, headers, tuple(f"{event}\n\n".encode() for event in self.response["sse"]))
        text = _dumps(self.response["json"]) if "json" in self.response else self.response["text"]
        return WireResponse(status, headers, (text.encode(),))


def _scrubbed(text: str, secrets: Iterable[str]) -> str:
    escaped = {json.dumps(secret)[1:-1] for secret in secrets}  # as they appear inside JSON strings
    return scrub(text, {*secrets, *escaped})


def _match_key(api: str, deployment: str | None, body: Any, secrets: Iterable[str]) -> str:
    # Scrubbed like the recording was, so a request carrying a secret matches its recorded self.
    return _scrubbed(_dumps({"api": api, "deployment": deployment, "body": normalize(body)}, indent=1), secrets)


@dataclass
class Cassette:
    """The exchanges of one file, for strict replay or for recording into.

    Example::

        cassette = Cassette.load("fakes/cassettes/joker.jsonl")
        cassette.match(request)          # -> the recorded response, or CassetteMiss
    """

    path: Path
    exchanges: list[Exchange] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    _used: set[int] = field(default_factory=set, init=False, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Cassette:
        """Read a cassette file.

        Raises:
            FileNotFoundError: naming the file and how to record it.
        """
        file = Path(path)
        if not file.exists():
            raise FileNotFoundError(f"no cassette at {file}; record it with FakeLLM.recording({str(file)!r}, ...)")
        lines = file.read_text(encoding="utf-8").splitlines()
        return cls(file, [Exchange(**json.loads(line)) for line in lines if line.strip()])

    def match(self, request: LLMRequest, secrets: Iterable[str] = ()) -> WireResponse:
        """The recorded response for ``request``: the first unused exchange with its key.

        A request recorded once may be replayed again once every copy has been used. The
        request is scrubbed of :attr:`secrets` and ``secrets`` (its own header values) first.

        Raises:
            CassetteMiss: naming the nearest recorded request, with a diff.
        """
        key = _match_key(request.api, request.deployment, request.body, self.secrets | set(secrets))
        same = [i for i, exchange in enumerate(self.exchanges) if exchange.key == key]
        if not same:
            raise self._miss(request, key)
        chosen = next((i for i in same if i not in self._used), same[-1])
        self._used.add(chosen)
        return self.exchanges[chosen].wire_response()

    def _miss(self, request: LLMRequest, key: str) -> CassetteMiss:
        where = f"{request.describe()}\nwas never recorded in {self.path}"
        if not self.exchanges:
            return CassetteMiss(f"{where} (the cassette is empty). Record it again.")
        ratios = [difflib.SequenceMatcher(None, key, exchange.key).ratio() for exchange in self.exchanges]
        nearest = max(range(len(ratios)), key=ratios.__getitem__)
        diff = difflib.unified_diff(
            self.exchanges[nearest].key.splitlines(), key.splitlines(), f"recorded #{nearest + 1}", "sent", lineterm="", n=2
        )
        return CassetteMiss(
            f"{where}. Nearest recorded is exchange #{nearest + 1} of {len(self.exchanges)} "
            f"(similarity {ratios[nearest]:.0%}):\n" + "\n".join(diff) + "\nRecord the cassette again if the change is intended."
        )

    def add(self, exchange: Exchange, secrets: Iterable[str] = ()) -> None:
        """Append ``exchange``, remember ``secrets`` to scrub, and rewrite the file atomically."""
        self.exchanges.append(exchange)
        self.secrets.update(secrets)
        self.save()

    def save(self) -> None:
        """Write every exchange, secrets scrubbed, replacing the file in one atomic step."""
        lines = (_dumps({"request": e.request, "response": e.response}) for e in self.exchanges)
        text = "".join(_scrubbed(line, self.secrets) + "\n" for line in lines)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise
