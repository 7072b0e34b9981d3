"""``dafx sweep``: exit codes, the summary, --json, --html, the progress bar, usage errors."""

import io
import json
import subprocess
import sys
import threading

import pytest

from dafx_testing.cli import main
from fakes import shop

SAGA = "scenarios/order_saga/function_app.py"
ORDER = '{"id": "o1", "item": "book", "amount": 30}'
NAIVE_ORDER = '{"id": "o1", "item": "book", "amount": 30, "idempotency": false}'
WORLD = ["--reset", "fakes.shop:reset", "--effects", "fakes.shop:snapshot"]
SAFE = ["--idempotent", "reserve_inventory", "ship_order", "charge_payment"]


@pytest.fixture(autouse=True)
def clean_shop():
    shop.reset()
    yield
    shop.reset()


def test_a_sound_saga_recovers_from_every_crash(capsys):
    code = main(["sweep", SAGA, "place_order", "--input", ORDER, *WORLD, *SAFE])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("crash sweep: 24 commit points, 24 crash runs")
    assert "all invariants held" in out


def test_the_double_charge_fails_the_sweep_with_its_reproduction(capsys):
    code = main(["sweep", SAGA, "place_order", "--input", NAIVE_ORDER, *WORLD,
                 "--idempotent", "reserve_inventory", "ship_order"])

    out = capsys.readouterr().out
    assert code == 1
    assert "2 failing schedule(s)" in out
    assert "charge_payment ran 2 times (baseline 1)" in out
    assert "reproduce: CrashPlan(at=[11])" in out


@pytest.mark.parametrize("isolation", ["fork", "rerun"])
def test_isolation_chooses_how_crash_runs_are_made_and_both_find_the_double_charge(isolation):
    # In a process of its own: forking needs one thread, and agent tests leave theirs here.
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from dafx_testing.cli import main; sys.exit(main())",
         "sweep", SAGA, "place_order", "--input", NAIVE_ORDER, *WORLD, "--idempotent",
         "reserve_inventory", "ship_order", "--isolation", isolation, "--json"],
        capture_output=True, text=True, timeout=300)

    report = json.loads(done.stdout)
    assert (done.returncode, report["isolation"], report["runs"]) == (1, isolation, 24)
    assert [f["reproduce"] for f in report["failures"]] == ["CrashPlan(at=[11])",
                                                            "CrashPlan(at=[12])"]


def test_asking_for_forks_where_they_are_unsafe_is_a_usage_error(capsys):
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="busy", daemon=True)
    other.start()
    try:
        code = main(["sweep", SAGA, "place_order", "--input", ORDER, *WORLD, "--isolation", "fork"])
    finally:
        stop.set()
        other.join()

    assert code == 2
    assert "isolation='fork' is not possible here: other threads are running" in (
        capsys.readouterr().err)


def test_no_prune_runs_every_crash_run_with_the_same_verdict(capsys):
    assert main(["sweep", SAGA, "place_order", "--input", ORDER, *WORLD, *SAFE]) == 0
    pruned = capsys.readouterr().out.splitlines()[0]
    assert main(["sweep", SAGA, "place_order", "--input", ORDER, *WORLD, *SAFE,
                 "--no-prune"]) == 0
    full = capsys.readouterr().out.splitlines()[0]
    assert "decided without a run" in pruned and "decided without a run" not in full
    assert pruned.split(" (")[0] == full.split(" (")[0]     # the same commit points and runs


def test_kinds_restricts_the_points_tried(capsys):
    code = main(["sweep", SAGA, "place_order", "--input", ORDER, *WORLD, *SAFE,
                 "--kinds", "episode"])

    assert code == 0
    assert "4 crash runs" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["--reset", "fakes.shop"], "is not MODULE:FUNCTION"),
    (["--reset", "fakes.nowhere:reset"], "cannot load 'fakes.nowhere:reset'"),
    (["--advance", "soon"], "invalid duration 'soon'"),
])
def test_bad_arguments_stop_argparse_with_the_problem_named(capsys, arguments, message):
    with pytest.raises(SystemExit) as stopped:
        main(["sweep", SAGA, "place_order", "--input", ORDER, *arguments])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_point_kinds_are_listed_with_the_valid_ones(capsys):
    assert main(["sweep", SAGA, "place_order", "--kinds", "explode"]) == 2
    assert "unknown --kinds explode; valid: dequeue, episode" in capsys.readouterr().err


def test_an_unknown_orchestrator_is_a_usage_error(capsys):
    assert main(["sweep", SAGA, "place_ordr", *WORLD]) == 2
    assert "known orchestrators: 'place_order'" in capsys.readouterr().err


def test_an_unknown_point_kind_has_a_hint(capsys):
    assert main(["sweep", SAGA, "place_order", "--kinds", "explode"]) == 2
    assert capsys.readouterr().err.splitlines()[1] == (
        "hint: name one or more kinds, e.g. --kinds activity episode")


def test_json_gives_every_failure_with_its_reproduction(capsys):
    code = main(["sweep", SAGA, "place_order", "--input", NAIVE_ORDER, *WORLD,
                 "--idempotent", "reserve_inventory", "ship_order", "--json"])

    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert (len(report["points"]), report["runs"], report["seed"]) == (24, 24, 0)
    assert report["points"][11] == {"index": 11, "kind": "activity", "name": "charge_payment",
                                    "target": "sweep", "work": "task 1"}
    assert [f["reproduce"] for f in report["failures"]] == ["CrashPlan(at=[11])",
                                                            "CrashPlan(at=[12])"]
    assert "charge_payment ran 2 times (baseline 1)" in " ".join(report["failures"][0]["problems"])
    charged = [d for d in report["duplicatedEffects"] if d["name"] == "charge_payment"]
    assert charged[0] == {"name": "charge_payment", "expected": 1, "actual": 2, "crashes": [11],
                          "idempotent": False}


def test_html_writes_the_report_with_the_baseline_run(capsys, tmp_path):
    target = tmp_path / "sweep.html"
    code = main(["sweep", SAGA, "place_order", "--input", NAIVE_ORDER, *WORLD,
                 "--idempotent", "reserve_inventory", "ship_order", "--html", str(target)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith("crash sweep: 24 commit points")
    assert err == f"dafx: wrote the HTML report to {target}\n"
    page = target.read_text(encoding="utf-8")
    assert "<h4>Crash at #11 activity charge_payment (sweep task 1)</h4>" in page
    assert "Reproduce: <code>CrashPlan(at=[11])</code>" in page
    assert '<a href="#instance-1">sweep</a>' in page          # the baseline's instance
    assert "the crash-free baseline run" in page
    assert "dafx sweep scenarios/order_saga/function_app.py place_order" in page


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_a_progress_bar_counts_the_crash_runs(capsys, monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)

    code = main(["sweep", SAGA, "place_order", "--input", ORDER, *WORLD, *SAFE,
                 "--kinds", "episode"])

    assert code == 0
    drawn = screen.getvalue()
    assert drawn.startswith("\rsweep [") and drawn.endswith("] 4/4 crash runs\n")
    assert drawn.count("\r") == 4
    assert "\r" not in capsys.readouterr().out


def test_a_reset_that_raises_is_reported_in_one_line(capsys, monkeypatch):
    def broken_reset():
        raise OSError("ledger locked")

    monkeypatch.setattr(shop, "reset", broken_reset)
    code = main(["sweep", SAGA, "place_order", "--input", ORDER, "--reset", "fakes.shop:reset"])

    assert code == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "dafx: error: unexpected OSError: ledger locked")
