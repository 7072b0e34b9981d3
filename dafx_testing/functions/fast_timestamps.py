"""The replay fast path: history timestamps parsed without dateutil.

Every time the SDK's generated handle runs, it builds a ``HistoryEvent`` for
each event of the history and parses its ``Timestamp`` with
``dateutil.parser.parse``, a general-purpose parser that dominates the cost of
a replay. The host writes one shape only (``2025-01-01T00:00:00Z``, with 0-7
fraction digits), which :func:`parse` reads with a regular expression into the
very value dateutil would return: same fields, the fraction cut to
microseconds as dateutil cuts it, and the same zone. (That last one depends on
the machine: where the local zone is UTC, as on Azure Functions' Linux hosts,
dateutil reads ``Z`` as ``tzlocal()``, elsewhere as ``tzutc()``.) Anything else
goes to dateutil itself, so no input parses differently.

:func:`swapped_in` puts :func:`parse` where the SDK looks it up while app code
runs under the simulator. It changes nothing if the SDK does not use dateutil
there (another SDK version), so it is on by default
(``Simulator(fast_timestamps=False)`` turns it off).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import time
from collections.abc import Iterator
from datetime import datetime, tzinfo

from dateutil.parser import parse as dateutil_parse
from dateutil.tz import UTC, tzlocal

__all__ = ["parse", "swapped_in"]

_HOST_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|\+00:00)?")


def parse(text: str) -> datetime:
    """``dateutil.parser.parse(text)``, quickly for the host's timestamp shape.

    A replay parses every event's timestamp again, and a virtual clock gives many
    events the same one: answers are kept per text, local zone and datetime class
    (freezegun's while the clock is frozen: ``datetime`` here is then its fake, as in
    dateutil), up to :data:`_KEPT` of them; datetimes are immutable, so sharing is safe.
    """
    if not isinstance(text, str):
        return dateutil_parse(text)
    key = (text, time.tzname, datetime)
    known = _parsed.get(key)
    if known is None:
        if len(_parsed) >= _KEPT:
            _parsed.clear()
        known = _parsed[key] = _parse(text)
    return known


_KEPT = 1 << 16
_parsed: dict[tuple[str, tuple[str, str], type], datetime] = {}


def _parse(text: str) -> datetime:
    match = _HOST_TIMESTAMP.fullmatch(text)
    if match is None:
        return dateutil_parse(text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tzinfo = _utc_as_dateutil_reads_it(time.tzname) if zone else None
    if zone and tzinfo is None:
        return dateutil_parse(text)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "").ljust(6, "0")[:6]), tzinfo)
    except ValueError:              # out of range: let dateutil decide (and word the error)
        return dateutil_parse(text)


@functools.lru_cache(maxsize=8)
def _utc_as_dateutil_reads_it(names: tuple[str, str]) -> tzinfo | None:
    """The zone dateutil gives a UTC timestamp where the local zone is called ``names``.

    None where it depends on the date. Cached by the zone's names: building a
    ``tzlocal()`` per timestamp cost a noticeable share of a replay.
    """
    if "UTC" not in names:
        return UTC
    if names == ("UTC", "UTC"):
        return tzlocal()
    return None                     # local time is "UTC" only part of the year


@contextlib.contextmanager
def swapped_in() -> Iterator[None]:
    """While open, the SDK's history events parse their timestamps with :func:`parse`."""
    module = importlib.import_module("azure.durable_functions.models.history.HistoryEvent")
    if getattr(module, "dt_parse", None) is not dateutil_parse:
        yield                       # this SDK does not parse with dateutil there
        return
    setattr(module, "dt_parse", parse)     # a module only known at run time: set by name
    try:
        yield
    finally:
        setattr(module, "dt_parse", dateutil_parse)
