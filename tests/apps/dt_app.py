"""A durabletask worker with one orchestration per feature the durabletask host simulates."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from durabletask import entities, task
from durabletask.worker import TaskHubGrpcWorker

SENT: list[str] = []          # what send_email "sent": a side effect crash sweeps can count


def greet(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello, {name}!"


def send_email(ctx: task.ActivityContext, to: str) -> str:
    SENT.append(to)
    return f"sent to {to}"


BROKEN = {"explode": True}     # a test mends it before rewinding


def explode(ctx: task.ActivityContext, _: Any) -> str:
    if BROKEN["explode"]:
        raise ValueError("the activity exploded")
    return "mended"


def dice(ctx: task.ActivityContext, sides: int) -> list[float]:
    """Draws from the shared generator, as a library's retry jitter does."""
    from random import random as jitter

    return [random.randint(1, sides), jitter()]


def roll(ctx: task.OrchestrationContext, sides: int):
    result = yield ctx.call_activity(dice, input=sides)
    return result


def backoff(ctx: task.ActivityContext, seconds: float) -> str:
    """Waits as the openai client waits out a retry: ``anyio.sleep`` on an event loop."""
    import anyio

    anyio.run(anyio.sleep, seconds)
    return f"waited {seconds}"


def waiting(ctx: task.OrchestrationContext, seconds: float):
    result = yield ctx.call_activity(backoff, input=seconds)
    return result


def chain(ctx: task.OrchestrationContext, names: list[str]):
    greetings = []
    for name in names:
        greetings.append((yield ctx.call_activity(greet, input=name)))
    return greetings


def fan_out(ctx: task.OrchestrationContext, count: int):
    results = yield task.when_all([ctx.call_activity(greet, input=str(i)) for i in range(count)])
    return len(results)


def approval(ctx: task.OrchestrationContext, hours: int):
    """Wait for a decision, or time out after ``hours`` (the human-in-the-loop race)."""
    ctx.set_custom_status("waiting")
    decision = ctx.wait_for_external_event("decision")
    timeout = ctx.create_timer(timedelta(hours=hours))
    winner = yield task.when_any([decision, timeout])
    if winner is timeout:
        return "timed out"
    yield ctx.call_activity(send_email, input="boss@example.com")
    return f"decided: {decision.get_result()}"


def parent(ctx: task.OrchestrationContext, names: list[str]):
    child = yield ctx.call_sub_orchestrator(chain, input=names)
    return {"child": child}


def failing_parent(ctx: task.OrchestrationContext, _: Any):
    result = yield ctx.call_sub_orchestrator(failing, input=None)
    return {"child": result}


def failing(ctx: task.OrchestrationContext, _: Any):
    result = yield ctx.call_activity(explode, input=None)
    return result


def counter(ctx: entities.EntityContext, value: Any) -> Any:
    state = ctx.get_state(int, 0)
    if ctx.operation == "add":
        state += value
        ctx.set_state(state)
    return state


def counting(ctx: task.OrchestrationContext, amounts: list[int]):
    target = entities.EntityInstanceId("counter", "c1")
    for amount in amounts:
        ctx.signal_entity(target, "add", input=amount)
    total = yield ctx.call_entity(target, "get")
    return total


def transfer(ctx: task.OrchestrationContext, amount: int):
    """Move ``amount`` between two counters inside a critical section, then wait."""
    source, target = entities.EntityInstanceId("counter", "a"), entities.EntityInstanceId("counter", "b")
    lock = yield ctx.lock_entities([source, target])
    with lock:
        yield ctx.call_entity(source, "add", -amount)
        yield ctx.wait_for_external_event("commit")     # others' operations wait meanwhile
        yield ctx.call_entity(target, "add", amount)
    return "moved"


def remind(ctx: task.OrchestrationContext, hours: int):
    """Signal a counter ``hours`` from now (a scheduled signal), and finish."""
    ctx.signal_entity(entities.EntityInstanceId("counter", "later"), "add", input=1,
                      signal_time=ctx.current_utc_datetime + timedelta(hours=hours))
    return "scheduled"
    yield  # a generator: the SDK runs it as an orchestration


def looping(ctx: task.OrchestrationContext, n: int):
    if n < 3:
        yield ctx.create_timer(timedelta(minutes=1))
        ctx.continue_as_new(n + 1)
        return None
    return n


FLIP = {"on": False}          # flipped by a test: the orchestrator changes under a history


def fickle(ctx: task.OrchestrationContext, _: Any):
    first = "explode" if FLIP["on"] else "greet"
    yield ctx.call_activity(first, input="x")
    yield ctx.wait_for_external_event("go")
    return "done"


def by_clock(ctx: task.OrchestrationContext, _: Any):
    """Reads the wall clock: the guard's case."""
    if datetime.now().year > 2000:
        yield ctx.create_timer(ctx.current_utc_datetime)
    return "x"


def lucky_input(ctx: task.OrchestrationContext, _: Any):
    """The same activity with another input each replay: the SDK compares names, never inputs."""
    yield ctx.call_activity(greet, input=str(random.randint(0, 10**9)))


def nondeterministic_worker() -> TaskHubGrpcWorker:
    worker = TaskHubGrpcWorker()
    worker.add_orchestrator(by_clock)
    worker.add_orchestrator(lucky_input)
    worker.add_activity(greet)
    return worker


def build_worker() -> TaskHubGrpcWorker:
    worker = TaskHubGrpcWorker()
    for orchestrator in (chain, fan_out, approval, parent, failing_parent, failing, counting,
                         transfer, remind, looping, fickle, waiting, roll):
        worker.add_orchestrator(orchestrator)
    for activity in (greet, send_email, explode, backoff, dice):
        worker.add_activity(activity)
    worker.add_entity(counter)
    return worker
