"""An activity with an output binding and the invocation context (not a binding)."""

import azure.functions as func


def main(total: int, outbox: func.Out[str], context: func.Context) -> str:
    outbox.set(f"total={total}")
    return f"{context.function_name} recorded {total}"
