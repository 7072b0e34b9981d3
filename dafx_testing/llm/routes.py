"""Which requests are model calls, and on which API.

Recognised by method and path, whatever the host, so OpenAI, Azure OpenAI (deployment routes and
the ``/openai/v1`` surface) and Azure AI Foundry project endpoints are all served:

===============================================================  =====================
``POST {base}/chat/completions``                                  Chat Completions
``POST {azure}/openai/deployments/{deployment}/chat/completions``  Chat Completions
``POST {base}/responses``  (also ``{azure}/openai/v1/responses``,  Responses API
``{foundry}/api/projects/{project}/openai/v1/responses``)
===============================================================  =====================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .wire import RawRequest

__all__ = ["Api", "Route", "classify"]

Api = Literal["chat.completions", "responses"]

_DEPLOYMENT = re.compile(r"/openai/deployments/(?P<name>[^/]+)/")


@dataclass(frozen=True)
class Route:
    """A recognised model call: the API, the Azure deployment in the path and the ``api-version``."""

    api: Api
    deployment: str | None
    api_version: str | None


def classify(raw: RawRequest) -> Route | None:
    """The model route ``raw`` targets, or ``None`` when it is not a model call."""
    if raw.method.upper() != "POST":
        return None
    path = raw.path.rstrip("/")
    if path.endswith("/chat/completions"):
        api: Api = "chat.completions"
    elif path.endswith("/responses"):
        api = "responses"
    else:
        return None
    deployment = _DEPLOYMENT.search(path + "/")
    return Route(api, deployment["name"] if deployment else None, raw.query.get("api-version"))
