"""The virtual clock: where it starts, that it only moves forward, and what it binds."""

from __future__ import annotations

import asyncio
import copyreg
import datetime as datetime_module
import importlib
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import azure.durable_functions as df
import freezegun
import pytest

from dafx_testing import Simulator
from dafx_testing.core import time_patch
from dafx_testing.core.clock import DEFAULT_START, VirtualClock

UTC = timezone.utc
FAR_PAST = datetime(2001, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)
REAL = SimpleNamespace(datetime=datetime_module.datetime, date=datetime_module.date,
                       time=time.time, time_ns=time.time_ns)
"""The real objects, out of reach of the patch (which rebinds module globals that hold them)."""


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


# --- what binding reaches, and what it costs ---------------------------------------------

ALIASES = '''
import datetime as dt
import time
from datetime import date, datetime, timezone
from time import time as now, time_ns


def readings():
    return {"datetime.now": datetime.now(timezone.utc), "datetime.utcnow": datetime.utcnow(),
            "dt.datetime.now": dt.datetime.now(timezone.utc), "date.today": date.today(),
            "now": now(), "time_ns": time_ns(), "time.time": time.time()}
'''


def virtual_readings(moment: datetime) -> dict:
    return {"datetime.now": moment, "datetime.utcnow": moment.replace(tzinfo=None),
            "dt.datetime.now": moment, "date.today": moment.date(), "now": moment.timestamp(),
            "time_ns": int(moment.timestamp() * 1e9), "time.time": moment.timestamp()}


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """``write_module(source)``: a module file under a fresh name, importable by that name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"dafx_clock_probe_{len(names)}_{abs(hash(str(tmp_path)))}"
        (tmp_path / f"{name}.py").write_text(source)
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def test_a_module_imported_after_the_clock_was_bound_once_sees_virtual_time(write_module):
    clock = VirtualClock(FAR_PAST)
    with clock.bound():                          # the modules loaded so far are indexed here
        pass
    module = importlib.import_module(write_module(ALIASES))

    with clock.bound():
        assert module.readings() == virtual_readings(FAR_PAST)
        clock.advance(timedelta(minutes=1))
        assert module.readings()["now"] == (FAR_PAST + timedelta(minutes=1)).timestamp()

    assert module.datetime is REAL.datetime and module.now is REAL.time and module.date is REAL.date


def test_a_module_imported_inside_a_block_sees_virtual_time_and_gets_real_time_back(write_module):
    clock = VirtualClock(FAR_PAST)
    name = write_module(ALIASES)

    with clock.bound():
        module = importlib.import_module(name)   # takes the fakes: datetime.datetime is one now
        assert module.readings() == virtual_readings(FAR_PAST)

    # As freezegun's stop does, the names it took are given the real objects back...
    assert module.datetime is REAL.datetime and module.now is REAL.time
    assert module.time_ns is REAL.time_ns and module.date is REAL.date
    assert reads_real_time()
    # ... and the module is patched again by the next block.
    clock.advance(timedelta(days=1))
    with clock.bound():
        assert module.readings() == virtual_readings(FAR_PAST + timedelta(days=1))


def test_a_module_bound_while_it_was_still_importing_is_read_again(write_module):
    # The block opens halfway through the import, before the module took ``time``:
    # the index must not remember it as holding nothing.
    name = write_module('''
from dafx_testing.core.clock import VirtualClock
from datetime import datetime, timezone

with VirtualClock("2001-02-03T04:05:06.7Z").bound():
    pass

from time import time as now
''')
    module = importlib.import_module(name)
    clock = VirtualClock(FAR_PAST)

    with clock.bound():
        assert module.now() == pytest.approx(FAR_PAST.timestamp())
    assert module.now is REAL.time


def test_a_module_imported_again_under_the_same_name_is_patched(write_module):
    clock = VirtualClock(FAR_PAST)
    name = write_module(ALIASES)
    first = importlib.import_module(name)
    with clock.bound():
        assert first.readings() == virtual_readings(FAR_PAST)
    del sys.modules[name]
    second = importlib.import_module(name)

    assert second is not first
    with clock.bound():
        assert second.readings() == virtual_readings(FAR_PAST)
    assert second.datetime is REAL.datetime


def loop_class() -> type:
    loop = asyncio.new_event_loop()
    loop.close()
    return type(loop)


def test_everything_patched_is_the_real_object_again_after_the_block():
    clock = VirtualClock(FAR_PAST)
    loop_time = loop_class().__dict__.get("time")
    reals = {name: getattr(time, name) for name in
             ("time", "time_ns", "monotonic", "perf_counter", "localtime", "gmtime", "strftime")}

    with pytest.raises(RuntimeError):
        with clock.bound():
            assert datetime_module.datetime is not REAL.datetime
            assert time.monotonic is not reals["monotonic"]
            raise RuntimeError("the block fails")

    assert datetime_module.datetime is REAL.datetime and datetime_module.date is REAL.date
    assert {name: getattr(time, name) for name in reals} == reals
    assert datetime is REAL.datetime             # this module's own ``from datetime import datetime``
    assert REAL.datetime not in copyreg.dispatch_table
    assert loop_class().__dict__.get("time") is loop_time


def test_asyncio_keeps_real_time_inside_a_block():
    clock = VirtualClock(FAR_PAST)

    async def wait() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(0.01)
        return loop.time() - started

    with clock.bound():
        assert asyncio.run(wait()) >= 0.01        # it would hang on a frozen monotonic clock
        assert time.monotonic() == pytest.approx(FAR_PAST.timestamp())


def test_modules_freezegun_ignores_keep_the_real_functions():
    clock = VirtualClock(FAR_PAST)
    real_monotonic = time.monotonic

    with clock.bound():
        assert threading._time is real_monotonic  # type: ignore[attr-defined]  # Condition.wait's


def test_blocks_of_another_clock_nest_and_the_innermost_is_read():
    outer = VirtualClock(FAR_PAST)
    inner = VirtualClock("2030-01-01T00:00:00Z")

    with outer.bound():
        with inner.bound():
            assert datetime.now(UTC) == datetime(2030, 1, 1, tzinfo=UTC)
            inner.advance(timedelta(hours=1))
            assert datetime.now(UTC) == datetime(2030, 1, 1, 1, tzinfo=UTC)
        assert datetime.now(UTC) == FAR_PAST
    assert reads_real_time()


def test_freezegun_blocks_nest_inside_and_around_a_bound_block():
    clock = VirtualClock(FAR_PAST)

    with clock.bound():
        with freezegun.freeze_time("2040-01-01"):
            assert datetime.now(UTC) == datetime(2040, 1, 1, tzinfo=UTC)
        assert datetime.now(UTC) == FAR_PAST
    assert reads_real_time()

    with freezegun.freeze_time("2040-01-01"):
        with clock.bound():
            assert datetime.now(UTC) == FAR_PAST
        assert datetime.now(UTC) == datetime(2040, 1, 1, tzinfo=UTC)
    assert reads_real_time()


def test_binding_again_reads_no_module_only_the_ones_loaded_since(write_module):
    clock = VirtualClock(FAR_PAST)
    with clock.bound():
        pass
    read = time_patch.modules_read()

    for _ in range(3):
        with clock.bound():
            pass
    assert time_patch.modules_read() == read      # nothing loaded since: no module read

    importlib.import_module(write_module(ALIASES))
    with clock.bound():
        pass
    assert time_patch.modules_read() == read + 1  # only the new one


def test_a_second_driving_call_reads_no_module(write_module):
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def stamp(context):
        return (yield context.call_activity("late_stamp", None))

    @app.activity_trigger(input_name="value")
    def late_stamp(value):
        # Imported by the activity, after the simulator was made: it sees virtual time too.
        return importlib.import_module(late_module).readings()["datetime.now"].isoformat()

    late_module = write_module(ALIASES)
    sim = Simulator(app, start_time=FAR_PAST)
    sim.run_until_idle()
    read = time_patch.modules_read()

    sim.run_until_idle()
    sim.advance(timedelta(minutes=1))
    assert time_patch.modules_read() == read

    iid = sim.start_new("stamp")
    sim.run_until_idle()
    assert sim.get_status(iid).output == (FAR_PAST + timedelta(minutes=1)).isoformat()
    assert reads_real_time()                     # test code between driving calls: real time


def test_a_fake_left_in_a_module_gets_the_real_object_back_at_the_next_block(write_module):
    module = importlib.import_module(write_module(ALIASES))
    module.datetime = freezegun.api.FakeDatetime  # as if imported halfway while another block ended

    with VirtualClock(FAR_PAST).bound():
        assert module.readings() == virtual_readings(FAR_PAST)

    assert module.datetime is REAL.datetime
