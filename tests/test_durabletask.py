"""The durabletask host: a TaskHubGrpcWorker's real code, driven in memory on a virtual clock.

The worker under test is ``tests/apps/dt_app.py``. What the simulated sidecar records is
checked against ``durabletask/testing/in_memory_backend.py`` (durabletask 1.12.0), the
SDK's own reference backend, and against the SDK's executor (``durabletask/worker.py``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

import grpc
import pytest
from durabletask import client as dt_client
from durabletask.worker import TaskHubGrpcWorker

from dafx_testing import NonDeterminismError, Simulator, WaitTimeoutError
from dafx_testing.core.clock import DEFAULT_START as START
from dafx_testing.core.errors import InstanceStateError, UnknownFunctionError
from dafx_testing.core.history import EventType
from dafx_testing.core.timeline import timeline
from dafx_testing.durabletask import attach
from dafx_testing.durabletask.events import to_event, to_proto
from dafx_testing.durabletask.simulator import DurableTaskSimulator
from tests.apps import dt_app


@pytest.fixture(autouse=True)
def _quiet_sdk_logs():
    logging.disable(logging.INFO)       # the SDK logs every episode at INFO
    yield
    logging.disable(logging.NOTSET)
    dt_app.SENT.clear()
    dt_app.FLIP["on"] = False
    dt_app.BROKEN["explode"] = True


@pytest.fixture
def sim() -> DurableTaskSimulator:
    built = Simulator(dt_app.build_worker())
    assert isinstance(built, DurableTaskSimulator)
    return built


@contextlib.contextmanager
def _real_sleeps():
    """The real sleeps taken inside the block (on any thread), as (seconds) entries.

    Entered before ``attach``, so the spy sits under attach's virtual sleep and sees
    only what reaches the real ``time.sleep``.
    """
    slept: list[float] = []
    real = time.sleep

    def spy(seconds: float) -> None:
        if seconds > 0:
            slept.append(seconds)
        real(seconds)

    time.sleep = spy
    try:
        yield slept
    finally:
        time.sleep = real


def kinds(history):
    return [EventType(e["EventType"]).name for e in history]


def test_a_worker_gets_the_durabletask_simulator_and_runs_a_chain(sim):
    iid = sim.start_new("chain", ["Ann", "Bo"])
    status = sim.wait_for_completion(iid)
    assert status.runtime_status == "Completed"
    assert status.output == ["Hello, Ann!", "Hello, Bo!"]
    # The in-memory backend's record of an episode: the dispatched events, the confirmations
    # of the actions, then orchestratorCompleted (CompleteOrchestratorTask), executionCompleted last.
    assert kinds(status.history) == [
        "OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "OrchestratorCompleted",
        "OrchestratorStarted", "TaskCompleted", "TaskScheduled", "OrchestratorCompleted",
        "OrchestratorStarted", "TaskCompleted", "OrchestratorCompleted", "ExecutionCompleted"]
    assert "-> activity greet #1" in timeline(status.history)
    assert [c.input for c in sim.activity_calls("greet")] == ["Ann", "Bo"]


def test_history_events_convert_both_ways_without_loss(sim):
    iid = sim.start_new("counting", [1, 2])
    history = sim.wait_for_completion(iid).history
    for event in history:
        proto = to_proto(event)
        assert to_event(proto) | {"IsPlayed": event["IsPlayed"]} == event


def test_a_72_hour_timer_passes_in_virtual_time(sim):
    iid = sim.start_new("approval", 72)
    status = sim.wait_for_completion(iid)          # a real timer would hold the test for 72 h
    assert status.output == "timed out"
    assert sim.now - status.created_time == timedelta(hours=72)


def test_the_human_in_the_loop_race_is_won_by_the_event(sim):
    iid = sim.start_new("approval", 72)
    sim.run_until_idle()
    assert sim.get_status(iid).custom_status == "waiting"
    sim.raise_event(iid, "decision", "approved")
    assert sim.wait_for_completion(iid).output == "decided: approved"
    assert dt_app.SENT == ["boss@example.com"]


def test_sub_orchestrations_and_fan_out(sim):
    assert sim.wait_for_completion(sim.start_new("parent", ["Cy"])).output == {"child": ["Hello, Cy!"]}
    assert sim.wait_for_completion(sim.start_new("fan_out", 7)).output == 7


def test_a_failure_travels_up_with_the_sdks_failure_details(sim):
    status = sim.wait_for_completion(sim.start_new("failing_parent"))
    assert status.runtime_status == "Failed"
    assert status.output.startswith("durabletask.task.TaskFailedError: Sub-orchestration task #1")
    assert "the activity exploded" in status.output
    failed = sim.activity_calls("explode")[0]
    assert isinstance(failed.error, ValueError)


def test_entities_take_signals_and_calls(sim):
    iid = sim.start_new("counting", [1, 2, 3])
    assert sim.wait_for_completion(iid).output == 6
    assert sim.entity_state(("Counter", "c1")) == 6      # entity names fold case, as the SDK's
    sim.signal_entity("@counter@c1", "add", 4)
    sim.run_until_idle()
    assert sim.entity_state(("counter", "c1")) == 10
    assert sim.entity_operations["counter.add"] == 4
    assert "-> entity signal add on @counter@c1 #1 input=1" in timeline(sim.get_status(iid).history)


def test_continue_as_new_starts_a_fresh_history(sim):
    status = sim.wait_for_completion(sim.start_new("looping", 0))
    assert status.output == 3
    assert kinds(status.history)[:2] == ["OrchestratorStarted", "ExecutionStarted"]
    assert "TimerCreated" not in kinds(status.history)


def test_unknown_names_and_taken_ids_are_refused_with_the_registrations(sim):
    with pytest.raises(UnknownFunctionError, match="'chain'"):
        sim.start_new("chian")
    iid = sim.start_new("approval", 1)
    with pytest.raises(InstanceStateError, match="ALREADY_EXISTS"):
        sim.start_new("approval", 1, instance_id=iid)


def test_the_sdks_own_replay_check_becomes_dafx_non_determinism(sim):
    iid = sim.start_new("fickle")
    sim.run_until_idle()
    dt_app.FLIP["on"] = True                     # the code changes under the history
    sim.raise_event(iid, "go")
    with pytest.raises(NonDeterminismError) as caught:
        sim.run_until_idle()
    error = caught.value
    assert (error.sequence_number, error.expected, error.actual) == (
        1, "call_activity 'greet'", "call_activity 'explode'")
    assert "durabletask.task.NonDeterminismError: Failed to restore" in error.host_message
    assert sim.get_status(iid).runtime_status == "Failed"     # as the SDK fails it


def test_check_replay_runs_the_last_episode_again(sim):
    iid = sim.start_new("fickle")
    sim.run_until_idle()
    sim.check_replay(iid)
    dt_app.FLIP["on"] = True
    with pytest.raises(AssertionError, match="different actions"):
        sim.check_replay(iid)


def test_the_client_is_a_real_taskhub_client_answered_by_the_simulator(sim):
    client = sim.client
    assert isinstance(client, dt_client.TaskHubGrpcClient)
    iid = client.schedule_new_orchestration(dt_app.approval, input=2)
    assert client.get_orchestration_state(iid).runtime_status == dt_client.OrchestrationStatus.PENDING
    client.raise_orchestration_event(iid, "decision", data="ok")
    state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status == dt_client.OrchestrationStatus.COMPLETED
    assert state.serialized_output == '"decided: ok"'
    # The in-memory backend refuses a taken id with ALREADY_EXISTS (StartInstance).
    with pytest.raises(grpc.RpcError) as refused:
        client.schedule_new_orchestration("approval", instance_id=iid)
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_a_client_wait_that_runs_out_raises_the_sdks_timeout_and_says_why(sim):
    client = sim.client
    iid = client.schedule_new_orchestration("fickle")
    with pytest.raises(TimeoutError, match="Timed-out waiting") as caught:
        client.wait_for_orchestration_completion(iid, timeout=30)
    assert "waiting for external event(s) 'go'" in str(caught.value.__context__)
    assert sim.now - sim.get_status(iid).created_time == timedelta(seconds=30)


def test_terminate_suspend_and_resume_through_the_client(sim):
    client = sim.client
    iid = client.schedule_new_orchestration("approval", input=10)
    client.wait_for_orchestration_start(iid)
    client.suspend_orchestration(iid)
    sim.run_until_idle()
    assert sim.get_status(iid).runtime_status == "Suspended"
    client.resume_orchestration(iid)
    client.terminate_orchestration(iid, output="enough")
    state = client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == dt_client.OrchestrationStatus.TERMINATED
    assert client.purge_orchestration(iid).deleted_instance_count == 1


def test_a_crash_sweep_finds_the_email_sent_twice(sim):
    def scenario(s):
        dt_app.SENT.clear()
        iid = s.start_new("approval", 5)
        s.run_until_idle()
        s.raise_event(iid, "decision", "yes")
        s.wait_for_completion(iid)

    report = sim.crash_sweep(scenario, effects=lambda: list(dt_app.SENT))
    assert not report.ok
    failing = {point.kind for failure in report.failures for point in failure.crashes}
    assert failing == {"activity", "duplicate"}
    assert "send_email ran 2 times" in report.explain()
    # Without the effects snapshot, declaring the activity once= still catches the re-run.
    assert not sim.crash_sweep(scenario, once=["send_email"]).ok


def test_attach_serves_an_unmodified_program_in_virtual_time():
    def program():                                # what a sample's main() does
        worker = TaskHubGrpcWorker(host_address="localhost:4001")
        worker.add_orchestrator(dt_app.approval)
        worker.add_activity(dt_app.send_email)
        with worker:
            worker.start()
            client = dt_client.TaskHubGrpcClient(host_address="localhost:4001")
            iid = client.schedule_new_orchestration(dt_app.approval, input=48)
            while client.get_orchestration_state(iid).runtime_status.name != "COMPLETED":
                time.sleep(3600)                  # an hour per poll: virtual
            return iid

    with _real_sleeps() as slept, attach() as sim:
        iid = program()
    assert slept == []                            # every poll was virtual
    assert sim.get_status(iid).output == "timed out"
    assert timedelta(hours=48) <= sim.now - sim.get_status(iid).created_time <= timedelta(hours=49)
    assert not sim.index.running                  # the program stopped its worker


def test_attach_ends_a_workers_idle_loop_as_ctrl_c_would():
    worker = TaskHubGrpcWorker()
    with attach(idle_limit=timedelta(minutes=10)) as sim, pytest.raises(KeyboardInterrupt,
                                                                        match="idle_limit"):
        worker.start()
        while True:
            time.sleep(1)
    assert sim.now - START == timedelta(minutes=10)


def test_a_bounded_poll_with_nothing_unfinished_gives_up_as_on_a_host():
    with attach() as sim:
        TaskHubGrpcWorker().start()
        for _ in range(300):                  # a reader that polls 300 s, then gives up
            time.sleep(1)
    assert sim.now - START == timedelta(seconds=300)


def test_a_failed_instance_shows_its_failure_in_the_timeline(sim):
    status = sim.wait_for_completion(sim.start_new("failing"))
    assert "FAILED #-1 durabletask.task.TaskFailedError: " in timeline(status.history)


def test_a_wait_with_no_worker_attached_says_so():
    with attach() as sim:
        client = dt_client.TaskHubGrpcClient()
        iid = client.schedule_new_orchestration("chain", input=[])
        with pytest.raises(WaitTimeoutError, match="no durabletask worker is attached"):
            sim.wait_for_completion(iid, timeout=timedelta(minutes=1))


def test_the_guard_names_the_users_line_and_never_the_sdks():
    from dafx_testing import NonDeterministicCallError

    sim = Simulator(dt_app.nondeterministic_worker())
    sim.start_new("by_clock")
    with pytest.raises(NonDeterministicCallError, match=r"datetime.now\(\) at .*dt_app.py"):
        sim.run_until_idle()
    # The worker reads the clock itself (time.time_ns for its spans, worker.py): never reported.
    clean = Simulator(dt_app.build_worker())
    assert clean.wait_for_completion(clean.start_new("chain", ["x"])).runtime_status == "Completed"


def test_the_perturbed_replay_catches_an_input_the_sdk_never_compares():
    from dafx_testing import PerturbedReplayError

    sim = Simulator(dt_app.nondeterministic_worker(), guard="off")
    iid = sim.start_new("lucky_input")
    with pytest.raises(PerturbedReplayError) as caught:
        sim.run_until_idle()
    error = caught.value
    assert error.sequence_number == 1
    assert "scheduleTask" in error.expected and "greet" in error.expected
    assert error.expected != error.actual
    assert any("random.randint" in cause for cause in error.exposed_by)
    assert sim.get_status(iid).runtime_status == "Running"     # nothing has failed yet


def _program(hours: int) -> str:
    """An unmodified program's main(): starts its worker, runs a client, stops the worker."""
    worker = TaskHubGrpcWorker()
    worker.add_orchestrator(dt_app.approval)
    worker.add_activity(dt_app.send_email)
    with worker:
        worker.start()
        client = dt_client.TaskHubGrpcClient()
        iid = client.schedule_new_orchestration(dt_app.approval, input=hours, instance_id="review")
        client.wait_for_orchestration_start(iid)
        client.raise_orchestration_event(iid, "decision", data="yes")
        client.wait_for_orchestration_completion(iid, timeout=3600)
        return iid


def test_a_crash_sweep_reruns_the_program_on_each_runs_simulator():
    with attach() as sim:
        _program(5)
    assert sim.get_status("review").output == "decided: yes"

    def scenario(run):
        dt_app.SENT.clear()
        with run.attached():
            _program(5)

    report = sim.crash_sweep(scenario, effects=lambda: list(dt_app.SENT))
    assert len(report.points) > 5
    assert {p.kind for f in report.failures for p in f.crashes} == {"activity", "duplicate"}
    assert sim.get_status("review").output == "decided: yes"      # the original stays readable


def test_reports_read_a_durabletask_history_as_a_functions_one(sim, tmp_path):
    from dafx_testing.reports.html_report import write_html
    from dafx_testing.reports.mermaid import sequence_diagram

    iid = sim.start_new("counting", [1, 2])
    diagram = sequence_diagram(sim.wait_for_completion(iid).history, title="counting")
    assert "participant P1 as entity counter@c1" in diagram
    assert "O-)P1: signal add #1 1" in diagram and "P1-->>O: get returned #3 3" in diagram
    page = write_html(tmp_path / "dt.html", title="dt", simulator=sim).read_text(encoding="utf-8")
    assert "counting" in page and "signal add" in page


def test_a_saved_history_replays_through_the_current_worker(sim, tmp_path):
    from dafx_testing.durabletask import Replayer

    iid = sim.start_new("fickle")
    sim.run_until_idle()
    saved = tmp_path / "fickle.json"
    sim.save_history(iid, saved)
    assert Replayer(dt_app.build_worker()).replay(saved).ok
    dt_app.FLIP["on"] = True                    # the next release changes the first call
    result = Replayer(dt_app.build_worker()).replay(saved)
    assert not result.ok
    assert (result.sequence_number, result.expected, result.actual) == (
        1, "call_activity 'greet'", "call_activity 'explode'")
    assert "ctx.version (the worker's use_versioning" in result.explain()


def test_the_functions_replayer_points_a_worker_to_the_durabletask_one():
    from dafx_testing import Replayer
    from dafx_testing.core.errors import ArgumentError

    with pytest.raises(ArgumentError, match="dafx_testing.durabletask.Replayer"):
        Replayer(dt_app.build_worker())


def test_a_critical_section_holds_its_entities_until_it_ends(sim):
    iid = sim.start_new("transfer", 5)
    sim.run_until_idle()
    assert sim.entity_state(("counter", "a")) == -5
    sim.signal_entity("@counter@a", "add", 100)           # from outside the section: it waits
    sim.run_until_idle()
    assert sim.entity_state(("counter", "a")) == -5
    assert sim.get_entity(("counter", "a")).pending_operations == 1
    sim.raise_event(iid, "commit")
    assert sim.wait_for_completion(iid).output == "moved"
    assert (sim.entity_state(("counter", "a")), sim.entity_state(("counter", "b"))) == (95, 5)
    assert sim.hub.entities["@counter@a"].locked_by is None
    kinds_seen = kinds(sim.get_status(iid).history)
    assert kinds_seen.count("EntityLockRequested") == 1 and kinds_seen.count("EntityUnlockSent") == 2


def test_a_second_section_waits_for_the_first(sim):
    first = sim.start_new("transfer", 1)
    second = sim.start_new("transfer", 2)
    sim.run_until_idle()
    assert sim.entity_state(("counter", "a")) == -1        # only the first got the locks
    sim.raise_event(first, "commit")
    sim.run_until_idle()
    assert sim.get_status(first).runtime_status == "Completed"
    assert sim.entity_state(("counter", "a")) == -3        # then the second
    sim.raise_event(second, "commit")
    assert sim.wait_for_completion(second).output == "moved"


def test_a_scheduled_signal_lands_when_the_clock_reaches_it(sim):
    assert sim.wait_for_completion(sim.start_new("remind", 3)).output == "scheduled"
    assert sim.entity_state(("counter", "later")) is None
    sim.advance(timedelta(hours=2, minutes=59))
    assert sim.entity_state(("counter", "later")) is None
    sim.advance(timedelta(minutes=1))
    assert sim.entity_state(("counter", "later")) == 1


def test_a_client_signal_for_later_and_a_purge_by_filter(sim):
    from durabletask.entities import EntityInstanceId

    sim.client.signal_entity(EntityInstanceId("counter", "c9"), "add", input=2,
                             signal_time=sim.now + timedelta(minutes=30))
    sim.advance(timedelta(minutes=30))
    assert sim.entity_state(("counter", "c9")) == 2
    done = [sim.start_new("chain", [str(i)]) for i in range(3)]
    for iid in done:
        sim.wait_for_completion(iid)
    running = sim.start_new("approval", 1)
    purged = sim.client.purge_orchestrations_by(created_time_from=START)
    assert purged.deleted_instance_count == 3               # finished ones only
    assert list(sim.hub.instances) == [running]


def test_a_wait_names_the_section_that_holds_the_locks(sim):
    first = sim.start_new("transfer", 1)
    second = sim.start_new("transfer", 2)
    with pytest.raises(WaitTimeoutError, match=rf"waits for the locks of @counter@a, @counter@b, "
                                               rf"held by instance\(s\) {first}"):
        sim.wait_for_completion(second, timeout=timedelta(hours=1))
    # GetEntity's lockedBy is the holder's instance id, as DTFx records it
    # (TaskEntityDispatcher.cs:443 `schedulerState.LockedBy = request.ParentInstanceId`, 2.17.1).
    from durabletask.internal import orchestrator_service_pb2 as pb

    answer = sim.client._stub.GetEntity(pb.GetEntityRequest(instanceId="@counter@a"))
    assert answer.entity.lockedBy.value == first


def test_a_saved_in_flight_history_continues_under_the_current_code(sim, tmp_path):
    iid = sim.start_new("approval", 24)
    sim.run_until_idle()
    saved = tmp_path / "approval.json"
    sim.save_history(iid, saved)

    later = Simulator(dt_app.build_worker())
    assert later.load_history(saved) == iid
    assert later.get_status(iid).runtime_status == "Running"
    later.raise_event(iid, "decision", "late yes")
    assert later.wait_for_completion(iid).output == "decided: late yes"
    # Its timer was set again from the history: a second load times out instead.
    again = Simulator(dt_app.build_worker())
    again.load_history(saved, instance_id="copy")
    assert again.wait_for_completion("copy").output == "timed out"


def test_the_async_client_and_asyncio_run_wait_in_virtual_time():
    import asyncio

    from durabletask.client import AsyncTaskHubGrpcClient

    async def client_main() -> str:                 # a client.py main(), run with asyncio.run
        client = AsyncTaskHubGrpcClient()
        iid = await client.schedule_new_orchestration(dt_app.approval, input=6)
        await asyncio.sleep(3 * 3600)             # three hours: virtual
        state = await client.get_orchestration_state(iid)
        assert state is not None and state.runtime_status.name == "RUNNING"
        await client.raise_orchestration_event(iid, "decision", data="async yes")
        done = await client.wait_for_orchestration_completion(iid, timeout=60)
        assert done is not None
        return done.serialized_output

    worker = dt_app.build_worker()
    with _real_sleeps() as slept, attach() as sim:
        worker.start()
        output = asyncio.run(client_main())
        worker.stop()
    assert output == '"decided: async yes"'
    assert slept == []
    assert timedelta(hours=3) <= sim.now - START < timedelta(hours=4)


def test_the_fake_takes_a_registered_agent_by_its_object():
    from dafx_testing.core.errors import DafxError
    from dafx_testing.llm import FakeLLM
    from scenarios.dt_agent_review import worker as review

    review.blog.reset()
    with FakeLLM() as fake:
        sim = Simulator(review.build_worker())
        writer = sim.agent("writer")                          # case folds
        assert writer is sim.agent("Writer") and writer.name == "Writer"
        fake.agent(writer).reply("A draft.")
        fake.agent(sim.agent("Critic")).reply("Fine.")
        iid = sim.start_new("review_post", {"topic": "tides"})
        sim.run_until_idle()
        assert sim.get_status(iid).custom_status["draft"] == "A draft."
        with pytest.raises(DafxError, match="agents: 'Writer', 'Critic'"):
            sim.agent("Editor")


def test_rewind_replays_a_failed_instance_and_its_failed_child(sim):
    iid = sim.start_new("failing_parent")
    assert sim.wait_for_completion(iid).runtime_status == "Failed"
    with pytest.raises(InstanceStateError, match="not in a failed state"):
        sim.rewind(sim.start_new("approval", 1))
    dt_app.BROKEN["explode"] = False               # the fix is deployed
    sim.rewind(iid, "fixed the activity")
    status = sim.wait_for_completion(iid)
    assert (status.runtime_status, status.output) == ("Completed", {"child": "mended"})
    assert "ExecutionRewound" in kinds(status.history)
    assert [c.result for c in sim.activity_calls("explode")] == [None, "mended"]


def test_the_clients_rewind_refuses_what_the_sidecar_refuses(sim):
    iid = sim.start_new("chain", [])
    sim.wait_for_completion(iid)
    with pytest.raises(grpc.RpcError) as refused:
        sim.client.rewind_orchestration(iid)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    failed = sim.start_new("failing")
    sim.wait_for_completion(failed)
    dt_app.BROKEN["explode"] = False
    sim.client.rewind_orchestration(failed, reason="mended")
    assert sim.client.wait_for_orchestration_completion(failed).serialized_output == '"mended"'


def test_an_anyio_sleep_in_work_takes_virtual_time(sim):
    # The openai client's retry back-off is an anyio.sleep: charged to the unit of work.
    iid = sim.start_new("waiting", 30)
    sim.run_until_idle()
    assert sim.get_status(iid).runtime_status == "Running"      # its result is 30 s away
    sim.advance(timedelta(seconds=29))
    assert sim.get_status(iid).runtime_status == "Running"
    sim.advance(timedelta(seconds=1))
    status = sim.get_status(iid)
    assert (status.runtime_status, status.output) == ("Completed", "waited 30")
    assert status.last_updated_time - status.created_time == timedelta(seconds=30)


def test_random_in_work_is_seeded_and_the_tests_own_stream_is_left_alone():
    import random

    def rolled(seed: int) -> list[float]:
        sim = Simulator(dt_app.build_worker(), seed=seed)
        return sim.wait_for_completion(sim.start_new("roll", 1000)).output

    random.seed(123)
    expected_outside = random.Random(123).random()
    first, again, other = rolled(0), rolled(0), rolled(1)
    assert first == again and first != other          # same seed, same draws (aliases too)
    assert random.random() == expected_outside         # the test's own stream did not move
