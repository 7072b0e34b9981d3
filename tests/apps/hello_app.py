"""The smallest app with an activity: the plugin tests copy it into their pytester projects."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def hello(context):
    return (yield context.call_activity("greet", context.get_input()))


@app.activity_trigger(input_name="name")
def greet(name):
    return "hello " + name
