"""Add the input to counter 'k1', read it back, and record it."""

import azure.durable_functions as df


def tally(context: df.DurableOrchestrationContext):
    counter = df.EntityId("Counter", "k1")
    context.signal_entity(counter, "add", context.get_input() or 1)
    total = yield context.call_entity(counter, "get")
    note = yield context.call_activity("Record", total)
    return {"total": total, "note": note}


main = df.Orchestrator.create(tally)
