"""Durable payloads: the SDK's JSON codec, and errors that point at the bad value.

Orchestration inputs, activity inputs and outputs and event data cross the wire
as JSON made by the SDK's ``df_dumps``. When a value cannot be encoded, the
error names its type and its path inside the payload (``$.items[2]``). JSON
text read from outside (history files, payloads in them, command-line input)
goes through :func:`loads_bounded`, so deep nesting is a clear error, never a
``RecursionError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from azure.functions._durable_functions import df_dumps, df_loads

from .errors import SerializationError

__all__ = ["encode", "decode_input", "decode_json", "decode_state", "find_unserializable",
           "loads_bounded", "nested_too_deep", "short_repr", "MAX_NESTING"]

MAX_NESTING = 500
"""How deep JSON may nest (arrays and objects). Python's JSON codec recurses once per
level, and the SDK decodes payloads hundreds of frames down the stack, where deeper
values fail with a ``RecursionError``; they are refused where they come in instead."""


def encode(value: Any, what: str) -> str:
    """``df_dumps(value)``, or a :class:`SerializationError` naming the bad part.

    Besides what ``df_dumps`` refuses, NaN and infinities (the host's JSON has
    neither), circular references and nesting deeper than :data:`MAX_NESTING`
    are refused.
    """
    try:
        text = df_dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(unserializable_message(value, what, exc)) from None
    # Cheap C-speed scans first: only text that could hold a NaN or nest that deep is walked.
    suspect = ("NaN" in text or "Infinity" in text
               or text.count("[") + text.count("{") > MAX_NESTING)
    if suspect:
        found = find_unserializable(value)
        if found is not None:
            raise SerializationError(_message(what, *found))
    return text


def unserializable_message(value: Any, what: str, exc: BaseException) -> str:
    """The message for a value ``df_dumps`` refused with ``exc``: its bad part's type and path."""
    path, bad, why = find_unserializable(value) or ("$", value, str(exc))
    return _message(what, path, bad, why)


def _message(what: str, path: str, bad: Any, why: str) -> str:
    if len(path) > 60:                  # deep inside: the start and the end of the path tell it
        path = f"{path[:30]}...{path[-20:]}"
    return (
        f"{what} is not JSON-serializable: value of type {type(bad).__name__!r} at {path} "
        f"({why}). Durable payloads must be JSON (dict, list, str, int, float, bool, None; "
        f"finite numbers, at most {MAX_NESTING} levels deep, no circular references) "
        "or objects with to_json/from_json."
    )


def find_unserializable(value: Any, path: str = "$") -> tuple[str, Any, str] | None:
    """The first ``(path, value, why)`` inside ``value`` that cannot cross the wire as JSON.

    Walks without recursion, so a self-containing or very deep value is reported,
    not a ``RecursionError``.
    """
    on_path: set[int] = set()
    frames: list[tuple[int, Iterator[tuple[str, Any]]]] = []

    def enter(item: Any, where: str) -> tuple[str, Any, str] | None:
        if not isinstance(item, (dict, list, tuple)):
            return _leaf_problem(item, where)
        if id(item) in on_path:
            return where, item, "it contains itself: a circular reference"
        if len(frames) >= MAX_NESTING:
            return where, item, f"nested deeper than {MAX_NESTING} levels"
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    return f"{where} (key {key!r})", key, "keys must be str, int, float, bool or None"
            children: Iterator[tuple[str, Any]] = ((f"{where}.{k}", v) for k, v in item.items())
        else:
            children = ((f"{where}[{i}]", v) for i, v in enumerate(item))
        on_path.add(id(item))
        frames.append((id(item), children))
        return None

    found = enter(value, path)
    while found is None and frames:
        ident, children = frames[-1]
        child = next(children, None)
        if child is None:
            frames.pop()
            on_path.discard(ident)
        else:
            where, item = child
            found = enter(item, where)
    return found


def _leaf_problem(value: Any, path: str) -> tuple[str, Any, str] | None:
    if value is None or isinstance(value, (str, int, bool)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (
            path, value, f"{value}: the host's JSON has no NaN or Infinity")
    try:
        df_dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return path, value, str(exc)
    return None


def loads_bounded(text: str, allow_nan: bool = True) -> Any:
    """``json.loads`` for text from outside, with nesting limited to :data:`MAX_NESTING`.

    ``allow_nan=False`` refuses ``NaN`` and ``Infinity``, which Python's JSON reads
    but the host's payloads cannot carry.

    Raises:
        json.JSONDecodeError: the text is not JSON (with line and column).
        ValueError: it nests deeper than :data:`MAX_NESTING` levels, or holds NaN
            or Infinity when they are not allowed.
    """
    try:
        value = json.loads(text) if allow_nan else json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels") from None
    if text.count("[") + text.count("{") > MAX_NESTING and nested_too_deep(value):
        raise ValueError(f"nested deeper than {MAX_NESTING} levels")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number the host accepts (no NaN or Infinity)")


def nested_too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` holds arrays or objects more than ``limit`` levels deep.

    Walks without recursion; a container that holds itself counts as endlessly deep.
    """
    deepest: dict[int, int] = {}        # container id -> the deepest level it was seen at
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if deepest.get(id(item), 0) >= depth:
            continue
        deepest[id(item)] = depth
        children = item.values() if isinstance(item, dict) else item
        stack += [(child, depth + 1) for child in children
                  if isinstance(child, (dict, list, tuple))]
    return False


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages (a bad value may be huge or deep)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<a deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def decode_json(raw: str | None) -> Any:
    """Decode stored JSON text (outputs, custom status); non-JSON text is returned as is."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return raw


def decode_input(raw: str | None) -> Any:
    """Decode a stored orchestration input to the Python value the user sent.

    Inputs from Python clients and parents are ``df_dumps`` text stored as a JSON
    string, so they are decoded twice; raw JSON (from HTTP) once.
    """
    value = decode_json(raw)
    if isinstance(value, str) and raw is not None and raw.startswith('"'):
        try:
            return df_loads(value)
        except (TypeError, ValueError, RecursionError):
            return value
    return value


def decode_state(raw: str | None) -> Any:
    """Decode an entity's stored ``entityState`` (``df_dumps`` text) as the SDK would."""
    if raw is None:
        return None
    try:
        return df_loads(raw)
    except (TypeError, ValueError, RecursionError):
        return raw
