"""An agent chain with a human in the loop, hosted by a Durable Task SDK worker (``worker.py``)."""
