"""The plugin's fixtures through pytester: dafx_factory, virtual_clock, fake_llm, async tests."""

from __future__ import annotations

import pytest

REMINDER_APP = """\
from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def reminder(context):
    hours = context.get_input()
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
    return (yield context.call_activity("remind", hours))


@app.activity_trigger(input_name="hours")
def remind(hours):
    return f"{GREETING} after {hours}h"


GREETING = "{greeting}"
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two apps (``reminders`` configured, ``other`` beside the tests) and an ini naming one."""
    pytester.makeini("[pytest]\ndafx_app = reminders/function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(**{
        "reminders/function_app": REMINDER_APP.replace("{greeting}", "hi"),
        "tests/other/function_app": REMINDER_APP.replace("{greeting}", "hey"),
    })
    return pytester


def run_tests(pytester: pytest.Pytester, source: str, **outcomes: int) -> pytest.RunResult:
    pytester.makepyfile(**{"tests/test_it": source})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(**outcomes)
    return result


def test_dafx_factory_builds_simulators_configured_like_dafx(project):
    run_tests(project, """\
        import pytest


        def finish(sim, hours=1):
            return sim.wait_for_completion(sim.start_new("reminder", hours)).output


        @pytest.mark.dafx_seed(4)
        def test_more_simulators(dafx, dafx_factory):
            again = dafx_factory()
            other = dafx_factory("other/function_app.py", seed=11)    # relative to this file
            assert again is not dafx and dafx.seed == again.seed == 4 and other.seed == 11
            assert finish(dafx) == finish(again) == "hi after 1h"
            assert finish(other) == "hey after 1h"
            assert again.get_status(dafx.list_instances()[0].instance_id)   # the same seeded id


        def test_the_factory_alone(dafx_factory):
            sim = dafx_factory(start_time="2030-01-01T00:00:00Z", guard="warn")
            assert sim.now.year == 2030 and sim.guard.mode == "warn" and sim.seed == 0
            assert finish(sim) == "hi after 1h"
        """, passed=2)


def test_virtual_clock_reads_and_moves_the_dafx_simulator(project):
    run_tests(project, """\
        from datetime import datetime, timedelta, timezone

        import pytest


        def test_advance_fires_due_timers(dafx, virtual_clock):
            assert virtual_clock.now == virtual_clock.start == dafx.now
            instance_id = dafx.start_new("reminder", 24)
            assert virtual_clock.advance(hours=23) == dafx.now
            assert dafx.get_status(instance_id).runtime_status == "Running"
            virtual_clock.advance(timedelta(hours=1))
            assert dafx.get_status(instance_id).output == "hi after 24h"
            assert virtual_clock.elapsed == timedelta(days=1)


        def test_move_to_an_instant(dafx, virtual_clock):
            instance_id = dafx.start_new("reminder", 2)
            assert virtual_clock.move_to("2025-01-01T02:00:00Z") == datetime(
                2025, 1, 1, 2, tzinfo=timezone.utc)
            assert dafx.get_status(instance_id).runtime_status == "Completed"


        def test_time_only_moves_forward(virtual_clock):
            with pytest.raises(ValueError, match="only moves forward; cannot advance by -1 day"):
                virtual_clock.advance(days=-1)
            with pytest.raises(ValueError, match="cannot move back to 2024-12-31T00:00:00"):
                virtual_clock.move_to("2024-12-31")
            with pytest.raises(TypeError, match="a timedelta or timedelta keywords"):
                virtual_clock.advance()
        """, passed=3)


def test_async_tests_await_the_durable_client(project):
    run_tests(project, """\
        import pytest


        @pytest.mark.asyncio
        async def test_client_round_trip(dafx, virtual_clock):
            instance_id = await dafx.client.start_new("reminder", None, 3)
            virtual_clock.advance(hours=3)
            status = await dafx.client.get_status(instance_id)
            assert status.runtime_status.value == "Completed"
            assert status.output == "hi after 3h"
        """, passed=1)


def test_fake_llm_replies_carry_the_simulators_virtual_time(project):
    run_tests(project, """\
        from openai import OpenAI


        def test_stamped_with_virtual_time(fake_llm, dafx, virtual_clock):
            virtual_clock.advance(days=365)
            fake_llm.reply("ok")
            client = OpenAI(api_key="sk-test", base_url="https://api.openai.test/v1",
                            max_retries=0)
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert reply.created == int(dafx.now.timestamp())
        """, passed=1)
