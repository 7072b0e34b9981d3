"""Environment defaults pointing the usual variables at the fake.

Apps read their endpoint and model from the environment, often at import time. While faking is
on, each variable below that is *not already set* gets a fake value; on exit the environment is
restored. Values the test sets itself win.

Mind the Agent Framework's precedence (reference: agent-framework-durable.md §7.1): an
``OPENAI_API_KEY`` in the environment selects OpenAI routing for a client built with neither
``azure_endpoint`` nor ``credential``. An app that relies on ``AZURE_OPENAI_*`` variables alone
should pass ``env={...}`` without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["DEFAULT_ENV", "env_defaults"]

DEFAULT_ENV: Mapping[str, str] = {
    "AZURE_OPENAI_ENDPOINT": "https://dafx-fake.openai.azure.com/",
    "AZURE_OPENAI_DEPLOYMENT_NAME": "gpt-4o-mini",
    "AZURE_OPENAI_MODEL": "gpt-4o-mini",    # OpenAIChatCompletionClient's model setting (durabletask samples)
    "FOUNDRY_PROJECT_ENDPOINT": "https://dafx-fake.services.ai.azure.com/api/projects/dafx-fake",
    "FOUNDRY_MODEL": "gpt-4o-mini",
    "OPENAI_API_KEY": "sk-dafx-fake",
}


@contextmanager
def env_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """Set each of ``values`` that the environment lacks, and remove them again on exit."""
    added = [name for name in values if name not in os.environ]
    os.environ.update({name: values[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
