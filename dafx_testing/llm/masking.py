"""Keeping secrets out of captures and cassettes.

Authentication travels in headers (``Authorization``, ``api-key``, ``Ocp-Apim-Subscription-Key``)
and sometimes in the query string (``?api-key=...``, ``?code=...``). Captured requests show these
masked; cassettes go further and scrub every occurrence of the secret *values* anywhere in the
bytes they write, plus any value the user marks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "mask_headers", "mask_url", "scrub", "secret_values"]

MASK = "***"

_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "ocp-apim-subscription-key",
        "cookie",
        "set-cookie",
    }
)
_SECRET_QUERY_KEYS = frozenset(
    {"api-key", "api_key", "key", "code", "sig", "token", "access_token", "subscription-key", "client_secret"}
)
# Shorter values would scrub ordinary words out of recorded text.
_MIN_SECRET_LENGTH = 6


def _masked_value(name: str, value: str) -> str:
    scheme, _, credential = value.partition(" ")
    if name == "authorization" and credential:
        return f"{scheme} {MASK}"  # keep "Bearer" visible: which scheme was used is worth asserting
    return MASK


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased headers with secret values replaced by ``***`` (``Bearer ***`` keeps its scheme).

    Example::

        >>> mask_headers({"Authorization": "Bearer sk-live", "Accept": "application/json"})
        {'authorization': 'Bearer ***', 'accept': 'application/json'}
    """
    return {
        name.lower(): _masked_value(name.lower(), value) if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }


def mask_url(url: str) -> str:
    """The URL with secret query parameters (``api-key``, ``code``, ``sig``, ...) masked."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def secret_values(headers: Mapping[str, str], url: str) -> set[str]:
    """The raw secret values a request carries, for :func:`scrub` to remove from recorded bytes."""
    found = set()
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            found.add(value)
            found.add(value.partition(" ")[2])  # the token alone, as a response might echo it
    for key, value in parse_qsl(urlsplit(url).query):
        if key.lower() in _SECRET_QUERY_KEYS:
            found.add(value)
    return {value for value in found if len(value) >= _MIN_SECRET_LENGTH}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every secret replaced by ``***``, longest secrets first."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return text
