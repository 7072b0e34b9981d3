"""The durabletask host through the front ends: the pytest fixtures and ``dafx run``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

APPS = Path(__file__).parent / "apps"


@pytest.fixture
def worker_project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copy(APPS / "dt_app.py", pytester.path / "dt_app.py")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_the_dafx_fixture_runs_a_worker_module(worker_project):
    worker_project.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                           "dafx_app = dt_app.py:build_worker\n")
    worker_project.makepyfile(test_it="""
        def test_chain(dafx):
            iid = dafx.start_new("chain", ["Ann"])
            assert dafx.wait_for_completion(iid).output == ["Hello, Ann!"]
            assert type(dafx).__name__ == "DurableTaskSimulator"
    """)
    worker_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_dafx_attached_serves_the_programs_worker_and_client(worker_project):
    worker_project.makepyfile(test_it="""
        import time
        from durabletask.client import TaskHubGrpcClient
        import dt_app

        def main():                       # a program's main(), unmodified
            worker = dt_app.build_worker()
            worker.start()
            client = TaskHubGrpcClient(host_address="localhost:4001")
            iid = client.schedule_new_orchestration(dt_app.approval, input=1)
            client.wait_for_orchestration_completion(iid, timeout=7200)
            worker.stop()
            return iid

        def test_program(dafx_attached):
            iid = main()
            assert dafx_attached.get_status(iid).output == "timed out"

        def test_each_test_gets_its_own(dafx_attached):
            assert dafx_attached.list_instances() == []
    """)
    worker_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dafx_testing.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_dafx_run_takes_a_worker_module(tmp_path):
    shutil.copy(APPS / "dt_app.py", tmp_path / "dt_app.py")
    done = run("run", "dt_app.py", "approval", "--input", "2", "--event", "decision=\"ok\"",
               "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "durabletask-worker INFO" not in done.stderr      # the report says what happened
    status = json.loads(done.stdout)
    assert status["runtimeStatus"] == "Completed" and status["output"] == "decided: ok"


def test_dafx_run_names_the_ways_to_point_at_a_worker(tmp_path):
    (tmp_path / "two.py").write_text(
        "from durabletask.worker import TaskHubGrpcWorker\n"
        "a = TaskHubGrpcWorker()\nb = TaskHubGrpcWorker()\n", encoding="utf-8")
    failed = run("run", "two.py", "chain", cwd=tmp_path)
    assert failed.returncode != 0
    assert "two.py holds several worker object(s)" in failed.stderr
    assert "'two.py:NAME'" in failed.stderr and "candidates: a, b" in failed.stderr


def test_dafx_replay_takes_a_worker_module(tmp_path):
    shutil.copy(APPS / "dt_app.py", tmp_path / "dt_app.py")
    record = tmp_path / "record.py"
    record.write_text(
        "import dt_app\nfrom dafx_testing import Simulator\n"
        "sim = Simulator(dt_app.build_worker())\niid = sim.start_new('fickle')\n"
        "sim.run_until_idle()\nsim.save_history(iid, 'fickle.json')\n", encoding="utf-8")
    subprocess.run([sys.executable, str(record)], cwd=tmp_path, check=True, capture_output=True)
    same = run("replay", "--app", "dt_app.py", "fickle.json", cwd=tmp_path)
    assert same.returncode == 0 and "OK" in same.stdout, same.stdout + same.stderr
    source = (tmp_path / "dt_app.py").read_text(encoding="utf-8")
    (tmp_path / "dt_app.py").write_text(source.replace('FLIP = {"on": False}', 'FLIP = {"on": True}'),
                                        encoding="utf-8")
    changed = run("replay", "--app", "dt_app.py", "fickle.json", cwd=tmp_path)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "recorded:        call_activity 'greet'" in changed.stdout
