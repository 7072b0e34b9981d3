"""``dafx replay``: saved histories against the current code, exit code 1 on any divergence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dafx_testing import Simulator
from dafx_testing.cli import EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, main
from scenarios.versioning.record_histories import ORDER

ROOT = Path(__file__).resolve().parent.parent
VERSIONING = ROOT / "scenarios" / "versioning"
HISTORIES = VERSIONING / "histories"


def replay(capsys, app_version, *files):
    code = main(["replay", "--app", str(VERSIONING / f"function_app_v{app_version}.py"),
                 *map(str, files)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_compatible_version_replays_a_folder_and_exits_0(capsys):
    code, out, _ = replay(capsys, 2, HISTORIES)

    assert code == EXIT_COMPLETED
    assert out.splitlines() == [
        f"OK        {HISTORIES / 'awaiting-approval.json'}  order_fulfillment  12 events",
        f"OK        {HISTORIES / 'cancelled.json'}  order_fulfillment  16 events",
        f"OK        {HISTORIES / 'shipped.json'}  order_fulfillment  20 events",
        "3 histories replayed: 3 ok, 0 diverged",
    ]


def test_a_divergence_prints_the_dtfx_message_and_exits_1(capsys):
    code, out, _ = replay(capsys, 3, HISTORIES / "shipped.json", HISTORIES / "cancelled.json")

    assert code == EXIT_FAILED
    lines = out.splitlines()
    assert lines[0] == f"DIVERGED  {HISTORIES / 'shipped.json'}  order_fulfillment  20 events"
    assert lines[1:4] == ["  sequence number: 1",
                          "  recorded:        activity 'charge_payment' [#1]",
                          "  current code:    activity 'check_fraud' [#1]"]
    assert lines[4].startswith("  host:            Non-Deterministic workflow detected: ")
    assert lines[5].startswith("  hint: ")
    assert lines[-1] == "2 histories replayed: 0 ok, 2 diverged"


def test_one_divergence_among_ok_histories_still_exits_1(capsys, tmp_path):
    sim = Simulator(VERSIONING / "function_app_v3.py")
    instance_id = sim.start_new("order_fulfillment", ORDER)
    sim.run_until_idle()
    sim.save_history(instance_id, tmp_path / "v3-instance.json")

    code, out, _ = replay(capsys, 3, tmp_path / "v3-instance.json", HISTORIES / "shipped.json")

    assert code == EXIT_FAILED
    assert out.splitlines()[0].startswith("OK        ")
    assert out.splitlines()[-1] == "2 histories replayed: 1 ok, 1 diverged"


def test_an_unreadable_history_names_the_file_and_exits_2(capsys, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"history": [{"EventType": 0, "EventId": -1}]}', encoding="utf-8")

    code, out, err = replay(capsys, 2, broken, HISTORIES / "shipped.json")

    assert code == EXIT_USAGE
    assert f"ERROR     {broken}: event 0 lacks Timestamp" in out
    assert "OK        " in out   # the readable one still replayed
    assert out.splitlines()[-1] == "1 history replayed: 1 ok, 0 diverged, 1 unreadable"
    assert err.startswith("hint: a history file is what Simulator.save_history writes")


def test_json_gives_each_verdict_and_each_unreadable_file(capsys, tmp_path):
    missing = tmp_path / "missing.json"
    code, out, _ = replay(capsys, 2, HISTORIES / "shipped.json", missing, "--json")
    code_v3, out_v3, _ = replay(capsys, 3, HISTORIES / "shipped.json", "--json")

    assert code == EXIT_USAGE
    document = json.loads(out)
    assert document["ok"] is False
    assert [(r["verdict"], r["events"], r["divergence"]) for r in document["results"]] == [
        ("ok", 20, None)]
    assert document["errors"] == [{"source": str(missing),
                                   "error": f"history file not found: {missing}"}]

    assert code_v3 == EXIT_FAILED
    diverged, = json.loads(out_v3)["results"]
    assert (diverged["verdict"], diverged["orchestrator"]) == ("diverged", "order_fulfillment")
    assert diverged["divergence"]["sequenceNumber"] == 1
    assert diverged["divergence"]["expected"] == "activity 'charge_payment' [#1]"
    assert diverged["divergence"]["actual"] == "activity 'check_fraud' [#1]"
    assert diverged["divergence"]["hostMessage"].startswith("Non-Deterministic workflow detected")


def test_an_app_that_cannot_load_exits_2(capsys, tmp_path):
    code = main(["replay", "--app", str(tmp_path / "missing.py"), str(HISTORIES)])

    assert code == EXIT_USAGE
    assert "dafx: error: app file not found" in capsys.readouterr().err


def test_files_are_required(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["replay", "--app", "function_app.py"])

    assert caught.value.code == 2
    assert "FILES" in capsys.readouterr().err
