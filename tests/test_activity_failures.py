"""An activity's failure names where the app's code raised, without the machine's paths."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from dafx_testing import Simulator
from dafx_testing.core.history import EventType

APP = """\
import json

import azure.durable_functions as df
from dafxtest_billing.cards import charge_card
from dafxtest_shared import audit

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def checkout(context):
    try:
        yield context.call_activity(context.get_input(), 12)
    except Exception as error:
        return str(error)


@app.activity_trigger(input_name="amount")
def card(amount):
    return charge_card(amount)


@app.activity_trigger(input_name="amount")
def parse(amount):
    return json.loads("{" * amount)


@app.activity_trigger(input_name="amount")
def log(amount):
    return audit(amount)


@app.activity_trigger(input_name="amount")
def unserializable(amount):
    return object()
"""

CARDS = """\
def charge_card(amount):
    raise ValueError(f"card declined for {amount}")
"""

SHARED = """\
def audit(amount):
    raise PermissionError("audit log is read-only")
"""


@pytest.fixture
def sim(tmp_path, monkeypatch):
    """The app in ``tmp_path/app``, a helper package beside it, one module outside it."""
    folder = tmp_path / "app"
    for path, source in {folder / "function_app.py": APP,
                         folder / "dafxtest_billing" / "__init__.py": "",
                         folder / "dafxtest_billing" / "cards.py": CARDS,
                         tmp_path / "shared" / "dafxtest_shared.py": SHARED}.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "shared"), *sys.path])
    yield Simulator(folder)
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def failed_task(sim: Simulator, activity: str) -> tuple[str, dict, str]:
    """Run ``checkout`` calling ``activity``: (its output, the TaskFailed event, Details' message)."""
    status = sim.wait_for_completion(sim.start_new("checkout", activity))
    event = next(e for e in status.history if e["EventType"] == EventType.TaskFailed)
    return status.output, event, json.loads(event["Details"])["Message"]


def test_the_failure_names_the_apps_line_relative_to_the_app_folder(sim):
    output, event, message = failed_task(sim, "card")

    assert event["Reason"] == "Activity function 'card' failed: ValueError: card declined for 12"
    assert message == ("Result: Failure\nException: ValueError: card declined for 12\n"
                       'Stack:   File "dafxtest_billing/cards.py", line 2, in charge_card')
    assert output.startswith("Activity function 'card' failed: ValueError: card declined for 12")
    assert r'Stack:   File \"dafxtest_billing/cards.py\", line 2, in charge_card' in output


def test_frames_in_the_standard_library_are_skipped(sim):
    _, event, message = failed_task(sim, "parse")

    assert event["Reason"].startswith("Activity function 'parse' failed: JSONDecodeError: ")
    assert message.endswith('\nStack:   File "function_app.py", line 25, in parse')


def test_a_file_outside_the_app_folder_is_named_by_its_file_name(sim):
    _, _, message = failed_task(sim, "log")

    assert message.endswith('\nStack:   File "dafxtest_shared.py", line 2, in audit')


def test_no_line_of_the_app_raised_no_stack(sim):
    _, event, message = failed_task(sim, "unserializable")

    assert event["Reason"].startswith("Activity function 'unserializable' failed: TypeError: ")
    assert "Stack:" not in message


def test_saved_histories_hold_no_machine_paths(sim, tmp_path):
    instance_id = sim.start_new("checkout", "card")
    sim.wait_for_completion(instance_id)

    sim.save_history(instance_id, tmp_path / "history.json")

    text = (tmp_path / "history.json").read_text(encoding="utf-8")
    assert "dafxtest_billing/cards.py" in text
    assert str(tmp_path) not in text


def test_activity_calls_keep_the_exception_object(sim):
    failed_task(sim, "card")

    [call] = sim.activity_calls("card")
    assert isinstance(call.error, ValueError) and str(call.error) == "card declined for 12"
    assert call.error.__traceback__ is not None
