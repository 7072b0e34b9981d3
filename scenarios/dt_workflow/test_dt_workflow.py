"""The ticket_reply workflow on a Durable Task SDK worker: the agent path, the on-call path,
the framework's own workflow client, and a crash at every commit point.

``worker`` is imported as the module ``scenarios.dt_workflow.worker``: the framework
pickles the messages between executors (and the workflow's outputs) and finds their
classes again by that module name.
"""

import logging
import runpy
from datetime import timedelta

import pytest
from agent_framework_durabletask import DurableWorkflowClient, deserialize_workflow_output

from dafx_testing.durabletask import attach

from . import worker as app
from .worker import Reply

ANSWER = "Sorry that saving fails. Please update to 2.1, which fixes it."
SIGNED = f"{ANSWER}\n-- The support team"


@pytest.fixture(autouse=True)
def _quiet_sdk_logs():
    logging.disable(logging.INFO)       # the SDK logs every episode at INFO
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture
def sim(dafx_factory, fake_llm):
    fake_llm.agent(app.RESPONDER, instructions=app.RESPONDER_INSTRUCTIONS).respond_with(lambda _: ANSWER)
    return dafx_factory(app.build_worker())        # built once the fake supplies OPENAI_API_KEY


def orchestration(sim) -> str:
    """The orchestration configure_workflow registered for the workflow (``dafx-ticket_reply``)."""
    name, = sim.index.names("orchestrator")
    return name


def run(sim, ticket, instance_id):
    status = sim.wait_for_completion(sim.start_new(orchestration(sim), ticket, instance_id=instance_id))
    assert status.runtime_status == "Completed", status.output
    return status


def test_configure_workflow_registers_an_orchestration_an_entity_and_activities(sim):
    worker, = sim.index.wrappers
    assert worker.registered_workflow_names == ["ticket_reply"]
    assert orchestration(sim) == "dafx-ticket_reply"
    assert sim.agents == ["ticket_reply-Responder"]
    assert sim.index.names("entity") == ["dafx-ticket_reply-responder"]
    assert sorted(sim.index.names("activity")) == ["dafx-ticket_reply-intake",
                                                   "dafx-ticket_reply-page_oncall",
                                                   "dafx-ticket_reply-signoff"]


def test_an_ordinary_ticket_is_answered_by_the_agent_and_signed(sim, fake_llm):
    status = run(sim, {"customer": "Ada", "text": "Saving fails"}, "ticket-1")

    assert deserialize_workflow_output(status.output) == [Reply("Ada", "agent", SIGNED)]
    assert [call.name for call in sim.activity_calls()] == ["dafx-ticket_reply-intake",
                                                            "dafx-ticket_reply-signoff"]
    fake_llm.last_request.assert_conversation(("system", app.RESPONDER_INSTRUCTIONS),
                                              ("user", "Ticket from Ada: Saving fails"))
    session = sim.agent_session("ticket_reply-Responder", "ticket-1")   # keyed by the run
    assert session.user_messages == ["Ticket from Ada: Saving fails"]
    assert session.replies == [ANSWER]
    assert session.turns[0].orchestration_id == "ticket-1"
    sim.check_replay("ticket-1")


def test_an_outage_pages_on_call_without_asking_the_model(sim, fake_llm):
    status = run(sim, {"customer": "Bo", "text": "The site is DOWN"}, "ticket-2")

    assert deserialize_workflow_output(status.output) == [
        Reply("Bo", "on-call", "We are on it, Bo: an engineer has been paged.")]
    assert [call.name for call in sim.activity_calls()] == ["dafx-ticket_reply-intake",
                                                            "dafx-ticket_reply-page_oncall"]
    assert fake_llm.requests == []
    assert sim.agent_sessions("ticket_reply-Responder") == []
    sim.check_replay("ticket-2")


def test_outputs_travel_pickled_under_this_modules_name(sim):
    status = run(sim, {"customer": "Ada", "text": "Saving fails"}, "ticket-1")

    encoded, = status.output
    assert app.__name__ == "scenarios.dt_workflow.worker"          # never __main__
    assert encoded["__type__"] == "scenarios.dt_workflow.worker:Reply"


def test_the_frameworks_workflow_client_starts_and_awaits_each_run(sim):
    client = DurableWorkflowClient(sim.client, workflow_name=app.WORKFLOW_NAME)

    first = client.start_workflow({"customer": "Ada", "text": "Saving fails"})
    second = client.start_workflow({"customer": "Cy", "text": "Where is my invoice?"})

    assert client.await_workflow_output(first) == [Reply("Ada", "agent", SIGNED)]
    assert client.await_workflow_output(second) == [Reply("Cy", "agent", SIGNED)]
    sessions = {s.key: s.user_messages for s in sim.agent_sessions("ticket_reply-Responder")}
    assert sessions == {first: ["Ticket from Ada: Saving fails"],        # one conversation a run
                        second: ["Ticket from Cy: Where is my invoice?"]}


# runpy notes that the module it runs as __main__ is imported already (by this test): expected.
@pytest.mark.filterwarnings("ignore:'scenarios.dt_workflow.worker' found in sys.modules:RuntimeWarning")
def test_run_as_a_program_it_serves_until_ctrl_c_with_types_under_the_modules_name(fake_llm):
    with attach(idle_limit=timedelta(minutes=5)) as sim:
        runpy.run_module(app.__name__, run_name="__main__")      # python -m scenarios.dt_workflow.worker

    assert sim.index.names("orchestrator") == ["dafx-ticket_reply"]
    assert sim.index.running == []               # Ctrl+C (after 5 idle virtual minutes) stopped it
    fake_llm.agent(app.RESPONDER, instructions=app.RESPONDER_INSTRUCTIONS).respond_with(lambda _: ANSWER)
    sim.index.start(sim.index.wrappers[0])       # the same worker, taking work again
    status = run(sim, {"customer": "Ada", "text": "Saving fails"}, "ticket-1")
    assert status.output[0]["__type__"] == "scenarios.dt_workflow.worker:Reply"   # not __main__


def both_routes(sim):
    run(sim, {"customer": "Ada", "text": "Saving fails"}, "ticket-1")
    run(sim, {"customer": "Bo", "text": "The site is DOWN"}, "ticket-2")


def test_every_crash_point_of_both_routes_recovers(sim):
    runs = []

    def scenario(each):
        runs.append(each)
        both_routes(each)

    # The plain executors only compute (no outside effect): running one again is harmless.
    report = sim.crash_sweep(scenario, idempotent=sim.index.names("activity"))

    assert report.ok, report.explain()
    assert report.repeated_activities == []
    assert {"entity", "activity", "episode"} <= {p.kind for p in report.points}
    assert sum(p.kind == "activity" for p in report.points) == 4     # intake twice, signoff, page
    session = runs[0].agent_session("ticket_reply-Responder", "ticket-1")
    assert session.replies == [ANSWER]                                # the baseline's: one turn
    assert len(report.repeated_model_calls) == 1                      # the lost turn: a cost
