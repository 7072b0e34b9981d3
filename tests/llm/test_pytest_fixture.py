"""The fake_llm fixture body, wired the way the plugin wires it, run through pytester."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

pytest_plugins = ["pytester"]

GOLDEN = Path(__file__).resolve().parents[2] / "fakes" / "cassettes" / "forecast_and_joke.jsonl"

CONFTEST = """
import pytest
from dafx_testing.pytest_plugin import fake_llm as pytest_fixture

fake_llm = pytest.fixture(name="fake_llm")(pytest_fixture.fake_llm)

def pytest_configure(config):
    config.addinivalue_line("markers", pytest_fixture.MARKER)
"""

TESTS = '''
from datetime import datetime, timezone

import pytest
from openai import OpenAI

def ask(text):
    client = OpenAI(api_key="sk-test", base_url="https://api.openai.test/v1", max_retries=0)
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

def test_scripted(fake_llm):
    fake_llm.reply("scripted")
    assert ask("hi").choices[0].message.content == "scripted"

def test_clock_can_follow_a_virtual_clock(fake_llm):
    fake_llm.clock = lambda: datetime(2030, 1, 1, tzinfo=timezone.utc)
    fake_llm.reply("x")
    assert ask("hi").created == 1893456000

@pytest.mark.fake_llm(cassette="golden.jsonl")
def test_marker_replays_the_cassette(fake_llm):
    with pytest.raises(Exception, match="Nearest recorded"):
        ask("not recorded")
    fake_llm.errors.clear()
'''


def test_fixture_scripts_follows_clocks_and_replays_cassettes(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(textwrap.dedent(CONFTEST))
    pytester.makepyfile(test_child=TESTS)
    shutil.copy(GOLDEN, pytester.path / "golden.jsonl")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)
