"""Golden files: compare a history, a transcript or any JSON-able value with a reviewed copy.

The ``dafx_golden`` fixture is the entry point::

    def test_approval_history(dafx, dafx_golden):
        iid = dafx.start_new("approval", {"doc": 1})
        dafx.raise_event(iid, "ApprovalDecision", True)
        dafx_golden("approval-history", dafx.wait_for_completion(iid).history)

    def test_joke(dafx, dafx_golden):
        ...
        dafx_golden("joker-session", dafx.agent_session("Joker", session_id))

Where: ``<test file's folder>/goldens/<test module>/<name>.json`` for
JSON-able values (histories, dicts, lists, dataclasses such as
``InstanceStatus``), ``.txt`` for text and agent sessions (their
``transcript()``). Commit them with the tests.

What: the value normalized so that only what the code decides is compared.
Generated ids and times are replaced by numbered placeholders, in order of
first appearance, so equal values stay equal and the structure shows:

* timestamps (ISO 8601, and ``datetime`` objects) become ``<time-1>``, ``<time-2>`` ...,
  one number per instant whatever its spelling (``...00.0000000Z`` and ``...00+00:00``);
* 32-digit hex ids and GUIDs become ``<instance-N>`` or ``<execution-N>`` where a
  key says what they are (``InstanceId``, ``executionId`` ...), else ``<id-N>``
  and ``<guid-N>``.

Ids you choose yourself (``instance_id="order-1"``) are kept: they are stable already.

When: a missing golden fails with the command that writes it; a different one
fails with a unified diff. ``pytest --dafx-update-goldens`` writes every golden
the run asserts (review the diff in version control, then commit).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import shlex
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..core.errors import HistoryFormatError
from ..core.history import parse_timestamp

__all__ = ["Goldens", "normalize"]

MAX_DIFF_LINES = 200
"""A mismatch shows at most this many lines of diff."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

_TOKENS = re.compile(
    r"(?P<time>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
    r"|(?<![0-9A-Za-z])(?:"
    r"(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<id>[0-9a-f]{32}))(?![0-9A-Za-z])"
)
_ID_KINDS = ("execution", "instance")
"""A key that contains one of these words (``ExecutionId``, ``parentInstanceId``) names the id."""


def normalize(value: Any) -> tuple[str, str]:
    """The golden text of ``value`` and its file suffix (``".json"`` or ``".txt"``).

    Text and objects with a ``transcript()`` method (an
    :class:`~dafx_testing.AgentSession`) are stored as text; anything else
    must be JSON-able (datetimes and dataclasses included).

    Raises:
        TypeError: ``value`` is neither text nor JSON-able; the message names its type.
    """
    placeholders = _Placeholders()
    if callable(getattr(value, "transcript", None)):
        value = value.transcript()
    if isinstance(value, str):
        return _with_newline(placeholders.text(value)), ".txt"
    try:
        plain = json.loads(json.dumps(value, default=_jsonable))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"a golden value of type {type(value).__name__} cannot be stored ({error}); give "
            "text, an AgentSession, or a JSON-able value (dicts, lists, strings, numbers, "
            "booleans, None, datetimes, dataclasses such as InstanceStatus)") from None
    document = json.dumps(placeholders.json(plain), indent=2, ensure_ascii=False)
    return _with_newline(document), ".json"


class Goldens:
    """The ``dafx_golden`` fixture: ``dafx_golden(name, value)`` checks ``value`` against a file.

    Args:
        directory: where this test module's goldens live.
        rootdir: paths in messages are shown relative to it.
        update: write the files instead of comparing.
        nodeid: the test's node id, for the command that updates its goldens.
        written: called with each file written in update mode (as shown in messages).
    """

    def __init__(self, directory: Path, rootdir: Path, update: bool, nodeid: str,
                 written: Callable[[str], None]) -> None:
        self.directory = directory
        self._rootdir = rootdir
        self._update = update
        self._update_command = f"pytest {shlex.quote(nodeid)} --dafx-update-goldens"
        self._written = written

    def __call__(self, name: str, value: Any) -> None:
        """Assert that ``value``, normalized, equals the golden file ``name``.

        Raises:
            AssertionError: the golden is missing or differs (with a unified diff).
            ValueError: ``name`` cannot be a file name.
            TypeError: ``value`` cannot be stored.
        """
        __tracebackhide__ = True
        if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
            raise ValueError(
                f"golden name {name!r}: use letters, digits, '_', '-' and '.', starting with a "
                f"letter or digit (it becomes the file {self._show(self.directory)}/<name>.json)")
        actual, suffix = normalize(value)
        path = self.directory / f"{name}{suffix}"
        expected = path.read_text(encoding="utf-8") if path.exists() else None
        if self._update:
            if actual != expected:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(actual, encoding="utf-8")
                self._written(self._show(path))
            return
        if expected is None:
            raise AssertionError(f"golden {name!r} does not exist yet: {self._show(path)}\n"
                                 f"write it with: {self._update_command}\n"
                                 "(then review and commit it)")
        if actual != expected:
            raise AssertionError(
                f"golden {name!r} differs from {self._show(path)} (- golden, + actual)\n"
                f"if the change is intended, accept it with: {self._update_command}\n"
                + _diff(expected, actual, path))

    def _show(self, path: Path) -> str:
        try:
            return path.relative_to(self._rootdir).as_posix()
        except ValueError:
            return str(path)


class _Placeholders:
    """Numbered stand-ins for generated values, one number per distinct value and kind."""

    def __init__(self) -> None:
        self._by_value: dict[Any, str] = {}
        self._counts: dict[str, int] = {}

    def text(self, text: str, kind_hint: str = "") -> str:
        return _TOKENS.sub(lambda match: self._stand_in(match, kind_hint), text)

    def json(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {self.text(k): self.json(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(item, key) for item in value]
        if isinstance(value, str):
            lowered = key.lower()
            hint = next((kind for kind in _ID_KINDS if kind in lowered), "")
            return self.text(value, hint)
        return value

    def _stand_in(self, match: re.Match[str], kind_hint: str) -> str:
        kind = match.lastgroup
        assert kind is not None, "each alternative of _TOKENS is a named group"
        raw = _instant(match.group(0)) if kind == "time" else match.group(0)
        if raw not in self._by_value:
            # A key names what an id is only when the id is the whole value under it.
            if kind != "time" and kind_hint and match.span() == (0, len(match.string)):
                kind = kind_hint
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._by_value[raw] = f"<{kind}-{self._counts[kind]}>"
        return self._by_value[raw]


def _instant(text: str) -> Any:
    """The moment a timestamp names (naive ones taken as UTC), or the text if it is none."""
    try:
        return parse_timestamp(text)
    except HistoryFormatError:
        return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _diff(expected: str, actual: str, path: Path) -> str:
    lines = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                      f"golden {path.name}", "actual", lineterm=""))
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... {len(lines) - MAX_DIFF_LINES} more diff lines"]
    return "\n".join(lines)
