"""The counter entity scenario: orchestrations calling and signalling one entity."""

import pytest

pytestmark = pytest.mark.dafx_app("function_app.py")


def test_tally_calls_signals_and_sees_every_update(dafx):
    instance_id = dafx.start_new("tally", {"counter": "k1", "numbers": [5, 3], "bonus": 2})

    status = dafx.wait_for_completion(instance_id)

    assert status.runtime_status == "Completed"
    # 5, 8; the signalled bonus lands before the failing call; the failed operation's
    # set_state stays (the SDK does not roll back), so the final read is 5+3+2+1000.
    assert status.output == {"totals": [5, 8, "refused: refusing 1000"], "final": 1010}
    assert dafx.entity_state(("Counter", "k1")) == 1010
    dafx.check_replay(instance_id)


def test_two_tallies_on_one_counter_are_serialized(dafx):
    first = dafx.start_new("tally", {"counter": "shared", "numbers": [1, 1]})
    second = dafx.start_new("tally", {"counter": "shared", "numbers": [10, 10]})

    dafx.run_until_idle()

    assert dafx.entity_state(("Counter", "shared")) == 2 + 20 + 2000
    outputs = [dafx.get_status(i).output for i in (first, second)]
    assert max(o["final"] for o in outputs) == 2022
    for instance_id in (first, second):
        dafx.check_replay(instance_id)


def test_delete_destructs_the_counter(dafx):
    dafx.signal_entity(("Counter", "temp"), "add", 3)
    dafx.signal_entity(("Counter", "temp"), "delete")
    dafx.run_until_idle()

    assert dafx.get_entity(("Counter", "temp")).exists is False


def test_the_counter_is_driven_and_read_over_http(dafx):
    assert dafx.http.get("/api/counters/web").status_code == 404

    assert dafx.http.post("/api/counters/web/add/5").status_code == 202
    assert dafx.http.post("/api/counters/web/add/7").status_code == 202

    response = dafx.http.get("/api/counters/web")
    assert response.status_code == 200 and response.json() == {"value": 12}
    assert dafx.http.post("/api/counters/web/add/five").status_code == 404   # {amount:int}


def test_a_tally_started_over_http_reports_through_its_status_url(dafx):
    response = dafx.http.post("/api/tally", json={"counter": "h", "numbers": [1, 2]})
    assert response.status_code == 202
    links = response.json()

    status = dafx.http.get(links["statusQueryGetUri"]).json()

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"totals": [1, 3, "refused: refusing 1000"], "final": 1003}
