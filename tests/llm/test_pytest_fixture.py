"""The fake_llm fixture body, wired the way the plugin wires it, run in a child pytest."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[2] / "fakes" / "cassettes" / "forecast_and_joke.jsonl"

CONFTEST = """
import pytest
from dafx_testing.llm import pytest_fixture

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


def test_fixture_scripts_follows_clocks_and_replays_cassettes(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_child.py").write_text(TESTS)
    shutil.copy(GOLDEN, tmp_path / "golden.jsonl")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "3 passed" in result.stdout, result.stdout + result.stderr
