"""The crash_sweep marker and sharded sweeps: modes, marker keywords, shards, pytest-xdist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dafx_testing import Simulator

APP = (Path(__file__).parent / "apps" / "checkout_app.py").read_text(encoding="utf-8")

SWEPT = """\
import pytest


@pytest.mark.crash_sweep(idempotent=["reserve"], once=["charge"])
def test_checkout(dafx):
    with open("runs.txt", "a") as runs:
        runs.write("run\\n")
    status = dafx.wait_for_completion(dafx.start_new("checkout", "book", instance_id="c1"))
    assert status.output == "charged for reserved book"
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The checkout app and a swept test whose ``charge`` activity must run once."""
    pytester.makeini("[pytest]\ndafx_app = function_app.py\n"
                     "asyncio_default_fixture_loop_scope = function\n"
                     "filterwarnings = ignore:Potential duplicate Task completion:UserWarning\n")
    pytester.makepyfile(function_app=APP, test_sweep=SWEPT)
    return pytester


def sweep_summary(result: pytest.RunResult) -> str:
    """The terminal summary's line for the swept test, without its shard count."""
    lines = [line for line in result.outlines if line.startswith("test_sweep.py::test_checkout:")]
    assert len(lines) == 1, result.stdout.str()
    return re.sub(r" in \d+ shards", "", lines[0])


def body_runs(pytester: pytest.Pytester) -> int:
    return (pytester.path / "runs.txt").read_text().count("run")


def test_points_crash_every_commit_point_and_fail_with_the_explanation(project):
    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_checkout _*",
        "crash sweep: 17 commit points, 17 crash runs (* converged early; *), seed 0: "
        "2 failing schedule(s)",
        "crash at #11 activity charge (c1 task 1):",
        "  - charge ran 2 times (baseline 1) after a crash at #11 activity charge (c1 task 1); "
        "declared once=, so running it again is a failure: make it safe to repeat (e.g. skip "
        "work already done, by an idempotency key) and drop it from once=",
        "  reproduce: CrashPlan(at=[11])",
        "*- dafx -*",
        "reproduce: pytest test_sweep.py::test_checkout --dafx-seed=0 --dafx-sweep=points",
        "*= dafx crash sweeps =*",
        "test_sweep.py::test_checkout: 17 commit points, 17 crash runs, 2 failing schedule(s): "
        "#11, #12",
    ])
    assert "\nsimulator 1 of 1" not in result.stdout.str()     # the sweep shows its own runs


def test_off_runs_the_body_once_as_a_plain_test(project):
    result = project.runpytest("--dafx-sweep=off")

    result.assert_outcomes(passed=1)
    assert body_runs(project) == 1
    assert "dafx crash sweeps" not in result.stdout.str()


@pytest.mark.parametrize("isolation", ["rerun", "fork"])
def test_pairs_crash_twice_in_one_run(project, runpytest_child, isolation):
    project.makepyfile(test_sweep=SWEPT.replace(
        'idempotent=["reserve"], once=["charge"]',
        f'idempotent=["reserve", "charge"], isolation="{isolation}"'))

    # Forking needs a process with one thread: this one may run agent tests' loop threads.
    run = runpytest_child if isolation == "fork" else project.runpytest
    result = run("-o", "dafx_sweep=pairs")

    result.assert_outcomes(passed=1)
    runs = int(re.search(r"(\d+) crash runs", sweep_summary(result)).group(1))
    assert runs > 17                    # every point, then every later point after each
    if isolation == "rerun":            # the baseline, then one run per schedule
        assert body_runs(project) == runs + 1
    else:                               # the baseline, one pass forking the 17, the pairs rerun
        assert body_runs(project) == 2 + runs - 17


def test_shards_split_the_sweep_and_together_find_what_one_sweep_finds(project):
    serial = project.runpytest()
    sharded = project.runpytest("--dafx-sweep-shards=3")

    sharded.assert_outcomes(failed=2, passed=1)      # #11 is in shard 2, #12 in shard 0
    sharded.stdout.fnmatch_lines_random([
        "crash sweep (shard 2 of 3): 17 commit points, 5 crash runs *",
        "reproduce: pytest 'test_sweep.py::test_checkout[dafx-shard-2-of-3]' --dafx-seed=0 "
        "--dafx-sweep=points --dafx-sweep-shards=3",
        "test_sweep.py::test_checkout: 17 commit points, 17 crash runs in 3 shards, *",
    ])
    assert sweep_summary(sharded) == sweep_summary(serial)


def test_shards_of_a_parametrized_test_add_up_per_parameter(project):
    project.makepyfile(test_sweep="""\
        import pytest


        @pytest.mark.crash_sweep(idempotent=["reserve", "charge"])
        @pytest.mark.parametrize("item", ["book", "lamp"])
        def test_checkout(dafx, item):
            dafx.wait_for_completion(dafx.start_new("checkout", item))
        """)

    result = project.runpytest("--dafx-sweep-shards=2")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "test_sweep.py::test_checkout[book]: 17 commit points, 17 crash runs in 2 shards, "
        "all invariants held",
        "test_sweep.py::test_checkout[lamp]: 17 commit points, 17 crash runs in 2 shards, "
        "all invariants held",
    ])


def test_xdist_workers_share_a_sweep_with_the_serial_result(project, runpytest_child):
    serial = project.runpytest()
    distributed = runpytest_child("-p", "no:cacheprovider", "-n", "2")

    distributed.assert_outcomes(failed=2)       # one item per worker, each with one failure
    distributed.stdout.fnmatch_lines(["*17 commit points, 17 crash runs in 2 shards*"])
    assert sweep_summary(distributed) == sweep_summary(serial)


def test_async_scenarios_are_swept_too(project):
    project.makepyfile(test_sweep="""\
        import pytest


        @pytest.mark.crash_sweep(idempotent=["reserve", "charge"])
        @pytest.mark.asyncio
        async def test_checkout(dafx, virtual_clock):
            instance_id = await dafx.client.start_new("checkout", "c1", "book")
            dafx.wait_for_completion(instance_id)
            status = await dafx.client.get_status(instance_id)
            assert status.output == "charged for reserved book"
            assert virtual_clock.now == dafx.now
        """)

    result = project.runpytest()

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["test_sweep.py::test_checkout: 17 commit points, 17 crash runs, "
                                 "all invariants held"])


@pytest.mark.parametrize("test, message", [
    ("@pytest.mark.crash_sweep(idempotents=['x'])\ndef test_checkout(dafx):\n    pass",
     "@pytest.mark.crash_sweep on test_sweep.py::test_checkout: unexpected idempotents=...; it "
     "takes only the keywords idempotent, kinds, effects, isolation, once, prune"),
    ("@pytest.mark.crash_sweep\ndef test_checkout():\n    pass",
     "@pytest.mark.crash_sweep on test_sweep.py::test_checkout: the test must take the dafx "
     "fixture; its body runs once per crash, each time on a fresh simulator passed as dafx"),
])
def test_a_misused_marker_fails_the_test_saying_how_to_use_it(project, test, message):
    project.makepyfile(test_sweep="import pytest\n\n\n" + test + "\n")

    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])


def test_the_shards_of_a_sweep_add_up_to_the_whole_sweep(tmp_path):
    app = tmp_path / "function_app.py"
    app.write_text(APP, encoding="utf-8")

    def scenario(sim):
        sim.wait_for_completion(sim.start_new("checkout", "book", instance_id="c1"))

    def failing(report):
        return sorted(tuple(p.index for p in failure.crashes) for failure in report.failures)

    whole = Simulator(str(app)).crash_sweep(scenario, pairs=True)
    shards = [Simulator(str(app)).crash_sweep(scenario, pairs=True, shard=(index, 3))
              for index in range(3)]

    assert [s.shard for s in shards] == [(0, 3), (1, 3), (2, 3)]
    assert sum(s.runs for s in shards) == whole.runs
    assert sorted(sum((failing(s) for s in shards), [])) == failing(whole)
    assert "crash sweep (shard 2 of 3):" in shards[2].explain()


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0)])
def test_a_shard_outside_its_count_is_refused(shard):
    from dafx_testing.checks.sweep import crash_sweep as sweep

    with pytest.raises(ValueError, match=re.escape(f"shard={shard!r}: expected (index, count) "
                                                   "with 0 <= index < count")):
        sweep(lambda plan: None, lambda sim: None, shard=shard)


def test_prune_false_runs_every_crash_run(project):
    project.makepyfile(test_sweep=SWEPT.replace(
        '@pytest.mark.crash_sweep(idempotent=["reserve"], once=["charge"])',
        '@pytest.mark.crash_sweep(idempotent=["reserve", "charge"], isolation="rerun", '
        'prune=False)'))

    result = project.runpytest()

    result.assert_outcomes(passed=1)
    assert body_runs(project) == 1 + 17                # the baseline, then every crash run
    assert "decided without a run" not in result.stdout.str()
