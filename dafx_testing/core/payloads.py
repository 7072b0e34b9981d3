"""Durable payloads: the SDK's JSON codec, and errors that point at the bad value.

Orchestration inputs, activity inputs and outputs and event data cross the wire
as JSON made by the SDK's ``df_dumps``. When a value cannot be encoded, the
error names its type and its path inside the payload (``$.items[2]``).
"""

from __future__ import annotations

import json
from typing import Any

from azure.functions._durable_functions import df_dumps, df_loads

from .errors import SerializationError

__all__ = ["encode", "decode_input", "decode_json", "decode_state", "find_unserializable"]


def encode(value: Any, what: str) -> str:
    """``df_dumps(value)``, or a :class:`SerializationError` naming the bad part."""
    try:
        return df_dumps(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(unserializable_message(value, what, exc)) from None


def unserializable_message(value: Any, what: str, exc: BaseException) -> str:
    path, bad = find_unserializable(value) or ("$", value)
    return (
        f"{what} is not JSON-serializable: value of type {type(bad).__name__!r} at {path} "
        f"({exc}). Durable payloads must be JSON (dict, list, str, int, float, bool, None) "
        "or objects with to_json/from_json."
    )


def find_unserializable(value: Any, path: str = "$") -> tuple | None:
    """The first (path, value) inside ``value`` that ``df_dumps`` cannot encode."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"{path} (key {key!r})", key
            found = find_unserializable(item, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_unserializable(item, f"{path}[{index}]")
            if found:
                return found
        return None
    try:
        df_dumps(value)
    except (TypeError, ValueError):
        return path, value
    return None


def decode_json(raw: str | None) -> Any:
    """Decode stored JSON text (outputs, custom status); non-JSON text is returned as is."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
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
        except (TypeError, ValueError):
            return value
    return value


def decode_state(raw: str | None) -> Any:
    """Decode an entity's stored ``entityState`` (``df_dumps`` text) as the SDK would."""
    if raw is None:
        return None
    try:
        return df_loads(raw)
    except (TypeError, ValueError):
        return raw
