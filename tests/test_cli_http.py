"""``dafx run APP --http METHOD PATH``: start through an HTTP function, then follow the instance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dafx_testing.cli import EXIT_COMPLETED, EXIT_FAILED, EXIT_RUNNING, EXIT_USAGE, main
from fakes.content_service import service

ROOT = Path(__file__).resolve().parents[1]
APP = "scenarios/content_approval/function_app.py"
START = ["--http", "POST", "/api/orchestrators/content_approval", "--body", '{"topic": "tides"}']


@pytest.fixture(autouse=True)
def repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", sys.path[:])     # main() puts the cwd on sys.path
    service.reset()
    yield
    service.reset()


def dafx_run(capsys, *argv):
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_http_start_then_event_follows_the_instance_to_completion(capsys):
    code, out, err = dafx_run(capsys, APP, *START, "--event", "ApprovalDecision=true")

    assert code == EXIT_COMPLETED
    lines = out.splitlines()
    assert lines[0] == "HTTP 202 POST /api/orchestrators/content_approval"
    assert '"statusQueryGetUri": "http://localhost:7071/runtime/webhooks/durabletask/' in lines[1]
    assert "status     Completed" in out
    assert 'started content_approval input={"topic": "tides"}' in out
    assert service.calls[0].payload == "tides"
    assert err == ""


def test_json_holds_the_http_exchange_and_the_instance_it_followed(capsys):
    code, out, err = dafx_run(capsys, APP, *START, "--event", "ApprovalDecision=true", "--json")

    assert code == EXIT_COMPLETED
    assert err == ""
    document = json.loads(out)
    assert document["http"]["status"] == 202
    assert document["http"]["instanceId"] == document["instanceId"]
    assert json.loads(document["http"]["body"])["id"] == document["instanceId"]
    assert document["runtimeStatus"] == "Completed"


def test_json_of_a_response_without_an_instance_has_only_the_exchange(capsys):
    code, out, _ = dafx_run(capsys, APP, "--http", "GET", "/api/orchestrators/content_approval",
                            "--json")

    assert code == EXIT_FAILED
    document = json.loads(out)
    assert set(document) == {"http", "clock"}
    assert document["http"]["status"] == 404
    assert "takes POST" in document["http"]["note"]


def test_without_an_answer_the_instance_is_still_running(capsys):
    code, out, _ = dafx_run(capsys, APP, *START)

    assert code == EXIT_RUNNING
    assert "status     Running" in out
    assert "waiting    for event(s): ApprovalDecision" in out


def test_a_response_without_an_instance_exits_by_its_status(capsys):
    code, out, _ = dafx_run(capsys, APP, "--http", "GET", "/api/orchestrators/content_approval")

    assert code == EXIT_FAILED
    assert out.splitlines()[0] == "HTTP 404 GET /api/orchestrators/content_approval"
    assert "takes POST" in out              # the note: the host has no 405


def test_a_2xx_without_an_instance_succeeds(capsys, tmp_path):
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "@app.route(route='ping')\n"
        "def ping(req):\n"
        "    return 'pong'\n")
    code, out, _ = dafx_run(capsys, str(tmp_path / "function_app.py"), "--http", "GET", "/api/ping")

    assert code == EXIT_COMPLETED
    assert out.splitlines()[:2] == ["HTTP 200 GET /api/ping", "pong"]


def test_a_function_that_raises_is_reported_as_the_hosts_500(capsys):
    code, out, err = dafx_run(capsys, APP, "--http", "POST", "/api/orchestrators/nope")

    assert code == EXIT_FAILED
    assert out == ""
    assert "raised Exception: The function 'nope' doesn't exist" in err
    assert "(the host answers 500)" in err


@pytest.mark.parametrize("argv, message", [
    ([APP], "give the ORCHESTRATOR to start, or --http METHOD PATH"),
    ([APP, "content_approval", *START], "drop ORCHESTRATOR and --input"),
    ([APP, "content_approval", "--body", "{}"], "--body is the body of an --http request"),
    ([APP, "--http", "POST", "/api/x", "--body", "{oops"], "--body is not valid JSON"),
])
def test_usage_errors_name_the_problem(capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        main(["run", *argv])
    assert stopped.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err
