"""Model-fault sweeps over the joker: one request on a session, each model fault, and who absorbs it.

One fault is always survived, by one of two retries (the second request tells which):

* the openai client under ``FoundryChatClient`` resends the streamed request itself for a 429,
  a 5xx, a timeout or a dropped connection (``max_retries=2`` by default,
  openai/_constants.py:8; the retry decision is openai/_base_client.py:1815-1866 with
  ``_should_retry`` at :927-970), marking it ``x-stainless-retry-count: 1``;
* for what the client does not retry (a broken SSE body, a stream cut after its 200, a 400
  content filter) the durable agent entity runs the agent again without streaming
  (agent_framework_durabletask/_entities.py:249-272).

When the model also fails the entity's fallback (a flaky model, a persistent fault), the entity
stores an error reply (_entities.py:198-214) and the HTTP handler answers 200 ``"success"`` with
an empty ``response``; the next turn on the session sends the model two user messages in a row.

The openai client's back-off (``anyio.sleep``, openai/_base_client.py:1901, on the Agent
Framework's event-loop thread) takes virtual time: the simulator charges it to the entity batch
that made the call, so a retried call lands that much later and the test waits for none of it.
"""

import pytest

from dafx_testing import FaultPlan
from dafx_testing.llm import FAULT_KINDS
from fakes.personas import EXPLANATION, JOKE, joker

pytestmark = pytest.mark.dafx_app("function_app.py")

CLIENT_RETRIED = ("rate_limit", "server_error", "unavailable", "timeout", "connection_reset")
NOT_CLIENT_RETRIED = ("malformed_json", "stream_cut", "content_filter")


@pytest.fixture
def sim(dafx, fake_llm):
    fake_llm.agent(dafx.app.agents["Joker"]).respond_with(joker)
    return dafx


def ask(sim, message, session_id="s1"):
    return sim.http.post("/api/agents/Joker/run", json={"message": message, "session_id": session_id})


def one_joke(sim):
    ask(sim, "Tell me a joke.")


def test_one_model_fault_on_a_request_is_survived(sim):
    report = sim.fault_sweep(one_joke, expect="survive")

    assert report.ok, report.explain()
    assert report.faults == FAULT_KINDS
    call, = report.calls
    assert (call.agent, call.stream) == ("Joker", True)      # the entity streams first
    assert call.caller == "entity '@dafx-joker@s1'"          # run by the HTTP handler's polling
    assert {run.verdict for run in report.runs} == {"survived"}
    assert {run.model_calls for run in report.runs} == {2}    # one more call, whoever retried


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_the_client_or_the_entity_fallback_absorbs_each_fault(dafx_factory, fake_llm, kind):
    sim = dafx_factory(fault_plan=FaultPlan(call=1, fault=kind))
    fake_llm.agent(sim.app.agents["Joker"]).respond_with(joker)

    answer = ask(sim, "Tell me a joke.")

    assert (answer.status_code, answer.json()["response"]) == (200, JOKE)
    sent = [(request.stream, request.headers.get("x-stainless-retry-count"))
            for request in sim.model_calls.requests]
    if kind in CLIENT_RETRIED:
        assert sent == [(True, "0"), (True, "1")]     # the openai client resent the stream
    else:
        # A 200 whose SSE body breaks or is cut, or a 400: the client raises (the first two
        # while the entity iterates the stream), and the entity falls back to run() unstreamed.
        assert sent == [(True, "0"), (False, "0")]


def test_a_flaky_model_defeats_the_fallback_for_three_faults(dafx, fake_llm):
    # The first request of every run gets a 400 content filter (a fault rule, restored for
    # each run): the baseline survives through the entity's non-streaming fallback (call #2).
    fake_llm.agent(dafx.app.agents["Joker"]).fault("content_filter").respond_with(joker)

    report = dafx.fault_sweep(one_joke)

    assert [call.stream for call in report.calls] == [True, False]
    verdicts = {(run.call.number, run.fault): run.verdict for run in report.runs}
    assert verdicts == {
        # Call #1 failed by the client-retried kinds: the client's retry meets the flaky 400,
        # the entity falls back, the fallback is answered (3 calls). Failed by the others, the
        # entity falls back at once and the fallback meets the flaky 400: an error reply.
        **{(1, kind): "survived" for kind in CLIENT_RETRIED},
        **{(1, kind): "broken" for kind in NOT_CLIENT_RETRIED},
        # Call #2, the non-streaming fallback: the client retries a cut body too (it is read
        # inside the send, openai/_base_client.py:1832-1845); a bad JSON body (parsed after the
        # retry loop, :1880) and a 400 are not retried and leave the error reply.
        **{(2, kind): "survived" for kind in (*CLIENT_RETRIED, "stream_cut")},
        (2, "malformed_json"): "broken", (2, "content_filter"): "broken",
    }
    broken = next(run for run in report.runs if run.verdict == "broken")
    assert broken.reasons[0].startswith("agent session @dafx-joker@s1: holds an error reply")
    assert broken.reasons[1].startswith('completed with another output while nothing failed: HTTP '
                                        'POST /api/agents/Joker/run answered 200 {"response": "", ')


def test_a_failed_run_answers_success_with_no_text_and_the_next_turn_asks_twice_in_a_row(
        dafx_factory, fake_llm):
    sim = dafx_factory(fault_plan=FaultPlan({1: "content_filter", 2: "content_filter"}))
    fake_llm.agent(sim.app.agents["Joker"]).respond_with(joker)

    first = ask(sim, "Tell me a joke.")
    second = ask(sim, "Explain it.")

    # The handler reads the stored error reply as any reply: its text is "" and the status is
    # "success" (agent_framework_azurefunctions/_app.py:1409-1417, 200 at :1052-1055).
    assert first.status_code == 200
    assert {k: first.json()[k] for k in ("response", "status", "message_count")} == {
        "response": "", "status": "success", "message_count": 2}
    turn = sim.agent_session("Joker", "s1").turns[0]
    assert turn.reply == ""
    assert "service encountered a content error: Error code: 400" in turn.errors[0]
    # The error flag is not persisted (_durable_agent_state.py:634, to_dict at :663), so the
    # entity's filter (_entities.py:178) keeps the stored error message; the Responses client
    # drops its error content (agent_framework_openai/_chat_client.py:2494-2496, :2088), and the
    # model is sent the two user turns with no answer between them.
    assert second.json()["response"] == EXPLANATION
    assert [(m["role"], m["content"]) for m in fake_llm.last_request.messages] == [
        ("system", "You are good at telling jokes."), ("user", "Tell me a joke."),
        ("user", "Explain it.")]
