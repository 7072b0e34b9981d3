"""A sub-orchestrator loaded through scriptFile and entryPoint instead of __init__.py:main."""

import azure.durable_functions as df


def shout(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("Upper", " ".join(context.get_input())))


handle = df.Orchestrator.create(shout)
