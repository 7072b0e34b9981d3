"""Greet each city in turn, then have a sub-orchestration shout the greetings."""

import azure.durable_functions as df

from ..shared.cities import default_cities


def chain(context: df.DurableOrchestrationContext):
    cities = context.get_input() or default_cities()
    greetings = []
    for city in cities:
        greetings.append((yield context.call_activity("Greet", city)))
    shouted = yield context.call_sub_orchestrator("Shout", greetings)
    return {"greetings": greetings, "shouted": shouted}


main = df.Orchestrator.create(chain)
