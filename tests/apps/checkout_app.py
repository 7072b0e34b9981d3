"""Two activities in a row: what the plugin's sweep and warning tests run."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def checkout(context):
    reservation = yield context.call_activity("reserve", context.get_input())
    return (yield context.call_activity("charge", reservation))


@app.activity_trigger(input_name="item")
def reserve(item):
    return "reserved " + item


@app.activity_trigger(input_name="reservation")
def charge(reservation):
    return "charged for " + reservation
