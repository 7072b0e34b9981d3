"""Golden files: normalization, and the dafx_golden fixture's life cycle through pytester."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dafx_testing import AgentSession
from dafx_testing.pytest_plugin.goldens import normalize

INSTANCE = "e3e70682c2094cac629f6fbed82c07cd"
EXECUTION = "f728b4fa42485e3a0a5d2f346baa9455"
GUID = "1d4c0c84-7f35-4d1b-9a5f-3b5d2a7c8e91"


def test_generated_ids_and_times_become_numbered_placeholders():
    history = [
        {"EventType": 0, "Timestamp": "2025-01-01T00:00:00Z",
         "OrchestrationInstance": {"InstanceId": INSTANCE, "ExecutionId": EXECUTION},
         "Input": json.dumps({"parent": INSTANCE, "request": GUID})},
        {"EventType": 10, "Timestamp": "2025-01-01T00:00:00.0000000Z",
         "FireAt": "2025-01-02T00:00:00Z", "Name": GUID},
    ]

    text, suffix = normalize(history)

    assert suffix == ".json"
    assert json.loads(text) == [
        {"EventType": 0, "Timestamp": "<time-1>",
         "OrchestrationInstance": {"InstanceId": "<instance-1>", "ExecutionId": "<execution-1>"},
         "Input": '{"parent": "<instance-1>", "request": "<guid-1>"}'},
        {"EventType": 10, "Timestamp": "<time-1>",          # the same instant, spelled otherwise
         "FireAt": "<time-2>", "Name": "<guid-1>"},
    ]


def test_ids_chosen_by_the_test_and_other_values_are_kept():
    text, _ = normalize({"instance_id": "order-1", "count": 3, "ok": True, "note": None})

    assert json.loads(text) == {"instance_id": "order-1", "count": 3, "ok": True, "note": None}


def test_datetimes_and_dataclasses_are_stored_as_json():
    @dataclass
    class Snapshot:
        instance_id: str
        created_time: datetime

    text, suffix = normalize(Snapshot(INSTANCE, datetime(2025, 1, 1, tzinfo=timezone.utc)))

    assert suffix == ".json"
    assert text == '{\n  "instance_id": "<instance-1>",\n  "created_time": "<time-1>"\n}\n'


def test_text_and_agent_sessions_are_stored_as_text():
    session = AgentSession(agent="Joker", key=GUID)

    assert normalize(session) == ("agent session Joker/<guid-1>: 0 turn(s)\n", ".txt")
    assert normalize(f"at 2025-03-04 05:06:07 ran {INSTANCE}") == ("at <time-1> ran <id-1>\n",
                                                                   ".txt")


def test_a_value_that_cannot_be_stored_names_its_type_and_what_can():
    with pytest.raises(TypeError, match=r"a golden value of type set cannot be stored .*; give "
                                        r"text, an AgentSession, or a JSON-able value"):
        normalize({1, 2})


APP = (Path(__file__).parent / "apps" / "hello_app.py").read_text(encoding="utf-8")

GOLDEN_TEST = """\
import os


def test_history(dafx, dafx_golden):
    status = dafx.wait_for_completion(dafx.start_new("hello", os.environ.get("WHO", "Ada")))
    dafx_golden("hello-history", status.history)
    dafx_golden("greeting", status.output)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(function_app=APP, **{"tests/test_hello": GOLDEN_TEST})
    return pytester


def test_a_missing_golden_fails_with_the_command_that_writes_it(project):
    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E *AssertionError: golden 'hello-history' does not exist yet: "
        "tests/goldens/test_hello/hello-history.json",
        "E *write it with: pytest tests/test_hello.py::test_history --dafx-update-goldens",
    ])
    assert not (project.path / "tests" / "goldens").exists()


def test_update_writes_the_goldens_then_they_pass(project):
    written = project.runpytest("--dafx-update-goldens")

    written.assert_outcomes(passed=1)
    written.stdout.fnmatch_lines([
        "*= dafx: wrote 2 golden file(s) =*",
        "tests/goldens/test_hello/hello-history.json",
        "tests/goldens/test_hello/greeting.txt",
    ])
    folder = project.path / "tests" / "goldens" / "test_hello"
    assert (folder / "greeting.txt").read_text() == "hello Ada\n"
    assert '"InstanceId": "<instance-1>"' in (folder / "hello-history.json").read_text()
    project.runpytest().assert_outcomes(passed=1)
    unchanged = project.runpytest("--dafx-update-goldens")
    assert "wrote" not in unchanged.stdout.str()


def test_a_mismatch_fails_with_a_unified_diff(project, monkeypatch):
    project.runpytest("--dafx-update-goldens").assert_outcomes(passed=1)
    monkeypatch.setenv("WHO", "Bo")

    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E *AssertionError: golden 'hello-history' differs from "
        "tests/goldens/test_hello/hello-history.json (- golden, + actual)",
        "E *if the change is intended, accept it with: "
        "pytest tests/test_hello.py::test_history --dafx-update-goldens",
        "E *--- golden hello-history.json",
        "E *+++ actual",
        "E *@@ *",
        '*-    "Input": "\\"\\\\\\"Ada\\\\\\"\\"",',
        '*+    "Input": "\\"\\\\\\"Bo\\\\\\"\\"",',
    ])


def test_the_update_option_has_an_ini_twin(project):
    project.makeini("[pytest]\ndafx_app = function_app.py\ndafx_update_goldens = true\n"
                    "asyncio_default_fixture_loop_scope = function\n")

    project.runpytest().assert_outcomes(passed=1)

    assert (project.path / "tests" / "goldens" / "test_hello" / "greeting.txt").exists()


def test_a_bad_golden_name_says_what_a_name_may_hold(project):
    project.makepyfile(**{"tests/test_hello": """\
        def test_bad_name(dafx_golden):
            dafx_golden("../escape", 1)
        """})

    result = project.runpytest()

    result.stdout.fnmatch_lines([
        "E *ValueError: golden name '../escape': use letters, digits, '_', '-' and '.', starting "
        "with a letter or digit (it becomes the file tests/goldens/test_hello/<name>.json)",
    ])
