"""The replay fast path parses exactly as dateutil does (tests/test_speedups.py: and changes no history)."""

import time
from datetime import datetime, timezone

import pytest
from dateutil.parser import parse as dateutil_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dafx_testing.functions.fast_timestamps import parse, swapped_in


def same(text):
    fast, slow = parse(text), dateutil_parse(text)
    assert (fast, fast.tzinfo, repr(fast)) == (slow, slow.tzinfo, repr(slow))


@pytest.fixture(params=["UTC", "Europe/Rome", "Europe/London", "Africa/Casablanca"])
def local_zone(request, monkeypatch):
    """The machine's local zone: dateutil's reading of ``Z`` depends on it."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
       st.integers(0, 7), st.sampled_from(["Z", "+00:00", ""]), st.integers(0, 9))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_host_timestamp_parses_to_dateutils_value(local_zone, moment, digits, zone,
                                                        extra_digit):
    fraction = f"{moment.microsecond:06d}{extra_digit}"[:digits]
    whole = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
             f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    same(whole + (f".{fraction}" if digits else "") + zone)


@pytest.mark.parametrize("text", ["2025-01-01 00:00:00", "2025-01-01T00:00:00+01:00",
                                  "2025-01-01T00:00:00.12345678Z", "Jan 1 2025 10:00"])
def test_other_shapes_go_to_dateutil(text):
    same(text)


def test_a_text_seen_before_is_read_again_in_another_local_zone(monkeypatch):
    # Where the local zone is UTC, dateutil reads Z as tzlocal(); elsewhere as tzutc().
    text = "2025-01-01T00:00:00Z"
    readings = []
    for zone in ("UTC", "Europe/Rome", "UTC"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        same(text)
        readings.append(repr(parse(text).tzinfo))
    monkeypatch.undo()
    time.tzset()
    assert readings == ["tzlocal()", "tzutc()", "tzlocal()"]


def test_a_text_seen_while_the_clock_was_frozen_is_read_again_after():
    from freezegun import freeze_time

    text = "2025-01-02T03:04:05Z"
    with freeze_time("2030-01-01"):
        same(text)                          # both make freezegun's FakeDatetime here
        assert type(parse(text)).__name__ == "FakeDatetime"
    same(text)
    assert type(parse(text)) is datetime


def test_an_impossible_date_fails_as_dateutil_fails():
    with pytest.raises(ValueError) as fast:
        parse("2025-02-30T00:00:00Z")
    with pytest.raises(ValueError) as slow:
        dateutil_parse("2025-02-30T00:00:00Z")
    assert str(fast.value) == str(slow.value)


def test_the_swap_is_undone_on_exit_and_nests():
    from azure.durable_functions.models.history import HistoryEvent

    module = __import__(HistoryEvent.__module__, fromlist=["dt_parse"])
    with swapped_in():
        with swapped_in():
            assert module.dt_parse is parse
        assert module.dt_parse is parse
    assert module.dt_parse is dateutil_parse


def test_history_timestamps_reach_the_orchestrator_as_utc(local_zone):
    # What orchestrator code sees: current_utc_datetime is aware UTC in every local zone.
    assert parse("2025-07-01T00:00:00Z").utcoffset() == timezone.utc.utcoffset(None)
