"""``dafx sweep``: exit codes, the summary, --reset/--effects and usage errors."""

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
