"""An Agent Framework workflow hosted on a Durable Task SDK worker with ``configure_workflow``."""
