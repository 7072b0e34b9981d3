"""The virtual clock: where it starts, that it only moves forward, and what it binds."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from dafx_testing.core.clock import DEFAULT_START, VirtualClock

UTC = timezone.utc
FAR_PAST = datetime(2001, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)


def reads_real_time() -> bool:
    """True when ``time.time()`` and ``datetime.now()`` are the real clock again."""
    real = time.time()
    return real > datetime(2024, 1, 1, tzinfo=UTC).timestamp() and abs(
        datetime.now(UTC).timestamp() - real) < 60


# --- where it starts -------------------------------------------------------------------


def test_the_default_start_is_2025_01_01_utc():
    clock = VirtualClock()

    assert clock.now == DEFAULT_START == datetime(2025, 1, 1, tzinfo=UTC)
    assert clock.now.utcoffset() == timedelta(0)


@pytest.mark.parametrize("start", [
    "2030-05-06T07:08:09Z",
    "2030-05-06T07:08:09+00:00",
    "2030-05-06T09:08:09+02:00",
    "2030-05-06T07:08:09",
    datetime(2030, 5, 6, 7, 8, 9),
    datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC),
    datetime(2030, 5, 6, 2, 8, 9, tzinfo=timezone(timedelta(hours=-5))),
])
def test_a_start_can_be_iso_text_naive_utc_or_aware(start):
    clock = VirtualClock(start)

    assert clock.now == datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert clock.now.tzinfo is UTC


def test_a_start_that_is_not_a_time_is_refused():
    with pytest.raises(TypeError, match="expected a datetime or an ISO-8601 string"):
        VirtualClock(1735689600)


# --- it only moves forward -------------------------------------------------------------


def test_advance_moves_forward_and_returns_the_new_instant():
    clock = VirtualClock()

    assert clock.advance(timedelta(hours=24)) == datetime(2025, 1, 2, tzinfo=UTC)
    assert clock.advance(timedelta(0)) == datetime(2025, 1, 2, tzinfo=UTC)
    assert clock.now == datetime(2025, 1, 2, tzinfo=UTC)


def test_move_to_goes_forward_or_stays():
    clock = VirtualClock()

    clock.move_to(datetime(2025, 3, 1, tzinfo=UTC))
    clock.move_to("2025-03-01T00:00:00Z")            # the same instant is allowed
    clock.move_to(datetime(2025, 3, 1, 12))           # naive means UTC

    assert clock.now == datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_move_to_backwards_is_refused_and_leaves_the_clock_alone():
    clock = VirtualClock("2025-06-01T00:00:00Z")

    with pytest.raises(ValueError, match="cannot go back") as caught:
        clock.move_to(datetime(2025, 5, 31, 23, 59, 59, tzinfo=UTC))

    assert "2025-06-01T00:00:00+00:00" in str(caught.value)
    assert "2025-05-31T23:59:59+00:00" in str(caught.value)
    assert clock.now == datetime(2025, 6, 1, tzinfo=UTC)


def test_advance_by_a_negative_duration_is_refused():
    clock = VirtualClock()

    with pytest.raises(ValueError, match="negative duration"):
        clock.advance(timedelta(seconds=-1))

    assert clock.now == DEFAULT_START


# --- binding the wall clock ------------------------------------------------------------


def test_bound_points_the_wall_clock_at_virtual_time():
    clock = VirtualClock(FAR_PAST)

    with clock.bound():
        assert datetime.now(UTC) == FAR_PAST
        assert datetime.now() == FAR_PAST.replace(tzinfo=None)
        assert datetime.utcnow() == FAR_PAST.replace(tzinfo=None)
        assert time.time() == pytest.approx(FAR_PAST.timestamp())


def test_bound_follows_the_clock_as_it_moves():
    clock = VirtualClock(FAR_PAST)

    with clock.bound():
        clock.advance(timedelta(hours=36))
        assert datetime.now(UTC) == FAR_PAST + timedelta(hours=36)
        clock.move_to(datetime(2002, 1, 1, tzinfo=UTC))
        assert datetime.utcnow() == datetime(2002, 1, 1)
        assert time.time() == pytest.approx(datetime(2002, 1, 1, tzinfo=UTC).timestamp())


def test_bound_time_stands_still_between_moves():
    clock = VirtualClock(FAR_PAST)

    with clock.bound():
        first = time.time()
        sum(range(10_000))
        assert time.time() == first


def test_bound_blocks_nest():
    clock = VirtualClock(FAR_PAST)

    with clock.bound():
        with clock.bound():
            clock.advance(timedelta(minutes=5))
            assert datetime.now(UTC) == FAR_PAST + timedelta(minutes=5)
        # Leaving the inner block keeps the outer binding, and it still follows the clock.
        assert datetime.now(UTC) == FAR_PAST + timedelta(minutes=5)
        clock.advance(timedelta(minutes=5))
        assert datetime.now(UTC) == FAR_PAST + timedelta(minutes=10)
    assert reads_real_time()


def test_real_time_is_restored_after_the_block():
    clock = VirtualClock(FAR_PAST)
    assert reads_real_time()

    with clock.bound():
        assert not reads_real_time()

    assert reads_real_time()
    # Moving the clock outside a block does not touch the wall clock.
    clock.advance(timedelta(days=1))
    assert reads_real_time()


def test_real_time_is_restored_when_the_block_raises():
    clock = VirtualClock(FAR_PAST)

    with pytest.raises(RuntimeError, match="activity failed"):
        with clock.bound():
            with clock.bound():
                raise RuntimeError("activity failed")

    assert reads_real_time()
    with clock.bound():                      # and the clock can be bound again afterwards
        assert datetime.now(UTC) == FAR_PAST
    assert reads_real_time()


def test_each_block_starts_from_the_current_virtual_time():
    clock = VirtualClock(FAR_PAST)
    with clock.bound():
        pass

    clock.advance(timedelta(days=2))

    with clock.bound():
        assert datetime.now(UTC) == FAR_PAST + timedelta(days=2)
