"""What every host shares: the task hub (the durable store) and the messages it queues,
history events and files and their text timeline, the virtual clock and virtual-time loop,
the time work takes (slow models, sleeps) and work in flight, seeded ids, the payload
codec, crash points and plans, errors, the async bridge.

Imports nothing else from ``dafx_testing``: a host, a check or a report builds on it.
"""
